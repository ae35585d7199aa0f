"""Data sets to train and measure on: Fashion-MNIST found or fetched (checksums verified), and
``training_images``, which reads images to train on as compressing reads them (``sources``).

Fashion-MNIST is looked for, in order, in an explicit folder, in ``$AECODEC_DATA``, in
Debian's ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``) and
in the user cache; ``download=True`` fetches missing files into the cache. Checksums are
SHA-256 of the *decompressed* IDX bytes, so any faithful gzip of the data is accepted
(Debian's files are recompressed and differ byte-wise from upstream's).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from codec.errors import DataError, InputError
from codec.io import sources
from codec.io.idx import MAX_IDX_BYTES, read_idx

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

FASHION_MNIST = {
    ("train", "images"): (
        "train-images-idx3-ubyte.gz",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    ("train", "labels"): (
        "train-labels-idx1-ubyte.gz",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    ("test", "images"): (
        "t10k-images-idx3-ubyte.gz",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    ("test", "labels"): (
        "t10k-labels-idx1-ubyte.gz",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aecodec" / "fashion-mnist"


def _candidate_dirs(path) -> list[Path]:
    dirs = []
    if path is not None:
        dirs.append(Path(path))
    if os.environ.get("AECODEC_DATA"):
        dirs.append(Path(os.environ["AECODEC_DATA"]))
    return dirs + [DEBIAN_DIR, cache_dir()]


def _find(filename: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        for name in (filename, filename.removesuffix(".gz")):
            if (d / name).is_file():
                return d / name
    return None


def download(url: str, dest: Path, sha256: str, *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` atomically, keeping it only if its decompressed SHA-256 matches.

    Raises:
        DataError: the download failed or the checksum does not match.
    """
    import urllib.request  # lazily: 30 ms at start-up, for a download that is rare

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            raw = response.read(MAX_IDX_BYTES + 1)
    except OSError as e:
        raise DataError(f"{url}: download failed: {e}") from None
    try:
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError) as e:
        raise DataError(f"{url}: not a valid gzip file: {e}") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise DataError(f"{url}: checksum mismatch (SHA-256 {digest}, expected {sha256})")
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    os.replace(tmp, dest)
    return dest


def fashion_mnist(
    split: str = "test",
    *,
    path: str | os.PathLike | None = None,
    download_missing: bool = False,
    base_url: str = DEFAULT_URL,
    with_labels: bool = False,
):
    """Load Fashion-MNIST ``split`` ('train' or 'test') as uint8 (N, 28, 28).

    Args:
        split: 'train' (60,000 images) or 'test' (10,000).
        path: a folder holding the four IDX files (raw or ``.gz``); searched first.
        download_missing: fetch files not found locally into the cache folder.
        base_url: where to download from.
        with_labels: also return the (N,) uint8 labels.

    Raises:
        DataError: the files are missing (with a hint how to get them) or damaged.
    """
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    kinds = ("images", "labels") if with_labels else ("images",)
    out = []
    for kind in kinds:
        filename, sha256 = FASHION_MNIST[(split, kind)]
        found = _find(filename, _candidate_dirs(path))
        if found is None and download_missing:
            found = download(base_url + filename, cache_dir() / filename, sha256)
        if found is None:
            raise DataError(
                f"{filename}: Fashion-MNIST not found (looked in "
                f"{', '.join(map(str, _candidate_dirs(path)))}); "
                "install it with 'apt-get install dataset-fashion-mnist', set AECODEC_DATA, "
                "or pass download=True"
            )
        out.append(read_idx(found))
    return tuple(out) if with_labels else out[0]


def luma(rgb: np.ndarray) -> np.ndarray:
    """The grey image (ITU-R BT.601 weights, in integers) of uint8 colour images (..., 3)."""
    return ((rgb.astype(np.int32) @ np.array([299, 587, 114]) + 500) // 1000).astype(np.uint8)


def training_images(path: str | os.PathLike):
    """Images to train on, read as compressing reads them (``sources.open_source``: EXIF
    orientation, 16-bit files, an opaque alpha channel dropped, the same limits): a folder of image
    files (recursively; any sizes, grey or colour), an image file, .npy, .npz or IDX. Returns one
    array (N, H, W[, C]) when they share a size, else a list of (H, W[, C]) arrays.

    Raises:
        DataError: missing, unreadable, or holding no images (the message names the file).
        InputError: images aecodec cannot code (a dtype, a size), as compressing refuses them.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    try:
        source = sources.open_source(str(path), recursive=True)
        batches = list(source.batches())
    except (DataError, InputError) as e:
        raise type(e)(f"{path}: {e}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read images: {e.strerror or e}") from None
    if not source.batched:
        return [batches[0][0]]
    if len({batch.shape[1:] for batch in batches}) == 1:
        return np.concatenate(batches)
    return [image for batch in batches for image in batch]
