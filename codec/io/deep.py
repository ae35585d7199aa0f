"""Image files deeper than 8 bits: 16-bit PNG, TIFF and PGM/PPM, read and written with their depth.

Pillow reads 16-bit grey PNG and TIFF, but turns 16-bit colour into 8 bits and rescales a PGM whose
maximum is not 65535, silently; so deep files are found from their headers first and go through
imagecodecs (libpng, libtiff) and the netpbm reader below, which keep every value. The depth a
file declares (a PNG's sBIT chunk, a PGM's maximum value) is returned, recorded in the archive
and written back, so 12-bit data comes back as 12-bit data.
"""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
from PIL import Image

from codec.errors import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")
_PNM = re.compile(rb"(P[56])(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)\s")


def is_deep(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 64 bytes) holds samples deeper than 8
    bits."""
    if head.startswith(PNG_SIGNATURE) and len(head) > 24:
        return head[24] == 16
    if head[:2] in (b"P5", b"P6"):
        m = _PNM.match(head)
        return bool(m) and int(m.group(4)) > 255
    return False


def is_tiff(head: bytes) -> bool:
    return head[:4] in TIFF_SIGNATURES


def read(raw: bytes, check_shape) -> tuple[np.ndarray, dict]:
    """(uint16 image (H, W) or (H, W, C), {"format", "depth"}) of a deep PNG, PGM/PPM or TIFF file's
    bytes; ``check_shape((H, W[, C]))`` is called from the header, before the pixels are decoded."""
    if raw.startswith(PNG_SIGNATURE):
        return _read_png(raw, check_shape)
    if raw[:2] in (b"P5", b"P6"):
        return _read_pnm(raw, check_shape)
    return _read_tiff(raw, check_shape)


def _codecs():
    try:
        import imagecodecs  # lazily: 67 ms to import (-X importtime), for deep files only
    except ImportError:
        raise DataError(
            "16-bit PNG and TIFF files need imagecodecs (pip install imagecodecs)"
        ) from None
    return imagecodecs


def _read_png(raw: bytes, check_shape) -> tuple[np.ndarray, dict]:
    width, height = struct.unpack(">II", raw[16:24])
    colour = raw[25] in (2, 6)  # the colour type: RGB, RGBA (an opaque alpha is dropped)
    check_shape((height, width, 3) if colour else (height, width))
    try:
        a = _codecs().png_decode(raw)
    except Exception as e:  # imagecodecs raises its own PngError (and ValueError)
        raise DataError(f"not a readable 16-bit PNG: {e}") from None
    depth = _png_significant_bits(raw) or 16
    return np.ascontiguousarray(a, np.uint16), {"format": "PNG", "depth": depth}


def _png_significant_bits(raw: bytes) -> int | None:
    """The largest of the sBIT chunk's bits per channel, if the PNG has one before its pixels."""
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos : pos + 8])
        if kind == b"sBIT" and 1 <= length <= 4:
            bits = max(raw[pos + 8 : pos + 8 + length])
            return bits if 9 <= bits <= 16 else None
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def orientation(raw: bytes) -> int:
    """The EXIF Orientation (1 to 8; 1 when absent or not valid) of a deep PNG (its eXIf chunk) or
    TIFF (tag 274), read without decoding a pixel."""
    try:
        if raw.startswith(PNG_SIGNATURE):
            exif = Image.Exif()
            exif.load(_png_chunk(raw, b"eXIf") or b"")
            value = exif.get(ORIENTATION, 1)
        elif raw[:4] in TIFF_SIGNATURES:
            with Image.open(io.BytesIO(raw)) as im:
                value = im.tag_v2.get(ORIENTATION, 1)
        else:
            return 1
    except Exception:  # noqa: BLE001 - damaged metadata: the pixels' decoder reports what matters
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


ORIENTATION = 0x0112  # the EXIF and TIFF tag


def _png_chunk(raw: bytes, wanted: bytes) -> bytes | None:
    """The data of a PNG's first chunk of type ``wanted``, if it has one."""
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos : pos + 8])
        if kind == wanted:
            return raw[pos + 8 : pos + 8 + length]
        if kind == b"IEND":
            return None
        pos += 12 + length
    return None


def _read_pnm(raw: bytes, check_shape) -> tuple[np.ndarray, dict]:
    m = _PNM.match(raw)
    if not m:
        raise DataError("not a readable PGM/PPM header")
    channels = 1 if m.group(1) == b"P5" else 3
    width, height, maxval = int(m.group(2)), int(m.group(3)), int(m.group(4))
    if not 256 <= maxval <= 65535:
        raise DataError(f"PGM/PPM maximum value {maxval} is not 256 to 65535")
    shape = (height, width) if channels == 1 else (height, width, 3)
    check_shape(shape)
    size = 2 * height * width * channels
    data = raw[m.end() : m.end() + size]
    if len(data) != size:
        raise DataError(f"PGM/PPM file ends after {len(data)} of its {size} bytes of pixels")
    a = np.frombuffer(data, ">u2").reshape(shape).astype(np.uint16)
    if int(a.max(initial=0)) > maxval:
        raise DataError(f"PGM/PPM file holds values above its maximum {maxval}")
    info = {"format": "PPM", "depth": maxval.bit_length()}
    if maxval != (1 << maxval.bit_length()) - 1:
        info["maxval"] = maxval
    return a, info


def _read_tiff(raw: bytes, check_shape) -> tuple[np.ndarray, dict]:
    codecs = _codecs()
    try:
        a = codecs.tiff_decode(raw)
    except Exception as e:
        raise DataError(f"not a readable TIFF: {e}") from None
    check_shape(a.shape)  # libtiff has decoded it already: its own limits bound the work
    if (
        a.dtype != np.uint16
        or a.ndim not in (2, 3)
        or (a.ndim == 3 and a.shape[2] not in (2, 3, 4))
    ):
        raise DataError(
            f"TIFF holds {a.dtype} samples of shape {a.shape}; aecodec reads 8- and 16-bit images"
        )
    return np.ascontiguousarray(a), {"format": "TIFF", "depth": 16}


def tiff_is_deep(raw: bytes) -> bool:
    """Whether a TIFF's first image has 16-bit samples (its BitsPerSample tag)."""
    try:
        with Image.open(io.BytesIO(raw)) as im:
            bits = im.tag_v2.get(258, (8,))
    except Exception:
        return False
    return max(bits if isinstance(bits, tuple) else (bits,)) == 16


def write(image: np.ndarray, fmt: str, depth: int = 16, maxval: int | None = None) -> bytes:
    """A uint16 image (H, W) or (H, W, C) as a ``fmt`` (Pillow's name: PNG, TIFF, PPM) file of
    ``depth`` bits."""
    image = np.ascontiguousarray(image, np.uint16)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if fmt == "PNG":
        raw = _codecs().png_encode(image)
        return _with_significant_bits(raw, depth, channels) if depth < 16 else raw
    if fmt == "TIFF":
        return _codecs().tiff_encode(image)
    if fmt == "PPM" and channels in (1, 3):
        kind = b"P5" if channels == 1 else b"P6"
        top = maxval or (1 << depth) - 1
        return (
            kind
            + b"\n%d %d\n%d\n" % (image.shape[1], image.shape[0], top)
            + image.astype(">u2").tobytes()
        )
    raise DataError(
        f"{fmt} cannot hold a 16-bit image of {channels} channels (name the output .png, .tif, "
        ".pgm or .npy)"
    )


def _with_significant_bits(raw: bytes, depth: int, channels: int) -> bytes:
    """A PNG with an sBIT chunk (``depth`` bits per channel) after its IHDR: the depth restored."""
    body = b"sBIT" + bytes([depth] * channels)
    chunk = struct.pack(">I", channels) + body + struct.pack(">I", zlib.crc32(body))
    at = len(PNG_SIGNATURE) + 25  # signature, IHDR (4 + 4 + 13 + 4)
    return raw[:at] + chunk + raw[at:]
