"""A 100-megapixel colour photo through the command line, with its peak memory, and what tiles cost.

    python -m benchmarks.large_image [--model codec/pretrained/photo.aecm] [--megapixels 100]

The image: held-out photos of ``benchmarks/photos.py`` upscaled 4x (Lanczos) and laid side by side
to the size asked for (a real photo of that size is not among the data). ``aecodec`` compresses its
.npy file and decompresses it again, each in a fresh process whose peak resident memory (ru_maxrss)
is printed: the target is under 2 GB for both. Seams: one 2048 x 2048 photo coded as 1024-pixel
tiles (how aecodec codes it) and as one piece, bytes and PSNR side by side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import photos
from codec import api
from codec.levels import conv


def large_photo(megapixels: float) -> np.ndarray:
    """A side x side colour image: rows of the upscaled held-out photos side by side, each row as
    tall as its shortest photo, repeated until the image is full."""
    side = int(round((megapixels * 1e6) ** 0.5))
    _, held = photos.wallpapers()
    pieces = [
        np.asarray(Image.fromarray(a).resize((a.shape[1] * 4, a.shape[0] * 4), Image.LANCZOS))
        for a in held.values()
    ]
    height = min(p.shape[0] for p in pieces)
    row = np.concatenate([p[:height] for p in pieces], axis=1)
    row = np.concatenate([row] * -(-side // row.shape[1]), axis=1)[:, :side]
    return np.concatenate([row] * -(-side // height), axis=0)[:side]


# VmHWM: the peak resident memory of this process image (ru_maxrss would also count the parent's
# memory at fork time, which survives the exec).
PEAK = (
    "import re, sys\nfrom codec.cli import main\nrc = main(sys.argv[1:])\n"
    "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1), "
    "file=sys.stderr)\nsys.exit(rc)"
)


def run(args: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MB) of one aecodec command in a fresh process."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *args], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - t0, int(done.stderr.split()[-1]) / 1024


def psnr(a, b) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def seams(model_path: Path) -> None:
    model = api.load_model(model_path)
    _, held = photos.wallpapers()
    a = next(iter(held.values()))
    image = np.asarray(Image.fromarray(a).resize((2048, 2048), Image.LANCZOS))
    level = model.level(model.default_quality)
    for label, tile in (("1024-pixel tiles", 1024), ("one piece", 4096)):
        old, conv.TILE = conv.TILE, tile
        try:
            data = level.encode(image[None])
            restored = level.decode(data, 1, image.shape)[0]
        finally:
            conv.TILE = old
        print(
            f"2048x2048 photo, quality {model.default_quality}, {label}: {len(data)} bytes, "
            f"{psnr(image, restored):.2f} dB",
            flush=True,
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=api.PHOTO_MODEL)
    parser.add_argument("--megapixels", type=float, default=100.0)
    args = parser.parse_args(argv)
    seams(args.model)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        src = Path(tmp) / "large.npy"
        image = large_photo(args.megapixels)
        np.save(src, image)
        print(
            f"image: {image.shape[1]}x{image.shape[0]} colour "
            f"({image.shape[0] * image.shape[1] / 1e6:.1f} megapixels, "
            f"{src.stat().st_size / 1e6:.0f} MB as .npy)",
            flush=True,
        )
        del image
        model = ["--model", str(args.model)]
        seconds, peak = run(["compress", "-q", *model, str(src)])
        size = (Path(tmp) / "large.npy.aec").stat().st_size
        print(
            f"compress:   {seconds:6.1f} s, peak {peak:6.0f} MB, {size / 1e6:.2f} MB written",
            flush=True,
        )
        seconds, peak = run(
            [
                "decompress",
                "-q",
                *model,
                "-o",
                str(Path(tmp) / "back.npy"),
                str(Path(tmp) / "large.npy.aec"),
            ]
        )
        print(f"decompress: {seconds:6.1f} s, peak {peak:6.0f} MB", flush=True)
        original, back = np.load(src, mmap_mode="r"), np.load(Path(tmp) / "back.npy", mmap_mode="r")
        print(f"PSNR {psnr(original[::7, ::7], back[::7, ::7]):.2f} dB (every 7th pixel)")


if __name__ == "__main__":
    main()
