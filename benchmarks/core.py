"""The codec core's acceptance numbers, on the Fashion-MNIST test split.

    python -m benchmarks.core [--limit N] [--out benchmarks/results/core.json]

Prints and writes: round-trip checks at every quality (shape, dtype, batch-size
independence, coded size against the model's own estimate), rate–distortion against the
PCA coder (BD-rate), bytes at matched PSNR against WebP and JPEG, and speed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import codec
from benchmarks import baselines
from codec import api
from codec.io import data
from codec.levels import pixel
from codec.training.tile_net import count_flops


def roundtrip(model, test: np.ndarray, quality: int, consistency: np.ndarray) -> dict:
    blob = codec.compress(test, quality=quality, model=model)
    restored = codec.decompress(blob, model=model)
    archive = codec.api.container.unpack(blob)
    payload = sum(len(d) for _, d in archive.chunks)
    estimate = model.estimate_bits(test, quality) / 8
    whole = codec.decompress(codec.compress(consistency, quality=quality, model=model), model=model)
    ones = np.stack(
        [
            codec.decompress(codec.compress(x, quality=quality, model=model), model=model)
            for x in consistency
        ]
    )
    sevens = np.concatenate(
        [
            codec.decompress(
                codec.compress(consistency[i : i + 7], quality=quality, model=model), model=model
            )
            for i in range(0, len(consistency), 7)
        ]
    )
    one = codec.compress(test[0], quality=quality, model=model)  # a single image's file
    one_payload = sum(len(d) for _, d in codec.api.container.unpack(one).chunks)
    r = baselines.row("aecodec", quality, len(blob), len(test), test, restored, payload=payload)
    r |= {
        "single_image_container_bytes": len(one) - one_payload,
        "shape_dtype_ok": restored.shape == test.shape and restored.dtype == test.dtype,
        "batch_independent": bool(np.array_equal(whole, ones) and np.array_equal(whole, sevens)),
        "estimate_bytes": estimate,
        "payload_over_estimate": payload / estimate - 1,
        "container_bytes": len(blob) - payload,
    }
    return r


def speed(model, test: np.ndarray, quality: int, repeats: int = 5) -> dict:
    batch = test[:1000]
    blob = codec.compress(batch, quality=quality, model=model)
    codec.decompress(blob, model=model)  # warm-up: compile both paths
    t0 = time.perf_counter()
    for _ in range(repeats):
        blob = codec.compress(batch, quality=quality, model=model)
    enc = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        codec.decompress(blob, model=model)
    dec = (time.perf_counter() - t0) / repeats
    single = batch[0]
    codec.decompress(codec.compress(single, quality=quality, model=model), model=model)
    t0 = time.perf_counter()
    for _ in range(50):
        codec.decompress(codec.compress(single, quality=quality, model=model), model=model)
    latency = (time.perf_counter() - t0) / 50
    return {
        "encode_images_per_s": len(batch) / enc,
        "decode_images_per_s": len(batch) / dec,
        "single_image_roundtrip_ms": latency * 1e3,
    }


def classic_speed(test: np.ndarray) -> dict:
    out = {}
    for name, fmt, kw in (
        ("jpeg", "JPEG", {"quality": 75, "optimize": True}),
        ("webp", "WEBP", {"quality": 75, "method": 6}),
    ):
        baselines._pillow_roundtrip(test[:200], fmt, **kw)  # warm-up
        _, _, enc, dec = baselines._pillow_roundtrip(test[:2000], fmt, **kw)
        out[name] = {"encode_images_per_s": 2000 / enc, "decode_images_per_s": 2000 / dec}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N test images")
    parser.add_argument("--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/core.json"))
    args = parser.parse_args(argv)

    model = api.load_model(args.model)
    test = data.fashion_mnist("test")[: args.limit]
    train = data.fashion_mnist("train")
    consistency = test[:700]
    t_start = time.time()
    qualities = model.named_qualities(lossy=True)

    ours = []
    for q in qualities:
        r = roundtrip(model, test, q, consistency)
        ours.append(r)
        print(
            f"aecodec q={q}: {r['bytes_per_image']:.1f} B/image (payload "
            f"{r['payload_bytes_per_image']:.1f}), "
            f"{r['psnr']:.2f} dB; payload/estimate-1 = {100 * r['payload_over_estimate']:+.2f}%, "
            f"batch-independent={r['batch_independent']}, shape/dtype ok={r['shape_dtype_ok']}",
            flush=True,
        )
    pca = baselines.pca_points(train, test)
    webp = baselines.webp_points(test)
    jpeg = baselines.jpeg_points(test)

    comparisons = []
    for r in ours:
        w, j = baselines.bytes_at_psnr(webp, r["psnr"]), baselines.bytes_at_psnr(jpeg, r["psnr"])
        p = baselines.bytes_at_psnr(pca, r["psnr"])
        comparisons.append(
            {
                "quality": r["setting"],
                "psnr": r["psnr"],
                "bytes": r["bytes_per_image"],
                "webp_bytes": w,
                "jpeg_bytes": j,
                "pca_bytes": p,
                "vs_webp": r["bytes_per_image"] / w if w else None,
                "vs_jpeg": r["bytes_per_image"] / j if j else None,
            }
        )
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "model": {
            "name": model.name,
            "fingerprint": model.fingerprint,
            "flops_per_image": count_flops(model.part("tile").config),
            "pixel_ops_per_image": pixel.OPS_PER_PIXEL * model.part("tile").config.pixels,
            "levels": {q: model.level(q).kind for q in qualities},
        },
        "images": len(test),
        "aecodec": ours,
        "pca": pca,
        "webp": webp,
        "jpeg": jpeg,
        "bd_rate_vs_pca_percent": baselines.bd_rate(pca, ours),
        "bd_rate_vs_webp_percent": baselines.bd_rate(webp, ours),
        "bd_rate_vs_jpeg_percent": baselines.bd_rate(jpeg, ours),
        "matched_psnr": comparisons,
        "speed": {
            "aecodec": {q: speed(model, test, q) for q in qualities},
            **classic_speed(test),
        },
    }
    result["seconds"] = time.time() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print_summary(result)
    return result


def _fmt(v, spec=".1f"):
    return "–" if v is None else format(v, spec)


def print_summary(res: dict) -> None:
    print(
        f"\nFashion-MNIST test, {res['images']} images, model {res['model']['name']} "
        f"({res['model']['fingerprint'][:12]})"
    )
    print(
        "| quality | PSNR dB | bytes/image | WebP at same PSNR | ×WebP | JPEG at same PSNR | ×JPEG "
        "| PCA coder |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c in res["matched_psnr"]:
        print(
            f"| {c['quality']} | {c['psnr']:.2f} | {c['bytes']:.1f} | {_fmt(c['webp_bytes'])} | "
            f"{_fmt(c['vs_webp'], '.2f')} "
            f"| {_fmt(c['jpeg_bytes'])} | {_fmt(c['vs_jpeg'], '.2f')} | {_fmt(c['pca_bytes'])} |"
        )
    print(
        f"BD-rate vs PCA coder: {res['bd_rate_vs_pca_percent']:+.1f}%   vs WebP: "
        f"{res['bd_rate_vs_webp_percent']:+.1f}%   "
        f"vs JPEG: {res['bd_rate_vs_jpeg_percent']:+.1f}%"
    )
    worst = max(abs(r["payload_over_estimate"]) for r in res["aecodec"])
    print(
        f"coded payload vs the model's estimate: worst {100 * worst:.2f}%; container overhead "
        f"{max(r['container_bytes'] for r in res['aecodec'])} bytes per {res['images']}-image file"
    )
    single = max(r["single_image_container_bytes"] for r in res["aecodec"])
    print(
        f"container overhead of a single 28x28 image's file: {single} bytes (target <= 24: "
        f"{single <= 24})"
    )
    print(
        f"round trips: shape/dtype {all(r['shape_dtype_ok'] for r in res['aecodec'])}, "
        f"batch-independent pixels {all(r['batch_independent'] for r in res['aecodec'])}"
    )
    print_targets(res)
    s = res["speed"]
    levels = res["model"]["levels"]
    for q, v in s["aecodec"].items():
        print(
            f"speed q={q} ({levels[q]}, images/s, 1000-image batches): encode "
            f"{v['encode_images_per_s']:.0f}, decode "
            f"{v['decode_images_per_s']:.0f}; single-image round trip "
            f"{v['single_image_roundtrip_ms']:.1f} ms"
        )
    slowest = {
        k: min(v[k] for v in s["aecodec"].values())
        for k in ("encode_images_per_s", "decode_images_per_s")
    }
    print(
        f"speed, slowest level: encode {slowest['encode_images_per_s']:.0f}, decode "
        f"{slowest['decode_images_per_s']:.0f}; "
        f"JPEG encode {s['jpeg']['encode_images_per_s']:.0f}, decode "
        f"{s['jpeg']['decode_images_per_s']:.0f}; "
        f"WebP encode {s['webp']['encode_images_per_s']:.0f}, decode "
        f"{s['webp']['decode_images_per_s']:.0f}"
    )
    print(
        f"speed targets (>= 0.5x JPEG and > WebP, each way, at every level): "
        f"{all(slowest[k] >= 0.5 * s['jpeg'][k] and slowest[k] > s['webp'][k] for k in slowest)}"
    )
    f = res["model"]["flops_per_image"]
    print(
        f"operations per 28x28 image: transform levels encode {f['encode'] / 1e6:.2f} M FLOPs, "
        "decode "
        f"{f['decode'] / 1e6:.2f} M; pixel levels {res['model']['pixel_ops_per_image'] / 1e6:.3f} "
        "M integer "
        f"operations each way; machine: {res['machine']}"
    )


def print_targets(res: dict) -> None:
    """The core issue's quality-level targets, each as measured: the span of the levels, and the
    classic-codec ratios at every level inside the codec's PSNR range (where its curve has a
    value)."""
    psnrs = [r["psnr"] for r in res["aecodec"]]
    print(
        f"quality levels span {min(psnrs):.2f}-{max(psnrs):.2f} dB; covers 22-38 dB: "
        f"{min(psnrs) <= 22 and max(psnrs) >= 38}"
    )
    for name, limit in (("webp", 0.5), ("jpeg", 0.25)):
        inside = [c for c in res["matched_psnr"] if c[f"vs_{name}"] is not None]
        met = [c["quality"] for c in inside if c[f"vs_{name}"] <= limit]
        print(
            f"bytes <= {limit}x {name.upper()} at matched PSNR: met at qualities {met or 'none'} "
            f"of {[c['quality'] for c in inside]}{_crossing(inside, f'vs_{name}', limit)}"
        )


def _crossing(points: list[dict], key: str, limit: float) -> str:
    """Where the ratio first rises through ``limit``, interpolated linearly in PSNR between
    levels."""
    for a, b in itertools.pairwise(points):
        if a[key] <= limit < b[key]:
            at = a["psnr"] + (limit - a[key]) / (b[key] - a[key]) * (b["psnr"] - a["psnr"])
            return f" (up to {at:.1f} dB)"
    return ""


if __name__ == "__main__":
    main()
