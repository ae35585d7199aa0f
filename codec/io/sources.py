"""What compressing and training read: image files, .npy/.npz arrays, IDX files, folders of images.

A *source* is opened into (image shape, batched, meta, iterator of uint8 or uint16 batches); the
meta dict goes into the archive header so that decompression restores the same kind of file under
the same name (``sinks``). Large inputs (IDX, .npy, folders) are read in batches, so memory stays
bounded by one batch whatever their size.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from bitstream import container
from codec.errors import DataError, FormatError, InputError
from codec.io.fileio import check_relative_name
from codec.io.idx import read_idx_header
from codec.io.images import folder_files, read_image, scan_image
from codec.io.shapes import check_array_shape, check_image_shape, one_image
from codec.io.sinks import IMAGE_FORMATS, npz_key_problem, recorded_kind

# Images read at a time: bounds memory. The archive writer cuts its own chunks
# (``api.CHUNK_IMAGES``), so this size changes no byte of what is written.
BATCH = 512


class Source:
    """An opened input: ``image_shape``, ``batched``, ``count``, ``meta``, ``batches()``, and
    ``paths`` (the files it reads: what --rm may remove once the archive is complete)."""

    def __init__(self, image_shape, batched: bool, count: int, meta: dict, batches, depth: int = 8):
        self.image_shape, self.batched, self.count, self.meta = (
            tuple(image_shape),
            batched,
            count,
            meta,
        )
        self.depth = depth  # bits per sample: 8 (uint8), or up to 16 (uint16)
        self._batches = batches
        self.paths: list[Path] = []
        self.skipped: list[str] = []  # files of a folder that are not images

    def batches(self):
        return self._batches()


def _array_source(
    a: np.ndarray, meta: dict, grey_stack: bool = False, depth: int | None = None
) -> Source:
    depth = depth or 8 * a.dtype.itemsize
    if one_image(a.shape, grey_stack):
        return Source(a.shape, False, 1, meta, lambda: iter([a[None]]), depth)
    return Source(
        a.shape[1:],
        True,
        len(a),
        meta,
        lambda: (a[i : i + BATCH] for i in range(0, len(a), BATCH)),
        depth,
    )


MAX_PIPED_BYTES = 1 << 28  # an image or .npz read whole from a pipe: larger ones need a file name


def _stream(
    f, count: int, image_shape, name: str, what: str, dtype=np.uint8, check=check_image_shape
) -> Source:
    """A Source reading ``count`` images of ``image_shape`` (uint8, or ``dtype``: uint16 of either
    byte order) from ``f`` a chunk at a time; ``check(image_shape)`` first (``open_source``'s
    limits)."""
    check(image_shape)  # before a pixel is read
    if count == 0:
        raise DataError(f"{what} holds no images")
    dtype = np.dtype(dtype)
    size = int(np.prod(image_shape)) * dtype.itemsize

    def batches():
        done = 0
        while done < count:
            n = min(BATCH, count - done)
            raw = f.read(n * size)
            if len(raw) != n * size:
                raise DataError(f"{what} ends after {done + len(raw) // size} of {count} images")
            done += n
            yield (
                np.frombuffer(raw, dtype)
                .reshape(n, *image_shape)
                .astype(dtype.newbyteorder("="), copy=False)
            )
        if f.read(1):
            raise DataError(f"{what} has data after its last image")

    return Source(image_shape, True, count, {}, batches, 8 * dtype.itemsize)


def _single(source: Source) -> Source:
    """A one-image stream restored without the batch axis."""
    first = next(source.batches())[0]
    return Source(first.shape, False, 1, {}, lambda: iter([first[None]]), source.depth)


def _idx_stream(f, name: str, check=check_image_shape) -> Source:
    """An IDX file read lazily: header now, images in chunks."""
    dtype, shape = read_idx_header(f, name=name)
    if dtype != np.uint8:
        raise DataError(f"IDX elements are {dtype}; images are uint8")
    if len(shape) == 1:
        raise DataError("IDX file has 1 dimension; images need 3 (N, H, W) or 4 (N, H, W, C)")
    if len(shape) == 2:
        return _single(_stream(f, 1, shape, name, "IDX file", check=check))
    return _stream(f, shape[0], shape[1:], name, "IDX file", check=check)


def _npy_stream(f, name: str, grey_stack: bool = False, check=check_image_shape) -> Source:
    """A .npy array read lazily from a stream (a pipe, a member of an .npz): header now, images in
    chunks."""
    try:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
    except ValueError as e:
        raise DataError(f"not a readable .npy array: {e}") from None
    if dtype not in (np.uint8, np.dtype("<u2"), np.dtype(">u2")):
        raise InputError(
            f"images have dtype {dtype}; "
            "aecodec compresses uint8 images (and uint16 ones losslessly)"
        )
    check_array_shape(shape)
    if fortran:  # column-major: no image is contiguous in the stream, so it is read whole (bounded)
        check(shape[1:] if len(shape) == 4 or not one_image(shape, grey_stack) else shape)
        raw = f.read(MAX_PIPED_BYTES + 1)
        if len(raw) != int(np.prod(shape)) * dtype.itemsize:
            raise DataError(
                f"Fortran-order .npy array holds {len(raw)} bytes, not "
                f"{int(np.prod(shape)) * dtype.itemsize}"
                + (" (larger ones: convert it to C order)" if len(raw) > MAX_PIPED_BYTES else "")
            )
        a = np.ascontiguousarray(np.frombuffer(raw, dtype).reshape(shape, order="F")).astype(
            dtype.newbyteorder("=")
        )
        return _array_source(a, {}, grey_stack)
    if one_image(shape, grey_stack):
        return _single(_stream(f, 1, shape, name, ".npy array", dtype, check))
    return _stream(f, shape[0], shape[1:], name, ".npy array", dtype, check)


def open_source(
    path: str | None,
    *,
    recursive: bool = False,
    stdin=None,
    grey_stack: bool = False,
    check_shape=check_image_shape,
) -> Source:
    """Open ``path`` ('-' or None: the binary stream ``stdin``) as a Source.

    Every input is streamed or has its claimed shape checked before its pixels are read; a
    pipe that holds an image or an .npz (formats read whole) is refused past ``MAX_PIPED_BYTES``;
    and what restoring would refuse (``check_restorable``) is refused before anything is coded.
    An array (H, W, 3|4) is one colour image unless ``grey_stack``. ``check_shape((H, W[, C]))`` is
    what refuses an image from its header, before its pixels are read: the container's limits
    (``check_image_shape``), or a level's (``api.check_codable``: the lossless coder's are lower).

    Raises:
        DataError: unreadable or of an unknown kind. InputError: images aecodec cannot code.
        FileNotFoundError, IsADirectoryError (folder without ``recursive``).
    """
    if path in (None, "-"):
        pipe = stdin if hasattr(stdin, "peek") else io.BufferedReader(stdin)
        src = _pipe_source(pipe, "stdin", grey_stack, check_shape)
        check_restorable(src)
        return src
    p = Path(path)
    if p.is_dir():
        if not recursive:
            raise IsADirectoryError(
                "is a directory (use -r to compress a folder of images as one archive)"
            )
        src = _folder_source(p, check_shape)
        check_restorable(src)
        return src
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(p))
    if not p.is_file():
        raise DataError(f"not a regular file (read it through standard input: aecodec < {p})")
    src = _file_source(p, grey_stack, check_shape)
    src.paths = [p]
    check_restorable(src)
    return src


def _kind_of(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:2] == b"\0\0":
        return "idx"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:2] == b"PK":
        return "npz"
    return "image"


def _file_source(p: Path, grey_stack: bool, check) -> Source:
    f = open(p, "rb")  # closed with the Source's stream, or below
    kind = _kind_of(f.read(8))
    f.seek(0)
    if kind == "npy" and p.suffix.lower() == ".npy":
        f.close()
        try:  # mapped: the shape is checked before pixels are read
            a = np.load(p, mmap_mode="r", allow_pickle=False)
        except ValueError as e:  # objects (they would need pickle), a damaged header
            raise DataError(f"not a readable .npy array: {e}") from None
        check_array_shape(a.shape)
        check(a.shape if one_image(a.shape, grey_stack) else a.shape[1:])
        return _with(_array_source(a, {}, grey_stack), {"kind": "npy", "name": p.name})
    # read as the images are coded: the file stays open till then
    if kind in (
        "gzip",
        "idx",
        "npy",
        "npz",
    ):
        return (
            _streamed(f, kind, p.name, grey_stack, check)
            if kind != "npz"
            else _whole(f, kind, p.name, grey_stack, check)
        )
    with f:
        return _whole(f, kind, p.name, grey_stack, check)


def _pipe_source(f, name: str, grey_stack: bool, check) -> Source:
    kind = _kind_of(f.peek(8)[:8])
    if kind in ("gzip", "idx", "npy"):
        return _streamed(f, kind, name, grey_stack, check)
    raw = f.read(MAX_PIPED_BYTES + 1)
    if len(raw) > MAX_PIPED_BYTES:
        raise DataError(
            f"more than {MAX_PIPED_BYTES} bytes of an image or .npz from a pipe; "
            "give its file name instead"
        )
    return _whole(io.BytesIO(raw), kind, name, grey_stack, check)


def _streamed(f, kind: str, name: str, grey_stack: bool, check) -> Source:
    if kind == "gzip":  # inflated as read: the IDX header is checked before anything else is
        inflated = gzip.GzipFile(fileobj=f)
        meta = {"kind": "idx", "name": name, "gzip": True}
        return _with(_idx_stream(inflated, name, check), meta)
    if kind == "idx":
        return _with(_idx_stream(f, name, check), {"kind": "idx", "name": name, "gzip": False})
    return _with(_npy_stream(f, name, grey_stack, check), {"kind": "npy", "name": name})


def _whole(f, kind: str, name: str, grey_stack: bool, check) -> Source:
    """An .npz (one member, streamed out of the zip) or an image file, from a seekable binary
    file."""
    if kind == "npz":
        try:
            z = zipfile.ZipFile(f)
            members = z.namelist()
            if len(members) != 1:
                raise DataError(f".npz holds {len(members)} arrays; aecodec takes exactly one")
            key = members[0].removesuffix(".npy")  # as np.load names it
            problem = npz_key_problem(key)
            if problem is not None:  # refused before a pixel is coded: --rm never removes it
                raise InputError(
                    f".npz array name {key!r} {problem}, so it could not be "
                    "restored under it: rename the array (np.savez(f, images=a))"
                )
            src = _npy_stream(z.open(members[0]), name, grey_stack, check)
            # the member is read chunk by chunk, later: keep the zip open until then
            if src.batched:
                src._batches = _keeping(z, src._batches)
            return _with(src, {"kind": "npz", "name": name, "key": key})
        except zipfile.BadZipFile as e:
            raise DataError(f"not a readable .npz file: {e}") from None
    a, info = read_image(f, check_shape=check)
    if info["format"] not in IMAGE_FORMATS:  # restoring writes the file's own format back
        raise InputError(
            f"{info['format']} images are read but not written back by aecodec, so it "
            "could not be restored as it is: convert it to PNG first (aecodec writes "
            f"{', '.join(IMAGE_FORMATS)})"
        )
    return _with(
        _array_source(a, {}, depth=info.get("depth")), {"kind": "image", "name": name, **info}
    )


def _keeping(owner, batches):
    def run():
        yield from batches()
        owner.close()

    return run


def _with(src: Source, meta: dict) -> Source:
    # informative only (restoring names its output from the archive): never unstorable
    if "name" in meta:
        meta = {**meta, "name": meta["name"].encode("utf-8", "replace").decode("utf-8")}
    src.meta = {**meta, **src.meta}
    return src


def _named(e: Exception, name: str) -> Exception:
    """The same error, its message starting with the file of a folder it is about."""
    if isinstance(e, OSError) and not isinstance(e, DataError) and e.strerror:
        return DataError(f"{printable(name)}: {e.strerror}")
    return type(e)(f"{printable(name)}: {e}")


def printable(name: str) -> str:
    """A file name fit for a terminal: as it is, or escaped when it holds control characters."""
    return name if name.isprintable() else repr(name)


def _folder_source(folder: Path, check) -> Source:
    """All the images under a folder, any sizes and channel counts; each checked (name, size,
    frames, mode, alpha) before anything is written or removed, then read as the archive is
    coded."""
    files, skipped = folder_files(folder)
    if not files:
        raise DataError("folder holds no image files")
    names = [f.relative_to(folder).as_posix() for f in files]
    opaque, depths = [], []
    for i, (path, name) in enumerate(zip(files, names, strict=True)):
        try:
            check_relative_name(name, what="file name")
            dropped, depth = scan_image(path, check_shape=check)
            if depths and (depth > 8) != (depths[0] > 8):
                raise InputError(
                    f"a {depth}-bit image in a folder of {depths[0]}-bit ones: an archive holds "
                    "one pixel type (compress them apart)"
                )
            depths.append(depth)
            if dropped:
                opaque.append(i)
        except (ValueError, OSError) as e:  # DataError is an OSError, InputError a ValueError
            raise _named(e, name) from None
    try:  # the header may be sound and the pixels not (a truncated PNG): name the file
        first, _ = read_image(files[0])
    except (ValueError, OSError) as e:
        raise _named(e, names[0]) from None

    def batches():
        group: list[np.ndarray] = []
        for name, path in zip(names, files, strict=True):
            try:
                a, _ = read_image(path)
            except (ValueError, OSError) as e:
                raise _named(e, name) from None
            full = len(group) == BATCH or (
                group and (len(group) + 1) * a.size > container.MAX_CHUNK_PIXELS
            )
            if group and (a.shape != group[0].shape or full):
                yield np.stack(group)
                group = []
            group.append(a)
        yield np.stack(group)

    meta = {
        "kind": "folder",
        "name": folder.name,
        "files": names,
        **({"opaque": opaque} if opaque else {}),
        **({"depths": depths} if max(depths) > 8 else {}),
    }  # each deep file's own, restored as it was
    # the deepest file's: all fit
    src = Source(first.shape, True, len(files), meta, batches, max(depths))
    src.paths, src.skipped = files, [p.relative_to(folder).as_posix() for p in skipped]
    return src


def check_restorable(source: Source) -> None:
    """Refuse, before anything is coded, written or removed, an input whose record of what it was
    (``source.meta``) restoring would refuse: the rule is ``recorded_kind``'s, restoring's own.

    Raises:
        InputError: naming what restoring would refuse.
    """
    try:
        recorded_kind({**source.meta, "count": source.count})
    except FormatError as e:
        raise InputError(f"it could not be restored as it is ({e})") from None
