"""The lossless coder's tables as they adapt to what is coded (in integers, the encoder and the
decoder alike; the counting compiled in ``_kernels.count``).

Each leaf's table starts as the model's (worth ``prior`` symbols: its counts are the table itself,
2^24, and each symbol coded adds 2^24 / prior, so the table's tail keeps its shape) and follows
the symbols coded in it: a leaf's table is remade once the weight added since it was last made
reaches 1/REFRESH of its total, and its counts are halved past HALVE_AT (older images count less;
it also keeps counts times 2^24 within int64).
"""

from __future__ import annotations

import functools

import numpy as np

from bitstream.coder import PRECISION, Tables
from codec.levels import hybrid, kernels

REFRESH = 8
HALVE_AT = 1 << 38


def _uniform_tables(depth: int) -> list[np.ndarray]:
    """Tables for k = 1..depth raw bits: 2^k equal symbols (2^(24-k) - 1 each) and an escape of
    2^k."""
    return [
        np.append(np.full(1 << k, (1 << (PRECISION - k)) - 1, np.uint32), np.uint32(1 << k))
        for k in range(1, depth + 1)
    ]


@functools.lru_cache(maxsize=16)
def raw_tables(depth: int) -> Tables:
    """Tables 0..depth-1 alone (k + 1 raw bits each), numbered as in ``AdaptiveTables``: what a
    format-7 lossless stream's form and own tree are written with (its pixels are the compiled
    pass's), made once per depth instead of copying a model's leaf tables per chunk."""
    return Tables(np.zeros(depth, np.int64), _uniform_tables(depth))


class AdaptiveTables(Tables):
    """The coder's tables as they adapt to what is coded (the encoder and decoder update them
    alike, in integers): tables 0..depth-1 are the raw bits' (uniform), then each leaf's current
    table. Tables are only ever added, so a symbol's table number stays valid until the stream is
    finished."""

    def __init__(self, rows: np.ndarray, depth: int, prior: int):
        self.t, self.width = hybrid.tokens_per_sign(depth), rows.shape[1]
        uniform = _uniform_tables(depth)
        self.lows = np.concatenate([np.zeros(depth, np.int64), np.full(len(rows), -(self.t - 1))])
        self.sizes = np.array(
            [len(f) - 1 for f in uniform] + [self.width - 1] * len(rows), np.int64
        )
        self.freqs = [*uniform, *rows]
        self._models = [None] * len(self.freqs)
        self.current = np.arange(depth, depth + len(rows))  # each leaf's table now
        self.counts = np.ascontiguousarray(rows, np.int64)  # the compiled count reads it row by row
        self.fresh = np.zeros(len(rows), np.int64)
        self.weight = (1 << PRECISION) // prior  # of one coded symbol

    def __len__(self) -> int:
        return len(self.freqs)

    def _added(self, rows: np.ndarray) -> np.ndarray:
        """Append leaf tables; their numbers."""
        first = len(self.freqs)
        self.freqs.extend(rows)
        self._models.extend([None] * len(rows))
        self.lows = np.concatenate([self.lows, np.full(len(rows), -(self.t - 1))])
        self.sizes = np.concatenate([self.sizes, np.full(len(rows), self.width - 1)])
        return np.arange(first, first + len(rows))

    def restart(self, rows: np.ndarray, prior: int) -> None:
        """Leaves of another tree from here on (an image's own): tables added for them, the old
        kept."""
        self.current = self._added(rows)
        self.counts = np.ascontiguousarray(rows, np.int64)  # the compiled count reads it row by row
        self.fresh = np.zeros(len(rows), np.int64)
        self.weight = (1 << PRECISION) // prior

    def update(self, leaves: np.ndarray, signed: np.ndarray) -> None:
        """Count the signed tokens just coded in their leaves; remake the tables of leaves that
        moved."""
        compiled = kernels.compiled()
        stale = compiled.count(
            self.counts,
            self.fresh,
            np.ascontiguousarray(leaves, np.int16).reshape(-1),
            np.ascontiguousarray(signed, np.int64).reshape(-1),
            self.t - 1,
            self.weight,
            REFRESH,
        )
        if stale.size:
            self._remake(stale)

    def _remake(self, leaves: np.ndarray) -> None:
        counts = self.counts[leaves]
        over = counts.sum(1) > HALVE_AT
        counts[over] = (counts[over] + 1) >> 1
        self.counts[leaves] = counts
        self.current[leaves] = self._added(integer_rows(counts))
        self.fresh[leaves] = 0


def integer_rows(counts: np.ndarray) -> np.ndarray:
    """Tables (m, S) uint32 summing to 2^24, each entry >= 1, from counts (m, S) >= 1, in integers
    only (the same on every machine): floor(c (2^24 - S) / total) + 1, the rest to the largest."""
    total = counts.sum(1, keepdims=True)
    f = counts * ((1 << PRECISION) - counts.shape[1]) // total + 1
    f[np.arange(len(f)), np.argmax(f, axis=1)] += (1 << PRECISION) - f.sum(1)
    return f.astype(np.uint32)
