"""What the CLI records of an input file in an archive's meta, and writing an archive back as that
kind of file: ``restore_kind`` decides, ``Sink`` writes, ``restore_archive`` does both atomically.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from bitstream.errors import show
from codec.errors import DataError, FormatError, InputError
from codec.io.fileio import atomic_folder, atomic_output, check_relative_name
from codec.io.idx import idx_bytes, idx_header, is_idx_name
from codec.io.images import (
    IMAGE_SUFFIXES,
    LOSSY_FORMATS,
    holds_channels,
    save_image,
    with_alpha,
)

# What the CLI records in an archive's meta to restore the original file, and what restoring
# accepts.
KINDS = ("npy", "npz", "idx", "image", "folder", "list")  # list: codec.compress of a list of images
# Pillow formats of inputs it reads
IMAGE_FORMATS = (
    "PNG",
    "BMP",
    "TIFF",
    "PPM",
    "WEBP",
    "GIF",
    "JPEG",
    "MPO",
)
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
                f"header meta format {show(fmt)} is not an image format aecodec writes "
                f"{IMAGE_FORMATS}"
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
                f"{name}: unknown output format "
                "(name it .npy, .npz, .png, .tif, ... or an IDX name)"
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
    """The opaque alpha channel put back, where the file format has room for it (GIF and JPEG have
    none)."""
    channels = image.shape[2] if image.ndim == 3 else 1
    return with_alpha(image, depth) if holds_channels(fmt or "PNG", channels + 1) else image


def check_folder_output(dst: Path, archive: Path | None) -> None:
    """A folder to restore into must not be '.', '..', a root, the archive or a folder that holds
    it.

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
        # streamed: the header needs the count first
        if kind["kind"] == "idx" and kind["count"] is not None:
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
            # an image file holds one image, without a batch axis
            elif self.kind["kind"] == "image":
                if len(images) != 1:
                    raise DataError(
                        f"an image file holds one image, the archive {len(images)} "
                        "(name the output .npy)"
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


def output_kind(name: str) -> dict | None:
    """How ``save_images`` should write a file called ``name``, from its suffix; None for an unknown
    one."""
    lower = name.lower()
    suffix = Path(lower).suffix
    if suffix in (".npy", ".npz"):
        return {"kind": suffix[1:]}
    if suffix in IMAGE_SUFFIXES:
        return {"kind": "image", "format": Image.registered_extensions()[suffix]}
    if is_idx_name(Path(lower)) or suffix == ".gz":
        return {"kind": "idx", "gzip": suffix == ".gz"}
    return None


def save_images(
    fileobj,
    images: np.ndarray,
    kind: str,
    *,
    format: str | None = None,
    key: str = "images",
    gzip_idx: bool = False,
    depth: int | None = None,
    maxval: int | None = None,
) -> None:
    """Write ``images`` to ``fileobj`` as ``kind``: 'npy', 'npz' (under ``key``), 'image'
    (one image, grey, grey+alpha or colour; Pillow ``format``, PNG by default) or 'idx'
    (gzip-compressed with ``gzip_idx``).

    The file is built in memory and written in one call, so a full disk raises the plain
    OSError ("No space left on device") rather than NumPy's short-write message.
    """
    out = io.BytesIO()
    if kind == "npz":
        save_npz(out, {key: images})
    elif kind == "image":
        save_image(out, images, format or "PNG", depth, maxval)
    elif kind == "idx":
        if images.dtype != np.uint8:
            raise DataError(
                "IDX files hold uint8 images here (name the output .npy for 16-bit ones)"
            )
        data = idx_bytes(images)
        out.write(gzip.compress(data, mtime=0) if gzip_idx else data)
    else:
        np.save(out, images, allow_pickle=False)
    write_all(fileobj, out.getbuffer())


def save_npz(fileobj, arrays: dict) -> None:
    """An .npz of ``arrays`` (name -> array), deflated as ``np.savez_compressed`` does; no pickle.

    Written here because NumPy takes the names as keyword arguments: an array named 'file' is a
    TypeError there, and one named 'allow_pickle' is taken for the option, leaving no array."""
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for name, array in arrays.items():
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def write_all(fileobj, buffer) -> None:
    """Write every byte of ``buffer``: a buffered stream may take fewer and report it (a closed
    pipe)."""
    view = memoryview(buffer).cast("B")
    while view:
        written = fileobj.write(view)
        if not written:
            raise BrokenPipeError(32, "Broken pipe")
        view = view[written:]
