"""The lossless coder's settings, tuned on training images only: how often a leaf's table is
remade (``raster.REFRESH``), what an own tree's tables start worth (``lossless.OWN_TREE_PRIOR``),
how many predictors an own tree's splits are searched with (``lossless.SEARCHED_PREDICTORS``) and
on how many pixels it grows (``image_tree.GROW_SAMPLES``), on every other training photo of the
photo model and the deep model's three 16-bit training images (none of ``benchmarks.lossless``'s
held-out images).

    python -m benchmarks.lossless_tuning               # about 1 minute a setting on 2 cores
    python -m benchmarks.lossless_tuning refresh=8 refresh=128 prior=8 searched=5 samples=131072

Each setting prints the bytes of the photos and of the 16-bit images, coded one at a time, and
the time taken. Results: benchmarks/results/lossless_tuning.txt.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SETTINGS = (
    "default",
    "refresh=8",
    "refresh=128",
    "refresh=1024",
    "prior=8",
    "prior=32",
    "searched=2",
    "searched=5",
    "samples=131072",
)
# "default": every setting as it is; each other row changes one


def training_cases() -> list:
    """(image, model, depth) of the training images."""
    import codec
    from benchmarks.lossless import DEEP_TRAIN, dicom_images
    from benchmarks.photos import skimage_photos, wallpapers
    from codec import api

    photo, deep = codec.load_model(api.PHOTO_MODEL), codec.load_model(api.DEEP_MODEL)
    train = {**skimage_photos()[0], **wallpapers()[0]}
    dicom = dicom_images()
    return [(train[k], photo, None) for k in sorted(train)[::2]] + [
        (dicom[k][0], deep, dicom[k][1]) for k in DEEP_TRAIN
    ]


def _knobs() -> dict:
    from codec.levels import image_tree, lossless, raster

    return {
        "refresh": (raster, "REFRESH"),
        "prior": (lossless, "OWN_TREE_PRIOR"),
        "searched": (lossless, "SEARCHED_PREDICTORS"),
        "samples": (image_tree, "GROW_SAMPLES"),
    }


def measure(setting: str, cases: list) -> str:
    import codec

    key, _, value = setting.partition("=")
    knobs = _knobs()
    if key != "default" and key not in knobs:
        raise SystemExit(f"unknown setting {setting!r}: default, or one of {', '.join(knobs)}=N")
    module, name = knobs.get(key, (None, None))
    saved = getattr(module, name) if module else None
    if module:
        setattr(module, name, int(value))
    try:
        t0 = time.perf_counter()
        sizes = [len(codec.compress(a, lossless=True, model=m, depth=d)) for a, m, d in cases]
        seconds = time.perf_counter() - t0
    finally:
        if module:
            setattr(module, name, saved)
    return (
        f"{setting}: photos {sum(sizes[:-3])} bytes, 16-bit {sum(sizes[-3:])} bytes, "
        f"{seconds:.1f} s"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=SETTINGS)
    parser.add_argument("--results", type=Path, default=RESULTS / "lossless_tuning.txt")
    args = parser.parse_args(argv)
    cases = training_cases()
    lines = [f"{len(cases) - 3} training photos and 3 16-bit training images, one at a time:"]
    print(lines[0], flush=True)
    for setting in args.settings:
        lines.append(measure(setting, cases))
        print(lines[-1], flush=True)
    if args.results:
        args.results.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
