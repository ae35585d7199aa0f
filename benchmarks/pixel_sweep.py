"""The pixel coder's quantizer steps, swept: where its levels should sit, and where it beats the
transform.

    python -m benchmarks.pixel_sweep [--steps 10-51] [--train 20000] [--test 10000]
        [--compare MODEL]

For each step: tables fitted on the first ``--train`` train-split images, then the test
images coded for real (one stream per 1,024 images, as the container does), PSNR and
bytes per image of payload. Prints every step, marks the efficient ones (no other step
gives more PSNR for fewer bytes), and, with ``--compare``, the transform levels of that
model measured on the same images, each beside the pixel coder's bytes at its PSNR
(interpolated between efficient steps).
"""

from __future__ import annotations

import argparse

import numpy as np

from codec import api
from codec.io import data
from codec.levels import pixel


def measure(train: np.ndarray, test: np.ndarray, step: int) -> dict:
    tables = pixel.tables(pixel.fit_tables(train, step), step)
    payload, squared = 0, 0.0
    for start in range(0, len(test), api.CHUNK_IMAGES):
        x = test[start : start + api.CHUNK_IMAGES]
        stream, restored = pixel.encode(x, step, tables)
        payload += len(stream)
        squared += float(((restored.astype(np.float64) - x) ** 2).sum())
    # step 1: lossless
    psnr = 10 * np.log10(255.0**2 / (squared / test.size)) if squared else float("inf")
    return {"step": step, "psnr": psnr, "bytes": payload / len(test)}


def efficient(points: list[dict]) -> list[dict]:
    """The points no other point beats on both PSNR and bytes, by PSNR."""
    keep = [
        p
        for p in points
        if not any(q["psnr"] >= p["psnr"] and q["bytes"] < p["bytes"] for q in points)
    ]
    return sorted(keep, key=lambda p: p["psnr"])


def bytes_at(front: list[dict], psnr: float) -> float | None:
    if not front or not front[0]["psnr"] <= psnr <= front[-1]["psnr"]:
        return None
    return float(np.interp(psnr, [p["psnr"] for p in front], [p["bytes"] for p in front]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10-51", help="a range FIRST-LAST of steps")
    parser.add_argument(
        "--train", type=int, default=20000, help="train-split images to fit the tables on"
    )
    parser.add_argument("--test", type=int, default=10000, help="test-split images to measure on")
    parser.add_argument(
        "--compare", help="a model file whose transform levels to measure beside it"
    )
    args = parser.parse_args(argv)
    first, last = map(int, args.steps.split("-"))
    train = data.fashion_mnist("train")[: args.train]
    test = data.fashion_mnist("test")[: args.test]
    points = []
    for step in range(first, last + 1):
        points.append(measure(train, test, step))
        print(
            f"step {step}: {points[-1]['psnr']:.2f} dB, {points[-1]['bytes']:.1f} bytes/image",
            flush=True,
        )
    front = efficient(points)
    print(
        "efficient steps:",
        ", ".join(f"{p['step']} ({p['psnr']:.2f} dB, {p['bytes']:.1f} B)" for p in front),
    )
    if args.compare:
        model = api.load_model(args.compare)
        for q in model.qualities:
            if model.level(q).kind == "tile":
                r = api.measure(model, test, q)
                ours = bytes_at(front, r["psnr"])
                ratio = (
                    ""
                    if ours is None
                    else f"; pixel coder {ours:.1f} "
                    f"({100 * (ours / r['bytes_per_image'] - 1):+.0f}%)"
                )
                print(
                    f"transform q={q} of {args.compare}: {r['psnr']:.2f} dB, "
                    f"{r['bytes_per_image']:.1f} bytes/image{ratio}"
                )


if __name__ == "__main__":
    main()
