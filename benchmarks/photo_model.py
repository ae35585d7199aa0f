"""Measure a photo model on whole photos it never saw, against WebP, JPEG, AVIF and JPEG-XL in the
same run.

    python -m benchmarks.photo_model [--model codec/pretrained/photo.aecm] [--json out.json]

Photos: the held-out ones of ``benchmarks/photos.py`` (wallpapers and scikit-image samples), each
compressed as one file: aecodec's sizes are whole ``codec.compress`` files (container included), the
others' whole files from Pillow (WebP method 6, JPEG optimized, AVIF and JPEG-XL at their default
speeds). Colour: the colour photos; grey: scikit-image's grey photos and the luma of the colour
ones. PSNR over all pixels of a set; BD-rate over the PSNR range both curves cover (negative:
aecodec smaller). Speed: medians of 11 rounds (every codec once per round) on the 512 x 512 colour
and grey held-out photos.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

import codec
from benchmarks import baselines, photos
from codec import api
from codec.io.data import luma

QUALITIES = {
    "WEBP": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90),
    "JPEG": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90),
    "AVIF": (10, 20, 30, 40, 50, 60, 70, 80, 90),
    "JXL": (10, 20, 30, 40, 50, 60, 70, 80, 90),
}
SAVE = {"WEBP": {"method": 6}, "JPEG": {"optimize": True}, "AVIF": {}, "JXL": {}}


def held_out() -> dict[str, list[np.ndarray]]:
    """{"colour": [...], "grey": [...]} of the held-out photos."""
    (_, walls), (_, samples) = photos.wallpapers(), photos.skimage_photos()
    colour = [*walls.values(), *(a for a in samples.values() if a.ndim == 3)]
    grey = [a for a in samples.values() if a.ndim == 2] + [luma(a) for a in colour]
    return {"colour": colour, "grey": grey}


def _row(name, setting, size, images, restored) -> dict:
    squared = sum(
        float(np.sum((a.astype(np.float64) - b) ** 2))
        for a, b in zip(images, restored, strict=True)
    )
    mse = squared / sum(a.size for a in images)
    return {
        "codec": name,
        "setting": setting,
        "bytes_per_image": size / len(images),
        "psnr": 10 * np.log10(255.0**2 / mse) if mse else float("inf"),
        "bpp": 8 * size / sum(a.shape[0] * a.shape[1] for a in images),
    }


def aecodec_points(model, images) -> list[dict]:
    rows = []
    for q in model.named_qualities(images[0].shape, lossy=True):
        blobs = [codec.compress(a, quality=q, model=model) for a in images]
        restored = [codec.decompress(b, model=model) for b in blobs]
        rows.append(_row("aecodec", q, sum(map(len, blobs)), images, restored))
    return rows


def pillow_points(fmt: str, images, *, qualities=None) -> list[dict]:
    """Rows of ``fmt`` at ``qualities`` (default QUALITIES[fmt]), each image its own file."""
    rows = []
    for q in qualities if qualities is not None else QUALITIES[fmt]:
        size, restored = 0, []
        for a in images:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format=fmt, quality=q, **SAVE[fmt])
            size += buf.tell()
            with Image.open(io.BytesIO(buf.getvalue())) as im:
                restored.append(np.asarray(im.convert("RGB" if a.ndim == 3 else "L")))
        rows.append(_row(fmt.lower(), q, size, images, restored))
    return rows


REPEATS = 11


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def speed(model, image: np.ndarray) -> dict:
    """Median seconds to encode and decode one photo, aecodec at the model's default level, AVIF and
    WebP, over REPEATS rounds in which every codec runs once in turn (so a drift of the shared
    machine's speed hits all alike), and the median of the per-round ratio of aecodec's encode to
    AVIF's."""
    blob = codec.compress(image, model=model)
    encoded = {}
    for fmt in ("AVIF", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format=fmt, quality=50)
        encoded[fmt] = buf.getvalue()
    jobs = {
        "aecodec_encode": lambda: codec.compress(image, model=model),
        "aecodec_decode": lambda: codec.decompress(blob, model=model),
    }
    for fmt, data in encoded.items():
        jobs[f"{fmt.lower()}_encode"] = lambda f=fmt: Image.fromarray(image).save(
            io.BytesIO(), format=f, quality=50
        )
        jobs[f"{fmt.lower()}_decode"] = lambda d=data: np.asarray(Image.open(io.BytesIO(d)))
    rounds = [{name: _seconds(fn) for name, fn in jobs.items()} for _ in range(REPEATS)]
    out = {name: statistics.median(r[name] for r in rounds) for name in jobs}
    out["encode_vs_avif"] = statistics.median(
        r["aecodec_encode"] / r["avif_encode"] for r in rounds
    )
    return out


def main(argv=None) -> None:
    import pillow_jxl  # noqa: F401  (registers JPEG-XL with Pillow)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=api.PHOTO_MODEL)
    parser.add_argument("--json", type=Path, help="write every point and result here too")
    args = parser.parse_args(argv)
    model = codec.load_model(args.model)
    sets = held_out()
    results = {"model": model.name, "points": {}, "bd_rate": {}}
    for name, images in sets.items():
        sizes = sorted({a.shape for a in images})
        print(
            f"\n{name}: {len(images)} held-out photos, "
            f"{sum(a.shape[0] * a.shape[1] for a in images) / 1e6:.2f} megapixels "
            f"({', '.join('x'.join(map(str, s[:2])) for s in sizes[:4])}"
            f"{', ...' if len(sizes) > 4 else ''})",
            flush=True,
        )
        ours = aecodec_points(model, images)
        others = {fmt.lower(): pillow_points(fmt, images) for fmt in QUALITIES}
        for r in ours + [r for rows in others.values() for r in rows]:
            print(
                f"  {r['codec']:8s} {r['setting']!s:>3}: {r['bytes_per_image']:9.0f} B/photo  "
                f"{r['bpp']:.3f} bpp  "
                f"{r['psnr']:.2f} dB"
            )
        for other, rows in others.items():
            bd = baselines.bd_rate(rows, ours)
            lo, hi = baselines.psnr_overlap(rows, ours)
            results["bd_rate"][f"{name} vs {other}"] = bd
            print(f"  BD-rate vs {other}: {bd:+.1f}% (over {lo:.1f}-{hi:.1f} dB)")
        results["points"][name] = ours + [r for rows in others.values() for r in rows]
    colour = next(a for a in sets["colour"] if a.shape == (512, 512, 3))
    grey = next(a for a in sets["grey"] if a.shape == (512, 512))
    for label, image in (("colour", colour), ("grey", grey)):
        s = speed(model, image)
        mp = image.shape[0] * image.shape[1] / 1e6
        results[f"speed_{label}"] = s
        print(
            f"\nspeed, one 512x512 {label} photo (median of {REPEATS}): aecodec encode "
            f"{s['aecodec_encode']:.3f} s "
            f"({mp / s['aecodec_encode']:.2f} MP/s), decode {s['aecodec_decode']:.3f} s "
            f"({mp / s['aecodec_decode']:.2f} MP/s); "
            f"AVIF encode {s['avif_encode']:.3f} s, decode {s['avif_decode']:.3f} s; "
            f"WebP encode {s['webp_encode']:.3f} s, decode {s['webp_decode']:.3f} s; "
            f"aecodec's encode / AVIF's {s['encode_vs_avif']:.2f} (median of the rounds' ratios)"
        )
    conv_levels = [lv for lv in model.levels if lv.kind == "conv"]
    if conv_levels:
        enc, dec = conv_levels[0].transform.macs_per_pixel()
        results["macs_per_pixel"] = [enc, dec]
        print(f"multiply-adds per pixel: encode {enc:.0f}, decode {dec:.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
