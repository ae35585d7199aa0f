"""Train the convolutional kind on photographs and measure it on whole photos it never saw, against
WebP, JPEG and AVIF (Pillow) in the same run.

    python -m benchmarks.conv_photos --minutes 35 [--out runs/conv-photo.npz]

Photos: the photographic wallpapers of Debian's plasma-workspace-wallpapers (one picture per
wallpaper folder, the size nearest 1280 wide, downscaled to 512 on its long side); every fifth
folder, in name order, is held out whole for measuring. Sizes are whole files: the conv stream plus
the 24 bytes of a single image's container; PSNR over all pixels of the held-out photos.
"""

from __future__ import annotations

import argparse
import glob
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import baselines
from codec import conv, conv_model

WALLPAPERS = Path("/usr/share/wallpapers")
CONTAINER_BYTES = 24  # of a single image's file (container format 3)


def photos(long_side: int = 512) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training photos, held-out photos), RGB uint8."""
    train, test = [], []
    for i, folder in enumerate(sorted(p for p in WALLPAPERS.iterdir() if (p / "contents" / "images").is_dir())):
        files = glob.glob(str(folder / "contents" / "images" / "*"))
        if not files:
            continue
        best = min(files, key=lambda f: abs(int(Path(f).stem.split("x")[0]) - 1280) if "x" in Path(f).stem else 1e9)
        with Image.open(best) as im:
            im.draft("RGB", (im.width // 2, im.height // 2))
            im = im.convert("RGB")
            im.thumbnail((long_side, long_side))
            (test if i % 5 == 4 else train).append(np.asarray(im))
    return train, test


def aecodec_points(transform: conv.ConvTransform, images: list[np.ndarray]) -> list[dict]:
    rows = []
    for lv in range(len(transform.config["lambdas"])):
        level = conv.ConvLevel(transform, lv)
        sizes, restored = 0, []
        for image in images:
            data = level.encode(image[None])
            sizes += len(data) + CONTAINER_BYTES
            restored.append(level.decode(data, 1, image.shape)[0])
        rows.append(_row("aecodec-conv", lv + 1, sizes, images, restored))
    return rows


def pillow_points(name: str, fmt: str, images: list[np.ndarray], qualities, **kw) -> list[dict]:
    rows = []
    for q in qualities:
        size, restored = 0, []
        for image in images:
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format=fmt, quality=q, **kw)
            size += buf.tell()
            restored.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(Image.fromarray(image).mode)))
        rows.append(_row(name, q, size, images, restored))
    return rows


def _row(name, setting, size, images, restored) -> dict:
    mse = np.mean(np.concatenate([(a.astype(np.float64) - b).ravel() ** 2 for a, b in zip(images, restored, strict=True)]))
    return {"codec": name, "setting": setting, "bytes_per_image": size / len(images),
            "psnr": 10 * np.log10(255.0**2 / mse)}


def speed(transform: conv.ConvTransform, image: np.ndarray, level: int = 2, repeats: int = 3) -> tuple[float, float]:
    """Median seconds to encode and to decode one photo."""
    lv = conv.ConvLevel(transform, level)
    enc, dec = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = lv.encode(image[None])
        enc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lv.decode(data, 1, image.shape)
        dec.append(time.perf_counter() - t0)
    return float(np.median(enc)), float(np.median(dec))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=35.0)
    parser.add_argument("--steps", type=int, default=10**9)
    parser.add_argument("--out", type=Path, default=Path("runs/conv-photo.npz"))
    args = parser.parse_args(argv)
    train, test = photos()
    print(f"{len(train)} training photos, {len(test)} held out: {[a.shape for a in test]}", flush=True)
    t0 = time.time()
    model = conv_model.train(train, cfg=conv_model.ConvConfig(), steps=args.steps, batch_size=8, crop=128,
                             learning_rate=5e-4, minutes=args.minutes, log=lambda s: print(s, flush=True))
    print(f"trained in {(time.time() - t0) / 60:.1f} min", flush=True)
    params = conv_model.export(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **{f"{k}_{i}_{j}": a for k in ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis")
                          for i, layer in enumerate(params[k]) for j, a in enumerate(layer)},
             log_gain=params["log_gain"], log_inv_gain=params["log_inv_gain"], log_z_scale=params["log_z_scale"])
    transform = conv.ConvTransform(params, conv.ladder_tables())
    ours = aecodec_points(transform, test)
    webp = pillow_points("webp", "WEBP", test, (5, 10, 20, 30, 40, 50, 60, 70, 80, 90), method=6)
    jpeg = pillow_points("jpeg", "JPEG", test, (5, 10, 20, 30, 40, 50, 60, 70, 80, 90), optimize=True)
    avif = pillow_points("avif", "AVIF", test, (10, 20, 30, 40, 50, 60, 70, 80, 90))
    for r in ours + webp + jpeg + avif:
        print(f"{r['codec']:13s} {r['setting']!s:>3}: {r['bytes_per_image']:9.0f} B/photo  {r['psnr']:.2f} dB")
    for name, anchor in (("WebP", webp), ("JPEG", jpeg), ("AVIF", avif)):
        print(f"BD-rate vs {name}: {baselines.bd_rate(anchor, ours):+.1f}%")
    enc, dec = speed(transform, test[0])
    print(f"speed on a {test[0].shape} photo (level 3, median of 3): encode {enc:.2f} s, decode {dec:.2f} s")


if __name__ == "__main__":
    main()
