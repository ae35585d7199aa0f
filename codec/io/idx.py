"""IDX files (the MNIST format), raw or gzip: reading with the header checked first, writing
uint8."""

from __future__ import annotations

import gzip
import io
import os
import re
from pathlib import Path

import numpy as np

from codec.errors import DataError
from codec.io.shapes import check_image_shape

MAX_IDX_BYTES = 1 << 32  # 4 GiB of payload: larger is damage or a bomb
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path, *, limit=None) -> bytes:
    """The bytes of a raw or gzip file, inflated. ``limit(head)`` sees the first 24 bytes and may
    refuse the file before the rest is read (a gzip bomb stays unread)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            start = f.read(24)
            if limit is not None:
                limit(start)
            return start + f.read(MAX_IDX_BYTES + 1 - len(start))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read: {e}") from None


def _check_idx_claim(head: bytes, name: str) -> None:
    """Refuse an IDX header whose data would exceed the read limit, or whose images aecodec could
    never code."""
    dtype, shape = read_idx_header(io.BytesIO(head), name=name)
    if int(np.prod(shape, dtype=object)) * dtype.itemsize > MAX_IDX_BYTES:
        raise DataError(f"{name}: IDX header claims more than {MAX_IDX_BYTES} bytes of data")
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


def is_idx_name(path: Path) -> bool:
    """IDX by name: ``*.idx``, ``*-ubyte`` (Fashion-MNIST's names), or an ``idx1``..``idx4``
    part."""
    name = path.name.lower().removesuffix(".gz")
    return (
        name.endswith((".idx", "-ubyte"))
        or re.search(r"(^|[-_.])idx[1-4]([-_.]|$)", name) is not None
    )
