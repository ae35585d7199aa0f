"""Image files: reading one (8 or 16 bits, upright, an opaque alpha channel dropped and recorded, a
transparent one kept), checking one from its header, writing one back, and the image files of a
folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from codec.errors import DataError, InputError
from codec.io import deep
from codec.io.shapes import check_image_shape

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


_CONVERT = {
    "P": "RGBA",
    "PA": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "1": "L",
    "La": "LA",
    "RGBa": "RGBA",
}
# inputs whose pixels came from a lossy codec (WebP may not have)
LOSSY_FORMATS = (
    "JPEG",
    "MPO",
    "WEBP",
)


def read_image(source, *, check_shape=None) -> tuple[np.ndarray, dict]:
    """An image (path or binary file) as (H, W) grey or (H, W, C) colour (C 2 or 4 with a
    transparent alpha channel), uint8 or (16-bit PNG, TIFF, PGM/PPM) uint16, and what restoring it
    needs: {"format": Pillow's format}, plus {"alpha": "opaque"} when an alpha channel that was
    opaque everywhere was dropped (restoring puts it back, exactly), and for deep files {"depth":
    bits} (and a PGM's "maxval" when not 2^depth - 1).
    An EXIF Orientation is applied (``upright``): the image comes as viewers show it.
    ``check_shape((H, W[, C]))`` (default ``check_image_shape``) refuses it from its header.

    Palette and 1-bit images become the colour or grey values they show (restored as such).

    Raises:
        DataError: not a readable image; several frames; 32-bit or float modes.
        InputError: larger than aecodec codes (checked from the header, before decoding).
    """
    check_shape = check_shape or check_image_shape
    deep_bytes = _deep_file(source)
    if deep_bytes is not None:
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
    """The image without its alpha channel when that is opaque everywhere (recorded: restoring puts
    it back); a transparent one is kept (aecodec codes it exactly: ``codec/levels/alpha.py``)."""
    if a.ndim == 3 and a.shape[2] in (2, 4):
        if (a[..., -1] == _opaque_value(a.dtype, info.get("depth"))).all():
            a, info["alpha"] = (a[..., 0] if a.shape[2] == 2 else a[..., :3]), "opaque"
    return np.ascontiguousarray(a), info


def _opaque_value(dtype, depth: int | None = None) -> int:
    return 255 if dtype == np.uint8 else (1 << (depth or 16)) - 1


def _deep_file(source) -> bytes | None:
    """The whole file's bytes when it holds samples deeper than 8 bits (16-bit PNG, TIFF, PGM/PPM),
    else None (a file object is left at its start)."""
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
    alpha channel, dropped when opaque, is not counted: its plane is no larger than the image's;
    the orientation may swap H and W, which no limit tells apart)."""
    bands = [b for b in im.getbands() if b not in ("A", "a")]
    colour = im.mode in ("P", "PA") or len(bands) >= 3
    return (im.height, im.width, 3) if colour else (im.height, im.width)


def _checked(im, check_shape):
    """``im`` refused from its header alone (size, frames, mode), else converted to L, LA, RGB or
    RGBA."""
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
    check_shape = check_shape or check_image_shape
    deep_bytes = _deep_file(path)
    if deep_bytes is not None:
        _, info = _alpha_dropped(*deep.read(deep_bytes, check_shape))
        return "alpha" in info, info["depth"]
    try:
        with Image.open(path) as im:
            im = _checked(im, check_shape)
            if im.mode not in ("LA", "RGBA"):
                return False, 8
            return bool((np.asarray(im.getchannel("A")) == 255).all()), 8
    except (DataError, InputError):
        raise
    except UnidentifiedImageError:
        raise DataError("not a readable image") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"not a readable image: {e}") from None


def with_alpha(image: np.ndarray, depth: int | None = None) -> np.ndarray:
    """An image with the opaque alpha channel ``read_image`` dropped put back: grey -> LA, colour ->
    RGBA."""
    alpha = np.full(image.shape[:2], _opaque_value(image.dtype, depth), image.dtype)
    return np.dstack([image, alpha]) if image.ndim == 3 else np.stack([image, alpha], -1)


# Channels each written image format can hold (what Pillow would otherwise drop or refuse).
_FORMAT_CHANNELS = {"JPEG": (1, 3), "PPM": (1, 3), "GIF": (1, 3), "BMP": (1, 3, 4), "MPO": (1, 3)}


def holds_channels(format: str, channels: int) -> bool:
    """Whether an image file ``format`` (Pillow's name) can hold ``channels`` channels."""
    return channels in _FORMAT_CHANNELS.get(format, (1, 2, 3, 4))


def save_image(
    out, image: np.ndarray, format: str, depth: int | None = None, maxval: int | None = None
) -> None:
    """One image (H, W) or (H, W, C) with C in 2..4, as ``format`` (uint16: PNG, TIFF or PGM/PPM of
    ``depth`` bits)."""
    if image.ndim != 2 and not (image.ndim == 3 and image.shape[2] in (2, 3, 4)):
        raise DataError(
            f"an image file holds one image of 1-4 channels, not an array of shape {image.shape}"
        )
    if image.dtype == np.uint16:
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


def folder_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under ``folder``, recursively, in a fixed order; hidden files and
    folders and linked folders are not entered (a link can loop, and is not the folder's own)."""
    images, others = [], []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not (Path(root) / d).is_symlink()
        )
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or not path.is_file():
                others.append(path)
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(path)
            else:
                others.append(path)
    return images, others
