"""Wavelet levels: the codec's high-rate transform coder (numpy only, integer arithmetic).

Above the convolutional levels' range (about 33 dB on photos), where the bytes go into texture,
a wavelet transform with context modelling codes photos in fewer bytes than predictive pixel
coding or WebP (``python -m benchmarks.wavelet``). Per chunk of same-shape images:

1. Pixels x4, centred, colour as YCoCg-R; each plane through ``depth_for(H, W)`` levels of the
   integer CDF 9/7 lifting wavelet (``wavelet_transform``: exact, the same on every machine).
2. Each subband quantized with its own integer step (sixteenths of a coefficient unit, stored in
   the model per level, plane and subband: the level's base step divided by the subband's
   synthesis norm, so that a step's error costs the same in every band, Co and Cg by their share
   of the RGB error); a non-zero q is reconstructed at ``(|q| + RHO/16) * step``. The encoder
   chooses each q (``rate_optimal``): of the nearest value and the one below it, the one with
   the least squared error + LAMBDA x its bits under the tables, in the context it is coded in.
   The decoder does not need to know how q was chosen. The low-low band is rounded and coded as
   differences from its left neighbour (the first column: from the one above).
3. Subbands coded coarse to fine, HL, LH, HH at each level; within a band four interleaved
   phases (the 2 x 2 polyphase grid), each vectorized over the whole band and every plane of
   the chunk. A coefficient's magnitude is coded as a class (0, 1, 2, 3, 4, then half octaves:
   5-6, 7-8, 9-12, 13-16, ...) with the frozen table of its context, then its offset within the
   class in raw bits, then the sign of a non-zero with the table of its sign context. The
   context: luma or chroma, the level (finest, next, coarser), the orientation, and how large
   the already decoded magnitudes around it are: the parent and its 8 neighbours (same
   orientation, one level coarser) and the siblings decoded before it at its position (phase
   0), plus its decoded neighbours in the band (phases 1-3). The sign context: the orientation
   and the signs of the decoded neighbours along the edge it would lie on.

Tables are counted on training photos by ``codec.training.wavelet_fit``.
"""

from __future__ import annotations

import numpy as np

from bitstream.coder import PRECISION, Decoder, Encoder, Tables, ideal_bits, integer_frequencies
from bitstream.container import FORMAT_VERSION, MAX_CHUNK_PIXELS
from bitstream.errors import FormatError
from bitstream.header import MAX_IMAGE_PIXELS
from codec.errors import InputError
from codec.levels import modelfile, registry, tiled
from codec.levels import wavelet_transform as wt
from codec.levels.planes import from_planes, to_planes

# What a bit is worth in squared error to the encoder's choice (``rate_optimal``), in 1/256 of a
# squared step: 1/8 step^2, near the 2 ln 2 / 12 of a uniform quantizer at high rates; measured
# best among 20, 32, 48 and 72 on the training photos' validation part
LAMBDA = 32
XI = 5  # the dead zone's rounding offset, sixteenths of a step (tables' first count, see fit)
RHO = 2  # where in its bin a non-zero is reconstructed, sixteenths of a step above its low end
# Magnitude classes: 0 to 4 alone, then each octave (2^k, 2^(k+1)] in two halves of 2^(k-1)
_LOWS = [0, 1, 2, 3, 4] + [lo for k in range(2, 15) for lo in (2**k + 1, 2**k + 2 ** (k - 1) + 1)]
CLASS_LOW = np.array(_LOWS, np.int64)
CLASS_BITS = np.array([0] * 5 + [k - 1 for k in range(2, 15) for _ in (0, 1)], np.int64)
CLASSES = len(CLASS_LOW)  # 31
MAX_MAGNITUDE = int(CLASS_LOW[-1] + (1 << CLASS_BITS[-1]) - 1)  # 32768: the largest coded |q|
MAX_BITS = int(CLASS_BITS.max())
# Context buckets (lower bounds): the parent and siblings' magnitudes (2 x parent + siblings), at
# phase 0 alone and beside the neighbours; the neighbours' magnitudes (their weighted sum, as if
# 8 of weight 1).
PARENT_ALONE = np.array([0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48])
PARENT_BESIDE = np.array([0, 1, 3, 8])
NEIGHBOURS = np.array([0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 27, 36, 48, 64, 90, 128])
PER_GROUP = len(PARENT_ALONE) + len(NEIGHBOURS) * len(PARENT_BESIDE)
DEPTH_CLASSES = 3  # finest level, the next, all coarser
GROUPS = 2 * DEPTH_CLASSES * 3  # luma or chroma, level class, orientation
LOW_CONTEXTS = GROUPS * PER_GROUP  # the low-low band's two tables (luma, chroma) follow
CONTEXTS = LOW_CONTEXTS + 2
# Sign contexts: the orientation (the low-low band, HL, LH, HH) and the sum of the signs of the
# decoded neighbours along the edge a coefficient of that orientation lies on, -2 to 2
SIGN_ALONG = {0: (), 1: ((-1, 0), (1, 0)), 2: ((0, -1), (0, 1)), 3: ((-1, -1), (1, 1))}
SIGN_CONTEXTS = 4 * 5
SIGN_BASE = CONTEXTS + MAX_BITS  # the sign tables' first index among the coder's tables
_CAP = 255  # magnitudes beyond this count as this in contexts
_PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))  # (row, column) parity, in coding order
# the weight of the neighbours decoded before each phase: the 4 diagonal ones count 1 each, the 4
# beside and above or below 2 each (phase 1 has the diagonal ones, 2 the others, 3 all)
_DECODED_AROUND = (0, 4, 8, 12)
STEPS_SHAPE = (3, wt.MAX_DEPTH + 1, 4)  # plane (Y or grey, Co, Cg), level (0: none), band (0: LL)
MAX_STEP = 1 << 16  # sixteenths of a coefficient unit: a step of 4096 pixel values
TILE = 1024  # larger images are coded tile by tile (``tiled``): memory bounded by a tile
# values coded at once (a chunk of images within a tile): int64 bands of a few hundred MB at most
WHOLE_VALUES = 1 << 22
MAX_LEVELS = 64


def _lookup(bounds: np.ndarray, size: int) -> np.ndarray:
    return (np.searchsorted(bounds, np.arange(size), "right") - 1).astype(np.int16)


_BY_ALONE = _lookup(PARENT_ALONE, 4 * _CAP + 1)
_BY_BESIDE = _lookup(PARENT_BESIDE, 4 * _CAP + 1)
_BY_NEIGHBOURS = _lookup(NEIGHBOURS, 8 * _CAP + 1)


def coding_tables(rows, signs) -> Tables:
    """The coder's view of a level's class tables (CONTEXTS rows), then one uniform table per
    offset width (1 to MAX_BITS bits), then its sign tables (SIGN_CONTEXTS rows)."""
    uniform = [integer_frequencies(np.append(np.ones(1 << k), 0.0)) for k in range(1, MAX_BITS + 1)]
    tables = [*rows, *uniform, *signs]
    return Tables(np.zeros(len(tables), np.int64), tables)


def _values(code, values, contexts: np.ndarray, sign_contexts: np.ndarray) -> np.ndarray:
    """Code (or decode: ``values`` None) signed integers with their class and sign contexts
    through ``code(symbols or None, tables) -> symbols``: classes, offsets within them, signs."""
    mag = None if values is None else np.abs(values)
    classes = code(
        None if mag is None else np.searchsorted(CLASS_LOW, mag, "right") - 1, contexts
    ).astype(np.int64)
    if classes.size and (classes.min() < 0 or classes.max() >= CLASSES):
        raise FormatError("wavelet stream: magnitude class out of range (damaged)")
    bits = CLASS_BITS[classes]
    wide = bits > 0
    offsets = code(
        None if mag is None else mag[wide] - CLASS_LOW[classes[wide]],
        (CONTEXTS - 1 + bits[wide]).astype(np.int16),
    )
    if offsets.size and (offsets.min() < 0 or (offsets >> bits[wide]).any()):
        raise FormatError("wavelet stream: offset out of range (damaged)")
    out = CLASS_LOW[classes]
    out[wide] += offsets
    nonzero = out > 0
    signs = code(
        None if values is None else (values[nonzero] < 0).astype(np.int64),
        (SIGN_BASE + sign_contexts[nonzero]).astype(np.int16),
    )
    if signs.size and (signs.min() < 0 or signs.max() > 1):
        raise FormatError("wavelet stream: sign out of range (damaged)")
    out[nonzero] *= 1 - 2 * signs.astype(np.int64)
    return out


def _gather(band: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``band`` (P, h, w) at the given row and column indices, each clipped to the band."""
    if band.shape[1] == 0 or band.shape[2] == 0:
        return np.zeros((band.shape[0], len(rows), len(cols)), band.dtype)
    rows, cols = np.minimum(rows, band.shape[1] - 1), np.minimum(cols, band.shape[2] - 1)
    return band[:, rows][:, :, cols]


def _ring(m: np.ndarray) -> np.ndarray:
    """The sum of the 8 neighbours of each entry of m (P, h, w), zero beyond its edges."""
    padded = np.pad(m, ((0, 0), (1, 1), (1, 1)))
    h, w = m.shape[1:]
    total = sum(
        padded[:, 1 + i : 1 + i + h, 1 + j : 1 + j + w] for i in (-1, 0, 1) for j in (-1, 0, 1)
    )
    return total - m


def _relatives(out: dict, d: int, o: int, depth: int, shape) -> np.ndarray:
    """How large the decoded relatives of a band's coefficients are: 2 x the parent's magnitude
    (same orientation, one level coarser; none at the coarsest) + a quarter of its 8 neighbours',
    and the same of the siblings decoded before it at its position (HL before LH before HH; the
    two of HH at half weight), capped."""
    rows, cols = np.arange(shape[0]), np.arange(shape[1])
    total = np.zeros((out["LL"].shape[0], *shape), np.int64)
    if d < depth:
        parent = np.minimum(np.abs(out[(d + 1, o)]), _CAP)
        total += _gather(2 * parent + _ring(parent) // 4, rows // 2, cols // 2)
    for sibling in range(1, o):
        m = np.minimum(np.abs(out[(d, sibling)]), _CAP)
        total += _gather((2 * m + _ring(m) // 4) // (o - 1), rows, cols)
    return np.minimum(total, 4 * _CAP)


def _band(code, values, choose, out: dict, key, depth: int, groups: np.ndarray, shape):
    """Code (or decode: ``values`` None) one detail band of every plane, phase by phase: its
    integers (P, h, w), each phase's chosen by ``choose(coefficients, band, contexts)``."""
    d, o = key
    planes, (rows, cols) = len(groups), shape
    decoded = np.zeros((planes, rows, cols), np.int64)
    around = np.zeros((planes, rows + 2, cols + 2), np.int64)  # decoded magnitudes, padded
    signed = np.zeros((planes, rows + 2, cols + 2), np.int64)  # decoded signs, padded
    relatives = _relatives(out, d, o, depth, shape)
    for phase, (a, b) in enumerate(_PHASES):
        here = (slice(None), slice(a, None, 2), slice(b, None, 2))
        h, w = decoded[here].shape[1:]
        if h * w == 0:
            continue
        if phase == 0:
            context = _BY_ALONE[relatives[here]]
        else:
            total = sum(
                (2 if i == 0 or j == 0 else 1)
                * around[:, 1 + a + i : 1 + a + i + 2 * h : 2, 1 + b + j : 1 + b + j + 2 * w : 2]
                for i in (-1, 0, 1)
                for j in (-1, 0, 1)
                if i or j
            )
            weight = _DECODED_AROUND[phase]
            near = _BY_NEIGHBOURS[np.minimum(total * 8 // weight, 8 * _CAP)]
            context = len(PARENT_ALONE) + near * len(PARENT_BESIDE) + _BY_BESIDE[relatives[here]]
        context = (context + groups[:, None, None]).astype(np.int16)
        chosen = None if values is None else choose(values[key][here], key, context)
        along = sum(
            signed[:, 1 + a + i : 1 + a + i + 2 * h : 2, 1 + b + j : 1 + b + j + 2 * w : 2]
            for i, j in SIGN_ALONG[o]
        )
        got = _values(code, chosen, context, o * 5 + 2 + np.clip(along, -2, 2))
        decoded[here] = got
        around[:, 1 + a : 1 + a + 2 * h : 2, 1 + b : 1 + b + 2 * w : 2] = np.minimum(
            np.abs(got), _CAP
        )
        signed[:, 1 + a : 1 + a + 2 * h : 2, 1 + b : 1 + b + 2 * w : 2] = np.sign(got)
    return decoded


def walk(code, shape, chroma: np.ndarray, values: dict | None = None, choose=None) -> dict:
    """Every quantized band of planes (P, H, W) (chroma: (P,) 0 or 1), coded through ``code`` in
    the decoder's order, or decoded (``values`` None). The encoder gives ``values``: the rounded
    low-low band and the detail bands' coefficients, which ``choose`` quantizes part by part."""
    planes, height, width = shape
    depth = wt.depth_for(height, width)
    shapes = wt.band_shapes(height, width, depth)
    low = np.broadcast_to((LOW_CONTEXTS + chroma).astype(np.int16)[:, None, None],
                          (planes, *shapes["LL"]))  # fmt: skip
    diffs = None if values is None else _differences(values["LL"])
    out = {"LL": _sums(_values(code, diffs, low, np.full(low.shape, 2)))}
    for d in range(depth, 0, -1):
        level = min(d - 1, DEPTH_CLASSES - 1)
        for o in (1, 2, 3):
            group = ((chroma * DEPTH_CLASSES + level) * 3 + o - 1) * PER_GROUP
            key = (d, o)
            out[key] = _band(code, values, choose, out, key, depth, group, shapes[key])
    return out


def _differences(low: np.ndarray) -> np.ndarray:
    """Each value minus its left neighbour (the first column: minus the one above)."""
    diffs = np.diff(low, axis=2, prepend=0)
    diffs[:, :, 0] = np.diff(low[:, :, 0], axis=1, prepend=0)
    return diffs


def _sums(diffs: np.ndarray) -> np.ndarray:
    """Inverse of ``_differences``."""
    low = diffs.copy()
    low[:, :, 0] = np.cumsum(diffs[:, :, 0], axis=1)
    return np.cumsum(low, axis=2)


def _plane_steps(steps: np.ndarray, channels: int, n: int, depth: int) -> dict:
    """Each band's step per plane of a chunk of n images: {band: (P, 1, 1) int64}."""
    kinds = np.tile(np.arange(channels) if channels == 3 else np.zeros(1, np.int64), n)
    out = {"LL": steps[kinds, depth, 0][:, None, None].astype(np.int64)}
    for d in range(1, depth + 1):
        for o in (1, 2, 3):
            out[(d, o)] = steps[kinds, d, o][:, None, None].astype(np.int64)
    return out


def rounded_low(bands: dict, steps: dict) -> dict:
    """The bands with the low-low band rounded to its step (the detail bands' choice is left to
    a chooser, ``dead_zone`` or ``rate_optimal``)."""
    c, step = bands["LL"], steps["LL"]
    # capped at half the largest magnitude, so that its differences stay codable (the stored
    # steps' low-low ones never come near: a step of 6/16 reaches the cap)
    low = np.sign(c) * np.minimum((np.abs(c) * 256 + 8 * step) // (16 * step), MAX_MAGNITUDE // 2)
    return {**bands, "LL": low}


def dead_zone(steps: dict):
    """A chooser: ``q = floor(|c| / step + XI / 16)`` (|q| capped at MAX_MAGNITUDE, which real
    images never reach)."""

    def choose(c, band, contexts):
        step = steps[band]
        q = (np.abs(c) * 256 + XI * step) // (16 * step)
        return np.sign(c) * np.minimum(q, MAX_MAGNITUDE)

    return choose


def rate_optimal(steps: dict, rates: np.ndarray):
    """A chooser: of the nearest value and the one below it, the one with the least squared error
    (in steps) + LAMBDA x its bits in its context (``rates``: 1/64 bits per context and class),
    all in integers. Both errors are in the same units in every band (its step balances it)."""

    def choose(c, band, contexts):
        x = np.abs(c) * 256 // steps[band]  # |c| in sixteenths of a step
        high = np.minimum((x + 8) // 16, MAX_MAGNITUDE)
        low = np.maximum(high - 1, 0)
        cost_high, cost_low = (
            64 * (x - np.where(m > 0, 16 * m + RHO, 0)) ** 2 + LAMBDA * _rate(rates, contexts, m)
            for m in (high, low)
        )
        return np.sign(c) * np.where(cost_low < cost_high, low, high)

    return choose


def _rate(rates: np.ndarray, contexts: np.ndarray, m: np.ndarray) -> np.ndarray:
    """1/64 bits of magnitudes m in their contexts: class, offset and sign."""
    classes = np.searchsorted(CLASS_LOW, m, "right") - 1
    return rates[contexts, classes] + 64 * (CLASS_BITS[classes] + (m > 0))


def rates_of(rows: np.ndarray) -> np.ndarray:
    """Each context's classes' bits under its table, in 1/64 bits (int64): 64 x PRECISION minus
    round(64 log2 f) for each frequency f. numpy's log2 may differ between machines in the last
    bit, which can only matter within a hair of a rounding boundary; those few are decided in
    integers (``_rounded_log2``), so the encoder's choices are the same everywhere."""
    f = rows[:, :CLASSES].astype(np.int64)
    scaled = np.log2(f.astype(np.float64)) * 64
    rounded = np.floor(scaled + 0.5)
    for i, j in zip(*np.nonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6), strict=True):
        rounded[i, j] = _rounded_log2(int(f[i, j]))
    return (64 * PRECISION - rounded).astype(np.int64)


def _rounded_log2(f: int) -> int:
    """floor(64 log2 f + 1/2) exactly: the k with 2^(2k - 1) <= f^128 < 2^(2k + 1) (no f is a tie:
    f^128 is never an odd power of two)."""
    power = f**128
    k = (power.bit_length() - 1) // 2  # 2^(2k) <= f^128 < 2^(2k + 2)
    return k + 1 if power >= 1 << (2 * k + 1) else k


def dequantize(values: dict, steps: dict) -> dict:
    """The coefficients the quantized bands stand for (integers: (|q| * 16 + RHO) * step / 256)."""
    out = {}
    for key, q in values.items():
        offset = np.where(q == 0, 0, 0 if key == "LL" else RHO)
        out[key] = np.sign(q) * (((np.abs(q) * 16 + offset) * steps[key] + 128) >> 8)
    return out


def analyse(images: np.ndarray, steps: np.ndarray):
    """(coefficients with the low-low band rounded, per-band steps, chroma (1) or not (0) per
    plane) of uint8 images (N, H, W[, 3]) (InputError: another number of channels)."""
    n, height, width = images.shape[:3]
    channels = images.shape[3] if images.ndim == 4 else 1
    if channels not in (1, 3):
        raise InputError(f"wavelet levels code grey or RGB images, not {channels} channels")
    depth = wt.depth_for(height, width)
    per_band = _plane_steps(steps, channels, n, depth)
    bands = wt.forward(wt.to_coded(images), depth)
    return rounded_low(bands, per_band), per_band, _chroma(channels, n)


def _chroma(channels: int, n: int) -> np.ndarray:
    return np.tile(np.arange(channels) > 0, n).astype(np.int64)


def reconstructed(values: dict, per_band: dict, n: int, shape) -> np.ndarray:
    """uint8 images (N, H, W[, 3]) from quantized bands."""
    depth = wt.depth_for(*shape[:2])
    return wt.from_coded(wt.inverse(dequantize(values, per_band), depth), n, shape)


def check_steps(steps: np.ndarray, *, what: str) -> None:
    """Refuse a level's stored steps that are not (3, MAX_DEPTH + 1, 4) int32 in 1..MAX_STEP."""
    if steps.dtype != np.int32 or steps.shape != STEPS_SHAPE:
        raise FormatError(f"{what}: wavelet steps are not int32 {STEPS_SHAPE}")
    if steps.min() < 1 or steps.max() > MAX_STEP:
        raise FormatError(f"{what}: wavelet steps are not 1 to {MAX_STEP}")


def check_tables(rows: np.ndarray, shape: tuple[int, int], *, what: str) -> None:
    """Refuse stored tables not of ``shape``, or not integer tables (FormatError)."""
    if (
        rows.dtype != np.uint32
        or rows.shape != shape
        or (rows == 0).any()
        or (rows.sum(1, dtype=np.int64) != 1 << PRECISION).any()
    ):
        raise FormatError(f"{what}: not valid wavelet tables {shape}")


class WaveletLevel(registry.WholeChunkLevel):
    """One wavelet level: its steps (``STEPS_SHAPE``, sixteenths of a coefficient unit) and its
    class tables (a ``registry.Level``). Images within a tile (TILE wide) are coded a chunk at
    once, up to ``max_chunk_values`` values; larger ones tile by tile (``tiled``), so memory stays
    bounded by a tile whatever the image's size."""

    kind = "wavelet"
    max_image_values = MAX_IMAGE_PIXELS  # the container's limit, as for convolutional levels
    max_coded_pixels = MAX_CHUNK_PIXELS
    max_chunk_values = WHOLE_VALUES

    def __init__(self, steps: np.ndarray, rows: np.ndarray, signs: np.ndarray):
        self.steps, self.rows, self.signs = steps, rows, signs
        self.tables, self.rates = coding_tables(list(rows), list(signs)), rates_of(rows)

    def coded_pixels(self, n: int, shape) -> int:
        return n * int(np.prod(shape))

    def quantized(self, images: np.ndarray, code=lambda symbols, index: symbols):
        """(the quantized bands the decoder will read, each band's steps per plane) of uint8
        images (N, H, W[, 3]), each part passed through ``code(symbols, tables)`` on the way."""
        values, per_band, chroma = analyse(images, self.steps)
        choose = rate_optimal(per_band, self.rates)
        return walk(code, planes_shape(images.shape), chroma, values, choose), per_band

    def encode(self, images: np.ndarray, *, min_bytes: int = 0) -> bytes:
        """One ANS stream of uint8 images (N, H, W[, C]) within a tile; beyond, a tiled stream."""
        grid = tiled.grid(images.shape[1], images.shape[2], TILE)
        if len(grid) == 1:
            return self._encode_whole(images, min_bytes)
        return tiled.encode(images, grid, min_bytes, self._encode_whole)

    def _encode_whole(self, images: np.ndarray, min_bytes: int) -> bytes:
        """One ANS stream: grey, RGB, or each of another number of channels as a grey plane
        (``as_coded``)."""
        images = as_coded(images)
        encoder = Encoder(self.tables)

        def code(symbols, index):
            encoder.add(symbols, index)
            return symbols

        self.quantized(images, code)
        return encoder.finish(min_bytes=min_bytes)

    def decode(self, data: bytes, n: int, shape, *, version: int = FORMAT_VERSION) -> np.ndarray:
        """The chunk back (FormatError if the stream is damaged or has data left, or claims more
        values at once than a writer codes)."""
        grid = tiled.grid(shape[0], shape[1], TILE)
        if len(grid) > 1:
            return tiled.decode(
                data, n, shape, grid, lambda d, s: self._decode_whole(d, 1, s, version)
            )
        if n * int(np.prod(shape)) > self.max_chunk_values:
            raise FormatError(f"wavelet chunk of {n} images {tuple(shape)} is larger than coded")
        return self._decode_whole(data, n, shape, version)

    def _decode_whole(self, data: bytes, n: int, shape, version: int) -> np.ndarray:
        if tuple(shape[2:]) == (1,):  # grey with a channel axis: coded as grey (``as_coded``)
            return self._decode_whole(data, n, tuple(shape[:2]), version)[..., None]
        channels = shape[2] if len(shape) == 3 else 1
        if channels not in (1, 3):  # coded as grey planes
            planes = self._decode_whole(data, n * channels, tuple(shape[:2]), version)
            return from_planes(planes, n, tuple(shape))
        decoder = Decoder(data, self.tables, framed=version >= 3)
        chroma = _chroma(channels, n)
        values = walk(lambda _, index: decoder.read(index), planes_shape((n, *shape)), chroma)
        decoder.finish()
        depth = wt.depth_for(*shape[:2])
        return reconstructed(values, _plane_steps(self.steps, channels, n, depth), n, tuple(shape))

    def ideal_bits(self, images: np.ndarray) -> float:
        """Exactly what the integer tables assign (offsets and signs at their raw bits)."""
        grid = tiled.grid(images.shape[1], images.shape[2], TILE)
        if len(grid) > 1:
            return sum(self.ideal_bits(images[:, y0:y1, x0:x1]) for y0, y1, x0, x1 in grid)
        total, images = [0.0], as_coded(images)

        def code(symbols, index):
            if np.size(index):  # the coder's ideal_bits needs a symbol
                total[0] += ideal_bits(symbols, index, self.tables)
            return symbols

        self.quantized(images, code)
        return total[0]


def as_coded(images: np.ndarray) -> np.ndarray:
    """Images as the levels code them: grey (N, H, W) or RGB (N, H, W, 3) as they are, grey with
    a channel axis (N, H, W, 1) as grey, images of 2 or 4 channels (grey or RGB with alpha) each
    channel a grey image."""
    if images.ndim == 4 and images.shape[3] == 1:
        return images[..., 0]
    if images.ndim == 4 and images.shape[3] != 3:
        return to_planes(images)
    return images


def planes_shape(shape) -> tuple[int, int, int]:
    """(planes, H, W) of a chunk of shape (N, H, W[, C])."""
    channels = shape[3] if len(shape) == 4 else 1
    return (shape[0] * channels, shape[1], shape[2])


# The wavelet kind's section of the model file ("wavelet", optional): per level, low to high
# quality, its steps and its class tables.


def to_dict(levels) -> dict:
    """The stored form of a list of WaveletLevels."""
    return {
        "steps": [modelfile.encode_array(np.asarray(lv.steps, np.int32)) for lv in levels],
        "tables": [modelfile.encode_array(np.asarray(lv.rows, np.uint32)) for lv in levels],
        "signs": [modelfile.encode_array(np.asarray(lv.signs, np.uint32)) for lv in levels],
    }


_SHAPES = {"tables": (CONTEXTS, CLASSES + 1), "signs": (SIGN_CONTEXTS, 3)}


def read_section(body: dict, source: str) -> registry.Section | None:
    """The wavelet levels, low to high quality, or None (no section); every array checked."""
    stored = body.get("wavelet")
    if stored is None:
        return None
    keys = ("steps", "tables", "signs")
    if set(stored) != set(keys) or not all(isinstance(stored[k], list) for k in keys):
        raise FormatError(f"{source}: wavelet section is malformed")
    count = len(stored["steps"])
    if not 1 <= count <= MAX_LEVELS or any(len(stored[k]) != count for k in keys):
        raise FormatError(
            f"{source}: wavelet section needs 1 to {MAX_LEVELS} levels, each with its tables"
        )
    levels = []
    for k in range(count):
        arrays = {
            key: modelfile.decode_array(stored[key][k], what=f"{source}: wavelet {key}[{k}]")
            for key in keys
        }
        check_steps(arrays["steps"], what=f"{source}: wavelet steps[{k}]")
        for key, shape in _SHAPES.items():
            check_tables(arrays[key], shape, what=f"{source}: wavelet {key}[{k}]")
        levels.append(WaveletLevel(arrays["steps"], arrays["tables"], arrays["signs"]))
    return registry.Section(tuple(levels), tuple(levels))


registry.register(
    registry.Kind(
        "wavelet",
        fields=(registry.Field("wavelet", since=5, stored_type=dict, store=to_dict),),
        read=read_section,
    )
)
