"""The wavelet kind's transforms, in integers: exact, the same on every machine (numpy only).

- ``forward`` / ``inverse``: the CDF 9/7 wavelet (JPEG 2000's lossy filter) as four lifting
  steps with 12-bit fixed-point coefficients, each step's update rounded (an arithmetic shift),
  so every step is undone exactly by subtracting the same integer. The scaling step is left out:
  its gain is folded into each subband's quantizer step (``synthesis_norms``), which is where a
  lossy coder needs it anyway. Whole-sample symmetric extension at both ends; any length >= 1
  (the low half holds ceil(n/2) samples, the high half floor(n/2); a length-1 row stays as it is).
  Rows, then columns, then again on the low-low band, ``depth`` times.
- ``to_ycocg`` / ``from_ycocg``: the reversible YCoCg-R colour transform.

Pixels enter with ``FRACTION_BITS`` fractional bits (x4) and centred on zero, so the rounding of
the lifting steps and of the colour transform costs a sixteenth of what it would on the pixels.
"""

from __future__ import annotations

import functools

import numpy as np

FRACTION_BITS = 2  # pixels are coded x4: the transforms' rounding stays far below the quantizer's
MAX_DEPTH = 6  # decomposition levels at most (a 512 x 512 image: an 8 x 8 low-low band)
MIN_LOW = 8  # another level only while the low-low band keeps at least this many rows and columns
_SHIFT = 12
# CDF 9/7 lifting coefficients (alpha, beta, gamma, delta) x 2^12, rounded
_LIFTS = (-6497, -217, 3616, 1817)
_FLOAT_LIFTS = (-1.586134342059924, -0.052980118572961, 0.882911075530934, 0.443506852043971)


def depth_for(height: int, width: int) -> int:
    """Decomposition levels for an image of this size: as many as keep the low-low band at least
    MIN_LOW on its shorter side, at most MAX_DEPTH (0 for images under 2 * MIN_LOW)."""
    side, depth = min(height, width), 0
    while depth < MAX_DEPTH and -(-side // (2 << depth)) >= MIN_LOW:
        depth += 1
    return depth


def _after(even: np.ndarray, m: int) -> np.ndarray:
    """For each of the m odd samples, the sum of the even samples on either side (the last one
    mirrored when the row's length is even)."""
    if even.shape[-1] == m:
        even = np.concatenate([even, even[..., -1:]], axis=-1)
    return even[..., :-1] + even[..., 1:]


def _before(odd: np.ndarray, k: int) -> np.ndarray:
    """For each of the k even samples, the sum of the odd samples on either side (mirrored at the
    start, and at the end when the row's length is odd)."""
    ends = [odd[..., :1], odd] + ([odd[..., -1:]] if k > odd.shape[-1] else [])
    padded = np.concatenate(ends, axis=-1)
    return padded[..., :-1] + padded[..., 1:]


def _update(total: np.ndarray, lift: int) -> np.ndarray:
    return (lift * total + (1 << (_SHIFT - 1))) >> _SHIFT


def _lift_1d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The four lifting steps on the last axis: (low (..., ceil n/2), high (..., floor n/2))."""
    even, odd = x[..., 0::2].copy(), x[..., 1::2].copy()
    m = odd.shape[-1]
    if m == 0:
        return even, odd
    k = even.shape[-1]
    a, b, c, d = _LIFTS
    odd += _update(_after(even, m), a)
    even += _update(_before(odd, k), b)
    odd += _update(_after(even, m), c)
    even += _update(_before(odd, k), d)
    return even, odd


def _unlift_1d(even: np.ndarray, odd: np.ndarray) -> np.ndarray:
    """Inverse of ``_lift_1d``: the same steps subtracted in reverse order, then interleaved."""
    even, odd = even.copy(), odd.copy()
    m = odd.shape[-1]
    if m:
        k = even.shape[-1]
        a, b, c, d = _LIFTS
        even -= _update(_before(odd, k), d)
        odd -= _update(_after(even, m), c)
        even -= _update(_before(odd, k), b)
        odd -= _update(_after(even, m), a)
    out = np.empty(even.shape[:-1] + (even.shape[-1] + m,), even.dtype)
    out[..., 0::2], out[..., 1::2] = even, odd
    return out


def forward(planes: np.ndarray, depth: int) -> dict:
    """Subbands of integer planes (P, H, W): {"LL": low-low at ``depth``, (d, o): the detail band
    of level d (1 finest) and orientation o (1: high across, low down; 2: low across, high down;
    3: high both)}, all int64."""
    low = planes.astype(np.int64)
    bands = {}
    for d in range(1, depth + 1):
        lo, hi = _lift_1d(low)  # across (the last axis)
        ll, lh = (t.swapaxes(1, 2) for t in _lift_1d(lo.swapaxes(1, 2)))
        hl, hh = (t.swapaxes(1, 2) for t in _lift_1d(hi.swapaxes(1, 2)))
        bands[(d, 1)], bands[(d, 2)], bands[(d, 3)] = hl, lh, hh
        low = ll
    bands["LL"] = low
    return bands


def inverse(bands: dict, depth: int, unlift=None) -> np.ndarray:
    """Integer planes back from ``forward``'s subbands (exactly, when nothing was changed); with
    ``unlift`` (even, odd) -> joined rows, another one-dimensional step (the float one)."""
    unlift = unlift or _unlift_1d
    low = bands["LL"]
    for d in range(depth, 0, -1):
        lo = unlift(low.swapaxes(1, 2), bands[(d, 2)].swapaxes(1, 2)).swapaxes(1, 2)
        hi = unlift(bands[(d, 1)].swapaxes(1, 2), bands[(d, 3)].swapaxes(1, 2)).swapaxes(1, 2)
        low = unlift(lo, hi)
    return low


def band_shapes(height: int, width: int, depth: int) -> dict:
    """The shape (rows, columns) of each of ``forward``'s subbands for one plane."""
    shapes = {}
    h, w = height, width
    for d in range(1, depth + 1):
        hl, hh = (h + 1) // 2, h // 2
        wl, wh = (w + 1) // 2, w // 2
        shapes[(d, 1)], shapes[(d, 2)], shapes[(d, 3)] = (hl, wh), (hh, wl), (hh, wh)
        h, w = hl, wl
    shapes["LL"] = (h, w)
    return shapes


@functools.cache
def synthesis_norms(depth: int = MAX_DEPTH, size: int = 1024) -> dict:
    """The L2 norm of each subband's synthesis function (the pixels one unit of a coefficient
    becomes), in float, for training: {(d, o) or ("LL", d): norm}. A quantizer step divided by
    the norm spreads the same error over the pixels from every band."""
    norms = {}
    for d in range(1, depth + 1):
        for o in (0, 1, 2, 3):
            bands = {k: np.zeros((1, *v)) for k, v in band_shapes(size, size, d).items()}
            key = "LL" if o == 0 else (d, o)
            h, w = bands[key].shape[1:]
            bands[key][0, h // 2, w // 2] = 1.0
            out = _float_inverse(bands, d)
            norms[("LL", d) if o == 0 else (d, o)] = float(np.sqrt(np.sum(out**2)))
    return norms


def _float_inverse(bands: dict, depth: int) -> np.ndarray:
    """``inverse`` without rounding (float lifting), for the synthesis norms."""

    def unlift(even, odd):
        even, odd = even.copy(), odd.copy()
        m, k = odd.shape[-1], even.shape[-1]
        a, b, c, d = _FLOAT_LIFTS
        if m:
            even -= d * _before(odd, k)
            odd -= c * _after(even, m)
            even -= b * _before(odd, k)
            odd -= a * _after(even, m)
        out = np.empty(even.shape[:-1] + (even.shape[-1] + m,))
        out[..., 0::2], out[..., 1::2] = even, odd
        return out

    return inverse(bands, depth, unlift)


def to_ycocg(rgb: np.ndarray) -> np.ndarray:
    """YCoCg-R of integer planes (N, 3, H, W) as (N, 3, H, W): Y, Co (orange), Cg (green)."""
    r, g, b = (rgb[:, k].astype(np.int64) for k in range(3))
    co = r - b
    t = b + (co >> 1)
    cg = g - t
    y = t + (cg >> 1)
    return np.stack([y, co, cg], axis=1)


def from_ycocg(ycc: np.ndarray) -> np.ndarray:
    """Inverse of ``to_ycocg`` (exact)."""
    y, co, cg = ycc[:, 0], ycc[:, 1], ycc[:, 2]
    t = y - (cg >> 1)
    g = cg + t
    b = t - (co >> 1)
    return np.stack([b + co, g, b], axis=1)


def to_coded(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W[, 3]) -> the planes the wavelet codes (N * C, H, W) int64: pixels x4
    centred on zero, colour as YCoCg-R."""
    x = (images.astype(np.int64) - 128) << FRACTION_BITS
    if images.ndim == 3:
        return x
    ycc = to_ycocg(x.transpose(0, 3, 1, 2))
    return ycc.reshape(-1, *images.shape[1:3])


def from_coded(planes: np.ndarray, n: int, shape) -> np.ndarray:
    """Inverse of ``to_coded`` (rounded, clipped to 0..255): uint8 images (N, H, W[, 3])."""
    if len(shape) == 3:
        planes = from_ycocg(planes.reshape(n, 3, *shape[:2])).transpose(0, 2, 3, 1)
    x = ((planes + (1 << (FRACTION_BITS - 1))) >> FRACTION_BITS) + 128
    return np.clip(x, 0, 255).astype(np.uint8)
