"""The default lossless archive on datasets nothing in aecodec was trained on, against xz -9e on the
raw archive and JPEG XL effort 7 one file per image (and zstd -19, PNG): whether the coder adapts
to data unlike its models' (an archive's chunks grow their own context tree when the estimate
says it pays: ``codec.levels.lossless``).

    python -m benchmarks.adaptive          # about 3 minutes on 2 cores

The datasets are built here from packages kept out of training and tuning (scikit-learn's
handwritten digits, scikit-image's generators and faces, Pillow's font):

- ``digits-28``, ``digits-16``: the 1,797 handwritten digits of scikit-learn (8 x 8, 17 levels),
  scaled to 0..255 and resized to 28 x 28 and 16 x 16 (bilinear), as digits at other sizes;
- ``faces-25``: scikit-image's 200 LFW faces, 25 x 25 grey;
- ``masks-64``: 1,000 binary masks of 64 x 64 (scikit-image's ``binary_blobs``, 0 and 255);
- ``scanned-text``: 400 lines of 32 x 160 of random words in Pillow's font at 12-20 px, blurred,
  with sensor noise: text as a scanner sees it.

Each row: bits per pixel of aecodec's default lossless archive (``codec.compress(images,
lossless=True)``), the same with the models' trees only (no own trees: what format 6 did for chunks
of many images), xz -9e and zstd -19 on the raw archive, and JPEG XL effort 7 and PNG one file per
image; the target is fewer bits than both xz -9e and JPEG XL on every dataset. Results:
benchmarks/results/adaptive.txt.
"""

from __future__ import annotations

import argparse
import lzma
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def digits(side: int) -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_digits

    small = (load_digits().images * (255 / 16)).round().astype(np.uint8)
    return np.stack(
        [
            np.asarray(Image.fromarray(a).resize((side, side), Image.Resampling.BILINEAR))
            for a in small
        ]
    )


def faces() -> np.ndarray:
    from skimage import data

    return (data.lfw_subset() * 255).round().astype(np.uint8)


def masks(n: int = 1000, side: int = 64) -> np.ndarray:
    from skimage import data

    return (
        np.stack(
            [
                data.binary_blobs(side, blob_size_fraction=0.15 + 0.1 * (i % 4), rng=i)
                for i in range(n)
            ]
        ).astype(np.uint8)
        * 255
    )


def scanned_text(n: int = 400, shape=(32, 160)) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out = []
    for _i in range(n):
        words = [
            "".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(rng.integers(2, 5))
        ]
        im = Image.new("L", shape[::-1], 235)
        font = ImageFont.load_default(size=int(rng.integers(12, 21)))
        ImageDraw.Draw(im).text((4, int(rng.integers(0, 10))), " ".join(words), fill=30, font=font)
        im = im.filter(ImageFilter.GaussianBlur(0.6 + 0.4 * rng.random()))
        a = np.asarray(im, np.float64) + rng.normal(0, 4, shape)
        out.append(np.clip(a, 0, 255).round().astype(np.uint8))
    return np.stack(out)


DATASETS = {
    "digits-28": lambda: digits(28),
    "digits-16": lambda: digits(16),
    "faces-25": faces,
    "masks-64": masks,
    "scanned-text": scanned_text,
}


def measure(name: str, images: np.ndarray) -> dict:
    import imagecodecs as ic
    import zstandard

    import codec
    from codec.levels import lossless

    pixels = images.size
    ours = codec.compress(images, lossless=True)
    if not np.array_equal(codec.decompress(ours), images):
        raise AssertionError(f"{name}: not restored exactly")
    saved = lossless.LosslessCoder.own_tree
    lossless.LosslessCoder.own_tree = lambda *a: (None, None)
    try:
        models_trees = codec.compress(images, lossless=True)
    finally:
        lossless.LosslessCoder.own_tree = saved
    raw = np.ascontiguousarray(images).tobytes()
    sizes = {
        "aecodec lossless": len(ours),
        "aecodec, models' trees only": len(models_trees),
        "xz -9e (raw archive)": len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)),
        "zstd -19 (raw archive)": len(zstandard.ZstdCompressor(level=19).compress(raw)),
        "JPEG XL e7 (file per image)": sum(
            len(ic.jpegxl_encode(a, lossless=True, effort=7)) for a in images
        ),
        "PNG (file per image)": sum(len(ic.png_encode(a, level=9)) for a in images),
    }
    bits = {k: 8 * v / pixels for k, v in sizes.items()}
    met = bits["aecodec lossless"] < min(
        bits["xz -9e (raw archive)"], bits["JPEG XL e7 (file per image)"]
    )
    return {
        "dataset": name,
        "images": len(images),
        "shape": images.shape[1:],
        "bits": bits,
        "met": met,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DATASETS), help="comma-separated datasets")
    parser.add_argument("--results", type=Path, default=RESULTS / "adaptive.txt")
    args = parser.parse_args(argv)
    lines = []
    for name in args.only.split(","):
        r = measure(name, DATASETS[name]())
        lines.append(
            f"{name} ({r['images']} images of {'x'.join(map(str, r['shape']))}): "
            + ", ".join(f"{k} {v:.3f}" for k, v in r["bits"].items())
            + f" bits/pixel; below xz -9e and JPEG XL: {r['met']}"
        )
        print(lines[-1], flush=True)
    met = sum("below xz -9e and JPEG XL: True" in line for line in lines)
    lines.append(f"below both on {met} of {len(lines)} datasets")
    print(lines[-1])
    if args.results:
        args.results.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
