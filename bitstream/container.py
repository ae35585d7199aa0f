"""The ``.aec`` container (format version 7): compact, versioned, checksummed, streamable, strictly
parsed.

Layout::

    "AEC" u8               magic; then the format version, 7, plus 0x80 for a single image
                           (format 2: "AEC" 0x00 0x02)
    varint + msgpack       header record: [model, quality, image_shape(, batched(, meta))]
    then, for a single image (batched false, version byte 0x87):
    bytes                  its ANS stream, up to the last 4 bytes
    u32 little-endian      CRC-32 of every byte before it, checked before anything is decoded
    or, for an archive (batched true, version byte 0x07):
    u32 little-endian      CRC-32 of every byte before it: the header is checked before any chunk
    (varint + msgpack)*    chunk records: [n, data, crc(, shape)]
    0x00                   end of chunks (a record length of zero)
    varint + msgpack       index record: [counts, offsets], each chunk's image count and the
                           offset of its record from the start of the file (formats 5 to 7)
    u32 little-endian      CRC-32 of the index record (its length and its msgpack value)
    u32 little-endian      the index record's size in bytes: found from the end of the file
    u32 little-endian      CRC-32 of every byte before it

A single 28x28 image thus costs 24 bytes besides its stream; an archive streams through any
number of chunks in bounded memory. Each record is a length (unsigned LEB128 varint: 1 byte
below 128, at most 5, minimal form only) followed by exactly that many bytes holding one
msgpack array. The length is checked against the record's limit before a byte of it is read,
and the record must be one msgpack value, no more, no less. A truncated single-image file is
found by its checksum (it has no length of its own: that would cost a byte).

Header fields, by position (trailing fields omitted when they hold their defaults: false, {}, 8, 0):

0. ``model``: bin, 8 bytes: the start of the SHA-256 fingerprint of the model that made the
   file (a model file's ``fingerprint`` is the full hash as hex); decoders refuse another model.
1. ``quality``: int, 1..255 (a level of that model), or 0: the model's lossless coder (format 6
   on).
2. ``image_shape``: array ``[H, W]`` or ``[H, W, C]``; 1 <= H, W <= 65536, 1 <= C <= 4,
   H*W*C <= 2**29: the first chunk's images (an archive's chunks may record their own).
3. ``batched``: bool; false: the file holds exactly one image, restored as (H, W[, C]).
4. ``meta``: map, str keys, free-form plain values (the CLI records the original file's
   name and kind).
5. ``depth``: int, 1..16, bits per sample (format 6; default 8): the images are uint8 up to 8
   bits, uint16 above, and every value is below 2^depth. Only the lossless coder codes depths
   other than 8.
6. ``max_error``: int, 0..32 (format 6; default 0): with quality 0, the bound K on every pixel's
   error (0: lossless; K: near-lossless, |decoded - original| <= K); 0 for the lossy levels.

Chunk fields: ``n`` (int >= 1: images in the chunk), ``data`` (bin: one ANS stream),
``crc`` (int: CRC-32 of ``data``), ``shape`` (the chunk's image shape, when it differs from the
header's: an archive of a folder holds images of any sizes). The image count is the sum of the
chunks' ``n``. A chunk's data holds at least one byte per ``MAX_PIXELS_PER_BYTE`` pixels it
decodes to (the writer pads the rare denser stream, see ``bitstream.coder``), so the work a file
can demand is bounded by its size: a reader refuses a denser chunk before decoding it.

Implied by the version and not stored: the entropy coder (``IMPLIED["coder"]``) and the prior
("clusters"); the pixel type follows from the depth (uint8 up to 8 bits, else uint16). The latent
grid and the padding follow from the image shape and the model's tile, so ``codec`` derives them.
Readers still present the header as a dict with every field (``bitstream.header.HEADER_FIELDS``),
implied ones filled in.

Every byte is covered by the final CRC; each chunk also carries its own, so a stream reader can stop
at the first damaged chunk before decoding it. The index (its own CRC, read from the end) lets a
reader of a seekable file go straight to the chunks that hold the images it wants
(``RandomAccess``): it checks the header, the index and those chunks, and a damaged chunk costs only
its own images. A sequential reader checks that the index agrees with the chunks it read. Every size
is checked against a limit (and against the bytes actually present) before anything is allocated.
Version 6 is version 7's layout; its lossless streams (quality 0) code pixels an anti-diagonal at a
time (``codec.levels.lossless_legacy``), version 7's in raster order (``codec.levels.raster``).
Version 5 is version 6 without the depth and max_error fields (every file 8-bit and lossy). Version
4 is version 5's layout without the index (a random-access reader finds its chunks by reading them
all once); version 3 is version 4's, but its tile-level streams carry no poses
(``codec.levels.poses``): readers pass the version on to the codec, which decodes either. Version 2
(a 5-byte magic, no header checksum, no single-image form, streams without an end marker) is
still read; version 1 (string-keyed maps, u32 lengths) was a pre-release format and is refused.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import struct
import zlib

import msgpack

from bitstream.errors import (
    ChecksumError,
    FormatError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
    show,
)
from bitstream.header import (
    MAX_META_DEPTH,
    check_header,
    check_shape,
    from_wire,
    image_pixels,
    is_int,
    to_wire,
)
from bitstream.walk import check_structure

MAGIC = b"AEC"  # then the version byte; formats 1 and 2 put a zero byte before it
MODEL_MAGIC = b"AECM"  # a model file's (``codec/levels/modelfile.py``): told apart by name
SINGLE_IMAGE = (
    0x80  # set in the version byte of a single image's file: the form is known before the header
)
FORMAT_VERSION = 7
# 2: no header checksum, streams without an end marker; 3: tile streams without poses; 4: no
# index; 5: no depth or max_error (every file 8-bit, every level lossy)
READ_VERSIONS = (2, 3, 4, 5, 6, 7)
INDEXED_VERSION = 5  # archives carry an index from this version on
MAX_INDEX_CHUNKS = 1 << 22  # chunks one archive may hold (4 million: billions of small images)
MAX_INDEX_BYTES = 1 << 26
MAX_HEADER_BYTES = 1 << 20
MAX_CHUNK_BYTES = 1 << 28
# decoded values per chunk (512 MB): bounds the memory one chunk can claim
MAX_CHUNK_PIXELS = 1 << 29
# Decoded pixels per byte of a chunk's data, at most: 1/128 bit per pixel. Real images need far
# more (Fashion-MNIST's lowest level 0.15 bit per pixel); a decoder runs at about 2-5 Mpixel/s, so
# this caps the work one byte can demand near 0.5 ms, whatever the headers claim.
MAX_PIXELS_PER_BYTE = 1024
_HEADER_VALUES = 1 << 19  # a folder archive's header lists one name per image (at most 2**18)
MAX_VARINT_BYTES = 5  # 35 bits: more than any limit here

_U32 = struct.Struct("<I")
# msgpack limits per record, checked by the parser before it allocates: a header holds short
# strings (file names: a folder archive lists one per image) and one 8-byte bin; a chunk
# holds two ints and one bin.
_HEADER_LIMITS = dict(
    max_str_len=1 << 16,
    max_bin_len=1 << 16,
    max_array_len=1 << 18,
    max_map_len=1 << 10,
    max_ext_len=0,
)
_CHUNK_LIMITS = dict(
    max_str_len=0, max_bin_len=MAX_CHUNK_BYTES, max_array_len=4, max_map_len=0, max_ext_len=0
)
_INDEX_LIMITS = dict(
    max_str_len=0, max_bin_len=0, max_array_len=MAX_INDEX_CHUNKS, max_map_len=0, max_ext_len=0
)
TRAILER = struct.Struct("<III")  # index CRC, index size, final CRC


@dataclasses.dataclass
class Archive:
    """A parsed container: the header and the list of (n, data) chunks."""

    header: dict
    chunks: list[tuple[int, bytes]]
    shapes: list[list[int]]  # each chunk's image shape

    @property
    def count(self) -> int:
        return sum(n for n, _ in self.chunks)


def varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low bits first, high bit set on every byte but the last."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _parse_header(raw: bytes):
    return _parse(
        raw, "header", _HEADER_LIMITS, max_values=_HEADER_VALUES, max_depth=MAX_META_DEPTH + 3
    )


def min_chunk_bytes(n: int, pixels_per_image: int) -> int:
    """The fewest bytes of data a chunk of ``n`` images may hold (whole 32-bit words)."""
    return 4 * -(-n * pixels_per_image // (4 * MAX_PIXELS_PER_BYTE))


def _check_chunk(fields, version: int) -> tuple[int, bytes, list | None]:
    sizes = (3, 4) if version >= 3 else (3,)
    if not isinstance(fields, list) or len(fields) not in sizes:
        raise FormatError(
            f"chunk record is not an array [n, data, crc{', shape' if version >= 3 else ''}]"
        )
    n, data, crc = fields[:3]
    shape = fields[3] if len(fields) == 4 else None
    if shape is not None:
        check_shape(shape, "chunk shape")
    if not is_int(n) or n < 1:
        raise FormatError(f"chunk image count {show(n)} is not a positive integer")
    if not isinstance(data, bytes):
        raise FormatError("chunk data is not a byte string")
    if not is_int(crc) or not 0 <= crc < 1 << 32:
        raise FormatError(f"chunk checksum {show(crc)} is not a 32-bit unsigned integer")
    if zlib.crc32(data) != crc:
        raise ChecksumError("chunk checksum mismatch: the data is damaged")
    return n, data, shape


def _parse(raw: bytes, what: str, limits: dict, *, max_values: int, max_depth: int):
    """Exactly one msgpack value filling ``raw``, parsed with ``limits`` after a walk that bounds
    its values and depth."""
    try:
        end = check_structure(
            raw, what=f"{what} record", max_values=max_values, max_depth=max_depth
        )
    except TruncatedError:  # the record itself is complete: its value is malformed
        raise FormatError(f"{what} record ends inside its msgpack value") from None
    if end != len(raw):
        raise FormatError(f"{what} record has bytes after its msgpack value")
    try:
        return msgpack.unpackb(
            raw, raw=False, strict_map_key=True, use_list=True, timestamp=0, **limits
        )
    except msgpack.ExtraData:
        raise FormatError(f"{what} record has bytes after its msgpack value") from None
    except msgpack.OutOfData:
        raise FormatError(f"{what} record ends inside its msgpack value") from None
    except (msgpack.UnpackException, ValueError, TypeError) as e:
        if "incomplete input" in str(e):  # how unpackb reports data that stops early
            raise FormatError(f"{what} record ends inside its msgpack value") from None
        raise FormatError(f"{what} record is not valid msgpack: {e}") from None


def _record(obj, what: str, limit: int) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    if len(body) > limit:
        raise LimitError(f"{what} of {len(body)} bytes exceeds the {limit}-byte limit")
    return varint(len(body)) + body


def _check_version(version: int) -> None:
    if version in READ_VERSIONS:
        return
    if version == 1:
        raise UnsupportedVersionError(
            "container format 1 is a pre-release format this aecodec no longer reads "
            "(it reads formats 2 and 3); decompress the file with the aecodec that wrote it "
            "and compress it again"
        )
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"container format {version} is newer than this aecodec reads ({FORMAT_VERSION}); "
            "upgrade aecodec"
        )
    raise UnsupportedVersionError(
        f"container format {version} is not supported (this aecodec reads {FORMAT_VERSION})"
    )


class Writer:
    """Streams a container to a binary file object: header now, chunks as they come.

    A single image (``batched`` false) is written in the single-image form: header, stream,
    checksum. Refuses (``FormatError``/``LimitError``) anything a reader would refuse: a bad
    header, an oversized record, a chunk denser than the floor, more than one image in a file
    marked as a single image.
    """

    def __init__(self, fileobj, header: dict):
        self._f = fileobj
        self._crc = 0
        self._batched = check_header(header)["batched"]
        self._shape = list(header["image_shape"])
        self._count = 0
        self._offset = 0  # bytes written so far
        self._counts: list[int] = []  # the index: images per chunk ...
        self._offsets: list[int] = []  # ... and where each chunk's record starts
        record = _record(to_wire(header, FORMAT_VERSION), "header", MAX_HEADER_BYTES)
        self._check_readable(record)
        self._write(
            MAGIC + bytes([FORMAT_VERSION | (0 if self._batched else SINGLE_IMAGE)]) + record
        )
        if self._batched:
            self._write(_U32.pack(self._crc))

    @staticmethod
    def _check_readable(record: bytes) -> None:
        """The header record parses back under the reader's limits (e.g. a meta list too long for
        them)."""
        f = io.BytesIO(record)
        size = read_varint(lambda k: f.read(k), "header")
        from_wire(_parse_header(f.read(size)), FORMAT_VERSION)

    def _write(self, b: bytes) -> None:
        self._crc = zlib.crc32(b, self._crc)
        self._f.write(b)
        self._offset += len(b)

    def add(self, n: int, data: bytes, shape=None) -> None:
        """A chunk of ``n`` images of ``shape`` (None: the header's image shape)."""
        if not is_int(n) or n < 1:
            raise FormatError(f"chunk image count {show(n)} is not a positive integer")
        shape = self._shape if shape is None else list(shape)
        check_shape(shape, "chunk shape")
        if len(data) < min_chunk_bytes(n, image_pixels(shape)):
            raise LimitError(
                f"chunk data of {len(data)} bytes for {n} images is denser than a reader accepts "
                f"(pad it to {min_chunk_bytes(n, image_pixels(shape))} bytes)"
            )
        if not self._batched:
            if self._count + n > 1 or shape != self._shape:
                raise FormatError(
                    "a file marked as a single image (batched false) holds exactly one image"
                )
            if len(data) > MAX_CHUNK_BYTES:
                raise LimitError(
                    f"image data of {len(data)} bytes exceeds the {MAX_CHUNK_BYTES}-byte limit"
                )
            self._write(bytes(data))
        else:
            if len(self._counts) >= MAX_INDEX_CHUNKS:
                raise LimitError(f"an archive holds at most {MAX_INDEX_CHUNKS} chunks")
            fields = [n, bytes(data), zlib.crc32(data)] + ([shape] if shape != self._shape else [])
            record = _record(fields, "chunk", MAX_CHUNK_BYTES)
            self._counts.append(n)
            self._offsets.append(self._offset)
            self._write(record)
        self._count += n

    def close(self) -> None:
        if not self._batched and self._count != 1:
            raise FormatError(
                "a file marked as a single image (batched false) holds exactly one image"
            )
        if self._batched:
            self._write(varint(0))
            index = _record([self._counts, self._offsets], "index", MAX_INDEX_BYTES)
            self._write(index)
            # the trailer but the final CRC
            self._write(struct.pack("<II", zlib.crc32(index), len(index)))
        self._f.write(_U32.pack(self._crc))


def read_varint(read, what: str) -> int:
    """A minimal LEB128 varint of at most 5 bytes, through ``read(k) -> bytes``."""
    value = 0
    for i in range(MAX_VARINT_BYTES):
        b = read(1)
        if len(b) != 1:
            raise TruncatedError(f"file is truncated (in the {what} length)")
        value |= (b[0] & 0x7F) << (7 * i)
        if not b[0] & 0x80:
            if b[0] == 0 and i > 0:
                raise FormatError(f"{what} length is not in its shortest form")
            return value
    raise FormatError(f"{what} length is longer than {MAX_VARINT_BYTES} bytes")


class Reader:
    """Reads a container from a binary file object, chunk by chunk, checking as it goes.

    ``header`` is available at once, its checksum checked (a single image's file is read and
    checked whole first: it has one checksum); iterate for the (n, data, shape) chunks. An
    archive's final CRC is checked after its last chunk, so a reader that stops early has
    verified the header and only the chunks it saw (each has its own CRC).
    """

    def __init__(self, fileobj, *, name: str = "data"):
        self._f = fileobj
        self._crc = 0
        self._pos = 0  # bytes read so far
        self.chunk_offsets: list[int] = []  # where each chunk read so far starts
        self.name = name
        self.version, single = self._magic()
        record = self._record(MAX_HEADER_BYTES, "header")
        # checked whole: its one checksum covers the header
        self._single = self._single_image() if single else None
        if self.version >= 3 and not single:
            expected = self._crc
            # before the header is trusted
            self._check_crc(self._read(4, "header checksum"), expected, "header")
        self.header = from_wire(_parse_header(record), self.version)
        if self.version >= 3 and single == self.header["batched"]:
            raise FormatError(
                "header batched field disagrees with the file's form (single image or archive)"
            )

    def _magic(self) -> tuple[int, bool]:
        """(format version, single-image form)."""
        magic = self._read_some(4)
        if not (MAGIC + b"\x00").startswith(magic[:4]) and not (
            magic[:3] == MAGIC and magic[3] & 0x7F >= 3
        ):
            # a short prefix of it is a truncated file
            raise FormatError("not an aecodec file (bad magic)")
        if len(magic) < 4:
            raise TruncatedError("file is truncated (in the magic)")
        if magic == MODEL_MAGIC:
            raise FormatError("an aecodec model file, not a compressed file (give it with --model)")
        if magic[3] == 0:  # formats 1 and 2: the version follows
            version = self._read(1, "magic")[0]
            _check_version(version)
            return version, False
        _check_version(magic[3] & 0x7F)
        return magic[3] & 0x7F, bool(magic[3] & SINGLE_IMAGE)

    def _single_image(self) -> bytes:
        rest = self._f.read(MAX_CHUNK_BYTES + 5)
        if len(rest) > MAX_CHUNK_BYTES + 4:
            raise LimitError(f"image data exceeds the {MAX_CHUNK_BYTES}-byte limit")
        if len(rest) < 4:
            raise TruncatedError("file is truncated (in its checksum)")
        self._crc = zlib.crc32(rest[:-4], self._crc)
        self._check_crc(rest[-4:], self._crc, "file", hint=" or truncated")
        return rest[:-4]

    @staticmethod
    def _check_crc(stored: bytes, expected: int, what: str, hint: str = "") -> None:
        if _U32.unpack(stored)[0] != expected:
            raise ChecksumError(f"{what} checksum mismatch: the file is damaged{hint}")

    def _read_some(self, size: int) -> bytes:
        b = self._f.read(size)
        self._crc = zlib.crc32(b, self._crc)
        self._pos += len(b)
        return b

    def _read(self, size: int, what: str) -> bytes:
        b = self._read_some(size)
        if len(b) != size:
            raise TruncatedError(f"file is truncated (in the {what})")
        return b

    def _length(self, limit: int, what: str) -> int:
        size = read_varint(lambda k: self._read(k, f"{what} length"), what)
        if size > limit:
            raise LimitError(f"{what} claims {size} bytes, more than the {limit}-byte limit")
        return size

    def _record(self, limit: int, what: str) -> bytes:
        size = self._length(limit, what)
        if size == 0:
            raise FormatError(f"{what} record is empty")
        return self._read(size, what)

    def __iter__(self):
        shape = self.header["image_shape"]
        if self._single is not None:
            check_density(1, shape, self._single)
            yield 1, self._single, shape
            return
        count, counts = 0, []
        while True:
            start = self._pos
            try:
                if not (size := self._length(MAX_CHUNK_BYTES, "chunk")):
                    break
                self.chunk_offsets.append(start)
                n, data, chunk_shape = parse_chunk(self._read(size, "chunk"), self.version, shape)
            except FormatError as e:  # what was read before is intact: say where it stopped
                raise type(e)(
                    f"images from {count} on: {e}" if self.header["batched"] else str(e)
                ) from None
            count += n
            counts.append(n)
            if not self.header["batched"] and count > 1:
                raise FormatError("file marked as a single image holds several")
            yield n, data, chunk_shape
        if self.version >= INDEXED_VERSION:
            start = self._pos
            body = self._record(MAX_INDEX_BYTES, "index")
            record = varint(len(body)) + body  # as it was read: lengths are in their shortest form
            index_crc, index_size = struct.unpack("<II", self._read(8, "index checksum"))
            if index_crc != zlib.crc32(record) or index_size != self._pos - 8 - start:
                raise ChecksumError("index checksum mismatch: the file is damaged")
            if parse_index(body) != (counts, self.chunk_offsets):
                raise FormatError("the index does not agree with the chunks")
        expected = self._crc
        tail = self._f.read(5)
        if len(tail) < 4:
            raise TruncatedError("file is truncated (in the final checksum)")
        if len(tail) > 4:
            raise FormatError("file has trailing bytes after the final checksum")
        if _U32.unpack(tail)[0] != expected:
            raise ChecksumError("file checksum mismatch: the file is damaged")


def check_density(n: int, shape, data: bytes) -> None:
    pixels = image_pixels(shape)
    if len(data) < min_chunk_bytes(n, pixels):
        raise LimitError(
            f"chunk claims {n} images of {pixels} pixels in {len(data)} bytes of data: denser than "
            f"{MAX_PIXELS_PER_BYTE} pixels per byte (damage, or a file made to waste time)"
        )


def parse_chunk(body: bytes, version: int, shape) -> tuple[int, bytes, list]:
    """(n, data, image shape) of a chunk record's msgpack value, checked: structure, CRC, limits."""
    fields = _parse(body, "chunk", _CHUNK_LIMITS, max_values=16, max_depth=2)
    n, data, chunk_shape = _check_chunk(fields, version)
    chunk_shape = shape if chunk_shape is None else chunk_shape
    pixels = image_pixels(chunk_shape)
    if n * pixels > MAX_CHUNK_PIXELS:
        raise LimitError(
            f"chunk claims {n} images of {pixels} pixels, more than the limit of {MAX_CHUNK_PIXELS}"
        )
    if version >= 3:  # format 2, written before the floor: the codec budgets it
        check_density(n, chunk_shape, data)
    return n, data, chunk_shape


def parse_index(body: bytes) -> tuple[list[int], list[int]]:
    """(counts, offsets) of an index record's msgpack value, checked for form (not yet against the
    file)."""
    value = _parse(body, "index", _INDEX_LIMITS, max_values=2 * MAX_INDEX_CHUNKS + 3, max_depth=2)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, list) for v in value)
        or len(value[0]) != len(value[1])
        or not value[0]
    ):
        raise FormatError("index record is not [counts, offsets] of one positive length")
    counts, offsets = value
    if not all(is_int(n) and n >= 1 for n in counts):
        raise FormatError("index image counts are not positive integers")
    if not all(is_int(o) for o in offsets) or any(b <= a for a, b in itertools.pairwise(offsets)):
        raise FormatError("index offsets are not increasing integers")
    return counts, offsets


def pack(header: dict, chunks) -> bytes:
    """The container bytes for ``header`` and an iterable of (n, data) or (n, data, shape)
    chunks."""
    out = io.BytesIO()
    writer = Writer(out, header)
    for chunk in chunks:
        writer.add(*chunk)
    writer.close()
    return out.getvalue()


def unpack(data: bytes) -> Archive:
    """Parse and fully verify container bytes.

    Raises:
        FormatError, TruncatedError, ChecksumError, UnsupportedVersionError, LimitError.
    """
    reader = Reader(io.BytesIO(bytes(data)))
    chunks = list(reader)
    return Archive(reader.header, [(n, d) for n, d, _ in chunks], [shape for *_, shape in chunks])


def read_header(data: bytes) -> dict:
    """The header alone, without reading or checking the chunks."""
    return Reader(io.BytesIO(bytes(data))).header


def verify(data: bytes) -> Archive:
    """Check every checksum and structure without decoding images; returns the parsed archive."""
    return unpack(data)
