"""What the CLI reads and writes: image files, .npy/.npz arrays, IDX files, folders of images.

A *source* is opened into (image shape, batched, meta, iterator of uint8 batches); the meta
dict goes into the archive header so that decompression restores the same kind of file
under the same name. Large inputs (IDX, .npy, folders) are read in chunks, so memory stays
bounded by one chunk whatever their size; ``Sink`` writes them back the same way.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from bitstream import container
from bitstream.container import show
from codec.api import CHUNK_IMAGES as CHUNK
from codec.errors import DataError, FormatError, InputError
from codec.io.data import (
    IMAGE_SUFFIXES,
    LOSSY_FORMATS,
    check_array_shape,
    check_image_shape,
    holds_channels,
    idx_header,
    one_image,
    output_kind,
    read_idx_header,
    read_image,
    save_images,
    save_npz,
    scan_image,
    with_alpha,
    write_all,
)
from codec.io.fileio import check_relative_name


class Source:
    """An opened input: ``image_shape``, ``batched``, ``count``, ``meta``, ``batches()``, and ``paths``
    (the files it reads: what --rm may remove once the archive is complete)."""

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
        lambda: (a[i : i + CHUNK] for i in range(0, len(a), CHUNK)),
        depth,
    )


MAX_PIPED_BYTES = 1 << 28  # an image or .npz read whole from a pipe: larger ones need a file name


def _stream(
    f, count: int, image_shape, name: str, what: str, dtype=np.uint8, check=check_image_shape
) -> Source:
    """A Source reading ``count`` images of ``image_shape`` (uint8, or ``dtype``: uint16 of either byte
    order) from ``f`` a chunk at a time; ``check(image_shape)`` first (``open_source``'s limits)."""
    check(image_shape)  # before a pixel is read
    if count == 0:
        raise DataError(f"{what} holds no images")
    dtype = np.dtype(dtype)
    size = int(np.prod(image_shape)) * dtype.itemsize

    def batches():
        done = 0
        while done < count:
            n = min(CHUNK, count - done)
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
    """A .npy array read lazily from a stream (a pipe, a member of an .npz): header now, images in chunks."""
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
            f"images have dtype {dtype}; aecodec compresses uint8 images (and uint16 ones losslessly)"
        )
    check_array_shape(shape)
    if fortran:  # column-major: no image is contiguous in the stream, so it is read whole (bounded)
        check(shape[1:] if len(shape) == 4 or not one_image(shape, grey_stack) else shape)
        raw = f.read(MAX_PIPED_BYTES + 1)
        if len(raw) != int(np.prod(shape)) * dtype.itemsize:
            raise DataError(
                f"Fortran-order .npy array holds {len(raw)} bytes, not {int(np.prod(shape)) * dtype.itemsize}"
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
        a = np.load(
            p, mmap_mode="r", allow_pickle=False
        )  # mapped: the shape is checked before pixels are read
        check_array_shape(a.shape)
        check(a.shape if one_image(a.shape, grey_stack) else a.shape[1:])
        return _with(_array_source(a, {}, grey_stack), {"kind": "npy", "name": p.name})
    if kind in (
        "gzip",
        "idx",
        "npy",
        "npz",
    ):  # read as the images are coded: the file stays open till then
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
    """An .npz (one member, streamed out of the zip) or an image file, from a seekable binary file."""
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
            if (
                src.batched
            ):  # the member is read chunk by chunk, later: keep the zip open until then
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
    if (
        "name" in meta
    ):  # informative only (restoring names its output from the archive): never unstorable
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


def _folder_files(folder: Path) -> tuple[list[Path], list[Path]]:
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


def _folder_source(folder: Path, check) -> Source:
    """All the images under a folder, any sizes and channel counts; each checked (name, size, frames,
    mode, alpha) before anything is written or removed, then read as the archive is coded."""
    files, skipped = _folder_files(folder)
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
                    f"a {depth}-bit image in a folder of {depths[0]}-bit ones: an archive holds one "
                    "pixel type (compress them apart)"
                )
            depths.append(depth)
            if dropped:
                opaque.append(i)
        except (ValueError, OSError) as e:  # DataError is an OSError, InputError a ValueError
            raise _named(e, name) from None
    first, _ = read_image(files[0])

    def batches():
        group: list[np.ndarray] = []
        for name, path in zip(names, files, strict=True):
            try:
                a, _ = read_image(path)
            except (ValueError, OSError) as e:
                raise _named(e, name) from None
            full = len(group) == CHUNK or (
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
    src = Source(
        first.shape, True, len(files), meta, batches, max(depths)
    )  # the deepest file's: all fit
    src.paths, src.skipped = files, [p.relative_to(folder).as_posix() for p in skipped]
    return src


def write_archive(
    source: Source,
    fileobj,
    *,
    quality=None,
    model=None,
    batches=None,
    on_batch=None,
    pool=None,
    max_error: int | None = None,
) -> int:
    """Compress ``source`` (its ``batches``, if given, stand for the rest of its stream) into an archive
    on ``fileobj``, recording what restoring it needs; ``on_batch(batch)`` after each; the chunks coded
    on ``pool``'s workers where given (``parallel.DaskPool``: the same bytes); ``max_error`` (0:
    lossless) codes with the model's lossless coder. Returns the count."""
    from codec import api

    writer = api.ArchiveWriter(
        fileobj,
        source.image_shape,
        quality=quality,
        model=model,
        batched=source.batched,
        meta={**source.meta, "count": source.count},
        pool=pool,
        max_error=max_error,
        depth=source.depth,
    )
    for batch in source.batches() if batches is None else batches:
        writer.write(batch)
        if on_batch is not None:
            on_batch(batch)
    writer.close()
    return writer.count


# What the CLI records in an archive's meta to restore the original file, and what restoring accepts.
KINDS = ("npy", "npz", "idx", "image", "folder", "list")  # list: codec.compress of a list of images
IMAGE_FORMATS = (
    "PNG",
    "BMP",
    "TIFF",
    "PPM",
    "WEBP",
    "GIF",
    "JPEG",
    "MPO",
)  # Pillow formats of inputs it reads
MAX_COUNT = 1 << 40
MAX_NPZ_KEY_BYTES = 251  # with '.npy', a member that unzips to a file name (of 255 bytes at most)


def npz_key_problem(key) -> str | None:
    """Why ``key`` cannot name the array of an .npz aecodec restores, or None if it can: any
    printable text (spaces, non-ASCII letters, a leading '-' are plain names inside a zip) without
    '/' or '\\' (a member in a folder, or one that unzips elsewhere: '../x'), of at most 251 UTF-8
    bytes.
    The one rule of compressing (before anything is written or removed) and of restoring."""
    if not isinstance(key, str) or not key:
        return "is empty or not text"
    if not key.isprintable():
        return "holds a control or unprintable character"
    if "/" in key or "\\" in key:
        return "holds a '/' or a '\\' (a path, not a name)"
    if len(key.encode("utf-8")) > MAX_NPZ_KEY_BYTES:
        return f"is longer than {MAX_NPZ_KEY_BYTES} bytes"
    return None


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


def recorded_kind(meta: dict) -> dict:
    """The kind of file an archive was made from, its fields checked: what restoring it needs.

    Raises:
        FormatError: a field of the wrong type or value (the archive's checksums cannot tell:
            a file crafted with valid checksums is still checked).
    """
    kind = meta.get("kind", "npy")
    if kind not in KINDS:
        raise FormatError(f"header meta kind {show(kind)} is not one of {KINDS}")
    count = meta.get("count")
    if count is not None and not (type(count) is int and 0 <= count <= MAX_COUNT):
        raise FormatError(f"header meta count {show(count)} is not a whole number of images")
    out = {"kind": kind, "count": count}
    if kind == "image":
        fmt = meta.get("format") or "PNG"
        if fmt not in IMAGE_FORMATS:
            raise FormatError(
                f"header meta format {show(fmt)} is not an image format aecodec writes {IMAGE_FORMATS}"
            )
        if meta.get("alpha") not in (None, "opaque"):
            raise FormatError(f"header meta alpha {show(meta.get('alpha'))} is not 'opaque'")
        out["format"], out["alpha"] = fmt, meta.get("alpha") == "opaque"
        maxval = meta.get("maxval")  # a PGM/PPM's maximum value when it is not 2^depth - 1
        if maxval is not None and not (type(maxval) is int and 256 <= maxval <= 65535):
            raise FormatError(f"header meta maxval {show(maxval)} is not 256 to 65535")
        out["maxval"] = maxval
    elif kind == "idx":
        if not isinstance(meta.get("gzip", False), bool):
            raise FormatError(f"header meta gzip {show(meta.get('gzip'))} is not true or false")
        out["gzip"] = meta.get("gzip", False)
    elif kind == "npz":
        key = meta.get("key", "images")
        problem = npz_key_problem(key)
        if problem is not None:
            raise FormatError(
                f"header meta key {show(key)} is not a plain array name: it {problem}"
            )
        out["key"] = key
    elif kind == "folder":
        out["files"] = _folder_names(meta, count)
        opaque = meta.get("opaque", [])
        if not isinstance(opaque, list) or not all(
            type(i) is int and 0 <= i < count for i in opaque
        ):
            raise FormatError("header meta opaque is not a list of image numbers")
        out["opaque"] = set(opaque)
        depths = meta.get("depths")
        if depths is not None and (
            not isinstance(depths, list)
            or len(depths) != count
            or not all(type(d) is int and 1 <= d <= 16 for d in depths)
        ):
            raise FormatError("header meta depths is not a bit depth (1 to 16) per image")
        out["depths"] = depths
    return out


def _folder_names(meta: dict, count) -> list[PurePosixPath]:
    files = meta.get("files")
    if not isinstance(files, list) or not files:
        raise FormatError("header meta files is not a list of file names")
    if count != len(files):
        raise FormatError(f"header meta lists {len(files)} files for {show(count)} images")
    try:
        names = [check_relative_name(f, what="header meta files") for f in files]
    except ValueError as e:
        raise FormatError(str(e)) from None
    if len(set(names)) != len(names):
        raise FormatError("header meta files lists a name twice")
    for name in names:
        if output_kind(name.name) is None or output_kind(name.name)["kind"] != "image":
            raise FormatError(f"header meta files holds {show(str(name))}, not an image file name")
    return names


def lossy_original(header: dict) -> bool:
    """Whether the archive holds one image read from a lossy format (JPEG, WebP): restoring it as
    such would compress it lossily once more."""
    meta = header["meta"]
    return meta.get("kind") == "image" and meta.get("format") in LOSSY_FORMATS


def restore_kind(header: dict, name: str | None) -> dict:
    """How to restore an archive to the file ``name`` (None: standard output).

    One rule for the API and the CLI: the output name's suffix decides (``t10k.npy`` is a
    NumPy file whatever the archive came from); a name without a suffix, or with the original
    name's (``data.bin`` of an IDX file called ``data.bin``), gets the archive's original kind;
    any other suffix is an error. A folder archive restores to a folder.

    Raises:
        FormatError: the archive's meta is malformed.
        DataError: an unknown suffix, or an image file asked for more than one image.
    """
    meta = header["meta"]
    recorded = recorded_kind(meta)
    if name is None and lossy_original(header):  # standard output: lossless too
        return {**recorded, "format": "PNG"}
    if recorded["kind"] == "folder" or name is None:
        return recorded
    kind = output_kind(name)
    if kind is None:
        original = meta.get("name") if isinstance(meta.get("name"), str) else ""
        if Path(name).suffix and Path(name).suffix.lower() != Path(original).suffix.lower():
            raise DataError(
                f"{name}: unknown output format (name it .npy, .npz, .png, .tif, ... or an IDX name)"
            )
        return recorded
    if recorded["kind"] == "list" and kind["kind"] != "npz":
        raise DataError(
            f"{name}: the archive holds a list of images of several sizes: restore it with "
            "codec.decompress, or name an .npz (one array per image)"
        )
    if kind["kind"] == "image" and (recorded["count"] or 0) > 1:
        raise DataError(
            f"{name}: an image file holds one image, the archive {recorded['count']} (name it .npy)"
        )
    return {**recorded, **kind}


def _opaque(image: np.ndarray, fmt: str | None, depth: int | None = None) -> np.ndarray:
    """The opaque alpha channel put back, where the file format has room for it (GIF and JPEG have none)."""
    channels = image.shape[2] if image.ndim == 3 else 1
    return with_alpha(image, depth) if holds_channels(fmt or "PNG", channels + 1) else image


def check_folder_output(dst: Path, archive: Path | None) -> None:
    """A folder to restore into must not be '.', '..', a root, the archive or a folder that holds it.

    Raises:
        InputError: one of those.
    """
    if dst.name in ("", ".", "..") or dst.resolve() == Path(dst.resolve().anchor):
        raise InputError(
            f"refusing to restore a folder archive into {str(dst)!r}: name a new folder"
        )
    if archive is not None:
        archive = archive.resolve()
        if dst.resolve() == archive or dst.resolve() in archive.parents:
            raise InputError(f"refusing to restore into {dst}: it holds the archive")


def restore_archive(
    reader,
    dst: Path | None,
    *,
    stdout=None,
    force: bool = False,
    then=None,
    archive: Path | None = None,
    on_batch=None,
    like: str | None = None,
) -> None:
    """Restore an opened ``api.ArchiveReader`` to ``dst`` (None: the binary stream ``stdout``) as
    ``restore_kind`` says for the name ``like`` (default: ``dst``'s; a part of an archive, written
    under a name aecodec made up, takes the kind of file the whole would be), atomically; ``then()``
    runs once the output is in place (--rm), and ``on_batch(batch)`` after each decoded batch. The
    one restoring path of the CLI and the API.

    Raises:
        FormatError, DataError, InputError, FileExistsError: as the steps it takes.
    """
    from codec.io.fileio import atomic_folder, atomic_output

    header = reader.header
    kind = restore_kind(header, like if like is not None else None if dst is None else dst.name)
    protect = [] if archive is None else [archive]
    with contextlib.ExitStack() as stack:
        if dst is None:
            target = stdout
        elif kind["kind"] == "folder":
            check_folder_output(dst, archive)
            target = stack.enter_context(
                atomic_folder(dst, force=force, then=then, protect=protect)
            )
        else:
            target = stack.enter_context(atomic_output(dst, force=force, then=then, inputs=protect))
        sink = Sink(header, kind, target)
        for batch in reader:
            sink.write(batch)
            if on_batch is not None:
                on_batch(batch)
        sink.finish()


class Sink:
    """Writes decoded batches as the file ``kind`` (from ``restore_kind``) says.

    ``target`` is a binary file object (an ``atomic_output`` or stdout), or, for an archive
    of a folder, a ``FolderOutput``. IDX and folders are written batch by batch; the other
    kinds hold one array and are written by ``finish``, which also checks that the archive
    held as many images as its meta claims (the output is then discarded, never kept short).
    """

    def __init__(self, header: dict, kind: dict, target):
        self.image_shape, self.batched = tuple(header["image_shape"]), header["batched"]
        self.kind, self.target, self.depth = kind, target, header["depth"]
        if kind["kind"] == "idx" and self.depth > 8:
            raise DataError(
                "IDX files hold uint8 images here: name the output .npy for these 16-bit ones"
            )
        self._parts: list[np.ndarray] = []
        self._written = 0
        if kind["kind"] == "folder" and not hasattr(target, "open"):
            raise DataError(
                "an archive of a folder cannot be written to standard output; give a folder name"
            )
        if (
            kind["kind"] == "idx" and kind["count"] is not None
        ):  # streamed: the header needs the count first
            self._stream = (
                gzip.GzipFile(fileobj=target, mode="wb", mtime=0) if kind.get("gzip") else target
            )
            self._stream.write(idx_header((kind["count"], *self.image_shape)))

    def write(self, batch: np.ndarray) -> None:
        if (
            self.kind["kind"] not in ("folder", "npz")
            and self._parts
            and batch.shape[1:] != self._parts[0].shape[1:]
        ):
            raise DataError(
                "the archive holds images of several sizes: restore it to a folder or an .npz"
            )
        count = self.kind["count"]
        if count is not None and self._written + len(batch) > count:
            raise FormatError(f"archive holds more images than the {count} its header names")
        if self.kind["kind"] == "folder":
            names = self.kind["files"][self._written : self._written + len(batch)]
            for i, (name, image) in enumerate(zip(names, batch, strict=True), start=self._written):
                fmt = output_kind(name.name)["format"]
                with self.target.open(name) as f:
                    depth = self.kind["depths"][i] if self.kind.get("depths") else self.depth
                    save_images(
                        f,
                        _opaque(image, fmt, depth) if i in self.kind["opaque"] else image,
                        "image",
                        format=fmt,
                        depth=depth,
                    )
        elif hasattr(self, "_stream"):
            self._stream.write(np.ascontiguousarray(batch).tobytes())
        else:
            self._parts.append(batch)
        self._written += len(batch)

    def finish(self) -> None:
        count = self.kind["count"]
        if count is not None and self._written != count:
            raise FormatError(
                f"archive holds {self._written} images, not the {count} its header names"
            )
        if hasattr(self, "_stream"):
            if self._stream is not self.target:
                self._stream.close()  # the gzip trailer; the file itself stays open
        elif self.kind["kind"] == "npz" and len({p.shape[1:] for p in self._parts}) > 1:
            arrays = {
                f"image{i}": image
                for i, image in enumerate(image for part in self._parts for image in part)
            }
            out = io.BytesIO()
            save_npz(out, arrays)  # images of several sizes: one array each
            write_all(self.target, out.getbuffer())
        elif self.kind["kind"] != "folder":
            images = np.concatenate(self._parts)
            if not self.batched:
                images = images[0]
            elif (
                self.kind["kind"] == "image"
            ):  # an image file holds one image, without a batch axis
                if len(images) != 1:
                    raise DataError(
                        f"an image file holds one image, the archive {len(images)} (name the output .npy)"
                    )
                images = images[0]
            if self.kind.get("alpha"):
                images = (
                    _opaque(images, self.kind.get("format"), self.depth)
                    if self.kind["kind"] == "image"
                    else with_alpha(images, self.depth)
                )
            save_images(
                self.target,
                images,
                self.kind["kind"],
                format=self.kind.get("format"),
                key=self.kind.get("key", "images"),
                gzip_idx=self.kind.get("gzip", False),
                depth=self.depth,
                maxval=self.kind.get("maxval"),
            )
