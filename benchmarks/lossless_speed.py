"""Whole-process timings of lossless coding: each step a fresh ``python`` (start-up, imports and
model loading included, as a command-line user pays them), in alternating pairs, medians and pair
ratios:

    python -m benchmarks.lossless_speed        # 5 pairs of each comparison (about 5 minutes)
    python -m benchmarks.lossless_speed --runs 9 --dir /tmp/fb

Each step codes the 10,000 Fashion-MNIST test images once, as ``benchmarks.lossless`` does
in-process: ``decode`` our lossless archive, ``decode-jxl`` one JPEG XL file per image (effort 7),
``decode-lossy`` the archive at the bundled model's highest quality, ``encode`` lossless,
``encode-jxl``, ``encode-lossy``. ``prepare`` (run first when DIR lacks its files) writes the split
as ``.npy``, its archives and the JPEG XL files. Results: benchmarks/results/lossless_speed.txt.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
TOP_LOSSY = 13  # the quality scale's highest lossy quality (codec.levels.scale)
PAIRS = (
    ("decode", "decode-jxl"),
    ("decode", "decode-lossy"),
    ("encode", "encode-jxl"),
    ("encode", "encode-lossy"),
)


def step(name: str, folder: Path) -> None:
    """One step, in this process."""
    import imagecodecs as ic
    import msgpack

    import codec

    if name == "prepare":
        from codec.io import data

        folder.mkdir(parents=True, exist_ok=True)
        test = data.fashion_mnist("test")
        model = codec.load_model()
        np.save(folder / "test.npy", test)
        (folder / "test.aec").write_bytes(codec.compress(test, lossless=True, model=model))
        (folder / "test-lossy.aec").write_bytes(
            codec.compress(test, quality=TOP_LOSSY, model=model)
        )
        blobs = [ic.jpegxl_encode(np.ascontiguousarray(a), lossless=True, effort=7) for a in test]
        (folder / "test.jxl.msgpack").write_bytes(msgpack.packb(blobs))
    elif name in ("decode", "decode-lossy"):
        codec.decompress(
            (folder / ("test.aec" if name == "decode" else "test-lossy.aec")).read_bytes()
        )
    elif name == "decode-jxl":
        for blob in msgpack.unpackb((folder / "test.jxl.msgpack").read_bytes()):
            ic.jpegxl_decode(blob)
    elif name == "encode":
        codec.compress(np.load(folder / "test.npy"), lossless=True)
    elif name == "encode-jxl":
        msgpack.packb(
            [ic.jpegxl_encode(a, lossless=True, effort=7) for a in np.load(folder / "test.npy")]
        )
    elif name == "encode-lossy":
        model = codec.load_model()
        codec.compress(np.load(folder / "test.npy"), quality=TOP_LOSSY, model=model)
    else:
        raise SystemExit(f"unknown step {name!r}")


def wall(name: str, folder: Path) -> float:
    """Seconds a fresh process takes to run one step."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "benchmarks.lossless_speed", "--step", name, "--dir", str(folder)],
        check=True,
    )
    return time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=5, help="counted pairs of each comparison (after one warm-up)"
    )
    parser.add_argument(
        "--dir", type=Path, help="where the prepared files are (default: a temporary folder)"
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=RESULTS / "lossless_speed.txt")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        if args.step:
            step(args.step, folder)
            return
        if not (folder / "test.jxl.msgpack").exists():
            step("prepare", folder)
        lines = [
            f"Fashion-MNIST test split (10,000 images), one fresh process per step; {args.runs} "
            "alternating "
            "pairs after a warm-up pair; medians (min-max of the pair ratios)"
        ]
        for a, b in PAIRS:
            wall(a, folder), wall(b, folder)
            times = np.array([(wall(a, folder), wall(b, folder)) for _ in range(args.runs)])
            ratio = times[:, 0] / times[:, 1]
            lines.append(
                f"  {a} {np.median(times[:, 0]):.2f} s, {b} {np.median(times[:, 1]):.2f} s: "
                f"ratio {np.median(ratio):.2f} ({ratio.min():.2f}-{ratio.max():.2f})"
            )
            print(lines[-1], flush=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
