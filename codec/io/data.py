"""Input data: IDX files (raw or gzip), Fashion-MNIST discovery and checksum-verified download.

Fashion-MNIST is looked for, in order, in an explicit folder, in ``$AECODEC_DATA``, in
Debian's ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``) and
in the user cache; ``download=True`` fetches missing files into the cache. Checksums are
SHA-256 of the *decompressed* IDX bytes, so any faithful gzip of the data is accepted
(Debian's files are recompressed and differ byte-wise from upstream's).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bitstream import container
from codec.errors import DataError, InputError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MAX_IDX_BYTES = 1 << 32  # 4 GiB of payload: larger is damage or a bomb

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

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path, *, limit=None) -> bytes:
    """The bytes of a raw or gzip file, inflated. ``limit(head)`` sees the first 24 bytes and may refuse
    the file before the rest is read (a gzip bomb stays unread)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            start = f.read(24)
            if limit is not None:
                limit(start)
            return start + f.read(_MAX_IDX_BYTES + 1 - len(start))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read: {e}") from None


def _check_idx_claim(head: bytes, name: str) -> None:
    """Refuse an IDX header whose data would exceed the read limit, or whose images aecodec could never code."""
    dtype, shape = read_idx_header(io.BytesIO(head), name=name)
    if int(np.prod(shape, dtype=object)) * dtype.itemsize > _MAX_IDX_BYTES:
        raise DataError(f"{name}: IDX header claims more than {_MAX_IDX_BYTES} bytes of data")
    if len(shape) >= 2 and dtype == np.uint8:
        check_image_shape(shape[-2:] if len(shape) == 2 else shape[1:])


def read_idx_header(f, *, name: str = "IDX data") -> tuple[np.dtype, tuple[int, ...]]:
    """(element dtype, shape) from the IDX header at the start of binary file ``f``, which is
    left at the data: magic 0 0 dtype ndim, then ndim big-endian u32 dimensions.

    Raises:
        DataError: the header is malformed.
    """
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic)")
    dtype, ndim = head[2], head[3]
    if dtype not in _IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX element type 0x{dtype:02x}")
    dims = f.read(4 * ndim)
    if not 1 <= ndim <= 4 or len(dims) < 4 * ndim:
        raise DataError(f"{name}: bad IDX header ({ndim} dimensions)")
    return np.dtype(_IDX_DTYPES[dtype]), tuple(
        int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim)
    )


def parse_idx(raw: bytes, *, name: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes (the MNIST format): magic 0 0 dtype ndim, big-endian dims, data.

    Raises:
        DataError: the bytes are not a well-formed IDX file.
    """
    f = io.BytesIO(raw)
    dtype, shape = read_idx_header(f, name=name)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    body = raw[f.tell() :]
    if len(body) != expected:
        raise DataError(f"{name}: IDX header announces {expected} bytes of data, found {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed; its header is checked before its data is read.

    Raises:
        DataError: missing, malformed, or claiming more data than it may hold.
        InputError: uint8 images larger than aecodec codes.
    """
    path = Path(path)
    return parse_idx(
        _read_bytes(path, limit=lambda head: _check_idx_claim(head, str(path))), name=str(path)
    )


def idx_header(shape) -> bytes:
    """The IDX header of a uint8 array of ``shape``."""
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape)


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialize a uint8 array as IDX (the inverse of ``parse_idx`` for uint8)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return idx_header(array.shape) + array.tobytes()


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
    import urllib.request  # lazily: it costs a fifth of a second at start-up

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            raw = response.read(_MAX_IDX_BYTES + 1)
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
                f"{filename}: Fashion-MNIST not found (looked in {', '.join(map(str, _candidate_dirs(path)))}); "
                "install it with 'apt-get install dataset-fashion-mnist', set AECODEC_DATA, "
                "or pass download=True"
            )
        out.append(read_idx(found))
    return tuple(out) if with_labels else out[0]


IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".pgm",
    ".ppm",
    ".pnm",
    ".webp",
    ".gif",
}


def _is_idx(path: Path) -> bool:
    """IDX by name: ``*.idx``, ``*-ubyte`` (Fashion-MNIST's names), or an ``idx1``..``idx4`` part."""
    name = path.name.lower().removesuffix(".gz")
    return (
        name.endswith((".idx", "-ubyte"))
        or re.search(r"(^|[-_.])idx[1-4]([-_.]|$)", name) is not None
    )


_CONVERT = {
    "P": "RGBA",
    "PA": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "1": "L",
    "La": "LA",
    "RGBa": "RGBA",
}
LOSSY_FORMATS = (
    "JPEG",
    "MPO",
    "WEBP",
)  # inputs whose pixels came from a lossy codec (WebP may not have)


def read_image(source, *, check_shape=None) -> tuple[np.ndarray, dict]:
    """An image (path or binary file) as (H, W) grey or (H, W, C) colour, uint8 or (16-bit PNG, TIFF,
    PGM/PPM) uint16, and what restoring it needs: {"format": Pillow's format}, plus {"alpha":
    "opaque"} when an alpha channel that was opaque everywhere was dropped (restoring puts it back,
    exactly), and for deep files {"depth": bits} (and a PGM's "maxval" when not 2^depth - 1).
    An EXIF Orientation is applied (``upright``): the image comes as viewers show it.
    ``check_shape((H, W[, C]))`` (default ``check_image_shape``) refuses it from its header.

    Palette and 1-bit images become the colour or grey values they show (restored as such).

    Raises:
        DataError: not a readable image; several frames; 32-bit or float modes; an alpha
            channel that is not opaque (aecodec codes pixels lossily, and would change it).
        InputError: larger than aecodec codes (checked from the header, before decoding).
    """
    from PIL import Image, UnidentifiedImageError

    check_shape = check_shape or check_image_shape
    deep_bytes = _deep_file(source)
    if deep_bytes is not None:
        from codec.io import deep

        a, info = deep.read(deep_bytes, check_shape)
        return _alpha_dropped(upright(a, deep.orientation(deep_bytes)), info)
    try:
        with Image.open(source) as original:
            fmt = original.format
            im = _checked(original, check_shape)  # the size from the header, before the orientation
            a = upright(np.asarray(im), _orientation(original))
    except (DataError, InputError):  # refused by name (InputError is a ValueError: not unreadable)
        raise
    except UnidentifiedImageError:
        raise DataError(
            "not an image, an array or a dataset aecodec reads (PNG, JPEG, TIFF, ..., .npy, .npz, "
            "IDX)"
        ) from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"not a readable image: {e}") from None
    return _alpha_dropped(a, {"format": fmt})


def _orientation(im) -> int:
    """An opened image's EXIF Orientation, 1 to 8 (1: none, or not a valid one)."""
    from PIL import ExifTags

    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 - damaged metadata, not pixels: there is no orientation to apply
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# EXIF orientation -> how the stored pixels become the image as shown (PIL.ImageOps.exif_transpose's
# transposes on an (H, W[, C]) array): a camera's portrait photo is read upright, as every viewer
# shows it, rather than sideways with its tag dropped (restoring writes no tag).
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def upright(a: np.ndarray, orientation: int) -> np.ndarray:
    """The image ``a`` (H, W[, C]) as shown under EXIF ``orientation`` (1 to 8)."""
    return _UPRIGHT[orientation](a) if orientation in _UPRIGHT else a


def _alpha_dropped(a: np.ndarray, info: dict) -> tuple[np.ndarray, dict]:
    """The image without its alpha channel when that is opaque everywhere (recorded: restoring puts it back)."""
    if a.ndim == 3 and a.shape[2] in (2, 4):
        if (a[..., -1] != _opaque_value(a.dtype, info.get("depth"))).any():
            raise DataError(
                "image has a transparent alpha channel; aecodec's levels are lossy and would change it "
                "(flatten it, or keep the file as it is)"
            )
        a, info["alpha"] = (a[..., 0] if a.shape[2] == 2 else a[..., :3]), "opaque"
    return np.ascontiguousarray(a), info


def _opaque_value(dtype, depth: int | None = None) -> int:
    return 255 if dtype == np.uint8 else (1 << (depth or 16)) - 1


def _deep_file(source) -> bytes | None:
    """The whole file's bytes when it holds samples deeper than 8 bits (16-bit PNG, TIFF, PGM/PPM), else
    None (a file object is left at its start)."""
    from codec.io import deep

    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            head = f.read(64)
            if deep.is_deep(head) or deep.is_tiff(head):
                f.seek(0)
                raw = f.read()
                return raw if deep.is_deep(head) or deep.tiff_is_deep(raw) else None
        return None
    start = source.tell()
    head = source.read(64)
    source.seek(start)
    if not (deep.is_deep(head) or deep.is_tiff(head)):
        return None
    raw = source.read()
    source.seek(start)
    return raw if deep.is_deep(head) or deep.tiff_is_deep(raw) else None


def _header_shape(im) -> tuple[int, ...]:
    """The shape an opened image is read as, from its header: (H, W) grey or (H, W, 3) colour (an
    alpha channel is dropped when opaque and refused otherwise; the orientation may swap H and W,
    which no limit tells apart)."""
    bands = [b for b in im.getbands() if b not in ("A", "a")]
    colour = im.mode in ("P", "PA") or len(bands) >= 3
    return (im.height, im.width, 3) if colour else (im.height, im.width)


def _checked(im, check_shape):
    """``im`` refused from its header alone (size, frames, mode), else converted to L, LA, RGB or RGBA."""
    check_shape(_header_shape(im))  # before a pixel is decoded
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        raise DataError(
            f"{im.format} image has {frames} frames; aecodec stores one image per file "
            "(extract the frames first)"
        )
    if im.mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if im.mode not in _CONVERT:
        raise DataError(
            f"image mode {im.mode} is not 8-bit grey or colour; aecodec codes uint8 images"
        )
    if im.mode == "P" and "transparency" not in im.info:  # the colours it shows; no alpha to invent
        return im.convert("RGB")
    return im.convert(_CONVERT[im.mode])


def scan_image(path, *, check_shape=None) -> tuple[bool, int]:
    """Check an image file as ``read_image`` would, decoding only an alpha channel if it has one (a
    16-bit file is read whole); returns (whether an opaque alpha channel will be dropped, its depth:
    8, or 9 to 16 for a deep file), so a folder is checked whole before anything is written.
    Raises as ``read_image``."""
    from PIL import Image, UnidentifiedImageError

    check_shape = check_shape or check_image_shape
    deep_bytes = _deep_file(path)
    if deep_bytes is not None:
        from codec.io import deep

        _, info = _alpha_dropped(*deep.read(deep_bytes, check_shape))
        return "alpha" in info, info["depth"]
    try:
        with Image.open(path) as im:
            im = _checked(im, check_shape)
            if im.mode not in ("LA", "RGBA"):
                return False, 8
            if (np.asarray(im.getchannel("A")) != 255).any():
                raise DataError(
                    "image has a transparent alpha channel; aecodec's levels are lossy and would "
                    "change it (flatten it, or keep the file as it is)"
                )
            return True, 8
    except (DataError, InputError):
        raise
    except UnidentifiedImageError:
        raise DataError("not a readable image") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"not a readable image: {e}") from None


def with_alpha(image: np.ndarray, depth: int | None = None) -> np.ndarray:
    """An image with the opaque alpha channel ``read_image`` dropped put back: grey -> LA, colour -> RGBA."""
    alpha = np.full(image.shape[:2], _opaque_value(image.dtype, depth), image.dtype)
    return np.dstack([image, alpha]) if image.ndim == 3 else np.stack([image, alpha], -1)


def load_npy(f) -> np.ndarray:
    """A .npy array from seekable binary file ``f`` (never pickled objects), its header's shape
    checked against aecodec's image limits before the data is read (InputError)."""
    version = np.lib.format.read_magic(f)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, _ = read_header(f)
    if len(shape) in (2, 3, 4):
        check_image_shape(shape[-2:] if len(shape) in (2, 3) else shape[1:])
    f.seek(0)
    return np.load(f, allow_pickle=False)


def load_images(path: str | os.PathLike) -> np.ndarray:
    """Read images from a file: ``.npy``/``.npz`` (never pickled objects), IDX (raw or .gz),
    or an image file through Pillow (grey -> (H, W); colour -> (1, H, W, C)).

    Raises:
        DataError: missing, unreadable or malformed file, or an unknown format.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            with open(path, "rb") as f:
                return load_npy(f)
        if suffix == ".npz":
            with zipfile.ZipFile(path) as z:
                if len(z.namelist()) != 1:
                    raise DataError(
                        f"{path}: .npz holds {len(z.namelist())} arrays; aecodec takes exactly one"
                    )
                with z.open(z.namelist()[0]) as member:
                    return load_npy(member)
        if suffix in IMAGE_SUFFIXES:
            a, _ = read_image(path)
            return a if a.ndim == 2 else a[None]
        if _is_idx(path) or suffix == ".gz":
            return read_idx(path)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read images: {e}") from None
    raise DataError(f"{path}: unknown input format (use .npy, .npz, IDX, or an image file)")


def luma(rgb: np.ndarray) -> np.ndarray:
    """The grey image (ITU-R BT.601 weights, in integers) of uint8 colour images (..., 3)."""
    return ((rgb.astype(np.int32) @ np.array([299, 587, 114]) + 500) // 1000).astype(np.uint8)


ACCEPTED_SHAPES = (
    "aecodec compresses arrays shaped (H, W), (H, W, C), (N, H, W) or (N, H, W, C), no axis empty"
)


def check_image_shape(shape) -> None:
    """Refuse an image shape (H, W) or (H, W, C) beyond the container's limits, before any pixel is read.

    Raises:
        InputError: too many channels, or more values than 16384 x 16384 grey (``MAX_IMAGE_PIXELS``).
    """
    h, w = int(shape[0]), int(shape[1])
    channels = int(shape[2]) if len(shape) == 3 else 1
    if min(h, w, channels) < 1:
        raise InputError(f"images of {h}x{w}x{channels} are empty; {ACCEPTED_SHAPES}")
    if channels > container.MAX_CHANNELS:
        raise InputError(
            f"images have {channels} channels; at most {container.MAX_CHANNELS} are supported"
        )
    too_wide = h > container.MAX_DIM or w > container.MAX_DIM
    if too_wide or h * w * channels > container.MAX_IMAGE_PIXELS:
        raise InputError(
            f"images of {h}x{w}x{channels} are larger than aecodec accepts "
            f"(at most {container.MAX_IMAGE_PIXELS} values: 16384x16384 grey)"
        )


def check_array_shape(shape) -> None:
    """Refuse, from its shape alone (before any value is read), an array that holds no image: 0-d
    (a number), 1-d, more than 4-d, or with an axis of length 0. The one rule of the API
    (``codec.compress``) and of every array the command line reads (.npy, .npz members).

    Raises:
        InputError: naming the shape and the shapes accepted.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) not in (2, 3, 4):
        raise InputError(f"images have {len(shape)} dimensions (shape {shape}); {ACCEPTED_SHAPES}")
    if 0 in shape:
        raise InputError(f"images are empty (shape {shape}); {ACCEPTED_SHAPES}")


def one_image(shape, grey_stack: bool = False) -> bool:
    """Whether an array of ``shape`` is one image: (H, W), or (H, W, 3|4) as in Pillow, imageio and
    scikit-image, unless ``grey_stack`` (N grey images of width 3 or 4): the one rule of the API,
    the command line and training."""
    return len(shape) == 2 or (len(shape) == 3 and shape[2] in (3, 4) and not grey_stack)


def training_images(path: str | os.PathLike):
    """Images to train on: a folder of image files (recursively; any sizes, grey or colour), an image
    file, .npy, .npz or IDX. Returns one uint8 array (N, H, W[, C]) when they share a size, else a
    list of (H, W[, C]) arrays.

    Raises:
        DataError: missing, unreadable, or holding no images (the message names the file).
    """
    path = Path(path)
    if path.is_dir():
        from codec.io.sources import _folder_files

        files, _ = _folder_files(path)
        if not files:
            raise DataError(f"{path}: the folder holds no image files")
        images = []
        for f in files:
            try:
                images.append(read_image(f)[0])
            except DataError as e:
                raise DataError(f"{f}: {e}") from None
        shapes = {a.shape for a in images}
        return np.stack(images) if len(shapes) == 1 else images
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        try:
            return [read_image(path)[0]]
        except DataError as e:
            raise DataError(f"{path}: {e}") from None
    a = load_images(path)
    return [a] if one_image(a.shape) else a


def output_kind(name: str) -> dict | None:
    """How ``save_images`` should write a file called ``name``, from its suffix; None for an unknown one."""
    lower = name.lower()
    suffix = Path(lower).suffix
    if suffix in (".npy", ".npz"):
        return {"kind": suffix[1:]}
    if suffix in IMAGE_SUFFIXES:
        from PIL import Image

        return {"kind": "image", "format": Image.registered_extensions()[suffix]}
    if _is_idx(Path(lower)) or suffix == ".gz":
        return {"kind": "idx", "gzip": suffix == ".gz"}
    return None


def save_images(
    fileobj,
    images: np.ndarray,
    kind: str,
    *,
    format: str | None = None,
    key: str = "images",
    gzip_idx: bool = False,
    depth: int | None = None,
    maxval: int | None = None,
) -> None:
    """Write ``images`` to ``fileobj`` as ``kind``: 'npy', 'npz' (under ``key``), 'image'
    (one image, grey, grey+alpha or colour; Pillow ``format``, PNG by default) or 'idx'
    (gzip-compressed with ``gzip_idx``).

    The file is built in memory and written in one call, so a full disk raises the plain
    OSError ("No space left on device") rather than NumPy's short-write message.
    """
    out = io.BytesIO()
    if kind == "npz":
        save_npz(out, {key: images})
    elif kind == "image":
        _save_image(out, images, format or "PNG", depth, maxval)
    elif kind == "idx":
        if images.dtype != np.uint8:
            raise DataError(
                "IDX files hold uint8 images here (name the output .npy for 16-bit ones)"
            )
        data = idx_bytes(images)
        out.write(gzip.compress(data, mtime=0) if gzip_idx else data)
    else:
        np.save(out, images, allow_pickle=False)
    write_all(fileobj, out.getbuffer())


def save_npz(fileobj, arrays: dict) -> None:
    """An .npz of ``arrays`` (name -> array), deflated as ``np.savez_compressed`` does; no pickle.

    Written here because NumPy takes the names as keyword arguments: an array named 'file' is a
    TypeError there, and one named 'allow_pickle' is taken for the option, leaving no array."""
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for name, array in arrays.items():
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


# Channels each written image format can hold (what Pillow would otherwise drop or refuse).
_FORMAT_CHANNELS = {"JPEG": (1, 3), "PPM": (1, 3), "GIF": (1, 3), "BMP": (1, 3, 4), "MPO": (1, 3)}


def holds_channels(format: str, channels: int) -> bool:
    """Whether an image file ``format`` (Pillow's name) can hold ``channels`` channels."""
    return channels in _FORMAT_CHANNELS.get(format, (1, 2, 3, 4))


def _save_image(
    out, image: np.ndarray, format: str, depth: int | None = None, maxval: int | None = None
) -> None:
    """One image (H, W) or (H, W, C) with C in 2..4, as ``format`` (uint16: PNG, TIFF or PGM/PPM of ``depth`` bits)."""
    from PIL import Image

    if image.ndim != 2 and not (image.ndim == 3 and image.shape[2] in (2, 3, 4)):
        raise DataError(
            f"an image file holds one image of 1-4 channels, not an array of shape {image.shape}"
        )
    if image.dtype == np.uint16:
        from codec.io import deep

        out.write(deep.write(image, format, depth or 16, maxval))
        return
    channels = 1 if image.ndim == 2 else image.shape[2]
    if not holds_channels(format, channels):
        raise DataError(
            f"{format} cannot hold an image of {channels} channels (name the output .png)"
        )
    # A lossy format named by the user (or holding a folder's .jpg): as close as the format allows.
    options = {"JPEG": {"quality": 95, "subsampling": 0}, "WEBP": {"lossless": True}}.get(
        format, {}
    )
    try:
        Image.fromarray(image).save(out, format=format, **options)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"cannot write the image as {format}: {e}") from None


def write_all(fileobj, buffer) -> None:
    """Write every byte of ``buffer``: a buffered stream may take fewer and report it (a closed pipe)."""
    view = memoryview(buffer).cast("B")
    while view:
        written = fileobj.write(view)
        if not written:
            raise BrokenPipeError(32, "Broken pipe")
        view = view[written:]
