"""The photographs aecodec's photo model is trained and measured on, split into whole photos.

    python -m benchmarks.photos --export-train DIR    # write the training photos as PNG files
    python -m benchmarks.photos --export-train DIR --export-val VAL --scales 1024,2048

Two sources, none made by this project: the photographic wallpapers of Debian's
plasma-workspace-wallpapers (one picture per wallpaper folder, the size nearest 1280 wide,
downscaled to 512 on its long side; every fifth folder in name order held out), and the sample
photos of scikit-image's data module that load without a download (the held-out ones named in
``SKIMAGE_TEST``). Nothing held out is ever trained or tuned on.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np
from PIL import Image

WALLPAPERS = Path("/usr/share/wallpapers")
SKIMAGE_TRAIN = (
    "chelsea",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "brick",
    "grass",
    "gravel",
    "clock",
    "cell",
    "page",
    "text",
)
SKIMAGE_TEST = ("astronaut", "camera", "coffee", "moon", "rocket")


def wallpapers(long_side: int = 512) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """({name: RGB uint8} to train on, {name: RGB uint8} held out)."""
    if not WALLPAPERS.is_dir():
        raise SystemExit(f"{WALLPAPERS} is missing: apt-get install plasma-workspace-wallpapers")
    train, test = {}, {}
    folders = sorted(p for p in WALLPAPERS.iterdir() if (p / "contents" / "images").is_dir())
    for i, folder in enumerate(folders):
        files = glob.glob(str(folder / "contents" / "images" / "*"))
        if not files:
            continue
        best = min(
            files,
            key=lambda f: (
                abs(int(Path(f).stem.split("x")[0]) - 1280) if "x" in Path(f).stem else 1e9
            ),
        )
        with Image.open(best) as im:
            im.draft("RGB", (im.width // 2, im.height // 2))
            im = im.convert("RGB")
            im.thumbnail((long_side, long_side))
            (test if i % 5 == 4 else train)[folder.name] = np.asarray(im)
    return train, test


def skimage_photos() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """({name: uint8 grey or RGB} to train on, held out), as scikit-image ships them."""
    try:
        from skimage import data
    except ImportError:
        raise SystemExit("scikit-image is missing: pip install scikit-image") from None

    def load(name):
        a = getattr(data, name)()
        return a[..., :3] if a.ndim == 3 else a

    return {n: load(n) for n in SKIMAGE_TRAIN}, {n: load(n) for n in SKIMAGE_TEST}


def largest_wallpapers(names, long_side: int) -> dict[str, np.ndarray]:
    """{name: RGB uint8} of the named wallpapers from their largest picture, downscaled to
    ``long_side``: more views of the training photos at the scales users' own photos come in."""
    out = {}
    for name in names:
        files = glob.glob(str(WALLPAPERS / name / "contents" / "images" / "*"))
        with Image.open(max(files, key=lambda f: Path(f).stat().st_size)) as im:
            # decodes a JPEG at a reduced size, never below the target
            im.draft("RGB", (long_side, long_side))
            im = im.convert("RGB")
            im.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
            out[name] = np.asarray(im)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-train", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--export-val",
        type=Path,
        metavar="DIR",
        help="write every fifth training photo here "
        "instead (to validate a training on: aecodec train --val DIR)",
    )
    parser.add_argument(
        "--scales",
        default="",
        help="comma-separated long sides (e.g. 1024,2048): the training "
        "wallpapers also at these sizes, from their largest picture",
    )
    args = parser.parse_args(argv)
    (w_train, _), (s_train, _) = wallpapers(), skimage_photos()
    photos = {
        **{f"wallpaper-{k}": v for k, v in w_train.items()},
        **{f"skimage-{k}": v for k, v in s_train.items()},
    }
    val = {k for i, k in enumerate(photos) if i % 5 == 4} if args.export_val else set()
    for folder in filter(None, (args.export_train, args.export_val)):
        folder.mkdir(parents=True, exist_ok=True)
    for name, image in photos.items():
        im = Image.fromarray(image)
        im.thumbnail((512, 512))  # as the wallpapers: no one large photo dominates the crops
        im.save((args.export_val if name in val else args.export_train) / f"{name}.png")
    kept = [k for k in w_train if f"wallpaper-{k}" not in val]
    for side in (int(v) for v in args.scales.split(",") if v):
        for name, image in largest_wallpapers(kept, side).items():
            Image.fromarray(image).save(args.export_train / f"wallpaper-{name}-{side}.png")
    print(
        f"{len(photos) - len(val)} training photos (and {len(kept)} wallpapers at each of "
        f"{args.scales or 'no'} "
        f"other sizes) in {args.export_train}; {len(val)} to validate on in {args.export_val}"
    )


if __name__ == "__main__":
    main()
