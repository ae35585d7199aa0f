"""The context model (``codec/levels/conv_context.py``): which split codes held-out images smaller,
at what cost, against the same training without one.

    python -m benchmarks.context --setup own --steps 12000     # fine-tuned on a collection
    python -m benchmarks.context --setup scratch --steps 6000  # photos, from random weights
    python -m benchmarks.context --setup added --steps 3000    # added to the bundled photo model

Each model is trained as a user would, one process each, for MODE none (no context),
checkerboard and channels, with the same steps, seed and crops::

    aecodec train --kind conv --data TRAIN --val VAL --steps N [--context MODE] \\
        --workdir runs/context-SETUP/MODE --out runs/context-SETUP/MODE.aecm

- ``own``: the ``fmnist64`` collection of ``benchmarks/own_data.py`` (Fashion-MNIST at 64x64,
  grey), fine-tuning the bundled photo model as ``aecodec train`` does; measured on the
  collection's held-out test images.
- ``scratch``: the photo model's training photos (``runs/photo-train``, validated on
  ``runs/photo-val``) with ``--from-scratch``; measured on the held-out colour photos of
  ``benchmarks/photos.py`` (their central ``--crop`` square).
- ``added``: a context network added to the bundled photo model and trained alone
  (``--init codec/pretrained/photo.aecm --context MODE --context-only``), against the bundled
  model itself; measured as ``scratch``.

A model that exists is not trained again (a stopped run resumes from its workdir); the held-out
loss of each run is in ``runs/context-SETUP-MODE.log``. Every convolutional level of each model
codes each test image as its own stream: bytes, PSNR, BD-rate against the model without a
context, median encode and decode time of the middle level, multiply-adds per pixel.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import codec
from benchmarks import baselines, own_data
from benchmarks.effort import images_of
from codec.levels import convnet
from codec.pretrained import PHOTO_MODEL

MODES = ("none", "checkerboard", "channels")


def trained(mode: str, args) -> Path:
    """The model of ``mode`` (trained now unless it exists; ``none`` with ``added``: the bundled
    model)."""
    if args.setup == "added" and mode == "none":
        return PHOTO_MODEL
    out = args.root / f"{mode}.aecm"
    if out.is_file():
        return out
    train, val = _data(args.setup)
    command = [sys.executable, "-m", "codec", "train", "--kind", "conv", "--data", train]
    command += ["--val", val, "--steps", str(args.steps), "--workdir", str(args.root / mode)]
    command += ["--out", str(out), "--name", f"context-{mode}"]
    if args.setup == "added":
        command += ["--init", str(PHOTO_MODEL), "--context", mode, "--context-only"]
        command += ["--learning-rate", "1e-3"]
    else:
        command += ["--from-scratch"] if args.setup == "scratch" else []
        command += [] if mode == "none" else ["--context", mode]
    args.root.mkdir(parents=True, exist_ok=True)
    print(" ".join(command[2:]), flush=True)
    with open(args.root.with_name(f"{args.root.name}-{mode}.log"), "a") as log:
        subprocess.run(command, check=True, stderr=log, stdout=log)
    return out


def _data(setup: str) -> tuple[str, str]:
    """The folders of training and validation images (exported where absent)."""
    if setup == "own":
        root = Path("runs/own/fmnist64")
        if not (root / "val").is_dir():
            train, val, _ = own_data.collection("fmnist64")
            own_data.export(train, root / "train"), own_data.export(val, root / "val")
        return str(root / "train"), str(root / "val")
    if not Path("runs/photo-train").is_dir():
        subprocess.run(
            [sys.executable, "-m", "benchmarks.photos", "--export-train", "runs/photo-train"]
            + ["--export-val", "runs/photo-val"],
            check=True,
        )
    return "runs/photo-train", "runs/photo-val"


def measured(path, images) -> tuple[list[dict], float, float, tuple[float, float, float]]:
    """(rows of the conv levels, median encode and decode seconds of the middle level, MACs)."""
    model = codec.load_model(path)
    levels = [lv for lv in model.levels if lv.kind == "conv"]
    rows, encode, decode = [], [], []
    for i, level in enumerate(levels):
        size, squared, values = 0, 0.0, 0
        for a in images:
            t0 = time.perf_counter()
            data = level.encode(a[None])
            t1 = time.perf_counter()
            back = level.decode(data, 1, a.shape)[0]
            if i == len(levels) // 2:
                encode.append(t1 - t0)
                decode.append(time.perf_counter() - t1)
            size += len(data)
            squared += float(((back.astype(float) - a) ** 2).sum())
            values += a.size
        psnr = 10 * math.log10(255.0**2 / (squared / values))
        rows.append({"bytes_per_image": size / len(images), "psnr": psnr})
    transform = model.part("conv")
    encode_macs, decode_macs = transform.macs_per_pixel()
    context = transform.nets.get("context")
    context_macs = convnet.macs_per_pixel(context, 1 / 64) if context else 0.0
    macs = (encode_macs, decode_macs, context_macs)
    return rows, statistics.median(encode), statistics.median(decode), macs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=("own", "scratch", "added"), default="own")
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--root", type=Path)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--count", type=int, help="test images (default: 200 own, 7 photos)")
    args = parser.parse_args(argv)
    args.root = args.root or Path(f"runs/context-{args.setup}")
    args.collection = "fmnist64" if args.setup == "own" else None
    args.count = args.count or (200 if args.setup == "own" else 7)
    images = images_of(args)
    models = {mode: trained(mode, args) for mode in MODES}
    print(f"{args.setup}: {len(images)} held-out images {images[0].shape}; {args.steps} steps")
    measurements = {name: measured(path, images) for name, path in models.items()}
    curves = {name: m[0] for name, m in measurements.items()}
    for name, (rows, enc, dec, (emacs, dmacs, cmacs)) in measurements.items():
        print(
            f"{name}: encode {enc:.3f} s, decode {dec:.3f} s (median, middle level); "
            f"multiply-adds per pixel encode {emacs:,.0f}, decode {dmacs:,.0f} (the context "
            f"network {cmacs:,.0f} of them)"
        )
        for r in rows:
            print(f"  {r['bytes_per_image']:9.1f} B  {r['psnr']:.2f} dB")
        if name != "none":
            print(f"  BD-rate vs none {baselines.bd_rate(curves['none'], rows):+.2f}%")


if __name__ == "__main__":
    main()
