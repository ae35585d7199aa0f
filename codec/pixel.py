"""Predictive pixel coding: the codec's high-quality levels (numpy only, integer arithmetic).

Measured on Fashion-MNIST (``python -m benchmarks.pixel_sweep``): above about 27 dB, coding
each pixel's prediction residual against learned context tables takes far fewer bytes than
coding the transform's latent (a third fewer near 38 dB). The global transform captures
shape, which is cheap; at high quality the bytes go into texture, which a causal
neighbourhood predicts far better.

Each pixel is predicted from its already decoded neighbours (a left, b above, c above-left,
d above-right) by the median edge detector of LOCO-I/JPEG-LS; the residual is quantized
with the level's step (reconstruction in the loop, so errors never accumulate) and coded
with the table of its context: the local activity |d-b|+|b-c|+|c-a| and the predicted
value, each bucketed, and how large the residuals at a and b were (0, 1, 2 or more steps).
The tables are counted on the training data by ``aecodec train``.

Pixels on an anti-diagonal 2i + j = t depend only on earlier diagonals, so a plane is
coded in 2(H-1) + W steps, each vectorized over all its pixels and all images.
"""

from __future__ import annotations

import functools

import numpy as np

from bitstream.coder import PRECISION, Tables, integer_frequencies
from bitstream.errors import FormatError

ACTIVITY = np.array([0, 2, 4, 7, 11, 16, 23, 32, 45, 64, 90, 128])  # lower bounds of the activity buckets
LEVEL = np.array([0, 4, 8, 12, 30, 48, 70, 128])  # lower bounds of the predicted-value buckets
FEEDBACK = 3  # classes of |symbol at a| + |symbol at b|: 0, 1, 2 or more
CONTEXTS = len(ACTIVITY) * len(LEVEL) * FEEDBACK
# The bucket searches as lookups (activity is at most 3 * 255), already scaled to context indices;
# int16 contexts let the coder's stable argsort run as a radix sort.
_BY_ACTIVITY = ((np.searchsorted(ACTIVITY, np.arange(3 * 255 + 1), "right") - 1) * len(LEVEL) * FEEDBACK).astype(np.int16)
_BY_LEVEL = ((np.searchsorted(LEVEL, np.arange(256), "right") - 1) * FEEDBACK).astype(np.int16)


def symbol_range(step: int) -> int:
    """K: a step's residual symbols lie in -K..K (the tables cover exactly that)."""
    return 255 // step + 1


@functools.lru_cache(maxsize=64)
def _schedule(h: int, w: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """Per anti-diagonal step: (flat positions in the padded plane, of the pixel and of a, b, c, d
    stacked (5, k)), and the positions (i, j) in the plane."""
    width = w + 2  # the padded plane: one row above, one column either side, all zero
    steps = []
    for t in range(2 * (h - 1) + w):
        i = np.arange(max(0, (t - w + 2) // 2), min(h - 1, t // 2) + 1)
        j = t - 2 * i
        keep = (j >= 0) & (j < w)
        i, j = i[keep], j[keep]
        here = (i + 1) * width + j + 1
        around = np.stack([here, here - 1, here - width, here - width - 1, here - width + 1])
        steps.append((around, i, j))
    return tuple(steps)


def _predict(r: np.ndarray, m: np.ndarray, around: np.ndarray):
    """MED prediction and context index for the pixels at ``around[0]`` of the padded planes r (n, L),
    given the magnitudes m (n, L) of the symbols decoded so far."""
    a, b, c, d = (r[:, k] for k in around[1:])
    low, high = np.minimum(a, b), np.maximum(a, b)
    pred = np.where(c >= high, low, np.where(c <= low, high, a + b - c))
    activity = np.abs(d - b) + np.abs(b - c) + np.abs(c - a)
    context = _BY_ACTIVITY[activity] + _BY_LEVEL[pred]  # pred lies between a and b: 0..255
    context += np.minimum(m[:, around[1]] + m[:, around[2]], FEEDBACK - 1).astype(np.int16)
    return pred, context


def _record(r: np.ndarray, m: np.ndarray, here: np.ndarray, pred: np.ndarray, symbols: np.ndarray, step: int) -> None:
    """Store the decoded pixels and their symbols' magnitudes."""
    r[:, here] = np.clip(pred + symbols * step, 0, 255)
    m[:, here] = np.minimum(np.abs(symbols), FEEDBACK - 1)


def _padded(n: int, h: int, w: int) -> np.ndarray:
    return np.zeros((n, (h + 1) * (w + 2)), np.int32)


def _crop(r: np.ndarray, h: int, w: int) -> np.ndarray:
    return r.reshape(-1, h + 1, w + 2)[:, 1:, 1 : w + 1].astype(np.uint8)


def quantize(planes: np.ndarray, step: int):
    """Code uint8 planes (n, H, W) in coding order: ([(symbols, contexts) per step, each (n, k)],
    the reconstruction (n, H, W), which is exactly what the decoder will produce)."""
    n, h, w = planes.shape
    x = planes.reshape(n, -1).astype(np.int32)
    r, m = _padded(n, h, w), _padded(n, h, w)
    parts = []
    for around, i, j in _schedule(h, w):
        pred, context = _predict(r, m, around)
        residual = x[:, i * w + j] - pred
        symbols = np.floor_divide(2 * residual + step, 2 * step)  # round half up: exact in integers
        _record(r, m, around[0], pred, symbols, step)
        parts.append((symbols, context))
    return parts, _crop(r, h, w)


def reconstruct(shape: tuple[int, int, int], step: int, read) -> np.ndarray:
    """The decoder: planes (n, H, W) from ``read(contexts (n, k)) -> symbols (n, k)``, step by step."""
    n, h, w = shape
    r, m = _padded(n, h, w), _padded(n, h, w)
    for around, _, _ in _schedule(h, w):
        pred, context = _predict(r, m, around)
        _record(r, m, around[0], pred, read(context).astype(np.int32), step)
    return _crop(r, h, w)


def count(planes: np.ndarray, step: int) -> np.ndarray:
    """(CONTEXTS, 2K+1) counts of each context's residual symbols over uint8 planes (n, H, W)."""
    k = symbol_range(step)
    counts = np.zeros(CONTEXTS * (2 * k + 1), np.int64)
    for symbols, context in quantize(planes, step)[0]:
        counts += np.bincount((context * (2 * k + 1) + symbols + k).ravel(), minlength=counts.size)
    return counts.reshape(CONTEXTS, 2 * k + 1)


def fit_tables(planes: np.ndarray, step: int, *, batch: int = 8192) -> np.ndarray:
    """Integer tables (CONTEXTS, 2K+2) for ``step``, counted on uint8 training planes (n, H, W):
    each row codes -K..K then an escape (never needed: residuals stay within -K..K). Half a
    count is added to every symbol (the Krichevsky-Trofimov estimate), so none is impossible."""
    counts = sum(count(planes[start : start + batch], step) for start in range(0, len(planes), batch))
    return np.stack([integer_frequencies(np.append(row + 0.5, 0.5)) for row in counts])


def tables(rows: np.ndarray, step: int) -> Tables:
    """The coder's view of one step's tables."""
    return Tables(np.full(len(rows), -symbol_range(step)), list(rows))


def check_tables(rows: np.ndarray, step: int, *, what: str) -> None:
    """Refuse stored tables that are not exactly what ``fit_tables`` makes the shape of (FormatError)."""
    if (rows.dtype != np.uint32 or rows.shape != (CONTEXTS, 2 * symbol_range(step) + 2) or (rows == 0).any()
            or (rows.sum(1, dtype=np.int64) != 1 << PRECISION).any()):
        raise FormatError(f"{what}: not valid integer tables for step {step}")


# Integer operations per pixel, each way, counted from _predict, _record and the quantizer: MED 6
# (2 min/max, 2 compares, a + b - c), activity 8, the two bucket searches 7 (binary, 12 and 8
# bounds), the feedback class 3 and the context index 4, quantizing or dequantizing 6, clipping 2,
# the symbol's magnitude 2.
OPS_PER_PIXEL = 38
