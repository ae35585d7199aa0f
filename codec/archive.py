"""Random access to the images of an archive: ``codec.open(path)[i]`` decodes only the chunk that
holds i.

An archive is a sequence of chunks (``api.CHUNK_IMAGES`` images each, one entropy-coded stream
per chunk), and format 5 ends with an index of them (``bitstream.container``): reading image i
seeks to its chunk, checks that chunk's CRC and decodes it, nothing else. The last chunk decoded
is kept, so reading images in order decodes each chunk once. A damaged chunk fails alone, with
an error that names the images it held; the others still read.

>>> import io, numpy as np, codec
>>> data = codec.compress(np.zeros((5, 28, 28), np.uint8), quality=2)
>>> with codec.open(io.BytesIO(data)) as images:
...     len(images), images[3].shape, images[1:4].shape
(5, (28, 28), (3, 28, 28))
"""

from __future__ import annotations

import builtins
import operator
import os
from pathlib import Path

import numpy as np

from bitstream.random_access import RandomAccess
from codec import api, checks
from codec.errors import AecodecError, InputError


class Archive:
    """The images of an archive file: ``len``, ``[i]`` (negative too), ``[i:j:k]``, iteration.

    A slice of images of one shape is an array (n, H, W[, C]); of several shapes, a list.

    Raises (on opening): FormatError and its kinds (damaged header or index, not an aecodec file),
    ModelMismatchError, FileNotFoundError. On reading: IndexError, and the FormatError of a damaged
    chunk, naming the images it held.
    """

    def __init__(self, source, *, model=None):
        self._owned = isinstance(source, (str, os.PathLike))
        self._f = builtins.open(source, "rb") if self._owned else source
        self.name = str(source) if self._owned else getattr(source, "name", "data")
        try:
            self._chunks = RandomAccess(self._f, name=self.name)
            self.header = self._chunks.header
            self.model = api.model_named_by(self.header) if model is None else api._resolve(model)
            api.check_model(self.model, self.header)
            self.level = self.model.level_of(self.header)  # lossless and near-lossless files' too
        except BaseException:
            self.close()
            raise
        # each chunk's first image
        self.starts = np.concatenate([[0], np.cumsum(self._chunks.counts)])
        self._cached: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.starts[-1])

    def chunk_of(self, i: int) -> int:
        """The chunk that holds image ``i`` (0 <= i < len)."""
        return int(np.searchsorted(self.starts, i, side="right")) - 1

    def chunk(self, c: int) -> np.ndarray:
        """The decoded images (n, H, W[, C]) of chunk ``c``."""
        if self._cached is not None and self._cached[0] == c:
            return self._cached[1]
        first, stop = int(self.starts[c]), int(self.starts[c + 1])
        try:
            n, data, shape = self._chunks.chunk(c)
            checks.check_chunk_work(self.level, n, data, shape, framed=self._chunks.version >= 3)
            images = self.level.decode(data, n, shape, version=self._chunks.version)
        except AecodecError as e:
            raise type(e)(
                f"images {first} to {stop - 1} (chunk {c + 1} of {len(self._chunks)}) "
                f"cannot be read: {e}"
            ) from None
        self._cached = (c, images)
        return images

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._gather(range(*key.indices(len(self))))
        try:
            i = operator.index(key)  # ints and numpy integers; not floats or strings
        except TypeError:
            raise TypeError(
                f"archive indices are integers or slices, not {type(key).__name__}"
            ) from None
        if not -len(self) <= i < len(self):
            raise IndexError(f"image {key} is out of range: the archive holds {len(self)}")
        i %= len(self)
        c = self.chunk_of(i)
        return self.chunk(c)[i - int(self.starts[c])]

    def _gather(self, indices: range):
        out = []
        for i in indices:
            c = self.chunk_of(i)
            out.append(self.chunk(c)[i - int(self.starts[c])])
        if not out:
            return np.empty((0, *self.header["image_shape"]), self.header["dtype"])
        return np.stack(out) if len({a.shape for a in out}) == 1 else out

    def __iter__(self):
        for c in range(len(self._chunks)):
            yield from self.chunk(c)

    def close(self) -> None:
        if self._owned:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def open(source, *, model=None) -> Archive:  # noqa: A001 - codec.open, as files are opened
    """Open an archive (a path, or a seekable binary file object) for reading images at random.

    Raises:
        FormatError (ValueError) and its kinds, ModelMismatchError, FileNotFoundError; InputError
        for a file object that cannot seek (standard input: decompress it instead).
    """
    if not isinstance(source, (str, os.PathLike)) and not (
        hasattr(source, "seekable") and source.seekable()
    ):
        raise InputError("random access needs a file that can seek (not a pipe or standard input)")
    return Archive(Path(source) if isinstance(source, (str, os.PathLike)) else source, model=model)
