"""Images larger than a tile, coded tile by tile: the framing the convolutional and wavelet levels
share. Every tile of every image is its own stream, after its length (u32 little-endian), in
row-major order; the last carries the chunk's padding. Memory stays bounded by a tile whatever
the image's size, and a tile equal to a recent one is coded (and decoded) once (``SameTiles``).
"""

from __future__ import annotations

import hashlib

import numpy as np

import bitstream


def grid(h: int, w: int, size: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the ``size``-wide tiles of an h x w image, row-major: one for an image
    within a tile."""
    return [
        (y, min(h, y + size), x, min(w, x + size))
        for y in range(0, h, size)
        for x in range(0, w, size)
    ]


def encode(images: np.ndarray, tiles: list, min_bytes: int, encode_whole) -> bytes:
    """The tiled stream of images (N, H, W[, C]): ``encode_whole(tile (1, h, w[, C]), floor)``
    for each tile of ``tiles``, each after its length; the last tile carries the floor."""
    parts, size, seen = [], 0, SameTiles()
    jobs = [(image, t) for image in images for t in tiles]
    for i, (image, (y0, y1, x0, x1)) in enumerate(jobs):
        last = i == len(jobs) - 1
        tile, floor = image[None, y0:y1, x0:x1], max(0, min_bytes - size - 4) if last else 0
        data = seen.result(tile, ("stream", floor), encode_whole, tile, floor)
        parts += [len(data).to_bytes(4, "little"), data]
        size += 4 + len(data)
    return b"".join(parts)


def decode(data: bytes, n: int, shape, tiles: list, decode_whole) -> np.ndarray:
    """Images (n, *shape) from a tiled stream: ``decode_whole(stream, tile shape)`` -> (1, h, w[,
    C]) for each tile (TruncatedError, FormatError: damaged)."""
    out = np.empty((n, *shape), np.uint8)
    view, seen = memoryview(data), SameTiles()

    def decode_tile(stream: bytes, tile_shape) -> np.ndarray:
        return decode_whole(stream, tile_shape)[0]

    for image in out:
        for y0, y1, x0, x1 in tiles:
            if len(view) < 4:
                raise bitstream.TruncatedError("tiled stream ends before its last tile")
            size = int.from_bytes(view[:4], "little")
            if size > len(view) - 4:
                raise bitstream.TruncatedError(
                    "tiled stream's tile is longer than what is left (damaged)"
                )
            tile_shape, stream = (y1 - y0, x1 - x0, *shape[2:]), bytes(view[4 : 4 + size])
            image[y0:y1, x0:x1] = seen.decode(stream, tile_shape, decode_tile)
            view = view[4 + size :]
    if len(view):
        raise bitstream.FormatError("tiled stream has data after its last tile (damaged)")
    return out


class SameTiles:
    """The last few distinct tiles of a chunk and what they coded to (streams, by floor; ideal
    bits), or the last few streams and what they decoded to: a tile equal to one of them (a blank
    scan's, a flat background's: a 65 KB PNG can hold 64 blank tiles) is not coded again. The
    same bytes and pixels, as a tile's stream is a function of its pixels and its floor, its
    pixels of its stream; only the work changes: a blank 8192 x 8192 image is coded twice (the
    last tile carries the chunk's floor), not 64 times. Tiles are found by a digest and compared
    in full; only streams and pixels are kept, a few MB."""

    KEEP = 4  # a row's full and narrower last tile, the last row's two

    def __init__(self):
        self._recent: dict = {}  # oldest first

    def _remember(self, key, value):
        self._recent.pop(key, None)
        self._recent[key] = value
        while len(self._recent) > self.KEEP:
            self._recent.pop(next(iter(self._recent)))
        return value

    def result(self, tile: np.ndarray, what, compute, *args):
        """``compute(*args)``, made once per distinct ``tile`` and ``what`` (("stream", floor),
        ...)."""
        digest = hashlib.blake2b(np.ascontiguousarray(tile).data, digest_size=16).digest()
        key = (tile.shape, digest)
        record = self._recent.get(key)
        if record is None or not np.array_equal(record[0], tile):
            record = self._remember(key, (tile.copy(), {}))
        if what not in record[1]:
            record[1][what] = compute(*args)
        return record[1][what]

    def decode(self, stream: bytes, shape, decode) -> np.ndarray:
        """``decode(stream, shape)``'s pixels, made once per distinct stream."""
        found = self._recent.get((shape, stream))
        if found is None:
            found = self._remember((shape, stream), decode(stream, shape))
        return found
