"""zarr format 3 (issue 31): arrays of images written and read back with zarr and Dask through
``numcodecs.aecodec``, their chunk bytes against the format-2 codec's.

    python -m benchmarks.zarr3 [--quality Q]

Two arrays, none of their images trained or tuned on: Fashion-MNIST's 10,000 test images with the
bundled ``fmnist`` model, and the held-out colour photos (``benchmarks.photos``: wallpapers and
scikit-image samples) cropped to one shape with the ``photo`` model. Each is written with two
chunkings as a format-3 array (serializer ``Aecodec``, no compressor after it) and as a format-2
array (the numcodecs codec as compressor), and as a format-3 array by Dask's ``to_zarr``; each is
read back whole by ``zarr.open_array`` and in slices by ``dask.array.from_zarr``. It prints whether
zarr 3 finds the codec by its entry point, then per array the chunk bytes of both formats, their
ratio (target within 1%), whether zarr and Dask wrote and read back the same pixels, and the PSNR.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
PHOTO_SHAPE = (256, 384)  # every held-out photo is at least this large (512 on its long side)


def fashion() -> np.ndarray:
    from codec.io import data

    return data.fashion_mnist("test")


def colour_photos() -> np.ndarray:
    """The held-out colour photos, each cropped about its centre to ``PHOTO_SHAPE``."""
    from benchmarks import photos

    (_, walls), (_, samples) = photos.wallpapers(), photos.skimage_photos()
    h, w = PHOTO_SHAPE
    out = []
    for a in [*walls.values(), *(a for a in samples.values() if a.ndim == 3)]:
        if a.shape[0] >= h and a.shape[1] >= w:
            top, left = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
            out.append(a[top : top + h, left : left + w])
    return np.stack(out)


def listed() -> tuple[bool, bool]:
    """(``numcodecs.aecodec`` among the ``zarr.codecs`` entry points, zarr's registry resolves it
    to ``codec.zarr3.Aecodec``)."""
    import zarr.registry

    from codec.zarr3 import Aecodec

    names = {e.name for e in importlib.metadata.entry_points(group="zarr.codecs")}
    found = zarr.registry.get_codec_class("numcodecs.aecodec")
    return "numcodecs.aecodec" in names, found is Aecodec


def chunk_bytes(path: Path) -> int:
    """The bytes of an array's chunk files (its metadata files left out)."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files if p.name != "zarr.json" and p.name[0] != ".")


def write(
    path: Path, images: np.ndarray, chunks: tuple, model: str, quality, fmt: int, dask=False
) -> float:
    """Write ``images`` as a zarr array of format ``fmt`` (by zarr, or by Dask's ``to_zarr``);
    seconds taken."""
    import dask.array as da
    import numcodecs
    import zarr

    from codec.zarr3 import Aecodec

    config = {"model": model, "quality": quality}
    if fmt == 3:
        options = {"serializer": Aecodec(**config), "compressors": None}
    else:
        options = {"compressors": numcodecs.get_codec({"id": "aecodec", **config})}
    t = time.perf_counter()
    z = zarr.create_array(
        str(path), shape=images.shape, chunks=chunks, dtype="uint8", zarr_format=fmt, **options
    )
    if dask:
        da.from_array(images, chunks=chunks).to_zarr(z)
    else:
        z[:] = images
    return time.perf_counter() - t


def read(path: Path) -> tuple[np.ndarray, bool]:
    """(the array read whole by zarr, Dask's slices of it equal to it)."""
    import dask.array as da
    import zarr

    whole = zarr.open_array(str(path), mode="r")[:]
    lazy = da.from_zarr(str(path))
    n = len(whole)
    parts = [lazy[: n // 3].compute(), lazy[n // 3 :].compute()]
    return whole, np.array_equal(np.concatenate(parts), whole)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse else float("inf")


def case(folder: Path, name: str, images, chunks, model: str, quality) -> str:
    sizes, backs, dask_ok, seconds = {}, {}, True, {}
    for fmt in (3, 2):
        path = folder / f"{name}-{'x'.join(map(str, chunks))}-{fmt}.zarr"
        seconds[fmt] = write(path, images, chunks, model, quality, fmt)
        sizes[fmt] = chunk_bytes(path)
        backs[fmt], same = read(path)
        dask_ok &= same
    by_dask = folder / f"{name}-{'x'.join(map(str, chunks))}-dask.zarr"
    write(by_dask, images, chunks, model, quality, 3, dask=True)
    dask_ok &= chunk_bytes(by_dask) == sizes[3] and np.array_equal(read(by_dask)[0], backs[3])
    ratio = sizes[3] / sizes[2]
    return (
        f"| {name} | {images.shape} | {chunks} | {sizes[3]:,} | {sizes[2]:,} | {ratio:.4f} "
        f"| {'yes' if abs(ratio - 1) <= 0.01 else 'NO'} "
        f"| {'yes' if np.array_equal(backs[3], backs[2]) and dask_ok else 'NO'} "
        f"| {psnr(images, backs[3]):.2f} | {seconds[3]:.1f} / {seconds[2]:.1f} |"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=None, help="default: each model's")
    parser.add_argument("--results", type=Path, default=RESULTS / "zarr3.txt")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr")
    import zarr

    entry, registry = listed()
    out = [
        f"zarr {zarr.__version__}: numcodecs.aecodec among the zarr.codecs entry points: "
        f"{'yes' if entry else 'NO'}; zarr.registry.get_codec_class resolves it to "
        f"codec.zarr3.Aecodec: {'yes' if registry else 'NO'}",
        "",
        "| array | shape | chunks | format 3 bytes | format 2 bytes | 3 / 2 | within 1% "
        "| written and read by zarr and by Dask, the same pixels | PSNR dB | write s (3 / 2) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    shirts, views = fashion(), colour_photos()
    h, w = PHOTO_SHAPE
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for chunks in ((1000, 28, 28), (625, 14, 28)):
            out.append(case(folder, "fashion", shirts, chunks, "fmnist", args.quality))
        for chunks in ((1, h, w, 3), (4, h // 2, w, 3)):
            out.append(case(folder, "photos", views, chunks, "photo", args.quality))
    print("\n".join(out))
    if args.results:
        args.results.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
