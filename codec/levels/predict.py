"""The predictive core shared by the pixel levels (``pixel.py``) and the lossless coder
(``lossless.py``): one padded layout, one coding schedule, CALIC's predictor and the quantizer
with its reconstruction (numpy, integers only; ``calic_compiled`` is the same predictor compiled,
which the tests hold to ``calic``).

The layout: a plane of H x W inside a frame of zeros, two rows above, two columns left and one
right (what the neighbourhood reaches: a, aa to the left, b, bb above, d and bd one column right),
flattened to (H + 2) * (W + 3) values. A neighbour outside the image reads 0.

The schedule: pixels on an anti-diagonal 2i + j = t depend only on earlier diagonals, so a plane
is coded in 2(H - 1) + W steps, each vectorized over all its pixels and all images of a chunk.
"""

from __future__ import annotations

import functools

import numpy as np

from codec.levels import kernels

# The predictor's blend by skew = vertical - horizontal gradient (> 0: the image changes faster
# downwards, so the left pixel is the better guide), in quarters of the smooth estimate, a and b:
# skew > 80: a; > 32: (smooth + a)/2; > 8: (3 smooth + a)/4; -8..8: smooth; and mirrored for b.
# The thresholds are those of 8-bit planes; a deeper plane's are scaled to its depth.
SKEW_THRESHOLDS = np.array([-80, -32, -8, 9, 33, 81], np.int64)
# Rows: the weights of the smooth estimate, a and b in each skew bin (searchsorted "right").
BLEND = np.array([(0, 2, 3, 4, 3, 2, 0), (0, 0, 0, 0, 1, 2, 4), (4, 2, 1, 0, 0, 0, 0)], np.int64)
_TO_SMOOTH, _TO_LEFT, _TO_ABOVE = BLEND.astype(np.int32)


def layout_width(w: int) -> int:
    """Values per row of a padded plane W wide."""
    return w + 3


def offsets(w: int) -> np.ndarray:
    """Offsets in the padded plane of a (left), b (above), c (above-left), d (above-right),
    aa (two left), bb (two above) and bd (above d), int64."""
    width = layout_width(w)
    return np.array([-1, -width, -width - 1, -width + 1, -2, -2 * width, -2 * width + 1], np.int64)


def padded(planes: np.ndarray) -> np.ndarray:
    """(n, H, W) -> (n, (H + 2) * (W + 3)) int32, the planes inside the frame of zeros."""
    n, h, w = planes.shape
    r = zeros(n, h, w).reshape(n, h + 2, layout_width(w))
    r[:, 2:, 2 : w + 2] = planes
    return r.reshape(n, -1)


def zeros(n: int, h: int, w: int) -> np.ndarray:
    """n blank padded planes (n, (H + 2) * (W + 3)) int32."""
    return np.zeros((n, (h + 2) * layout_width(w)), np.int32)


def pixel_major(planes: np.ndarray) -> np.ndarray:
    """``padded``, stored pixel by pixel ((H + 2) * (W + 3), n): the compiled loops read a pixel's
    neighbours in all images of a chunk as contiguous runs."""
    return np.ascontiguousarray(padded(planes).T)


def pixel_major_zeros(n: int, h: int, w: int) -> np.ndarray:
    """n blank planes of H x W, padded and stored ``pixel_major`` (int32)."""
    return np.zeros(((h + 2) * layout_width(w), n), np.int32)


def crop(r: np.ndarray, h: int, w: int) -> np.ndarray:
    """Padded planes (n, L) -> (n, H, W), the frame dropped (a view)."""
    return r.reshape(-1, h + 2, layout_width(w))[:, 2:, 2 : w + 2]


def schedule(h: int, w: int) -> tuple[np.ndarray, ...]:
    """Per anti-diagonal step, the positions (int64, read-only) of its pixels in the padded plane.
    Kept for small planes only (at most 8 MB each), so large images do not pin their memory."""
    return _cached_schedule(h, w) if h * w <= 1 << 20 else _build_schedule(h, w)


def _build_schedule(h: int, w: int) -> tuple[np.ndarray, ...]:
    width = layout_width(w)
    steps = []
    for t in range(2 * (h - 1) + w):
        i = np.arange(max(0, (t - w + 2) // 2), min(h - 1, t // 2) + 1)
        j = t - 2 * i
        keep = (j >= 0) & (j < w)
        here = ((i[keep] + 2) * width + j[keep] + 2).astype(np.int64)
        here.setflags(write=False)  # shared by every caller through the cache
        steps.append(here)
    return tuple(steps)


_cached_schedule = functools.lru_cache(maxsize=8)(_build_schedule)


def skew_scale(scale_depth: int) -> int:
    """What the skew thresholds are multiplied by for a plane spanning ``scale_depth`` bits."""
    return 1 << max(scale_depth - 8, 0)


@functools.lru_cache(maxsize=16)
def _skew_bin(top: int, scale: int) -> np.ndarray:
    """The skew's bin as a lookup from skew + 3 top (|skew| <= 3 top): faster than a search."""
    return np.searchsorted(
        SKEW_THRESHOLDS * scale, np.arange(-3 * top, 3 * top + 1), "right"
    ).astype(np.int8)


def neighbours(r: np.ndarray, here: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """(a, b, c, d, aa, bb, bd) (n, k) of the pixels at ``here`` of padded planes r (n, L)."""
    return tuple(r[:, here + o] for o in offsets)


def gradient_adjusted(a, b, c, d, aa, bb, bd, top: int, scale: int = 1) -> np.ndarray:
    """CALIC's gradient-adjusted prediction (Wu & Memon, 1997) from the neighbours (int32), 0..top,
    the skew thresholds times ``scale``; in integers, units of 1/32 inside (16-bit planes stay
    below 2^31): a smooth estimate (a + b)/2 + (d - c)/4, pulled towards a or b when the vertical or
    horizontal gradient dominates, and replaced by a or b at a sharp edge. At the same PSNR it
    takes 3-5% fewer bytes on Fashion-MNIST than LOCO-I's median edge detector."""
    horizontal = np.abs(a - aa) + np.abs(b - c) + np.abs(b - d)
    vertical = np.abs(a - c) + np.abs(b - bb) + np.abs(d - bd)
    k = _skew_bin(top, scale)[vertical - horizontal + 3 * top]
    g = (
        _TO_SMOOTH[k] * (16 * (a + b) + 8 * (d - c)) + _TO_LEFT[k] * 32 * a + _TO_ABOVE[k] * 32 * b
    ) >> 2
    return np.clip((g + 16) >> 5, 0, top)


def calic(r: np.ndarray, here: np.ndarray, offsets: np.ndarray, top: int, scale_depth: int = 8):
    """CALIC's prediction (n, k) of the pixels at ``here`` of padded planes r (n, L) of values
    0..top, its thresholds scaled to ``scale_depth`` (the depth the plane spans)."""
    return gradient_adjusted(*neighbours(r, here, offsets), top, skew_scale(scale_depth))


def calic_compiled(r: np.ndarray, here, offsets, top: int, scale_depth: int) -> np.ndarray:
    """``calic`` (n, k) int64 of planes stored ``pixel_major``, compiled."""
    return kernels.compiled().calic(
        r, here, offsets, top, skew_scale(scale_depth), SKEW_THRESHOLDS, BLEND
    )


def quantized(residual: np.ndarray, step: int) -> np.ndarray:
    """Residuals in steps: round half up of residual / step (exact in integers; step 1: itself)."""
    return np.floor_divide(2 * residual + step, 2 * step)


def dequantized(pred: np.ndarray, symbols: np.ndarray, step: int, top: int) -> np.ndarray:
    """The decoded pixels: the prediction plus the symbols' steps, clipped to 0..top (the encoder
    predicts from these, as the decoder will: errors never accumulate)."""
    return np.clip(pred + symbols * step, 0, top)
