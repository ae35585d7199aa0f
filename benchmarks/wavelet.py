"""The wavelet levels on held-out photos, beside WebP, AVIF and JPEG XL in the same run (issue 28:
at 36-46 dB, aecodec's bytes at matched PSNR <= WebP's and <= 1.2x JPEG XL's).

    python -m benchmarks.wavelet [--validate] [--steps 32,16,8] [--out FILE]

Tables are counted (``codec.training.wavelet_fit``) on the training photos
(``photos.wallpapers()`` and ``photos.skimage_photos()``'s train splits, at the sizes they come)
for ``wavelet_fit.STEPS``; each level then codes ``photo_model.held_out()``'s colour and grey
photos, each photo one ``codec.compress`` file (container included), as ``benchmarks.ladder``
does, and the tables, matched bytes and BD-rates over 36-46 dB are ``benchmarks.ladder``'s. Also
printed: encode and decode seconds of one 512 x 512 colour photo per level (median of 5).
``--validate`` measures on the training photos' validation part instead (every VALIDATION-th
training photo, tables counted on the others): where the steps and constants were chosen. The
printed text is also written to benchmarks/results/wavelet.txt unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

import codec
from benchmarks import ladder, photo_model, photos
from codec.levels import modelfile
from codec.levels.model import Model
from codec.training import wavelet_fit

VALIDATION = 6  # every 6th training photo is the validation part (--validate)
OUT = Path("benchmarks/results/wavelet.txt")


def training_photos() -> list[np.ndarray]:
    """The training photos, colour and grey, in the sizes they come."""
    (walls, _), (samples, _) = photos.wallpapers(), photos.skimage_photos()
    return [*walls.values(), *samples.values()]


def validation_split() -> tuple[list, dict]:
    """(photos to count tables on, {"colour": [...], "grey": [...]} to measure on): the training
    photos, every VALIDATION-th one held out (grey: the grey ones and the colour ones' luma)."""
    train = training_photos()
    held = train[::VALIDATION]
    fit = [a for i, a in enumerate(train) if i % VALIDATION]
    colour = [a for a in held if a.ndim == 3]
    grey = [a for a in held if a.ndim == 2] + [photo_model.luma(a) for a in colour]
    return fit, {"colour": colour, "grey": grey}


def wavelet_model(images, steps) -> Model:
    """A model of wavelet levels alone, counted on ``images``."""
    levels = wavelet_fit.fit(images, steps)
    raw = modelfile.dumps(name="wavelet-benchmark", meta={}, default=1, wavelet=levels)
    return Model(modelfile.loads(raw))


def wavelet_points(model, images) -> list[dict]:
    """Every level, each image its own file: ``ladder.point`` rows labelled q1, q2, ..."""
    rows = []
    for q in model.qualities:
        blobs = [codec.compress(a, model=model, quality=q) for a in images]
        restored = [codec.decompress(b, model=model) for b in blobs]
        rows.append(ladder.point("aecodec", f"q{q}", sum(map(len, blobs)), images, restored))
    return rows


def speeds(model, image: np.ndarray) -> None:
    """Median encode and decode seconds of ``image`` at each level (5 rounds)."""
    print(f"\nspeed, one {image.shape[0]}x{image.shape[1]} colour photo (median of 5):")
    for q, level in zip(model.qualities, model.levels, strict=True):
        enc, dec = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            data = level.encode(image[None])
            t1 = time.perf_counter()
            level.decode(data, 1, image.shape)
            dec.append(time.perf_counter() - t1)
            enc.append(t1 - t0)
        print(f"  q{q}: encode {np.median(enc):.3f} s, decode {np.median(dec):.3f} s, "
              f"{len(data)} bytes")  # fmt: skip


def measure(title: str, model, images) -> dict:
    """The levels and the baselines on one set, printed (``ladder.print_table``)."""
    ours = wavelet_points(model, images)
    others = ladder.baseline_points(images)
    ladder.matched(ours, others)
    summary = ladder.summary(ours, others)
    ladder.print_table(title, ours, others, summary)
    return summary


def run(args) -> None:
    if args.validate:
        fit, sets = validation_split()
        where = "training photos' validation part"
    else:
        fit, sets = training_photos(), photo_model.held_out()
        where = "held-out photos"
    print(f"wavelet levels, base steps {args.steps}, tables counted on {len(fit)} photos")
    model = wavelet_model(fit, args.steps)
    for name, images in sets.items():
        title = f"wavelet levels, {where}, {name}: {len(images)} photos, each its own file"
        measure(title, model, images)
    square = [a for a in sets["colour"] if a.shape[:2] == (512, 512)]
    speeds(model, square[0] if square else np.resize(sets["colour"][0], (512, 512, 3)))


def main(argv=None) -> None:
    import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validate", action="store_true", help="the training photos' validation")
    parser.add_argument(
        "--steps",
        type=lambda s: tuple(float(v) for v in s.split(",")),
        default=wavelet_fit.STEPS,
        help="base steps, comma-separated (default: wavelet_fit.STEPS)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the printed text")
    args = parser.parse_args(argv)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
        run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(buffer.getvalue())
    print(f"\nwrote {args.out}")


class _Tee(io.TextIOBase):
    """Writes to several streams at once (the terminal and the results file)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)


if __name__ == "__main__":
    main()
