"""The lossless coder's residual tokens: JPEG XL's hybrid integers (5/2/0). Magnitudes below
DIRECT are a token of their own; larger ones a token of their bit length and the next MSB bits,
then the rest raw. So a sign's magnitudes take at most 4 * depth + 12 tokens (44 for 8 bits, 76 for
16), whatever the depth.
"""

from __future__ import annotations

import numpy as np

DIRECT_BITS = 5
DIRECT = 1 << DIRECT_BITS  # magnitudes below this are their own token
MSB = 2  # bits after the leading one kept in a large magnitude's token


def tokens_per_sign(depth: int) -> int:
    """Tokens 0..T-1 code a magnitude of ``depth``-bit residuals (|e| < 2^depth)."""
    top = (1 << depth) - 1
    return int(token_of(np.array([top]))[0][0]) + 1 if top >= DIRECT else DIRECT


def token_of(magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(token, raw bits' value, raw bit count) of magnitudes >= 0 (JPEG XL's hybrid integer,
    5/2/0)."""
    u = np.asarray(magnitude, np.int64)
    big = u >= DIRECT
    # bit length - 1: exact
    n = np.where(big, np.frexp(np.maximum(u, 1).astype(np.float64))[1].astype(np.int64) - 1, 0)
    extra = np.where(big, n - MSB, 0)
    token = np.where(
        big, DIRECT + (n - DIRECT_BITS) * (1 << MSB) + ((u >> extra) & ((1 << MSB) - 1)), u
    )
    return token, u & ((1 << extra) - 1), extra


def magnitude_of(token: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Inverse of ``token_of`` given the raw bits' value."""
    token = np.asarray(token, np.int64)
    big = token >= DIRECT
    n = (token - DIRECT) // (1 << MSB) + DIRECT_BITS
    extra = np.where(big, n - MSB, 0)
    high = ((1 << MSB) | ((token - DIRECT) & ((1 << MSB) - 1))) << extra
    return np.where(big, high + raw, token)


def raw_bits_of(token: np.ndarray) -> np.ndarray:
    """How many raw bits follow each token."""
    token = np.asarray(token, np.int64)
    return np.where(token >= DIRECT, (token - DIRECT) // (1 << MSB) + DIRECT_BITS - MSB, 0)


def signed(token, sign_negative):
    """Tokens with the residuals' signs: -(T-1)..T-1."""
    return np.where(sign_negative, -token, token)
