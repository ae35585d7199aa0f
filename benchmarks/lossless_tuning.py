"""The lossless coder's adaptation, tuned on training images only: how often a leaf's table is
remade (``raster.REFRESH``) and what an own tree's tables start worth (``lossless.OWN_TREE_PRIOR``),
on every other training photo of the photo model and the deep model's three 16-bit training images
(none of ``benchmarks.lossless``'s held-out images).

    python -m benchmarks.lossless_tuning               # about 1 minute a setting on 2 cores
    python -m benchmarks.lossless_tuning refresh=8 refresh=128 prior=8

Each setting prints the bytes of the photos and of the 16-bit images, coded one at a time, and
the time taken. Results: benchmarks/results/lossless_tuning.txt.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SETTINGS = ("refresh=8", "refresh=32", "refresh=128", "refresh=1024", "prior=8", "prior=32")
# The default: ``raster.REFRESH`` and ``lossless.OWN_TREE_PRIOR`` as they are; a setting changes one


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


def measure(setting: str, cases: list) -> str:
    import codec
    from codec.levels import lossless, raster

    key, value = setting.split("=")
    saved = raster.REFRESH, lossless.OWN_TREE_PRIOR
    if key == "refresh":
        raster.REFRESH = int(value)
    elif key == "prior":
        lossless.OWN_TREE_PRIOR = int(value)
    else:
        raise SystemExit(f"unknown setting {setting!r}: refresh=N or prior=N")
    try:
        t0 = time.perf_counter()
        sizes = [len(codec.compress(a, lossless=True, model=m, depth=d)) for a, m, d in cases]
        seconds = time.perf_counter() - t0
    finally:
        raster.REFRESH, lossless.OWN_TREE_PRIOR = saved
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
