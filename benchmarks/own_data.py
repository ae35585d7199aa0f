"""Training on your own data: ``aecodec train`` on 64x64 patches of the training photos, measured on
patches of the held-out photos against WebP and JPEG (issue 14's "trained on your own data").

    python -m benchmarks.own_data --minutes 60 [--kind grey|colour|both] [--workdir runs/own]
    python -m benchmarks.own_data --model codec/pretrained/photo.aecm  # no training: the reference

Patches: a grid of 64x64 patches (every other one) of the photos of ``benchmarks/photos.py``,
colour and grey (the luma); the training photos' patches go to ``aecodec train --data PATCHES.npy``
(those of every fifth training photo to ``--val``)
(the default ``--kind auto``: fine-tuned from the bundled photo model, plus the tile and pixel kinds
for the grey patches), the held-out photos' patches are measured: aecodec as one archive of all of
them (``aecodec FILE.npy`` makes one), WebP and JPEG as one file per patch.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import codec
from benchmarks import baselines, photos
from codec.io.data import luma


def patches(images, size: int = 64, every: int = 2) -> np.ndarray:
    out = []
    for a in images:
        for y in range(0, a.shape[0] - size + 1, size * every):
            for x in range(0, a.shape[1] - size + 1, size * every):
                out.append(a[y : y + size, x : x + size])
    return np.stack(out)


def split(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patches (to train on, to validate on, to measure): every fifth training photo's patches
    validate (``train --val``), so that neither choosing the weights nor the levels sees the photos
    trained on."""
    (w_train, w_test), (s_train, s_test) = photos.wallpapers(), photos.skimage_photos()
    colour = kind == "colour"

    def as_kind(images):
        return (
            [a for a in images if a.ndim == 3]
            if colour
            else [luma(a) if a.ndim == 3 else a for a in images]
        )

    training = as_kind([*w_train.values(), *s_train.values()])
    return (
        patches([a for i, a in enumerate(training) if i % 5 != 4]),
        patches([a for i, a in enumerate(training) if i % 5 == 4]),
        patches(as_kind([*w_test.values(), *s_test.values()])),
    )


def points(model, test: np.ndarray) -> list[dict]:
    rows = []
    for q in model.named_qualities(test.shape[1:], lossy=True):
        blob = codec.compress(test, quality=q, model=model)
        back = codec.decompress(blob, model=model)
        rows.append(baselines.row("aecodec", q, len(blob), len(test), test, back))
    return rows


def pillow(fmt: str, test: np.ndarray, qualities, **kw) -> list[dict]:
    rows = []
    for q in qualities:
        size, back = 0, []
        for a in test:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format=fmt, quality=q, **kw)
            size += buf.tell()
            back.append(
                np.asarray(
                    Image.open(io.BytesIO(buf.getvalue())).convert("RGB" if a.ndim == 3 else "L")
                )
            )
        rows.append(baselines.row(fmt.lower(), q, size, len(test), test, np.stack(back)))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--kind", choices=("grey", "colour", "both"), default="both")
    parser.add_argument("--workdir", type=Path, default=Path("runs/own"))
    parser.add_argument(
        "--model",
        type=Path,
        help="measure this model instead of training one (e.g. the "
        "bundled photo model, to see what the training adds)",
    )
    args = parser.parse_args(argv)
    for kind in ("grey", "colour") if args.kind == "both" else (args.kind,):
        train, val, test = split(kind)
        work = args.workdir / kind
        work.mkdir(parents=True, exist_ok=True)
        print(
            f"\n{kind}: {len(train)} training patches, {len(val)} validation patches (other "
            "photos), "
            f"{len(test)} held-out patches (measured)",
            flush=True,
        )
        if args.model:
            print(f"  measuring {args.model}, not trained on the patches")
            model = codec.load_model(args.model)
        else:
            np.save(work / "patches.npy", train)
            np.save(work / "val.npy", val)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "codec.cli",
                    "train",
                    "--data",
                    str(work / "patches.npy"),
                    "--val",
                    str(work / "val.npy"),
                    "--minutes",
                    str(args.minutes),
                    "--workdir",
                    str(work / "w"),
                    "--out",
                    str(work / "own.aecm"),
                ],
                check=True,
            )
            model = codec.load_model(work / "own.aecm")
        ours = points(model, test)
        webp = pillow("WEBP", test, (5, 10, 20, 30, 40, 50, 60, 70, 80, 90), method=6)
        jpeg = pillow("JPEG", test, (5, 10, 20, 30, 40, 50, 60, 70, 80, 90), optimize=True)
        for r in ours + webp + jpeg:
            print(
                f"  {r['codec']:8s} {r['setting']!s:>3}: {r['bytes_per_image']:8.1f} B/patch  "
                f"{r['psnr']:.2f} dB"
            )
        kinds = [lv.kind for lv in model.levels]
        print(f"  model levels: {kinds}")
        for name, anchor in (("WebP", webp), ("JPEG", jpeg)):
            lo, hi = baselines.psnr_overlap(anchor, ours)
            print(
                f"  BD-rate vs {name}: {baselines.bd_rate(anchor, ours):+.1f}% (over "
                f"{lo:.1f}-{hi:.1f} dB)"
            )


if __name__ == "__main__":
    main()
