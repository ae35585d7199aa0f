"""How a chunk's images are put before the lossless coder codes them (numpy only, integers): the
colour transform and the value sets that JPEG XL's modular mode also chooses per image.

- A colour image's planes go as they are (R, G, B); or as G, R - G, B - G ("subtract green", as
  WebP lossless); or as YCoCg-R; every step modulo 2^depth, so the planes keep their depth (a
  difference is offset by half the range: small differences sit mid-range, far from a wrap); or,
  with few colours, as one plane of indices into a palette sorted by luma.
- A plane that uses only some values (a histogram-stretched photo, 8-bit data stored in 16 bits)
  is coded as the ranks of its values among those used (JPEG XL's channel palette): a step of
  one rank is then the smallest change the image has. One that spans less than its depth allows
  is coded less its least value, and predicted at the depth it spans.

Which form a chunk takes is chosen by estimating what each costs (``cost``: the entropy of
MED-predicted residuals' bit lengths in a few activity classes, plus their raw bits) and the side
information, a few numpy passes; the context tree is learned on training images in the forms
chosen for them (``lossless_train.py``), its ``plane`` property telling the forms apart. On the
photo model's held-out training photo this took the coder from 4.978 to 4.654 bits per sample
(``codec/pretrained/photo-lossless-train.log``). Near-lossless, only the shift of a span: the
rest would widen the bound. The form is written first in the chunk's stream, as raw bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bitstream.errors import FormatError

NONE, SUBTRACT_GREEN, YCOCG, PALETTE = range(4)  # RGB as it is, subtract green, YCoCg-R, a palette
MIN_COMPACT_DEPTH = 5  # a value set's run lengths need a 5-bit table
MIN_VALUE_SET_SAMPLES = 4096  # per plane, for 8-bit images


@dataclass(frozen=True)
class Form:
    """A chunk's form: its colour transform, the palette (K, C) if any, per coded plane the values
    used (sorted) or None (every value)."""

    colour: int = NONE
    palette: np.ndarray | None = None
    values: tuple = ()

    def planes(self, channels: int) -> int:
        """How many planes each image is coded as."""
        return 1 if self.colour == PALETTE else channels

    def plane_id(self, c: int) -> int:
        """The tree's ``plane`` property: 0..2 for RGB (and grey), 3..5 subtract green, 6..8
        YCoCg, 9 indices."""
        return 3 * self.colour + c

    def top(self, c: int, depth: int) -> int:
        """The largest value plane c holds."""
        if self.values and self.values[c] is not None:
            return len(self.values[c]) - 1
        return len(self.palette) - 1 if self.colour == PALETTE else (1 << depth) - 1

    def scale_depth(self, c: int, depth: int) -> int:
        """The depth the predictor's thresholds are scaled to: what plane c spans (at least 8
        bits), so 12-bit data stored in 16 bits is predicted as 12-bit data."""
        return max(8, self.top(c, depth).bit_length())


# The colour transforms, on (n, C, H, W) integer arrays, modulo 2^depth (int32 holds every step of
# 16-bit data), a block of rows at a time: a large image's temporaries stay small.
BLOCK_ROWS = 64


def _blockwise(transform, x: np.ndarray, colour: int, depth: int) -> np.ndarray:
    """``transform`` of (n, 3, H, W) into a new uint16 array (its values are below 2^depth),
    BLOCK_ROWS rows at a time."""
    out = np.empty(x.shape, np.uint16)
    for y in range(0, x.shape[2], BLOCK_ROWS):
        out[:, :, y : y + BLOCK_ROWS] = transform(
            x[:, :, y : y + BLOCK_ROWS].astype(np.int32), colour, depth
        )
    return out


def _signed(x, depth: int):
    half = 1 << (depth - 1)
    return ((x + half) & ((1 << depth) - 1)) - half


def _colour_forward(x: np.ndarray, colour: int, depth: int) -> np.ndarray:
    m, half = (1 << depth) - 1, 1 << (depth - 1)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    if colour == SUBTRACT_GREEN:
        return np.stack([g, (r - g + half) & m, (b - g + half) & m], 1)
    co = (r - b) & m
    t = (b + (_signed(co, depth) >> 1)) & m
    cg = (g - t) & m
    y = (t + (_signed(cg, depth) >> 1)) & m
    return np.stack([y, (co + half) & m, (cg + half) & m], 1)


def _colour_inverse(x: np.ndarray, colour: int, depth: int) -> np.ndarray:
    m, half = (1 << depth) - 1, 1 << (depth - 1)
    if colour == SUBTRACT_GREEN:
        g = x[:, 0]
        return np.stack([(x[:, 1] - half + g) & m, g, (x[:, 2] - half + g) & m], 1)
    y, co, cg = x[:, 0], (x[:, 1] - half) & m, (x[:, 2] - half) & m
    t = (y - (_signed(cg, depth) >> 1)) & m
    g = (cg + t) & m
    b = (t - (_signed(co, depth) >> 1)) & m
    return np.stack([(co + b) & m, g, b], 1)


def _palette(x: np.ndarray, depth: int, most: int):
    """(colours (K, C) sorted by luma, indices (n, 1, H, W)) of images (n, C, H, W), or None past
    ``most`` colours (seen first in a sample of them, where a photo already has more)."""
    few = _bands(x)
    if few is not x and len(np.unique(_keys(few, depth))) > most:
        return None
    key = _keys(x, depth)
    keys, index = np.unique(key, return_inverse=True)
    if len(keys) > most:
        return None
    colours = np.stack(
        [(keys >> (depth * (x.shape[1] - 1 - c))) & ((1 << depth) - 1) for c in range(x.shape[1])],
        1,
    )
    # colour images only: 3 channels
    order = np.argsort(colours @ np.array([299, 587, 114]), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return colours[order], rank[index.reshape(key.shape)][:, None]


def _keys(x: np.ndarray, depth: int) -> np.ndarray:
    """Each pixel's colour as one integer (n, H, W) of images (n, C, H, W)."""
    key = np.zeros(x.shape[:1] + x.shape[2:], np.int64)
    for c in range(x.shape[1]):
        key = (key << depth) | x[:, c]
    return key


# What a form costs: MED-predicted residuals coded as their bit length (with sign) in classes of
# local activity, then the bits after the leading one raw: the entropy of the first plus the count
# of the second. Coarser than the coder's tokens on purpose: it sees that residuals all multiples
# of three cost more than the same residuals divided by three (exact counts would not: the
# coder's tables, learned on other images, cannot expect the gaps).


def cost(x: np.ndarray) -> float:
    """Estimated bits of planes x (n, H, W)."""
    x = x.astype(np.int64)
    if x.shape[1] < 2 or x.shape[2] < 2:
        return float(x.size * 8)
    a, b, c, v = x[:, 1:, :-1], x[:, :-1, 1:], x[:, :-1, :-1], x[:, 1:, 1:]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    e = (v - np.where(c >= hi, lo, np.where(c <= lo, hi, a + b - c))).ravel()
    length = np.frexp(np.abs(e).astype(np.float64))[1]  # 0 for 0
    activity = np.frexp((np.abs(a - c) + np.abs(b - c)).ravel().astype(np.float64))[1]
    key = np.minimum(activity, 11) * 64 + np.where(e < 0, -length, length) + 32
    counts = np.bincount(key)
    counts = counts[counts > 0]
    # the first row and column, roughly
    return float(
        -(counts * np.log2(counts / counts.sum())).sum()
        + np.maximum(length - 1, 0).sum()
        + x.shape[0] * (x.shape[1] + x.shape[2]) * 4
    )


def _runs(used: np.ndarray) -> np.ndarray:
    """Lengths of the alternating runs of unused and used values (the first may be empty) of a
    mask."""
    edges = np.flatnonzero(np.diff(used.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [len(used)]])
    runs = np.diff(bounds)
    return np.concatenate([[0], runs]) if used[0] else runs


def _gamma_bits(v: np.ndarray) -> int:
    """Raw bits of Elias-gamma codes of v >= 1 (a 5-bit length, then the bits after the leading
    one)."""
    return int((5 + np.frexp(v.astype(np.float64))[1] - 1).sum())


def _value_set(plane: np.ndarray, depth: int, top: int, ranks: bool = True):
    """The plane's values to code as ranks (sorted), or None (all of 0..top): those used if that
    looks cheaper, else the span from the least to the largest (ranks there are only the values
    less the least, which costs a few bits and tells the predictor the depth the plane really
    has)."""
    used = np.flatnonzero(np.bincount(plane.ravel(), minlength=1 << depth))  # sorted, in one pass
    if len(used) == top + 1:
        return None
    span = np.arange(used[0], used[-1] + 1)
    if len(used) == len(span) or not ranks:
        return span
    side = _gamma_bits(_runs(_mask(used, depth)) + 1) - _gamma_bits(_runs(_mask(span, depth)) + 1)
    few = _bands(plane[:, None])[:, 0]  # an estimate: rows of it
    scale = plane.size / few.size
    return used if scale * cost(np.searchsorted(used, few)) + side < scale * cost(few) else span


def _mask(used: np.ndarray, depth: int) -> np.ndarray:
    mask = np.zeros(1 << depth, bool)
    mask[used] = True
    return mask


COLOUR_SAMPLE = 1 << 16  # pixels the colour transforms are estimated on, at most
BAND_ROWS = 8


def _bands(x: np.ndarray) -> np.ndarray:
    """Images (n, C, H, W), or, past COLOUR_SAMPLE pixels, bands of BAND_ROWS rows drawn evenly
    from them as images of their own (n * bands, C, BAND_ROWS, W): an estimate of what a colour
    transform costs needs neighbours, not every pixel."""
    n, c, h, w = x.shape
    bands = h // BAND_ROWS
    keep = -(-COLOUR_SAMPLE // (n * BAND_ROWS * w))  # bands per image
    if x[:, 0].size <= COLOUR_SAMPLE or bands <= keep:
        return x
    rows = x[:, :, : bands * BAND_ROWS].reshape(n, c, bands, BAND_ROWS, w)
    picked = rows[:, :, np.linspace(0, bands - 1, keep).astype(np.int64)]
    return picked.transpose(0, 2, 1, 3, 4).reshape(-1, c, BAND_ROWS, w)


def choose(
    planes: np.ndarray, channels: int, depth: int, coder_depth: int, max_error: int = 0
) -> Form:
    """The form of a chunk of planes (n * C, H, W), ``depth``-bit samples, for a coder of
    ``coder_depth`` bits. Near-lossless (``max_error`` > 0), only spans: a shift keeps the bound,
    the rest would not."""
    return chosen(planes, channels, depth, coder_depth, max_error)[0]


def chosen(
    planes: np.ndarray, channels: int, depth: int, coder_depth: int, max_error: int = 0
) -> tuple[Form, np.ndarray]:
    """(``choose``'s form, the planes in it: ``forward``'s), the planes transformed once."""
    x = planes.reshape(-1, channels, *planes.shape[1:])
    colour, palette = NONE, None
    if channels == 3 and not max_error:
        few = _bands(x).astype(np.int64)
        costs = {
            k: sum(cost(p[:, c]) for c in range(3)) * x[:, 0].size / few[:, 0].size
            for k, p in (
                (NONE, few),
                (SUBTRACT_GREEN, _colour_forward(few, SUBTRACT_GREEN, depth)),
                (YCOCG, _colour_forward(few, YCOCG, depth)),
            )
        }
        found = _palette(x, depth, 1 << min(coder_depth, 12))
        if found is not None:
            costs[PALETTE] = cost(found[1][:, 0]) + found[0].size * depth + coder_depth
        colour = min(costs, key=costs.get)
        palette = found[0] if colour == PALETTE else None
    form = Form(colour, palette)
    coded = forward(form, planes, channels, depth)
    k = form.planes(channels)
    if coder_depth < MIN_COMPACT_DEPTH:
        return form, coded
    if coded.size // k < MIN_VALUE_SET_SAMPLES and depth <= 8:
        # a small 8-bit image: a value set's runs cost about what they save (Fashion-MNIST: 3.5
        # bytes more)
        return form, coded
    values = tuple(
        _value_set(coded[c::k], depth, form.top(c, depth), ranks=not max_error) for c in range(k)
    )
    if all(v is None for v in values):
        return Form(colour, palette, values), coded
    coded = coded.astype(np.uint16) if np.shares_memory(coded, planes) else coded
    for c, used in enumerate(values):
        if used is not None:
            coded[c::k] = np.searchsorted(used, coded[c::k])
    return Form(colour, palette, values), coded


def forward(form: Form, planes: np.ndarray, channels: int, depth: int) -> np.ndarray:
    """Planes (n * C, H, W) in the form: (n * form.planes(C), H, W), uint16 (or the planes
    themselves, when the form changes nothing)."""
    if form.colour == NONE and not any(v is not None for v in form.values):
        return planes
    x = planes.reshape(-1, channels, *planes.shape[1:])
    if form.colour == PALETTE:
        key, palette_keys = _keys(x, depth), _keys(form.palette.T[None, :, :, None], depth)[0, :, 0]
        order = np.argsort(palette_keys)
        x = order[np.searchsorted(palette_keys[order], key)][:, None].astype(np.uint16)
    elif form.colour != NONE:
        x = _blockwise(_colour_forward, x, form.colour, depth)
    else:
        x = x.astype(np.uint16)
    for c, used in enumerate(form.values):
        if used is not None:
            x[:, c] = np.searchsorted(used, x[:, c])
    return x.reshape(-1, *planes.shape[1:])


def inverse(form: Form, coded: np.ndarray, channels: int, depth: int) -> np.ndarray:
    """Planes (n * C, H, W) from the coded planes (n * form.planes(C), H, W): uint16, or the coded
    planes themselves, when the form changes nothing."""
    if form.colour == NONE and not any(v is not None for v in form.values):
        return coded
    k = form.planes(channels)
    x = np.array(coded, np.uint16).reshape(-1, k, *coded.shape[1:])
    for c, used in enumerate(form.values):
        if used is not None:
            x[:, c] = used[x[:, c]]
    if form.colour == PALETTE:
        x = np.moveaxis(form.palette.astype(np.uint16)[x[:, 0]], -1, 1)
    elif form.colour != NONE:
        x = _blockwise(_colour_inverse, x, form.colour, depth)
    return x.reshape(-1, *coded.shape[1:])


# The form in the stream, as raw bits through the coder's uniform tables (table k - 1: k bits,
# k up to the coder's depth; wider numbers go in pieces of at most 8 bits: the coder takes symbols
# below 2^15).


def put_bits(add, values, bits: int, coder_depth: int) -> None:
    values = np.asarray(values, np.int64).reshape(-1)
    piece = min(coder_depth, 8)
    for shift in range(0, bits, piece):
        k = min(piece, bits - shift)
        add((values >> shift) & ((1 << k) - 1), np.full(len(values), k - 1, np.int16))


def get_bits(read, n: int, bits: int, coder_depth: int) -> np.ndarray:
    out = np.zeros(n, np.int64)
    piece = min(coder_depth, 8)
    for shift in range(0, bits, piece):
        k = min(piece, bits - shift)
        out |= read(np.full(n, k - 1, np.int16)).astype(np.int64) << shift
    return out


def write(form: Form, channels: int, depth: int, coder_depth: int, add) -> None:
    """Put the form in the stream (``add(symbols, tables)``, the coder's)."""
    if channels == 3:
        put_bits(add, [form.colour], 2, coder_depth)
    if form.colour == PALETTE:
        put_bits(add, [len(form.palette) - 1], coder_depth, coder_depth)
        put_bits(add, form.palette, depth, coder_depth)
    if coder_depth < MIN_COMPACT_DEPTH:
        return
    for c in range(form.planes(channels)):
        used = form.values[c] if form.values else None
        put_bits(add, [used is not None], 1, coder_depth)
        if used is not None:
            v = _runs(_mask(used, depth)) + 1
            length = np.frexp(v.astype(np.float64))[1]  # bits of v
            put_bits(add, [len(v) - 1], depth + 1, coder_depth)
            put_bits(add, length - 1, 5, coder_depth)
            for bits in np.unique(length):
                if bits > 1:
                    put_bits(add, v[length == bits] - (1 << (bits - 1)), int(bits) - 1, coder_depth)


def read(channels: int, depth: int, coder_depth: int, read) -> Form:
    """The form ``write`` put (``read(tables)``, the decoder's); FormatError if it cannot be one."""
    colour, palette = NONE, None
    if channels == 3:
        colour = int(get_bits(read, 1, 2, coder_depth)[0])
    if colour == PALETTE:
        k = int(get_bits(read, 1, coder_depth, coder_depth)[0]) + 1
        palette = get_bits(read, k * channels, depth, coder_depth).reshape(k, channels)
    form = Form(colour, palette)
    if coder_depth < MIN_COMPACT_DEPTH:
        return form
    values = []
    for _ in range(form.planes(channels)):
        if not get_bits(read, 1, 1, coder_depth)[0]:
            values.append(None)
            continue
        n = int(get_bits(read, 1, depth + 1, coder_depth)[0]) + 1
        length = get_bits(read, n, 5, coder_depth) + 1
        v = np.ones(n, np.int64) << (length - 1)
        for bits in np.unique(length):
            if bits > 1:
                v[length == bits] += get_bits(
                    read, int((length == bits).sum()), int(bits) - 1, coder_depth
                )
        runs = v - 1
        if runs.sum() != 1 << depth or runs[1:].min(initial=1) < 1:
            raise FormatError("lossless stream: a plane's value set is damaged")
        mask = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
        values.append(np.flatnonzero(mask))
    if any(v is not None and len(v) == 0 for v in values):
        raise FormatError("lossless stream: a plane's value set is empty (damaged)")
    return Form(colour, palette, tuple(values))
