"""Fashion-MNIST moved, flipped, framed and rescaled: does the default model choice hold up?

    python -m benchmarks.fashion_shift [--limit 2000]

Test-split images (never trained on), compressed as one archive per variant with the model
``codec.compress`` picks when none is named (Fashion-MNIST's for 28x28 grey items, the photo model
otherwise). Variants: aligned; shifted right and down by 1-7 pixels (the background, 0, moves in);
flipped left-right; framed in 30x30 (one pixel of background around); upscaled 2x (56x56, bilinear).
Targets (issue 14): shifted and flipped, every level within 3 dB of the aligned PSNR and at most
1.25x the aligned bytes at matched PSNR; framed and upscaled, the ladder monotone (more bytes,
higher PSNR).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from PIL import Image

import codec
from benchmarks import baselines
from codec import api
from codec.io import data


def variants(x: np.ndarray) -> dict[str, np.ndarray]:
    out = {"aligned": x}
    for s in (1, 3, 5, 7):
        out[f"shifted {s}px"] = np.pad(x, ((0, 0), (s, 0), (s, 0)))[:, :28, :28]
    out["flipped"] = x[:, :, ::-1]
    out["framed 30x30"] = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out["upscaled 56x56"] = np.stack(
        [np.asarray(Image.fromarray(a).resize((56, 56), Image.BILINEAR)) for a in x]
    )
    return out


def curve(images: np.ndarray) -> tuple[str, list[dict]]:
    model = api.model_for([images.shape[1:]])
    rows = []
    for q in model.named_qualities(images.shape[1:], lossy=True):
        blob = codec.compress(images, quality=q, model=model)
        back = codec.decompress(blob, model=model)
        mse = np.mean((back.astype(np.float64) - images) ** 2)
        rows.append(
            {
                "quality": q,
                "bytes_per_image": len(blob) / len(images),
                "psnr": 10 * np.log10(255**2 / mse),
            }
        )
    return model.name, rows


def bytes_ratios(anchor: list[dict], test: list[dict]) -> list[tuple[float, bool] | None]:
    """Per anchor level, (``test``'s bytes / ``anchor``'s at the anchor's PSNR, whether that is a
    bound). Where ``test``'s lowest level already lies above the anchor's PSNR, its bytes stand in:
    an upper bound (a lower PSNR would cost ``test`` less), so a cheap anchor level is never left
    out."""
    lowest = min(baselines.pareto(test), key=lambda r: r["psnr"])
    out = []
    for r in anchor:
        bound = r["psnr"] < lowest["psnr"]
        at = lowest["bytes_per_image"] if bound else baselines.bytes_at_psnr(test, r["psnr"])
        out.append(None if at is None else (at / r["bytes_per_image"], bound))
    return out


def worst_bytes_ratio(anchor: list[dict], test: list[dict]) -> float | None:
    ratios = [r[0] for r in bytes_ratios(anchor, test) if r is not None]
    return max(ratios) if ratios else None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="test images (default 2000)")
    args = parser.parse_args(argv)
    x = data.fashion_mnist("test")[: args.limit]
    results = {name: curve(images) for name, images in variants(x).items()}
    aligned = results["aligned"][1]
    for name, (model, rows) in results.items():
        print(
            f"\n{name} ({model}): "
            + "  ".join(
                f"q{r['quality']} {r['bytes_per_image']:.1f} B {r['psnr']:.2f} dB" for r in rows
            )
        )
        monotone = all(
            b["bytes_per_image"] > a["bytes_per_image"] and b["psnr"] > a["psnr"]
            for a, b in itertools.pairwise(rows)
        )
        if name.startswith(("shifted", "flipped")):
            drop = max(a["psnr"] - r["psnr"] for a, r in zip(aligned, rows, strict=True))
            ratio = worst_bytes_ratio(aligned, rows)
            shown = "no PSNR in common" if ratio is None else f"{ratio:.2f}x"
            each = " ".join(
                "-" if r is None else f"{r[0]:.2f}{'*' if r[1] else ''}"
                for r in bytes_ratios(aligned, rows)
            )
            print(
                f"  bytes / aligned bytes at each aligned level's PSNR: {each} (* an upper bound: "
                "this curve starts above it)"
            )
            print(
                f"  largest PSNR drop vs aligned {drop:.2f} dB (target <= 3: {drop <= 3}); "
                f"bytes at matched PSNR at most {shown} the aligned (target <= 1.25: "
                f"{ratio is not None and ratio <= 1.25}); "
                f"monotone {monotone}"
            )
        else:
            print(f"  monotone {monotone}")


if __name__ == "__main__":
    main()
