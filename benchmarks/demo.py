"""The quick-start job: compress and restore the Fashion-MNIST test split with the bundled model.

    python -m benchmarks.demo [--out DIR]

Writes one ``.aec`` archive per quality (10,000 images each), decodes it, and prints its
size per image and PSNR beside gzip -9 of the raw pixels.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np

import codec
from codec.io import data


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the .aec files (default: a temporary one)",
    )
    args = parser.parse_args(argv)
    images = data.fashion_mnist("test")
    n = len(images)
    raw = n * images[0].size
    gz = len(gzip.compress(images.tobytes(), 9))
    print(f"Fashion-MNIST test split: {n} images of 28x28, {raw} bytes raw")
    print(f"gzip -9 (lossless): {gz / n:7.1f} bytes/image  ratio {raw / gz:5.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for q in codec.QUALITIES:
            t0 = time.perf_counter()
            path = out / f"fashion-mnist-test-q{q}.aec"
            path.write_bytes(codec.compress(images, quality=q))
            restored = codec.decompress(path.read_bytes())
            seconds = time.perf_counter() - t0
            assert restored.shape == images.shape and restored.dtype == np.uint8
            mse = np.mean((restored.astype(np.float64) - images) ** 2)
            size = path.stat().st_size
            psnr = f"{10 * np.log10(255**2 / mse):5.2f} dB" if mse else "exact (lossless)"
            print(
                f"aecodec quality {q:2d}: {size / n:7.1f} bytes/image  ratio {raw / size:5.1f}x  "
                f"{size / gz:5.3f}x gzip's size  PSNR {psnr}  ({seconds:.1f} s round trip)"
            )


if __name__ == "__main__":
    main()
