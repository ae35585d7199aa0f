"""Training on your own data: ``aecodec train --minutes M`` on a collection's training images,
measured on its held-out images against the bundled models untrained and WebP, AVIF, JPEG XL and
JPEG, one file per image.

    python -m benchmarks.own_data --collection fmnist64 --minutes 60
    python -m benchmarks.own_data --collection photo-archive --minutes 60
    python -m benchmarks.own_data --collection all --minutes 5 --workdir runs/own-5
    python -m benchmarks.own_data --collection fmnist64 --model runs/own/fmnist64/own.aecm

Collections (none made by this project; whole images held out, never crops of trained ones):

- ``fmnist64`` (grey): Fashion-MNIST's items at 64 x 64 (Lanczos), a catalogue kept at another
  size: the first 6,000 items of the train split to train on, its last 300 to validate
  (``train --val``), the first 200 of the test split measured.
- ``photo-archive`` (colour): the KDE wallpaper photographs at 768 pixels on the long side: the
  training wallpapers of ``benchmarks/photos.py`` (every fifth of them to validate), the held-out
  ones measured.

The training runs as a user runs it (``aecodec train --data --val --minutes --workdir --out``, in a
process of its own; its workdir resumes a run cut short). aecodec's sizes are whole
``codec.compress`` files over the model's distinct lossy qualities; the others whole Pillow files
(WebP method 6, JPEG optimized, AVIF and JPEG XL at their default speeds). BD-rates over the PSNR
range both curves cover (negative: the first smaller).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import codec
from benchmarks import baselines, photos
from benchmarks.photo_model import aecodec_points, pillow_points
from codec.io import data
from codec.pretrained import DEFAULT_MODEL, PHOTO_MODEL

COLLECTIONS = ("fmnist64", "photo-archive")
ANCHORS = ("WEBP", "AVIF", "JXL", "JPEG")


def _upscaled(items: np.ndarray, side: int = 64) -> list[np.ndarray]:
    resample = Image.Resampling.LANCZOS
    return [np.asarray(Image.fromarray(a).resize((side, side), resample)) for a in items]


def collection(name: str) -> tuple[list, list, list]:
    """(images to train on, to validate on, to measure) of a collection."""
    if name == "fmnist64":
        train = data.fashion_mnist("train")
        return (
            _upscaled(train[:6000]),
            _upscaled(train[-300:]),
            _upscaled(data.fashion_mnist("test")[:200]),
        )
    if name == "photo-archive":
        train, test = photos.wallpapers(long_side=768)
        named = list(train.values())
        fit = [a for i, a in enumerate(named) if i % 5 != 4]
        return fit, [a for i, a in enumerate(named) if i % 5 == 4], list(test.values())
    raise SystemExit(f"unknown collection {name!r}: one of {', '.join(COLLECTIONS)}")


def export(images: list, folder: Path) -> Path:
    """The images as PNG files in ``folder`` (what ``aecodec train --data`` reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        Image.fromarray(a).save(folder / f"{i:05d}.png")
    return folder


def trained(name: str, minutes: float, workdir: Path, train: list, val: list) -> Path:
    """``aecodec train`` on the collection, as a user runs it; the model file's path."""
    work = workdir / name
    out = work / "own.aecm"
    command = [
        sys.executable,
        "-m",
        "codec.cli",
        "train",
        "--data",
        str(export(train, work / "train")),
        "--val",
        str(export(val, work / "val")),
        "--minutes",
        f"{minutes:g}",
        "--workdir",
        str(work / "w"),
        "--out",
        str(out),
        "-f",
    ]
    print("  $ aecodec " + " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True)
    return out


def measure(name: str, model_path: Path, test: list) -> dict:
    """Every curve on the held-out images: own, the bundled models, the anchors."""
    import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow)

    curves = {"own": aecodec_points(codec.load_model(model_path), test)}
    for label, path in (("bundled photo", PHOTO_MODEL), ("bundled fmnist", DEFAULT_MODEL)):
        curves[label] = aecodec_points(codec.load_model(path), test)
    for fmt in ANCHORS:
        curves[fmt.lower()] = pillow_points(fmt, test)
    return curves


def report(name: str, curves: dict) -> dict:
    """Print every curve and the BD-rates; returns them."""
    for label, rows in curves.items():
        print(f"  {label}:")
        for r in rows:
            print(f"    {r['setting']!s:>3}: {r['bytes_per_image']:9.1f} B  {r['psnr']:.2f} dB")
    bundled = min(("bundled photo", "bundled fmnist"), key=lambda k: _area(curves[k]))
    bd = {}
    for label in ("own", bundled):
        for fmt in ANCHORS:
            anchor = curves[fmt.lower()]
            lo, hi = baselines.psnr_overlap(anchor, curves[label])
            bd[f"{label} vs {fmt}"] = baselines.bd_rate(anchor, curves[label])
            value = bd[f"{label} vs {fmt}"]
            print(f"  BD-rate {label} vs {fmt}: {value:+.1f}% ({lo:.1f}-{hi:.1f} dB)")
    lo, hi = baselines.psnr_overlap(curves[bundled], curves["own"])
    bd[f"own vs {bundled}"] = baselines.bd_rate(curves[bundled], curves["own"])
    value = bd[f"own vs {bundled}"]
    print(f"  BD-rate own vs {bundled} (untrained): {value:+.1f}% ({lo:.1f}-{hi:.1f} dB)")
    return bd


def _area(rows: list) -> float:
    """Mean log-bytes over 30-40 dB: which bundled model is the stronger one here."""
    sizes = [baselines.bytes_at_psnr(rows, p) for p in np.linspace(30, 40, 11)]
    known = [np.log(s) for s in sizes if s is not None]
    return float(np.mean(known)) if known else np.inf


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", choices=(*COLLECTIONS, "all"), default="all")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--workdir", type=Path, default=Path("runs/own"))
    parser.add_argument("--model", type=Path, help="measure this model instead of training one")
    parser.add_argument("--json", type=Path, help="write the curves and BD-rates here")
    args = parser.parse_args(argv)
    results = {}
    for name in COLLECTIONS if args.collection == "all" else (args.collection,):
        train, val, test = collection(name)
        print(
            f"\n{name}: {len(train)} images to train on, {len(val)} to validate on, "
            f"{len(test)} held out (measured, one file each)",
            flush=True,
        )
        path = args.model or trained(name, args.minutes, args.workdir, train, val)
        curves = measure(name, path, test)
        model = codec.load_model(path)
        print(f"  own model: {path}, levels {[lv.kind for lv in model.levels]}")
        results[name] = {"curves": curves, "bd_rate": report(name, curves)}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
