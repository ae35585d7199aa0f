"""The public API: ``compress``, ``decompress``, their file forms, and ``load_model``.

compress:   uint8 images -> tiles of the model's native size (edge-padded) -> g_a (integer network)
            -> scale by the quality's gain -> pick the cheapest prior cluster -> then group by group:
            the context network refines the cluster's means and scales from the groups before,
            round(y - mean) -> ANS against the frozen integer tables -> container bytes.
decompress: the same path backwards; the container names the model (by fingerprint) it needs.

The levels above the transform's are the pixel coder's (``codec/pixel.py``): each plane is
coded pixel by pixel, residuals of a causal prediction against the model's context tables.
"""

from __future__ import annotations

import functools
import io
import os
from itertools import pairwise
from pathlib import Path

import numpy as np

import bitstream
from bitstream import container
from bitstream.coder import ESCAPE_RANGE
from codec import modelfile, pixel
from codec.errors import FormatError, InputError, LimitError, ModelMismatchError
from codec.fileio import atomic_output, write_atomic
from codec.tiling import from_tiles, grid, to_tiles

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "fmnist.aecm"
CHUNK_IMAGES = 1024  # images per coded stream: amortizes the coder's flush, bounds memory
# Dense format-2 chunks (written before the floor of bytes per pixel) are still decoded, up to
# this many coded pixels per file beyond the floor: old blank images read, a crafted file costs ~2 s.
FORMAT2_DENSE_PIXELS = 1 << 23


def max_padded_chunk_pixels() -> int:
    """The most pixels a chunk may code once its images are padded to whole tiles: the 8192 x 8192
    limit pads to (8192 + 255)^2 at most (tiles up to 256 x 256), an eighth more than the chunk limit."""
    return container.MAX_CHUNK_PIXELS + container.MAX_CHUNK_PIXELS // 8


def coded_pixels(model: Model, quality: int, n: int, shape) -> int:
    """The positions a level codes for ``n`` images of ``shape``: the work of decoding them, and what
    the floor of bytes per pixel counts (padded to whole tiles at a transform level)."""
    channels = shape[2] if len(shape) == 3 else 1
    if model.pixel_level(quality) is not None:
        return n * channels * shape[0] * shape[1]
    rows, cols = grid(shape[0], shape[1], model.config.tile)
    return n * channels * rows * cols * model.config.pixels



class Model:
    """A loaded, frozen codec model: transforms, integer tables, and identity."""

    def __init__(self, body: dict, *, source: str = "model"):
        from codec.integer import FixedContext, IntegerTransforms
        from codec.transforms import ModelConfig, param_shapes

        try:
            self.config = ModelConfig.from_dict(body["config"])
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise FormatError(f"{source}: {e}") from None
        cfg = self.config
        self.name = str(body["name"])
        self.fingerprint = body["fingerprint"]
        self.meta = body["meta"]
        self.source = source
        shapes = param_shapes(cfg)
        params = body["params"]
        if not isinstance(params, dict) or set(params) != set(shapes):
            raise FormatError(f"{source}: parameters do not match the architecture")
        values = {}
        for key, shape in shapes.items():
            v = modelfile.decode_array(params[key], what=f"{source}: {key}", shape=shape)
            if v.dtype.kind != "f" or not np.isfinite(v).all():
                raise FormatError(f"{source}: parameter {key} is not finite floating point")
            values[key] = v
        self._params = values
        self.frozen = modelfile.frozen_from_body(
            body, values["mean"].astype(np.float32), m=cfg.clusters, q=cfg.qualities, p=cfg.pixels
        )
        self.tables = self.frozen.tables()
        try:
            rows = modelfile.pixel_from_body(body, cfg.pixel_steps)
        except (KeyError, TypeError) as e:
            raise FormatError(f"{source}: pixel tables are malformed ({e})") from None
        self.pixel_tables = [pixel.tables(r, step) for r, step in zip(rows, cfg.pixel_steps, strict=True)]
        try:
            self._transforms = IntegerTransforms(values)
            self._contexts = {g: FixedContext(values, g) for g in range(1, len(cfg.bounds) - 1)}
        except ValueError as e:
            raise FormatError(f"{source}: {e}") from None
        self._per_quality = {}
        costs = self.frozen.bit_costs()
        self._cost_columns = costs.shape[1]
        self._bit_costs = np.round(costs * COST_UNIT).astype(np.int32).ravel()

    @property
    def qualities(self) -> tuple[int, ...]:
        """Every level, low to high: the transform's, then the pixel coder's."""
        return tuple(range(1, self.config.levels + 1))

    def pixel_level(self, quality: int):
        """(quantizer step, tables) of a pixel-coder level; None for a transform level."""
        k = quality - 1 - self.config.qualities
        return (self.config.pixel_steps[k], self.pixel_tables[k]) if k >= 0 else None

    def _quality_arrays(self, quality: int):
        """Per-quality arrays of the coders, built once from the frozen integers."""
        if quality not in self._per_quality:
            from bitstream.coder import PRECISION

            f, q = self.frozen, quality - 1
            cluster_freqs = f.freqs[f.cluster_table(q)][:-1].astype(np.float64)
            self._per_quality[quality] = {
                "gain": f.gain[q].astype(np.float64),
                "mean": f.mean[:, q],  # (M, P) float32
                "mean64": f.mean[:, q].astype(np.float64),
                "index": f.index[:, q],  # (M, P) uint8
                "rung": f.rung[:, q].astype(np.float64),  # (M, P)
                # where each element's ladder table is centred in the flattened cost array: (M, P)
                "offset": (f.index[:, q].astype(np.int32) * self._cost_columns + self._cost_columns // 2),
                "cluster_cost": np.round((PRECISION - np.log2(cluster_freqs)) * COST_UNIT).astype(np.int32),  # (M,)
                "inv_gain": f.inv_gain[q].astype(np.float64),
            }
        return self._per_quality[quality]

    def latents(self, tiles: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cluster choice (N,), integer latents (N, P), their table indices (N, P)) of uint8 tiles (N, P).

        Per tile, the cluster whose frozen tables code it in the fewest bits, costs counted
        exactly from the tables (as integers, so ties and sums are the same everywhere);
        then each group of the latent is rounded around its mean as refined by its context.
        """
        y, choice = self.analyse(tiles, quality)
        symbols, index = np.empty(y.shape, np.int32), np.empty(y.shape, np.uint8)

        def round_group(lo, hi, mean, group_index, _rung):
            v = np.clip(np.rint(y[:, lo:hi] - mean), ESCAPE_MIN, ESCAPE_MAX)  # clipping only matters for a hostile model
            symbols[:, lo:hi], index[:, lo:hi] = v, group_index
            return v

        self.walk(choice, quality, round_group)
        return choice, symbols, index

    def analyse(self, tiles: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
        """(latents before rounding (N, P) float32, after the quality's gain; cluster choice (N,)) of uint8 tiles."""
        a = self._quality_arrays(quality)
        ys, choices = [], []
        for start in range(0, len(tiles), BLOCK):
            y = self._transforms.analysis(tiles[start : start + BLOCK]) * a["gain"]
            y = np.clip(y, 2 * ESCAPE_MIN, 2 * ESCAPE_MAX).astype(np.float32)  # exact in float32; real latents are far inside
            ys.append(y)
            choices += [self._choose(y[part : part + CHOICE_BLOCK], a) for part in range(0, len(y), CHOICE_BLOCK)]
        return np.concatenate(ys), np.concatenate(choices)

    def _choose(self, y: np.ndarray, a: dict) -> np.ndarray:
        half = self._cost_columns // 2
        v = y[:, None, :] - a["mean"]  # (B, M, P): the symbols under each cluster, once rounded
        np.rint(v, out=v)
        np.clip(v, -half, half, out=v)  # beyond the widest table: the escape's cost (and a defined cast below)
        column = v.astype(np.int32)
        column += a["offset"]
        bits = self._bit_costs.take(column).sum(-1, dtype=np.int64) + a["cluster_cost"]  # (B, M)
        return bits.argmin(1).astype(np.int32)

    def walk(self, choice: np.ndarray, quality: int, symbols_of) -> np.ndarray:
        """Visit the latent's groups in coding order; returns the decoder's latents (N, P), after the inverse gain.

        Group g's means and tables follow from the cluster choice (N,) and the groups before it;
        ``symbols_of(lo, hi, mean, index, rung)`` gives the integer symbols of elements lo..hi
        (the encoder rounds, the decoder reads). ``rung`` is the unrounded scale behind ``index``.
        """
        from codec.entropy import nearest_rung
        from codec.integer import fixed_latents

        a = self._quality_arrays(quality)
        bounds = self.config.bounds
        latents = np.empty((len(choice), self.config.pixels), np.float64)
        fixed = np.empty_like(latents) if len(bounds) > 2 else None  # the context networks' input
        for g, (lo, hi) in enumerate(pairwise(bounds)):
            mean, rung = a["mean64"][choice, lo:hi], a["rung"][choice, lo:hi]  # copies: changed in place below
            if g == 0:
                index = a["index"][choice, lo:hi]
            else:
                d_mean, d_rung = self._contexts[g](fixed[:, :lo], quality - 1, choice)
                d_mean *= a["gain"][lo:hi]
                mean += d_mean
                rung += d_rung
                index = nearest_rung(rung, self.frozen.ladder_size)
            latents[:, lo:hi] = (symbols_of(lo, hi, mean, index, rung) + mean) * a["inv_gain"][lo:hi]
            if fixed is not None and hi < bounds[-1]:  # the last group is no group's context
                fixed[:, lo:hi] = fixed_latents(latents[:, lo:hi])
        return latents

    def synthesize(self, latents: np.ndarray) -> np.ndarray:
        """uint8 tiles (N, P) from the decoder's latents (N, P)."""
        out = np.empty(latents.shape, np.uint8)
        for start in range(0, len(latents), BLOCK):
            out[start : start + BLOCK] = self._transforms.synthesis(latents[start : start + BLOCK])
        return out

    def reconstruct(self, choice: np.ndarray, symbols: np.ndarray, quality: int) -> np.ndarray:
        """uint8 tiles (N, P) from cluster choices (N,) and integer latents (N, P)."""
        return self.synthesize(self.walk(choice, quality, lambda lo, hi, *_: symbols[:, lo:hi]))

    def estimate_bits(self, images: np.ndarray, quality: int) -> float:
        """The model's own rate estimate at rounding: ideal bits under its continuous prior.

        Uses the scales at their unrounded (float16) ladder positions, clipped to the ladder
        as training clips them, and the cluster probabilities themselves (not the integer
        tables), so comparing it with the coded size measures what rounding to tables and coding add.
        At a pixel level, whose model *is* its integer tables, the ideal bits under those tables.
        """
        quality = _check_quality(self, quality)
        a = _check_images(images)
        a = a if a.ndim != 2 else a[None]
        if (level := self.pixel_level(quality)) is not None:
            return self._pixel_bits(_planes(a), *level)
        import jax.numpy as jnp

        from codec.entropy import LADDER, RUNG, SCALE_MIN
        from codec.models import gaussian_bits

        logits = self._params["cluster_logits"][quality - 1].astype(np.float64)
        cluster_bits = -(logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()) / np.log(2)
        total = 0.0
        for batch in _batches(a):
            choice, v, _ = self.latents(to_tiles(_planes(batch), self.config.tile), quality)
            scale = np.empty(v.shape)

            def record(lo, hi, _mean, _index, rung, scale=scale, v=v):
                scale[:, lo:hi] = SCALE_MIN * np.exp(RUNG * np.clip(rung, 0, LADDER - 1))
                return v[:, lo:hi]

            self.walk(choice, quality, record)
            total += float(gaussian_bits(jnp.asarray(v, jnp.float32), jnp.asarray(scale, jnp.float32)).sum())
            total += cluster_bits[choice].sum()
        return total

    @staticmethod
    def _pixel_bits(planes: np.ndarray, step: int, tables) -> float:
        """A pixel level's ideal bits: exactly what its integer tables assign, before the coder's few bytes."""
        from bitstream.coder import ideal_bits

        total = 0.0
        for batch in _batches(planes):
            for symbols, contexts in pixel.quantize(batch, step)[0]:
                total += ideal_bits(symbols, contexts, tables)
        return total


BLOCK = 256  # tiles per step of the transforms
CHOICE_BLOCK = 32  # tiles per step of the cluster choice: its (tiles x clusters x pixels) arrays stay in cache
COST_UNIT = 1024  # bit costs as integers in 1/1024 bit
ESCAPE_MIN, ESCAPE_MAX = -(ESCAPE_RANGE // 2), ESCAPE_RANGE // 2 - 1  # what an escaped symbol can carry


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, identity: tuple) -> Model:
    return Model(modelfile.loads(Path(path).read_bytes(), what=path), source=path)


def load_model(path: str | os.PathLike | None = None) -> Model:
    """Load a model file (``.aecm``); ``None`` loads the bundled default.

    Raises:
        FileNotFoundError: no such file.
        FormatError: not a valid model file (also ``ValueError``).
    """
    path = Path(path) if path is not None else DEFAULT_MODEL
    st = path.stat()
    # A replaced file has a new inode or change time even when its size and mtime were kept.
    return _load_cached(str(path.resolve()), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))


def _resolve(model) -> Model:
    return model if isinstance(model, Model) else load_model(model)


def _check_images(images) -> np.ndarray:
    a = np.asarray(images)
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255  # documented: False -> 0, True -> 255
    if a.dtype != np.uint8:
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InputError(f"images contain NaN or infinity (dtype {a.dtype}); aecodec compresses uint8 images")
        raise InputError(f"images have dtype {a.dtype}; aecodec compresses uint8 images (convert with .astype(np.uint8))")
    if a.ndim not in (2, 3, 4):
        raise InputError(f"images have {a.ndim} dimensions; expected (H, W), (N, H, W) or (N, H, W, C)")
    if a.size == 0:
        raise InputError(f"images are empty (shape {a.shape})")
    check_image_shape(a.shape[1:] if a.ndim == 4 else a.shape[-2:])
    return a


def check_image_shape(shape) -> None:
    """Refuse an image shape (H, W) or (H, W, C) beyond the container's limits, before any pixel is read.

    Raises:
        InputError: too many channels, or more values than 8192 x 8192 grey (``MAX_IMAGE_PIXELS``).
    """
    h, w = int(shape[0]), int(shape[1])
    channels = int(shape[2]) if len(shape) == 3 else 1
    if channels > container.MAX_CHANNELS:
        raise InputError(f"images have {channels} channels; at most {container.MAX_CHANNELS} are supported")
    if min(h, w) < 1 or h > container.MAX_DIM or w > container.MAX_DIM or h * w * channels > container.MAX_IMAGE_PIXELS:
        raise InputError(f"images of {h}x{w}x{channels} are larger than aecodec accepts "
                         f"(at most {container.MAX_IMAGE_PIXELS} values: 8192x8192 grey)")


def _planes(batch: np.ndarray) -> np.ndarray:
    """(N, H, W[, C]) uint8 -> (N*C, H, W) grayscale planes, each image's channels in turn."""
    if batch.ndim == 4:
        return batch.transpose(0, 3, 1, 2).reshape(-1, *batch.shape[1:3])
    return batch


def _check_quality(model: Model, quality: int) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or quality not in model.qualities:
        raise InputError(f"quality {quality!r} is not one of the model's levels {model.qualities}")
    return int(quality)


def _header(model: Model, quality: int, image_shape, batched: bool, meta: dict | None) -> dict:
    """The in-memory container header (the file stores a fingerprint prefix; coder, dtype and prior are implied)."""
    return {
        "model": {"fingerprint": model.fingerprint[: 2 * container.FINGERPRINT_BYTES]},
        "coder": {"name": bitstream.CODER_NAME, "version": bitstream.CODER_VERSION},
        "quality": quality,
        "image_shape": list(image_shape),
        "batched": batched,
        "dtype": "uint8",
        "prior": "clusters",
        "meta": meta or {},
    }


def encode_chunk(model: Model, batch: np.ndarray, quality: int) -> bytes:
    """One ANS stream for a batch of images (N, H, W[, C]): cluster choices, then the latent's groups in turn
    (or, at a pixel level, the residuals of each anti-diagonal of pixels in turn)."""
    min_bytes = container.min_chunk_bytes(1, coded_pixels(model, quality, len(batch), batch.shape[1:]))
    if (level := model.pixel_level(quality)) is not None:
        return pixel.encode(_planes(batch), *level, min_bytes=min_bytes)[0]
    choice, symbols, index = model.latents(to_tiles(_planes(batch), model.config.tile), quality)
    encoder = bitstream.Encoder(model.tables)
    encoder.add(choice, np.full(choice.shape, model.frozen.cluster_table(quality - 1)))
    bounds = model.config.bounds
    for lo, hi in pairwise(bounds):
        encoder.add(symbols[:, lo:hi], index[:, lo:hi])
    return encoder.finish(min_bytes=min_bytes)


def decode_chunk(model: Model, header: dict, n: int, data: bytes, *, framed: bool = True) -> np.ndarray:
    """Images (n, H, W[, C]) from one ANS stream (``framed`` false: a format-2 stream, without end marker)."""
    shape, q = header["image_shape"], header["quality"]
    channels = shape[2] if len(shape) == 3 else 1
    rows, cols = grid(shape[0], shape[1], model.config.tile)  # the latent grid: not stored, it follows from the shape
    n_tiles = n * channels * rows * cols
    work = coded_pixels(model, q, n, shape)
    if work > max_padded_chunk_pixels():
        raise LimitError(f"chunk claims {work} pixels once padded to tiles, more than aecodec decodes at once")
    if framed and len(data) < container.min_chunk_bytes(1, work):
        raise LimitError(f"chunk claims {work} coded pixels in {len(data)} bytes: denser than "
                         f"{container.MAX_PIXELS_PER_BYTE} pixels per byte (damage, or a file made to waste time)")
    if (level := model.pixel_level(q)) is not None:
        return _unplanes(pixel.decode(data, (n * channels, shape[0], shape[1]), *level, framed=framed), n, shape)
    decoder = bitstream.Decoder(data, model.tables, framed=framed)
    choice = decoder.read(np.full(n_tiles, model.frozen.cluster_table(q - 1)))
    if ((choice < 0) | (choice >= model.config.clusters)).any():  # an escaped symbol can be anything
        raise FormatError("entropy-coded stream is damaged (cluster index out of range)")
    latents = model.walk(choice.astype(np.intp), q, lambda lo, hi, mean, index, rung: decoder.read(index))
    decoder.finish()
    tiles = model.synthesize(latents)
    return _unplanes(from_tiles(tiles, n * channels, shape[0], shape[1], model.config.tile), n, shape)


def _unplanes(planes: np.ndarray, n: int, shape) -> np.ndarray:
    """Inverse of ``_planes``: (N*C, H, W) -> (N, H, W[, C]) for a header's image shape."""
    if len(shape) == 3:
        return planes.reshape(n, shape[2], shape[0], shape[1]).transpose(0, 2, 3, 1)
    return planes


class ArchiveWriter:
    """Compress images into a container on a binary file object, chunk by chunk.

    Memory stays bounded by one chunk whatever the number of images: ``write`` buffers up
    to ``CHUNK_IMAGES`` images (fewer for large images: a chunk stays within the pixel limit
    that readers enforce) and codes each full chunk at once.

    >>> import io, numpy as np
    >>> out = io.BytesIO()
    >>> with ArchiveWriter(out, (28, 28), quality=3) as w:
    ...     w.write(np.zeros((5, 28, 28), np.uint8))
    >>> decompress(out.getvalue()).shape
    (5, 28, 28)
    """

    def __init__(self, fileobj, image_shape, *, quality: int = 4, model=None, batched: bool = True, meta: dict | None = None):
        self.model = _resolve(model)
        self.quality = _check_quality(self.model, quality)
        self.image_shape = tuple(image_shape)
        check_image_shape(self.image_shape)
        tiled = coded_pixels(self.model, self.quality, 1, self.image_shape)  # an image's pixels once padded
        if tiled > max_padded_chunk_pixels():  # a reader would refuse the file: refuse to write it
            raise InputError(f"images of shape {self.image_shape} are larger than aecodec accepts "
                             f"({tiled} pixels once padded to whole tiles; the limit is {max_padded_chunk_pixels()})")
        header = _header(self.model, self.quality, self.image_shape, batched, meta)
        try:
            self._writer = container.Writer(fileobj, header)
        except FormatError as e:  # only meta can be wrong here: the caller's argument
            raise InputError(f"meta cannot be stored: {e}") from None
        self._batched = batched
        pixels = int(np.prod(self.image_shape))
        self._chunk = max(1, min(CHUNK_IMAGES, max_padded_chunk_pixels() // tiled, container.MAX_CHUNK_PIXELS // pixels))
        self._pending: list[np.ndarray] = []
        self._buffered = 0
        self.count = 0

    def write(self, images) -> None:
        """Add images shaped (n, *image_shape)."""
        a = _check_images(images)
        if a.shape[1:] != self.image_shape:
            raise InputError(f"images of shape {a.shape[1:]} do not match the archive's {self.image_shape}")
        if not self._batched and self.count + self._buffered + len(a) > 1:
            raise InputError("an archive of a single image (batched=False) holds exactly one image")
        self._pending.append(a)
        self._buffered += len(a)
        while self._buffered >= self._chunk:
            self._flush(self._chunk)

    def _flush(self, n: int) -> None:
        joined = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        batch, rest = joined[:n], joined[n:]
        self._writer.add(len(batch), encode_chunk(self.model, batch, self.quality))
        self.count += len(batch)
        self._pending, self._buffered = ([rest] if len(rest) else []), len(rest)

    def close(self) -> None:
        if self._buffered:
            self._flush(self._buffered)
        if self.count == 0:
            raise InputError("no images were written")
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            self.close()


class ArchiveReader:
    """Decode a container from a binary file object, chunk by chunk.

    ``header`` is read (and checked against the model) at once; iterating yields arrays of
    images, one per chunk, each checked against its CRC before decoding. The file's final
    CRC is checked after the last chunk.
    """

    def __init__(self, fileobj, *, model=None):
        self._reader = container.Reader(fileobj)
        self.header = self._reader.header
        self.model = _resolve(model)
        check_model(self.model, self.header)

    def __iter__(self):
        framed = self._reader.version >= 3
        dense = 0  # format 2: coded pixels beyond the floor, so far
        for n, data in self._reader:
            if not framed:
                work = coded_pixels(self.model, self.header["quality"], n, self.header["image_shape"])
                dense += max(0, work - len(data) * container.MAX_PIXELS_PER_BYTE)
                if dense > FORMAT2_DENSE_PIXELS:
                    raise LimitError(f"format-2 file holds more than {FORMAT2_DENSE_PIXELS} pixels denser than "
                                     f"{container.MAX_PIXELS_PER_BYTE} per byte (decompress it with aecodec 0.1)")
            yield decode_chunk(self.model, self.header, n, data, framed=framed)


def compress(images, *, quality: int = 4, model=None, meta: dict | None = None) -> bytes:
    """Compress uint8 images shaped (H, W), (N, H, W) or (N, H, W, C) to container bytes.

    Args:
        images: uint8 array (bool is taken as 0/255).
        quality: a level of ``model.qualities`` (``codec.QUALITIES`` for the bundled model), low to high.
        model: a ``Model``, a path to a model file, or None for the bundled default.
        meta: a small dict stored verbatim in the header (the CLI records the original file name).

    Raises:
        InputError: wrong dtype, rank, empty, NaN, too large, unknown quality.

    >>> import numpy as np, codec
    >>> x = np.zeros((2, 28, 28), np.uint8)
    >>> codec.decompress(codec.compress(x, quality=4)).shape
    (2, 28, 28)
    """
    a = _check_images(images)
    batched = a.ndim != 2
    a = a if batched else a[None]
    out = io.BytesIO()
    with ArchiveWriter(out, a.shape[1:], quality=quality, model=model, batched=batched, meta=meta) as writer:
        writer.write(a)
    return out.getvalue()


def _batches(a: np.ndarray, size: int = CHUNK_IMAGES):
    for start in range(0, len(a), size):
        yield a[start : start + size]


def check_model(model: Model, header: dict) -> None:
    """Refuse a file made with another model (the header names it by a fingerprint prefix) or at a level it lacks."""
    needed = header["model"]["fingerprint"]
    if model.fingerprint[: len(needed)] != needed:
        raise ModelMismatchError(
            f"file was compressed with the model whose fingerprint starts {needed}, not {model.name!r} "
            f"({model.fingerprint[: len(needed)]}); pass that model with model=/--model"
        )
    if not 1 <= header["quality"] <= model.config.levels:
        raise FormatError(f"header quality {header['quality']} is not one of the model's levels")


def decompress(data: bytes, *, model=None) -> np.ndarray:
    """Restore the uint8 array that ``compress`` was given (same shape and dtype).

    Raises:
        FormatError (ValueError): not an aecodec file, damaged (ChecksumError), truncated
            (TruncatedError, also EOFError), too large (LimitError), or a newer version.
        ModelMismatchError: the file needs another model than ``model``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"decompress takes bytes, not {type(data).__name__}")
    reader = ArchiveReader(io.BytesIO(bytes(data)), model=model)
    parts = list(reader)
    if not parts:
        raise FormatError("file holds no images")
    out = np.concatenate(parts)
    return out if reader.header["batched"] else out[0]  # the reader checked: a single-image file holds one


def choose_quality(images, *, target_psnr: float | None = None, target_bytes_per_image: float | None = None,
                   model=None, sample: int = 256) -> int:
    """The lowest quality whose PSNR reaches ``target_psnr``, or the highest whose size per image
    fits ``target_bytes_per_image``, measured on (up to) the first ``sample`` images.

    Falls back to the highest (for a PSNR) or lowest (for a size) quality when none qualifies.
    """
    model = _resolve(model)
    a = _check_images(images)
    a = (a if a.ndim != 2 else a[None])[:sample]
    if target_psnr is not None:
        results = [measure(model, a, q) for q in model.qualities]
        return next((r["quality"] for r in results if r["psnr"] >= target_psnr), model.qualities[-1])
    if target_bytes_per_image is not None:  # sizes only: nothing to decode
        results = [measure(model, a, q, decode=False) for q in model.qualities]
        fitting = [r["quality"] for r in results if r["bytes_per_image"] <= target_bytes_per_image]
        return fitting[-1] if fitting else model.qualities[0]
    raise InputError("choose_quality needs target_psnr or target_bytes_per_image")


def measure(model: Model, images: np.ndarray, quality: int, *, decode: bool = True) -> dict:
    """Compress ``images`` as one file and report what it costs and (with ``decode``) what comes back."""
    blob = compress(images, quality=quality, model=model)
    result = {"quality": quality, "bytes_per_image": len(blob) / len(images)}
    if decode:
        mse = float(np.mean((decompress(blob, model=model).astype(np.float64) - images) ** 2))
        result["psnr"] = 10 * float(np.log10(255.0**2 / max(mse, 1e-12)))
    return result


def compress_file(src, dst, *, force: bool = False, **kw) -> int:
    """Compress the image array in ``src`` (.npy, IDX, image file) to ``dst``; returns bytes written."""
    from codec.data import load_images

    if Path(dst).exists() and Path(src).exists() and os.path.samefile(src, dst):
        raise InputError(f"output {dst} is the input {src}")
    data = compress(load_images(src), meta={"name": Path(src).name}, **kw)
    write_atomic(Path(dst), data, force=force)
    return len(data)


def decompress_file(src, dst, *, force: bool = False, model=None) -> np.ndarray:
    """Decompress ``src`` and write it to ``dst``, whose suffix decides the format (.npy, .npz, image, IDX;
    a folder for a folder archive); returns the images.

    Raises:
        FileExistsError: ``dst`` exists and ``force`` is false.
        DataError: ``dst`` has an unknown suffix, or names one image file for several images.
        FormatError, ModelMismatchError: as ``decompress``.
    """
    from codec import sources
    from codec.fileio import atomic_folder

    data = Path(src).read_bytes()
    dst = Path(dst)
    if dst.exists() and Path(src).exists() and os.path.samefile(src, dst):
        raise InputError(f"output {dst} is the input {src}")
    images = decompress(data, model=model)
    header = container.read_header(data)
    kind = sources.restore_kind(header, dst.name)
    batch = images if header["batched"] else images[None]
    opener = atomic_folder if kind["kind"] == "folder" else atomic_output
    with opener(dst, force=force) as target:
        sink = sources.Sink(header, kind, target)
        sink.write(batch)
        sink.finish()
    return images
