"""The ``.aec`` container: versioned, checksummed, streamable, strictly parsed.

Layout (all integers little-endian)::

    "AEC" 0x00            magic
    u8                    format version
    u32 + msgpack map     header (model, coder, quality, image shape, padding, latent, ...)
    (u32 + msgpack map)*  chunks: {"n": images, "data": ANS stream, "crc": CRC-32 of data}
    u32 = 0               end of chunks
    u32                   CRC-32 of every byte before it

Chunks follow the header so that a dataset of any size streams through in bounded
memory; the image count is the sum of the chunks' ``n``. Every byte is covered by the
final CRC; each chunk also carries its own, so a stream reader can stop at the first
damaged chunk before decoding it. Every size is checked against a limit (and against the
bytes actually present) before anything is allocated.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib

import msgpack

from bitstream.errors import ChecksumError, FormatError, LimitError, TruncatedError, UnsupportedVersionError

MAGIC = b"AEC\x00"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
MAX_CHUNK_BYTES = 1 << 28
MAX_CHUNK_PIXELS = 1 << 26  # decoded pixels per chunk: bounds the memory one chunk can claim
MAX_IMAGE_PIXELS = 1 << 26  # one image: 8192 x 8192
MAX_DIM = 1 << 16
MAX_CHANNELS = 4

_U32 = struct.Struct("<I")
_HEADER_FIELDS = {
    "model": dict, "coder": dict, "quality": int, "image_shape": list, "batched": bool,
    "dtype": str, "pad": list, "latent": list, "prior": str, "meta": dict,
}


@dataclasses.dataclass
class Archive:
    """A parsed container: the header and the list of (n, data) chunks."""

    header: dict
    chunks: list[tuple[int, bytes]]

    @property
    def count(self) -> int:
        return sum(n for n, _ in self.chunks)


def _pack_map(obj: dict) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return _U32.pack(len(body)) + body


def check_header(header: dict) -> dict:
    """Validate header fields and the sizes they claim; returns the header.

    Raises:
        FormatError: a field is missing, of the wrong type, or unknown.
        LimitError: a claimed size exceeds aecodec's limits.
    """
    if not isinstance(header, dict):
        raise FormatError("header is not a map")
    missing = set(_HEADER_FIELDS) - set(header)
    unknown = set(header) - set(_HEADER_FIELDS)
    if missing or unknown:
        raise FormatError(f"header has missing fields {sorted(missing)} or unknown fields {sorted(unknown)}")
    for name, kind in _HEADER_FIELDS.items():
        value = header[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise FormatError(f"header field {name!r} should be {kind.__name__}, not {type(value).__name__}")
    shape = header["image_shape"]
    if len(shape) not in (2, 3) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise FormatError(f"header image_shape {shape!r} is not (H, W) or (H, W, C)")
    if any(d < 1 or d > MAX_DIM for d in shape) or (len(shape) == 3 and shape[2] > MAX_CHANNELS):
        raise LimitError(f"header image_shape {shape!r} is out of range")
    if shape[0] * shape[1] * (shape[2] if len(shape) == 3 else 1) > MAX_IMAGE_PIXELS:
        raise LimitError(f"header image_shape {shape!r} claims more than {MAX_IMAGE_PIXELS} pixels per image")
    for name, size in (("pad", 2), ("latent", 3)):
        v = header[name]
        if len(v) != size or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIM for d in v):
            raise FormatError(f"header {name} {v!r} is malformed")
    if header["dtype"] != "uint8":
        raise FormatError(f"header dtype {header['dtype']!r} is not supported")
    return header


def _check_chunk(chunk) -> tuple[int, bytes]:
    if not isinstance(chunk, dict) or set(chunk) != {"n", "data", "crc"}:
        raise FormatError("chunk record is malformed")
    n, data, crc = chunk["n"], chunk["data"], chunk["crc"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or not isinstance(data, bytes) or not isinstance(crc, int):
        raise FormatError("chunk record has fields of the wrong type")
    if zlib.crc32(data) != crc:
        raise ChecksumError("chunk checksum mismatch: the data is damaged")
    return n, data


def _unpack_map(raw: bytes, what: str):
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=True,
                               max_str_len=1 << 16, max_bin_len=MAX_CHUNK_BYTES, max_array_len=64, max_map_len=64)
    except msgpack.ExtraData:
        raise FormatError(f"{what} has trailing bytes") from None
    except msgpack.OutOfData:
        raise TruncatedError(f"{what} is truncated") from None
    except (msgpack.UnpackException, ValueError, TypeError) as e:
        if "incomplete input" in str(e):  # how unpackb reports data that stops early
            raise TruncatedError(f"{what} is truncated") from None
        raise FormatError(f"{what} is not valid msgpack: {e}") from None


class Writer:
    """Streams a container to a binary file object: header now, chunks as they come."""

    def __init__(self, fileobj, header: dict):
        self._f = fileobj
        self._crc = 0
        self._write(MAGIC + bytes([FORMAT_VERSION]) + _pack_map(check_header(header)))

    def _write(self, b: bytes) -> None:
        self._crc = zlib.crc32(b, self._crc)
        self._f.write(b)

    def add(self, n: int, data: bytes) -> None:
        if len(data) > MAX_CHUNK_BYTES:
            raise LimitError(f"chunk of {len(data)} bytes exceeds the {MAX_CHUNK_BYTES}-byte limit")
        self._write(_pack_map({"n": n, "data": data, "crc": zlib.crc32(data)}))

    def close(self) -> None:
        self._write(_U32.pack(0))
        self._f.write(_U32.pack(self._crc))


class Reader:
    """Reads a container from a binary file object, chunk by chunk, checking as it goes.

    ``header`` is available at once; iterate for the (n, data) chunks. The final CRC is
    checked after the last chunk, so a reader that stops early has verified only the
    chunks it saw (each has its own CRC) and the header's structure.
    """

    def __init__(self, fileobj, *, name: str = "data"):
        self._f = fileobj
        self._crc = 0
        self.name = name
        magic = self._read(5, "magic")
        if magic[:4] != MAGIC:
            raise FormatError("not an aecodec file (bad magic)")
        if magic[4] != FORMAT_VERSION:
            raise UnsupportedVersionError(f"container format {magic[4]} is not supported (this aecodec reads {FORMAT_VERSION})")
        self.header = check_header(_unpack_map(self._record(MAX_HEADER_BYTES, "header"), "header"))

    def _read(self, size: int, what: str) -> bytes:
        b = self._f.read(size)
        if len(b) != size:
            raise TruncatedError(f"file is truncated (in the {what})")
        self._crc = zlib.crc32(b, self._crc)
        return b

    def _record(self, limit: int, what: str) -> bytes:
        size = _U32.unpack(self._read(4, what))[0]
        if size > limit:
            raise LimitError(f"{what} claims {size} bytes, more than the {limit}-byte limit")
        return self._read(size, what)

    def __iter__(self):
        pixels = _pixels(self.header)
        while True:
            size = _U32.unpack(self._read(4, "chunk"))[0]
            if size == 0:
                break
            if size > MAX_CHUNK_BYTES:
                raise LimitError(f"chunk claims {size} bytes, more than the {MAX_CHUNK_BYTES}-byte limit")
            n, data = _check_chunk(_unpack_map(self._read(size, "chunk"), "chunk"))
            if n * pixels > MAX_CHUNK_PIXELS:
                raise LimitError(f"chunk claims {n} images of {pixels} pixels, more than the limit of {MAX_CHUNK_PIXELS}")
            yield n, data
        expected = self._crc
        tail = self._f.read(5)
        if len(tail) < 4:
            raise TruncatedError("file is truncated (in the final checksum)")
        if len(tail) > 4:
            raise FormatError("file has trailing bytes after the final checksum")
        if _U32.unpack(tail)[0] != expected:
            raise ChecksumError("file checksum mismatch: the file is damaged")


def _pixels(header: dict) -> int:
    shape = header["image_shape"]
    return shape[0] * shape[1] * (shape[2] if len(shape) == 3 else 1)


def pack(header: dict, chunks) -> bytes:
    """The container bytes for ``header`` and an iterable of (n, data) chunks."""
    out = io.BytesIO()
    writer = Writer(out, header)
    for n, data in chunks:
        writer.add(n, data)
    writer.close()
    return out.getvalue()


def unpack(data: bytes) -> Archive:
    """Parse and fully verify container bytes (checksum first, then structure).

    Raises:
        FormatError, TruncatedError, ChecksumError, UnsupportedVersionError, LimitError.
    """
    data = bytes(data)
    if len(data) < 5 and MAGIC.startswith(data[:4]):
        raise TruncatedError("file is truncated (in the magic)")
    if data[:4] != MAGIC:
        raise FormatError("not an aecodec file (bad magic)")
    if data[4] != FORMAT_VERSION:
        raise UnsupportedVersionError(f"container format {data[4]} is not supported (this aecodec reads {FORMAT_VERSION})")
    reader = Reader(io.BytesIO(data))
    return Archive(reader.header, list(reader))


def read_header(data: bytes) -> dict:
    """The header alone, without reading or checking the chunks."""
    return Reader(io.BytesIO(bytes(data))).header


def verify(data: bytes) -> Archive:
    """Check every checksum and structure without decoding images; returns the parsed archive."""
    return unpack(data)
