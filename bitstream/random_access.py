"""Random access to the chunks of an archive on a seekable file: format 5 and later find them
through the index at the file's end (``bitstream.container`` describes the layout), older
archives by reading through once.
"""

from __future__ import annotations

import io
import zlib

from bitstream.container import (
    INDEXED_VERSION,
    MAX_CHUNK_BYTES,
    MAX_INDEX_BYTES,
    MAX_VARINT_BYTES,
    TRAILER,
    Reader,
    check_density,
    parse_chunk,
    parse_index,
    read_varint,
)
from bitstream.errors import ChecksumError, FormatError, LimitError, TruncatedError


class RandomAccess:
    """The chunks of an archive on a seekable file, read one at a time: ``chunk(i)`` -> (n, data,
    shape).

    Format 5 has an index at its end (checked against its own CRC, and each chunk record against
    the bounds the index gives it); older archives are read through once to find their chunks.
    The header is checked as ``Reader`` checks it; each chunk is checked when it is read (CRC,
    limits), so a damaged chunk fails alone: ``counts`` says which images it held.
    """

    def __init__(self, fileobj, *, name: str = "data"):
        reader = Reader(fileobj, name=name)
        self.header, self.version, self._f = reader.header, reader.version, fileobj
        self._single = reader._single
        if self._single is not None:
            self.counts, self._offsets, self._end = [1], [reader._pos], reader._pos
        elif self.version >= INDEXED_VERSION:
            self.counts, self._offsets, self._end = _read_index(fileobj, reader._pos)
        else:
            self.counts = [n for n, _, _ in reader]
            self._offsets, self._end = reader.chunk_offsets, None

    def __len__(self) -> int:
        return len(self.counts)

    def chunk(self, i: int) -> tuple[int, bytes, list]:
        shape = self.header["image_shape"]
        if self._single is not None:
            check_density(1, shape, self._single)
            return 1, self._single, shape
        begin = self._offsets[i]
        self._f.seek(begin)
        head = self._f.read(MAX_VARINT_BYTES)
        f = io.BytesIO(head)
        size = read_varint(lambda k: f.read(k), "chunk")
        if size > MAX_CHUNK_BYTES:
            raise LimitError(
                f"chunk claims {size} bytes, more than the {MAX_CHUNK_BYTES}-byte limit"
            )
        stop = self._offsets[i + 1] if i + 1 < len(self._offsets) else self._end
        if size == 0 or (stop is not None and f.tell() + size != stop - begin):
            raise FormatError(
                f"chunk {i} does not fill the place the index gives it: the file is damaged"
            )
        self._f.seek(begin + f.tell())
        body = self._f.read(size)
        if len(body) != size:
            raise TruncatedError("file is truncated (in a chunk)")
        n, data, chunk_shape = parse_chunk(body, self.version, shape)
        if n != self.counts[i]:
            raise FormatError(
                f"chunk {i} holds {n} images, its index entry {self.counts[i]}: the file is damaged"
            )
        return n, data, chunk_shape


def _read_index(f, start: int) -> tuple[list[int], list[int], int]:
    """(counts, offsets, where the chunks end) from the index at the end of a seekable format-5
    archive whose chunks start at ``start``."""
    size = f.seek(0, io.SEEK_END)
    if size < start + 1 + 2 + TRAILER.size:
        raise TruncatedError("file is truncated (no room for its index)")
    f.seek(size - TRAILER.size)
    index_crc, index_size, _ = TRAILER.unpack(f.read(TRAILER.size))
    index_at = size - TRAILER.size - index_size
    if not 2 <= index_size <= MAX_INDEX_BYTES or index_at - 1 < start:
        raise FormatError(
            f"index size {index_size} is out of range: the file is damaged or truncated"
        )
    f.seek(index_at - 1)
    raw = f.read(1 + index_size)
    if raw[0] != 0:
        raise FormatError("no end of chunks before the index: the file is damaged or truncated")
    record = raw[1:]
    if zlib.crc32(record) != index_crc:
        raise ChecksumError("index checksum mismatch: the file is damaged or truncated")
    body = io.BytesIO(record)
    length = read_varint(lambda k: body.read(k), "index")
    if length != index_size - body.tell():
        raise FormatError("index record's length disagrees with its size")
    counts, offsets = parse_index(record[body.tell() :])
    if offsets[0] != start or offsets[-1] >= index_at - 1:
        raise FormatError("index offsets lie outside the chunks: the file is damaged")
    return counts, offsets, index_at - 1
