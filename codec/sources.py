"""What the CLI reads and writes: image files, .npy/.npz arrays, IDX files, folders of images.

A *source* is opened into (image shape, batched, meta, iterator of uint8 batches); the meta
dict goes into the archive header so that decompression restores the same kind of file
under the same name. Large inputs (IDX, .npy, folders) are read in chunks, so memory stays
bounded by one chunk whatever their size; ``Sink`` writes them back the same way.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from codec.api import CHUNK_IMAGES as CHUNK
from codec.data import IMAGE_SUFFIXES, idx_header, output_kind, parse_idx, read_idx_header, read_image, save_images
from codec.errors import DataError


class Source:
    """An opened input: ``image_shape``, ``batched``, ``count``, ``meta``, and ``batches()``."""

    def __init__(self, image_shape, batched: bool, count: int, meta: dict, batches):
        self.image_shape, self.batched, self.count, self.meta = tuple(image_shape), batched, count, meta
        self._batches = batches

    def batches(self):
        return self._batches()


def _array_source(a: np.ndarray, meta: dict) -> Source:
    if a.ndim == 2:
        return Source(a.shape, False, 1, meta, lambda: iter([a[None]]))
    return Source(a.shape[1:], True, len(a), meta, lambda: (a[i : i + CHUNK] for i in range(0, len(a), CHUNK)))


def _idx_stream(f, name: str) -> Source:
    """An IDX file read lazily: header now, images in chunks."""
    dtype, shape = read_idx_header(f, name=name)
    if dtype != np.uint8:
        raise DataError(f"{name}: IDX elements are {dtype}; images are uint8")
    if len(shape) == 1:
        raise DataError(f"{name}: IDX file has 1 dimension; images need 3 (N, H, W) or 4 (N, H, W, C)")
    if len(shape) == 2:
        raw = f.read(shape[0] * shape[1] + 1)
        return _array_source(parse_idx(idx_header(shape) + raw, name=name), {})
    count, image_shape = shape[0], shape[1:]
    size = int(np.prod(image_shape))

    def batches():
        done = 0
        while done < count:
            n = min(CHUNK, count - done)
            raw = f.read(n * size)
            if len(raw) != n * size:
                raise DataError(f"IDX file ends after {done + len(raw) // max(size, 1)} of {count} images")
            done += n
            yield np.frombuffer(raw, np.uint8).reshape(n, *image_shape)
        if f.read(1):
            raise DataError("IDX file has data after its last image")

    return Source(image_shape, True, count, {}, batches)


def open_source(path: str | None, *, recursive: bool = False, stdin=None) -> Source:
    """Open ``path`` ('-' or None: ``stdin`` bytes) as a Source.

    Raises:
        DataError: unreadable or of an unknown kind.
        FileNotFoundError, IsADirectoryError (folder without ``recursive``).
    """
    if path in (None, "-"):
        return _from_bytes(stdin.read(), "stdin")
    p = Path(path)
    if p.is_dir():
        if not recursive:
            raise IsADirectoryError("is a directory (use -r to compress a folder of images as one archive)")
        return _folder_source(p)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        a = np.load(p, mmap_mode="r", allow_pickle=False)
        return _with(_array_source(a, {}), {"kind": "npy", "name": p.name})
    f = open(p, "rb")
    magic = f.read(4)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        src = _idx_stream(gzip.open(f, "rb"), str(p))
        return _with(src, {"kind": "idx", "name": p.name, "gzip": True})
    if magic[:2] == b"\0\0":
        return _with(_idx_stream(f, str(p)), {"kind": "idx", "name": p.name, "gzip": False})
    with f:
        return _from_bytes(f.read(), p.name)


def _with(src: Source, meta: dict) -> Source:
    src.meta = {**meta, **src.meta}
    return src


def _from_bytes(raw: bytes, name: str) -> Source:
    if raw[:6] == b"\x93NUMPY":
        return _with(_array_source(np.load(io.BytesIO(raw), allow_pickle=False), {}), {"kind": "npy", "name": name})
    if raw[:2] == b"PK":
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            if len(z.files) != 1:
                raise DataError(f".npz holds {len(z.files)} arrays; aecodec takes exactly one")
            key = z.files[0]
            return _with(_array_source(z[key], {}), {"kind": "npz", "name": name, "key": key})
    if raw[:2] == b"\x1f\x8b":
        return _with(_idx_stream(io.BytesIO(gzip.decompress(raw)), name), {"kind": "idx", "name": name, "gzip": True})
    if raw[:2] == b"\0\0":
        return _with(_idx_stream(io.BytesIO(raw), name), {"kind": "idx", "name": name, "gzip": False})
    a, info = read_image(io.BytesIO(raw))
    meta = {"kind": "image", "name": name, **info}
    return _with(_array_source(a if a.ndim == 2 else a[None], {}), meta)


def _folder_source(folder: Path) -> Source:
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError("folder holds no image files")
    first, _ = read_image(files[0])
    names = [f.name for f in files]

    def batches():
        for start in range(0, len(files), CHUNK):
            arrays = []
            for f in files[start : start + CHUNK]:
                a, _ = read_image(f)
                if a.shape != first.shape:
                    raise DataError(f"{f.name}: {a.shape} differs from the folder's first image {first.shape}; "
                                    "an archive holds images of one size")
                arrays.append(a)
            yield np.stack(arrays)

    return Source(first.shape, True, len(files), {"kind": "folder", "name": folder.name, "files": names}, batches)


class Sink:
    """Writes decoded batches back as the kind of file the archive came from.

    ``target`` is a binary file object (an ``atomic_output`` or stdout), or, for an
    archive of a folder, the (temporary) folder to fill. IDX and folders are written
    batch by batch; the other kinds hold one array and are written by ``finish``.
    """

    def __init__(self, meta: dict, image_shape, batched: bool, target):
        self.meta, self.image_shape, self.batched = meta, tuple(image_shape), batched
        self.kind = meta.get("kind", "npy")
        self.target = target
        self._parts: list[np.ndarray] = []
        self._written = 0
        if self.kind == "folder" and not isinstance(target, Path):
            raise DataError("an archive of a folder cannot be written to standard output; give a file name")
        if self.kind == "idx":
            self._stream = gzip.GzipFile(fileobj=target, mode="wb", mtime=0) if meta.get("gzip") else target
            self._stream.write(idx_header((meta.get("count", 0), *self.image_shape)))

    def write(self, batch: np.ndarray) -> None:
        if self.kind == "folder":
            names = self.meta["files"][self._written : self._written + len(batch)]
            for name, image in zip(names, batch, strict=True):
                path = self.target / Path(name).name
                with open(path, "wb") as f:
                    save_images(f, image, "image", format=output_kind(path.name).get("format"))
        elif self.kind == "idx":
            self._stream.write(np.ascontiguousarray(batch).tobytes())
        else:
            self._parts.append(batch)
        self._written += len(batch)

    def finish(self) -> None:
        if self.kind == "idx":
            if self._stream is not self.target:
                self._stream.close()  # the gzip trailer; the file itself stays open
        elif self.kind != "folder":
            images = np.concatenate(self._parts)
            save_images(self.target, images if self.batched else images[0], self.kind,
                        format=self.meta.get("format"), key=self.meta.get("key", "images"))
