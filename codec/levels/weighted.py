"""JPEG XL's self-correcting ("weighted") predictor, in integers, one anti-diagonal of pixels at a
time (``State`` in numpy, the definition; ``PixelMajorState`` compiled, what the coder uses).

Four sub-predictions (W + NE - N, and N, W, N corrected by the errors the final prediction made
at the neighbours) are averaged with weights that fall as each one's recent errors around the pixel
grow; where the neighbours' errors disagree in sign the result is clamped to the range of W, N and
NE. The arithmetic (three extra bits of precision, the error-to-weight approximation, the rounding)
follows libjxl's ``weighted::State`` with its default header, so the same pixels give the same
predictions on every machine. Its largest neighbouring error is the property JPEG XL's trees split
on most; an image's own tree (``image_tree.py``) may use both.
"""

from __future__ import annotations

import numpy as np

from codec.levels import kernels

EXTRA = 3  # bits of precision added to pixel values
ROUND = (1 << EXTRA >> 1) - 1
# libjxl's default header: p1C, p2C, and p3Ca = p3Cb = p3Cc (p3Cd = p3Ce = 0)
P1C, P2C, P3C = (
    16,
    10,
    7,
)
MAX_WEIGHTS = np.array([13, 12, 12, 12], np.int64)
_CONSTANTS = (MAX_WEIGHTS, np.array([P1C, P2C, P3C], np.int64), EXTRA)  # for the compiled loops
DIVISION = (1 << 24) // np.arange(1, 65, dtype=np.int64)  # 2^24 / (i + 1)


def _log2(x: np.ndarray) -> np.ndarray:
    """floor(log2 x) of integers x >= 1."""
    return np.frexp(x.astype(np.float64))[1].astype(np.int64) - 1


def _error_weight(x: np.ndarray, maxweight: np.ndarray) -> np.ndarray:
    """About 4 + maxweight * 2^24 / (x + 1), without dividing."""
    shift = np.maximum(_log2(x + 1) - 5, 0)
    return 4 + ((maxweight * DIVISION[x >> shift]) >> shift)


def _weighted_average(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The average of predictions p (4, ...) with weights w (4, ...), without dividing."""
    w = w >> (_log2(w.sum(0)) - 4)
    total = w.sum(0)
    return (((total >> 1) - 1 + (p * w).sum(0)) * DIVISION[total - 1]) >> 24


class State:
    """The predictor's memory for n planes padded as ``predict.padded``: each sub-prediction's error
    and the final prediction's (true) error at every pixel coded so far."""

    def __init__(self, shape):
        # errors of 16-bit data (<< 3) fit: 20 bytes a pixel
        self.errors = np.zeros((4, *shape), np.int32)
        self.true = np.zeros(shape, np.int32)
        self._sub = self._pred = None

    def predict(self, r: np.ndarray, here: np.ndarray, offsets: np.ndarray, top: int):
        """(prediction 0..top, largest neighbouring true error) of the pixels at ``here`` (n, k)."""
        w_, n_, nw_, ne_, ww_ = offsets[:5]
        # (5, k): one gather for each array
        around = here + np.array([n_, ne_, nw_, w_, ww_])[:, None]
        west, north, nw, ne = (
            r[:, around[[3, 0, 2, 1]]].astype(np.int64).transpose(1, 0, 2) << EXTRA
        )
        weights = _error_weight(
            self.errors[:, :, around].sum(2, dtype=np.int64), MAX_WEIGHTS[:, None, None]
        )
        te_n, te_ne, te_nw, te_w = self.true[:, around[:4]].astype(np.int64).transpose(1, 0, 2)
        sub = np.stack(
            [
                west + ne - north,
                north - (((te_w + te_n + te_ne) * P1C) >> 5),
                west - (((te_w + te_n + te_nw) * P2C) >> 5),
                north - (((te_nw + te_n + te_ne) * P3C) >> 5),
            ]
        )
        pred = _weighted_average(sub, weights)
        clamp = ((te_n ^ te_w) | (te_n ^ te_nw)) <= 0
        low, high = np.minimum(np.minimum(west, ne), north), np.maximum(np.maximum(west, ne), north)
        pred = np.where(clamp, np.clip(pred, low, high), pred)
        self._sub, self._pred = sub, pred
        return np.clip((pred + ROUND) >> EXTRA, 0, top), _largest(te_w, te_n, te_nw, te_ne)

    def update(self, here: np.ndarray, values: np.ndarray) -> None:
        """Record the errors at ``here`` once the pixels' values (n, k) are known."""
        v = values.astype(np.int64) << EXTRA
        self.true[:, here] = self._pred - v
        self.errors[:, :, here] = (np.abs(self._sub - v) + ROUND) >> EXTRA


def _largest(*errors: np.ndarray) -> np.ndarray:
    """The error of largest magnitude, the first of equals (as libjxl)."""
    out = errors[0]
    for e in errors[1:]:
        out = np.where(np.abs(e) > np.abs(out), e, out)
    return out


class PixelMajorState:
    """``State`` for planes stored pixel-major ((H + 2) * (W + 3), n: ``predict.pixel_major``),
    compiled (``_kernels.wp_predict`` and ``wp_update``, which the tests hold to ``State``)."""

    def __init__(self, length: int, n: int):
        self.errors = np.zeros((4, length, n), np.int32)
        self.true = np.zeros((length, n), np.int32)
        self._sub = self._pred = None

    def predict(self, r: np.ndarray, here: np.ndarray, offsets: np.ndarray, top: int):
        n = r.shape[1]
        self._sub, self._pred = (
            np.empty((4, n, len(here)), np.int64),
            np.empty((n, len(here)), np.int64),
        )
        return kernels.compiled().wp_predict(
            r, self.errors, self.true, here, offsets, top, self._sub, self._pred, *_CONSTANTS
        )

    def update(self, here: np.ndarray, values: np.ndarray) -> None:
        kernels.compiled().wp_update(
            self.errors,
            self.true,
            here,
            self._sub,
            self._pred,
            np.ascontiguousarray(values, np.int64),
            EXTRA,
        )


def whole_pass(x: np.ndarray, steps, offsets: np.ndarray, top: int):
    """The weighted predictor's (prediction, largest neighbouring error) (n, pixels in schedule
    order) of the padded planes x (n, L), known whole: computed diagonal by diagonal, as the
    decoder will."""
    r = np.ascontiguousarray(x.T, np.int32)
    state = PixelMajorState(*r.shape)
    total = sum(len(here) for here in steps)
    # int32: values and errors of 16-bit data (<< 3) fit; kept for the whole chunk: half the memory
    preds, errors = np.empty((r.shape[1], total), np.int32), np.empty((r.shape[1], total), np.int32)
    done = 0
    for here in steps:  # in place: pieces joined at the end would hold both at once
        pred, error = state.predict(r, here, offsets, top)
        state.update(here, r[here].T)
        preds[:, done : done + len(here)], errors[:, done : done + len(here)] = pred, error
        done += len(here)
    return preds, errors
