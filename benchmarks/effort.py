"""Encoder effort: bytes saved at equal PSNR by refining the convolutional levels' latents
(``codec/levels/refine.py``), per effort, with encode times and the work per pixel.

    python -m benchmarks.effort                                   # the bundled photo model
    python -m benchmarks.effort --model runs/own/fmnist64/own.aecm --collection fmnist64

Images: the held-out colour photos of ``benchmarks/photos.py`` (their central ``--crop`` square),
or a collection of ``benchmarks/own_data.py`` (its held-out images). Each convolutional level of
the model codes each image as its own stream at each effort; bytes are the streams' (the
container adds the same few bytes at every effort), PSNR over all pixels, BD-rate of each effort
against effort 0 over the levels (negative: smaller), encode time the median per image of the
middle level. The scale may name other kinds at a quality; effort changes only these levels.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import codec
from benchmarks import baselines
from codec.levels import refine
from codec.pretrained import PHOTO_MODEL


def images_of(args) -> list[np.ndarray]:
    if args.collection:
        from benchmarks import own_data

        return own_data.collection(args.collection)[2][: args.count]
    from benchmarks.photo_model import held_out

    out = []
    for a in held_out()["colour"][: args.count]:
        y, x = max(0, (a.shape[0] - args.crop) // 2), max(0, (a.shape[1] - args.crop) // 2)
        out.append(np.ascontiguousarray(a[y : y + args.crop, x : x + args.crop]))
    return out


def row(level, images, effort: int) -> tuple[dict, list[float]]:
    coder = level.with_effort(effort) if effort else level
    size, squared, values, seconds = 0, 0.0, 0, []
    for a in images:
        t0 = time.perf_counter()
        data = coder.encode(a[None])
        seconds.append(time.perf_counter() - t0)
        back = level.decode(data, 1, a.shape)[0]
        size += len(data)
        squared += float(np.sum((back.astype(np.float64) - a) ** 2))
        values += a.size
    psnr = 10 * np.log10(255.0**2 / (squared / values))
    return {
        "codec": f"effort {effort}",
        "bytes_per_image": size / len(images),
        "psnr": psnr,
    }, seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(PHOTO_MODEL))
    parser.add_argument("--collection", help="a collection of benchmarks/own_data.py")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--count", type=int, default=7)
    parser.add_argument("--efforts", default="0,1,2,3")
    args = parser.parse_args(argv)
    model = codec.load_model(args.model)
    levels = [lv for lv in model.levels if lv.kind == "conv"]
    images = images_of(args)
    transform = model.part("conv")
    encode_macs, decode_macs = transform.macs_per_pixel()
    print(
        f"{args.model}: {len(levels)} convolutional levels, {len(images)} images "
        f"{images[0].shape}; multiply-adds per pixel: encode {encode_macs:,.0f}, decode "
        f"{decode_macs:,.0f}, each refinement step about {2 * decode_macs:,.0f} (the synthesis "
        "and its input gradient, float32)"
    )
    efforts = [int(e) for e in args.efforts.split(",")]
    curves, times = {}, {}
    for effort in efforts:
        rows, middle = [], len(levels) // 2
        for i, level in enumerate(levels):
            r, seconds = row(level, images, effort)
            rows.append(r)
            if i == middle:
                times[effort] = statistics.median(seconds)
        curves[effort] = rows
        steps = refine.EFFORT_STEPS[effort]
        print(f"effort {effort} ({steps} steps): encode {times[effort]:.3f} s per image (median)")
        for lv, r in zip(levels, rows, strict=True):
            print(f"  level {lv.index}: {r['bytes_per_image']:9.1f} B  {r['psnr']:.2f} dB")
        if effort:
            bd = baselines.bd_rate(curves[0], rows)
            print(f"  BD-rate vs effort 0: {bd:+.2f}%  ({times[effort] / times[0]:.1f}x the time)")


if __name__ == "__main__":
    main()
