"""The public API: ``compress``, ``decompress``, ``load_model`` (the file forms: ``codec.files``).

Only the face: chunking and the container (the arguments and chunks it refuses:
``checks.py``). The coding itself is the model's levels (``levels/model.py``; one module per
kind: ``tile.py``, ``pixel.py``, ``conv.py``, ``lossless.py``); the container names the model (by
fingerprint) and the level a file needs.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np

import bitstream
from bitstream import container
from bitstream.header import FINGERPRINT_BYTES, dtype_of
from codec.checks import (
    FORMAT2_DENSE_PIXELS,
    as_batch,
    check_chunk_work,
    check_depth,
    check_depth_of,
    check_effort,
    check_images,
    check_level_shape,
    depth_of,
    effort_level,
    floor_pixels,
    level_fields,
)
from codec.errors import BuildError, FormatError, InputError, LimitError, ModelMismatchError
from codec.io.shapes import check_image_shape
from codec.levels import modelfile
from codec.levels.model import Model
from codec.pretrained import DEEP_MODEL, DEFAULT_MODEL, PHOTO_MODEL

# Images per coded stream: amortizes the coder's flush (+0.1% bytes at 512 against 1024 at
# quality 1, 0.02% at 4-8), bounds memory, and is what random access decodes to read one image.
CHUNK_IMAGES = 512


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, identity: tuple, shown: str) -> Model:
    """The model at ``path`` (resolved), its errors naming it as the caller did (``shown``)."""
    return Model(modelfile.loads(modelfile.read(path, what=shown), what=shown), source=path)


def load_model(path: str | os.PathLike | None = None) -> Model:
    """Load a model file (``.aecm``); ``None`` loads the bundled default.

    Raises:
        FileNotFoundError: no such file.
        FormatError: not a valid model file (also ``ValueError``), or not a regular file (a folder,
            FIFO, socket or device: refused before it is opened).
        LimitError: larger than ``modelfile.MAX_MODEL_BYTES``, or asking for more work per pixel
            than a model may (a FormatError too).
    """
    path = Path(path) if path is not None else DEFAULT_MODEL
    st = path.stat()
    # A replaced file has a new inode or change time even when its size and mtime were kept.
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return _load_cached(str(path.resolve()), identity, str(path))


def _resolve(model, shapes=None, depth: int = 8) -> Model:
    """``model`` loaded, or with None the bundled model that suits images of ``shapes`` and
    ``depth``."""
    if model is None and shapes is not None:
        return model_for(shapes, depth)
    return model if isinstance(model, Model) else load_model(model)


def model_for(shapes, depth: int = 8) -> Model:
    """The bundled model for images of these shapes ((H, W) or (H, W, C) each) and depth before a
    pixel is read (``choose_model`` measures, once it has them): the 16-bit model for images
    deeper than 8 bits, Fashion-MNIST's for its 28 x 28 grey items, the photo model for anything
    else (where they are installed)."""
    if depth > 8 and DEEP_MODEL.is_file():
        return load_model(DEEP_MODEL)
    if all(tuple(s) == (28, 28) for s in shapes) or not PHOTO_MODEL.is_file():
        return load_model(DEFAULT_MODEL)
    return load_model(PHOTO_MODEL)


# How choose_model weighs bytes against PSNR: about 6 dB per doubling of the bytes (one more bit
# per sample buys 6.02 dB at high rates; on the bundled models' ladders it ranges 2-11 dB).
DB_PER_DOUBLING = 6.0
CHOICE_SAMPLE = 8  # images measured per choice (each cropped to CHOICE_SIDE at most)
CHOICE_SIDE = 256
_chosen: dict[tuple, Path] = {}


def choose_model(images, *, quality=None, max_error=None, depth: int = 8) -> Model:
    """The bundled model for a batch of images (N, H, W[, C]), by measuring: each bundled model
    codes a sample at the asked ``quality`` (or ``max_error``) and the one with the lowest
    log2(bytes) - PSNR / DB_PER_DOUBLING wins (the smaller at an equal or better PSNR always
    does; exact levels compare bytes alone). Models that cannot code the images are passed over.
    The choice is kept per image size (per colour for images larger than CHOICE_SIDE) and level,
    so a folder of such images is measured once."""
    paths = [p for p in (DEFAULT_MODEL, PHOTO_MODEL) if p.is_file()]
    if depth > 8 or len(paths) < 2:
        return model_for([images.shape[1:]], depth)
    shape = images.shape[1:]
    size = shape if shape[0] * shape[1] <= CHOICE_SIDE**2 else ("large", shape[2:])
    key = (size, quality, max_error)
    if key not in _chosen:
        sample = images[:CHOICE_SAMPLE, :CHOICE_SIDE, :CHOICE_SIDE]
        costs = {p: _cost(load_model(p), sample, quality, max_error) for p in paths}
        _chosen[key] = min(paths, key=lambda p: costs[p])
    return load_model(_chosen[key])


def _cost(model: Model, sample: np.ndarray, quality, max_error) -> float:
    """What choose_model minimizes for ``model`` on ``sample`` (inf: it cannot code it)."""
    try:
        level = model.level_of(level_fields(model, quality, max_error, 8, sample.shape[1:]))
        check_level_shape(level, model, sample.shape[1:])
    except (InputError, FormatError):
        return float("inf")
    data = level.encode(sample)
    restored = level.decode(data, len(sample), sample.shape[1:])
    mse = float(np.mean((restored.astype(np.float64) - sample) ** 2))
    if mse == 0:
        return float(np.log2(len(data) + 1))
    return float(np.log2(len(data) + 1) - 10 * np.log10(255.0**2 / mse) / DB_PER_DOUBLING)


def model_named_by(header: dict) -> Model:
    """The bundled model a file names by its fingerprint (the Fashion-MNIST one when none matches,
    which ``check_model`` then refuses with the fingerprint it needs)."""
    for path in (DEFAULT_MODEL, PHOTO_MODEL, DEEP_MODEL):
        if path.is_file():
            model = load_model(path)
            if made_by(model, header):
                return model
    return load_model(DEFAULT_MODEL)


def check_codable(shape, *, model=None, quality=None, max_error: int | None = None) -> None:
    """Refuse, from its shape alone (before a pixel is read), an image that the level ``quality`` or
    ``max_error`` (0: lossless) of ``model`` (None: the bundled one that suits it) would refuse:
    what ``aecodec`` checks in image and array headers. Limits that depend on the pixels (a depth
    above 8 bits needs the lossless coder) are checked when they are read.

    Raises:
        InputError: as ``check_level_shape``; an unknown quality; a model without a lossless coder.
    """
    check_image_shape(shape)
    found = _resolve(model, [shape])
    asked = level_fields(found, quality, max_error, shape=tuple(shape))
    check_level_shape(found.level_of(asked, asked=True), found, shape)


def _header(
    model: Model,
    quality: int,
    image_shape,
    batched: bool,
    meta: dict | None,
    depth: int = 8,
    max_error: int = 0,
) -> dict:
    """The in-memory container header (the file stores a fingerprint prefix; coder and prior are
    implied)."""
    return {
        "depth": depth,
        "max_error": max_error,
        "model": {"fingerprint": model.fingerprint[: 2 * FINGERPRINT_BYTES]},
        "coder": {"name": bitstream.CODER_NAME, "version": bitstream.CODER_VERSION},
        "quality": quality,
        "image_shape": list(image_shape),
        "batched": batched,
        "dtype": dtype_of(depth),
        "prior": "clusters",
        "meta": meta or {},
    }


class ArchiveWriter:
    """Compress images into a container on a binary file object, chunk by chunk.

    Memory stays bounded by one chunk whatever the number of images: ``write`` buffers up
    to ``CHUNK_IMAGES`` images (fewer for large images: a chunk stays within the pixel limit
    that readers enforce) and codes each full chunk at once. Images of another shape than
    the ones before start a new chunk, which records its shape: an archive holds any sizes.

    >>> import io, numpy as np
    >>> out = io.BytesIO()
    >>> with ArchiveWriter(out, (28, 28), quality=3) as w:
    ...     w.write(np.zeros((5, 28, 28), np.uint8))
    >>> decompress(out.getvalue()).shape
    (5, 28, 28)
    """

    def __init__(
        self,
        fileobj,
        image_shape,
        *,
        quality=None,
        model=None,
        batched: bool = True,
        meta: dict | None = None,
        pool=None,
        max_error: int | None = None,
        depth: int = 8,
        effort: int = 0,
    ):
        self.model = _resolve(model, [image_shape], depth)
        self.depth = check_depth(depth)
        self._asked = level_fields(self.model, quality, max_error, self.depth, tuple(image_shape))
        self.quality, self.max_error = self._asked["quality"], self._asked["max_error"]
        self.level = self.model.level_of(self._asked, asked=True)
        self.effort = check_effort(effort)
        self._coding = effort_level(self.level, self.effort)
        self.image_shape = tuple(image_shape)
        self._chunk_size(self.image_shape)  # refused now if a reader would refuse it
        header = _header(
            self.model, self.quality, self.image_shape, batched, meta, depth, self.max_error
        )
        try:
            self._writer = container.Writer(fileobj, header)
        except FormatError as e:  # only meta can be wrong here: the caller's argument
            raise InputError(f"meta cannot be stored: {e}") from None
        self._batched = batched
        # with a ``parallel.DaskPool``, chunks are coded by its workers and written here in order
        self._encoder = pool.encoder(self.model) if pool is not None else None
        self._pending: list[np.ndarray] = []
        self._shape = self.image_shape  # of the pending images
        self._buffered = 0
        self.count = 0

    def _chunk_size(self, shape) -> int:
        """Images of ``shape`` per chunk: within the readers' limits on pixels, and on padded tiles,
        and within what the level codes at once in bounded memory (the lossless coder's)."""
        check_level_shape(self.level, self.model, shape)
        coded, pixels = self.level.coded_pixels(1, shape), int(np.prod(shape))
        return max(
            1,
            min(
                self.level.chunk_images or CHUNK_IMAGES,
                self.level.max_coded_pixels // coded,
                container.MAX_CHUNK_PIXELS // pixels,
                self.level.max_chunk_values // pixels,
            ),
        )

    def write(self, images) -> None:
        """Add images shaped (n, H, W[, C]); a new shape starts a new chunk (archives only)."""
        a = check_depth_of(check_images(images), self.depth)
        if a.ndim < 3:
            raise InputError(f"write takes a batch of images (n, H, W[, C]), not shape {a.shape}")
        shape = a.shape[1:]
        if not self._batched and (
            self.count + self._buffered + len(a) > 1 or shape != self.image_shape
        ):
            raise InputError("an archive of a single image (batched=False) holds exactly one image")
        if shape != self._shape:
            while self._buffered:
                self._flush(self._buffered)
            self._shape = shape
        self._pending.append(a)
        self._buffered += len(a)
        size = self._chunk_size(shape)
        while self._buffered >= size:
            self._flush(size)

    def _flush(self, n: int) -> None:
        joined = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        batch, rest = joined[:n], joined[n:]
        min_bytes = container.min_chunk_bytes(1, floor_pixels(self.level, len(batch), self._shape))
        if self._encoder is None:
            self._writer.add(
                len(batch), self._coding.encode(batch, min_bytes=min_bytes), list(self._shape)
            )
        else:
            asked = {**self._asked, "effort": self.effort} if self.effort else self._asked
            self._encoder.submit(asked, batch, min_bytes, list(self._shape))
            for chunk in self._encoder.ready():
                self._writer.add(*chunk)
        self.count += len(batch)
        self._pending, self._buffered = ([rest] if len(rest) else []), len(rest)

    def close(self) -> None:
        if self._buffered:
            self._flush(self._buffered)
        if self.count == 0:
            raise InputError("no images were written")
        if self._encoder is not None:
            for chunk in self._encoder.ready(all_of_them=True):
                self._writer.add(*chunk)
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            self.close()
        elif self._encoder is not None:
            self._encoder.cancel()


class ArchiveReader:
    """Decode a container from a binary file object, chunk by chunk.

    ``header`` is read (and checked against the model) at once; iterating yields arrays of
    images, one per chunk (``shape`` of the last one read), each chunk checked against its
    CRC, its limits and the floor of bytes per coded pixel before decoding. The file's final
    CRC is checked after the last chunk.
    """

    def __init__(self, fileobj, *, model=None):
        self._reader = container.Reader(fileobj)
        self.header = self._reader.header
        self.model = model_named_by(self.header) if model is None else _resolve(model)
        check_model(self.model, self.header)
        self.level = self.model.level_of(self.header)

    def __iter__(self):
        framed = self._reader.version >= 3
        dense = 0  # format 2: coded pixels beyond the floor, so far
        for n, data, shape in self._reader:
            dense += check_chunk_work(self.level, n, data, shape, framed=framed)
            if dense > FORMAT2_DENSE_PIXELS:
                raise LimitError(
                    f"format-2 file holds more than {FORMAT2_DENSE_PIXELS} pixels denser than "
                    f"{container.MAX_PIXELS_PER_BYTE} per byte (decompress it with aecodec 0.1)"
                )
            yield self.level.decode(data, n, shape, version=self._reader.version)


def compress(
    images,
    *,
    quality=None,
    model=None,
    meta: dict | None = None,
    grey_stack: bool = False,
    pool=None,
    lossless: bool = False,
    max_error: int | None = None,
    depth: int | None = None,
    effort: int = 0,
) -> bytes:
    """Compress images to container bytes: uint8 at a quality level, or (``lossless`` /
    ``max_error``) uint8 or uint16 exactly or within a bound.

    Args:
        images: a uint8 array (bool is taken as 0/255): one image (H, W) or (H, W, C) with C 2
            (grey + alpha), 3 (colour) or 4 (colour + alpha), or a batch (N, H, W) or (N, H, W, C);
            or a list of images of any sizes. An alpha channel comes back exactly whatever the
            quality (it is coded by the model's lossless coder: ``levels/alpha.py``).
        quality: one of ``codec.QUALITIES``, the same on every model (``levels/scale.py``): 1 a
            preview, 2-13 about 25-47 dB, 14 near-lossless, 15 lossless; None: 6.
        model: a ``Model``, a model file's path, or None: the bundled model that codes a sample of
            the images best at that quality (``choose_model``).
        meta: a small dict stored verbatim in the header (the CLI records the original file name).
        grey_stack: take a 3-D array whose last axis is 2 to 4 as grey images of that width.
        pool: a ``parallel.DaskPool`` to code the chunks on (the same bytes as without).
        lossless: code every pixel exactly, with the model's lossless coder (as ``max_error=0``).
        max_error: near-lossless: every pixel within this many levels of the original (1 to 32, as
            JPEG-LS's NEAR); 0 is lossless. Excludes ``quality``.
        depth: bits per sample (1 to 16; default 8 for uint8, 16 for uint16), recorded in the file:
            e.g. 12 for 12-bit data held in uint16. Depths other than 8 need lossless or max_error.
        effort: 0 (the default, fastest) to 3: convolutional levels refine each image's latents
            against their decoder (``levels/refine.py``): files no larger, the same decoder.

    Raises:
        InputError: wrong dtype, rank, size, NaN, quality, values beyond the depth, no lossless.

    >>> import numpy as np, codec
    >>> x = np.zeros((2, 28, 28), np.uint8)
    >>> codec.decompress(codec.compress(x, quality=4)).shape
    (2, 28, 28)
    """
    if lossless and max_error not in (None, 0):
        raise InputError(f"lossless means max_error 0, not {max_error!r}")
    exact = dict(max_error=0 if lossless else max_error)
    coding = dict(exact, effort=check_effort(effort), quality=quality, meta=meta)
    if isinstance(images, (list, tuple)):
        return _compress_list(images, model=model, depth=depth, **coding)
    batch, batched = as_batch(images, grey_stack=grey_stack)
    model = model or choose_model(batch, depth=depth_of(batch, depth), quality=quality, **exact)
    out = io.BytesIO()
    shape, depth = batch.shape[1:], depth_of(batch, depth)
    with ArchiveWriter(
        out, shape, model=model, batched=batched, pool=pool, depth=depth, **coding
    ) as w:
        w.write(batch)
    return out.getvalue()


def _compress_list(images, **kw) -> bytes:
    """An archive of images of any sizes, each (H, W) or (H, W, C); ``decompress`` gives the list
    back."""
    batches = [as_batch(image)[0] for image in images]
    if not batches or any(len(b) != 1 for b in batches):
        raise InputError("a list holds single images, (H, W) or (H, W, C)")
    if len({b.dtype for b in batches}) > 1:
        raise InputError("a list holds images of one dtype (uint8 or uint16)")
    out = io.BytesIO()
    meta = {**(kw.pop("meta") or {}), "kind": "list"}
    kw["depth"] = depth_of(batches[0], kw.get("depth"))
    kw["model"] = _resolve(kw.get("model"), [b.shape[1:] for b in batches], kw["depth"])
    with ArchiveWriter(out, batches[0].shape[1:], meta=meta, **kw) as writer:
        for b in batches:
            writer.write(b)
    return out.getvalue()


def made_by(model: Model, header: dict) -> bool:
    """Whether ``model`` decodes the file of ``header``: it made it, or it is a model it grew from
    without changing a level (``meta["same_model_as"]``: measurements or levels added), or (a
    lossy level) one whose lossy levels it kept (``meta["same_levels_as"]``: a lossless coder
    added)."""
    needed = header["model"]["fingerprint"]
    same = _listed(model.meta, "same_model_as")
    same = [*same, *_listed(model.meta, "same_levels_as")] if header["quality"] else same
    return any(isinstance(f, str) and f.startswith(needed) for f in (model.fingerprint, *same))


def _listed(meta: dict, key: str) -> list:
    value = meta.get(key)
    return value if isinstance(value, list) else []


def check_model(model: Model, header: dict) -> None:
    """Refuse a file made with another model (the header names it by a fingerprint prefix); the
    level it names is ``Model.level_of``'s to find (FormatError if the model lacks it)."""
    needed = header["model"]["fingerprint"]
    if not made_by(model, header):
        raise ModelMismatchError(
            f"file was compressed with the model whose fingerprint starts {needed}, "
            f"not {model.name!r} ({model.fingerprint[: len(needed)]}); "
            "pass that model with model=/--model"
        )


def decompress(data: bytes, *, model=None):
    """Restore what ``compress`` was given: the same shape, dtype and (within the level's bound)
    values; a list of images for a list, or for an archive of images of several sizes.

    Raises:
        FormatError (ValueError): not an aecodec file, damaged (ChecksumError), truncated
            (TruncatedError, also EOFError), too large (LimitError), or a newer version.
        ModelMismatchError: the file needs another model than ``model``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"decompress takes bytes, not {type(data).__name__}")
    reader = ArchiveReader(io.BytesIO(bytes(data)), model=model)
    return joined(list(reader), reader.header)


def joined(parts: list[np.ndarray], header: dict):
    """The decoded chunks as ``compress`` was given them: one array, or a list of images."""
    if not parts:
        raise FormatError("file holds no images")
    if header["meta"].get("kind") == "list" or len({p.shape[1:] for p in parts}) > 1:
        return [image for part in parts for image in part]
    out = np.concatenate(parts)
    return out if header["batched"] else out[0]  # the reader checked: a single-image file holds one


def pick_quality(
    images,
    *,
    target_psnr: float | None = None,
    target_bytes_per_image: float | None = None,
    model=None,
    sample: int = 256,
) -> dict:
    """Measure the level of every quality of the scale, lossless included, on (up to) the first
    ``sample`` images and pick, by measurement (the levels' order is not assumed: on images
    unlike the validation images it can invert):

    - for ``target_psnr``: the smallest level that reaches it, else the one with the highest PSNR;
    - for ``target_bytes_per_image``: the highest PSNR that fits, else the smallest level.

    ``model`` None measures every bundled model of 8-bit images and picks among them all.

    Returns {"quality", "psnr", "bytes_per_image", "met", "sample", "model"}: the lowest quality
    that names the level picked (qualities that name the same level are measured once).
    """
    if (target_psnr is None) == (target_bytes_per_image is None):
        raise InputError("pick a quality by target_psnr or by target_bytes_per_image (one of them)")
    a, _ = as_batch(images)
    a = a[:sample]
    models = [_resolve(model)] if model is not None else _bundled(a.shape[1:])
    results = [r for m in models for r in _measure_scale(m, a)]
    if target_psnr is not None:
        meeting = [r for r in results if r["psnr"] >= target_psnr]
        best = (
            min(meeting, key=lambda r: r["bytes_per_image"])
            if meeting
            else max(results, key=lambda r: r["psnr"])
        )
    else:
        meeting = [r for r in results if r["bytes_per_image"] <= target_bytes_per_image]
        best = (
            max(meeting, key=lambda r: r["psnr"])
            if meeting
            else min(results, key=lambda r: r["bytes_per_image"])
        )
    return {**best, "met": bool(meeting), "sample": len(a)}


def _bundled(shape) -> list[Model]:
    """The bundled models of 8-bit images that are installed (the one by shape at least)."""
    found = [load_model(p) for p in (DEFAULT_MODEL, PHOTO_MODEL) if p.is_file()]
    return found or [model_for([shape])]


def _measure_scale(model: Model, a: np.ndarray) -> list[dict]:
    """``measure`` of every distinct level the scale names for images like ``a`` (none if the
    model cannot code them), each with its model; a level whose compiled loops are not built
    (an install without a C compiler: the lossless and near-lossless ones) is left out."""
    try:
        qualities = model.named_qualities(a.shape[1:])
    except InputError:
        return []
    out = []
    for q in qualities:
        try:
            out.append({**measure(model, a, q), "model": model})
        except BuildError:
            continue
    return out


def choose_quality(images, **kw) -> int:
    """The quality ``pick_quality`` picks (its keywords)."""
    return pick_quality(images, **kw)["quality"]


def measure(model: Model, images: np.ndarray, quality: int, *, decode: bool = True) -> dict:
    """Compress a batch of ``images`` as one file and report what it costs and (with ``decode``)
    what comes back."""
    blob = compress(images, quality=quality, model=model, grey_stack=True)
    result = {"quality": quality, "bytes_per_image": len(blob) / len(images)}
    if decode:
        mse = float(np.mean((decompress(blob, model=model).astype(np.float64) - images) ** 2))
        result["psnr"] = 10 * float(np.log10(255.0**2 / max(mse, 1e-12)))
    return result


# The classic autoencoders (codec/family): imported on first use, as JAX takes 1.3 s to import
# (measured with -X importtime) and coding never needs it.
# ``model``: a family model, an .aecf file's path, or None for the bundled Fashion-MNIST one.


def embed(images, *, model=None) -> np.ndarray:
    """Each image's code, (N, 2) under the bundled 2-D map model (``aecodec embed``)."""
    from codec import family

    return family.embed(family.resolve(model, "embed")[0], check_images(images))


def denoise(images, *, model=None) -> np.ndarray:
    """The images (uint8, same shape) through a denoising autoencoder (``aecodec denoise``)."""
    from codec import family

    return family.denoise(family.resolve(model, "denoise")[0], check_images(images))


def sample(n: int, *, model=None, seed: int = 0) -> np.ndarray:
    """``n`` new images (uint8) from a variational autoencoder's prior (``aecodec sample``)."""
    from codec import family

    found, body = family.resolve(model, "sample")
    return family.sample(found, n, seed=seed, shape=family.image_shape(found, body))


def anomaly_scores(images, *, model=None, percentile: float = 99.0):
    """``family.Anomalies``: a score per image (bits: code length under the scorer minus JPEG
    XL's, so that simpler images are not called normal for being simple), the threshold at
    ``percentile`` of the scorer's training images, a flag per image (``aecodec score``)."""
    from codec import family

    return family.anomalies(check_images(images), model, percentile=percentile)
