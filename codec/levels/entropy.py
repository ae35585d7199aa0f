"""The latent entropy model in its two modes.

Training mode lives in ``codec.training.tile_net`` (``gaussian_bits``: differentiable bits of a
noisy or rounded latent under a Gaussian prior). Coding mode is this module: ``freeze`` turns the
learned prior into integer tables once, after training, and everything that codes
reads only those stored integers, never floats recomputed at coding time. That is what
makes a file decode identically on every machine.

The frozen form (as CompressAI's Gaussian conditional does): a fixed ladder of scales,
one integer table per rung (``PRECISION`` bits, symbols -K..K plus an escape for
anything outside), and, per cluster and quality level, the mean of every latent element and
its scale as a position on the ladder (float16; the nearest rung is its table, and context
networks shift it); plus one table per quality for the cluster choice itself.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from bitstream.coder import ESCAPE_BITS, PRECISION, Tables, integer_frequencies

SCALE_MIN = 0.11  # the prior's smallest scale: below it, rounding makes them indistinguishable

TAIL_SIGMAS = 7.0  # a table covers ±7σ; beyond it the escape symbol takes over
SCALE_MAX = 80.0
LADDER = 96
SCALE_LADDER = np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), LADDER))  # ~7% steps
RUNG = math.log(SCALE_MAX / SCALE_MIN) / (LADDER - 1)  # one step of the ladder in log-scale


@dataclasses.dataclass(frozen=True)
class FrozenPrior:
    """Integer tables and per-element indices: all that coding needs of the prior."""

    # (T,) int32: table t codes lows[t] .. lows[t] + len(freqs[t]) - 2, then escape
    lows: np.ndarray
    freqs: tuple[np.ndarray, ...]  # T arrays of uint32 summing to 2**PRECISION
    # (M, Q, P) float16: the scales as unrounded ladder positions, which context shifts refine
    rung: np.ndarray
    mean: np.ndarray  # (M, Q, P) float32
    gain: np.ndarray  # (Q, P) float32
    inv_gain: np.ndarray  # (Q, P) float32

    @functools.cached_property
    def index(self) -> np.ndarray:
        """(M, Q, P) uint8: the ladder table of each cluster, quality and element (the nearest
        rung)."""
        return nearest_rung(self.rung, self.ladder_size)

    @property
    def ladder_size(self) -> int:
        return len(self.freqs) - self.gain.shape[0]

    def cluster_table(self, quality_index: int) -> int:
        """The table that codes cluster choices at this quality (after the ladder's)."""
        return self.ladder_size + quality_index

    def tables(self) -> Tables:
        return Tables(self.lows, self.freqs)

    def bit_costs(self) -> np.ndarray:
        """(ladder size, 2·K_max + 3) float64: bits of symbol v under ladder table t at column
        v + K_max + 1; symbols outside a table cost its escape plus 16 bits (the escaped value)."""
        ladder = self.ladder_size
        k_max = int(-self.lows[:ladder].min())
        costs = np.empty((ladder, 2 * k_max + 3), np.float64)
        for t in range(ladder):
            freqs = self.freqs[t].astype(np.float64)
            bits = PRECISION - np.log2(freqs)
            costs[t] = bits[-1] + ESCAPE_BITS  # escape
            k = -int(self.lows[t])
            costs[t, k_max + 1 - k : k_max + 2 + k] = bits[:-1]
        return costs


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.vectorize(math.erfc)(-np.asarray(x, np.float64) / math.sqrt(2.0))


LIKELIHOOD_MIN = 1e-9  # keeps log2 finite: one symbol never costs more than ~30 bits


def gaussian_bits(v: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Bits of the unit-width bin around v under N(0, scale), in float64: training's
    ``tile_net.gaussian_bits`` in numpy, for a level's ideal bits (an estimate, never coding)."""
    from scipy.special import ndtr  # 0.2 s to import (-X importtime): estimates only, so on use

    v = np.abs(np.asarray(v, np.float64))
    mass = ndtr((0.5 - v) / scale) - ndtr((-0.5 - v) / scale)
    return -np.log2(np.maximum(mass, LIKELIHOOD_MIN))


def integer_table(scale: float) -> tuple[int, np.ndarray]:
    """(low, freqs): integer frequencies of round(N(0, scale)) on -K..K plus escape."""
    k = int(min(max(math.ceil(TAIL_SIGMAS * scale), 1), 4095))
    edges = _normal_cdf((np.arange(-k, k + 2) - 0.5) / scale)
    probs = np.append(np.diff(edges), 2.0 * _normal_cdf(np.array([(-k - 0.5) / scale]))[0])
    return -k, integer_frequencies(probs)


def rungs(scales: np.ndarray) -> np.ndarray:
    """Scales as (fractional) positions on the ladder, as stored: 0 at SCALE_MIN, one per RUNG of
    log-scale."""
    return ((np.log(scales) - math.log(SCALE_MIN)) / RUNG).astype(np.float16)


def nearest_rung(rung: np.ndarray, ladder: int) -> np.ndarray:
    """The table of each stored (float16) rung position: exact arithmetic, the same everywhere."""
    return np.clip(np.rint(rung.astype(np.float64)), 0, ladder - 1).astype(np.uint8)


def freeze(params: dict) -> FrozenPrior:
    """Freeze the learned prior (the model's parameters as numpy, by name) into integer tables."""
    ladder = [integer_table(float(s)) for s in SCALE_LADDER]
    logits = np.asarray(params["cluster_logits"], np.float64)  # (Q, M)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    # escape never used
    cluster_tables = [integer_frequencies(np.append(p / p.sum(), 0.0)) for p in probs]
    scales = SCALE_MIN + np.exp(np.asarray(params["log_scale"], np.float64))
    return FrozenPrior(
        lows=np.array([low for low, _ in ladder] + [0] * len(cluster_tables), np.int32),
        freqs=tuple(f for _, f in ladder) + tuple(cluster_tables),
        rung=rungs(scales),
        mean=np.asarray(params["mean"], np.float32),
        gain=np.exp(np.asarray(params["log_gain"], np.float64)).astype(np.float32),
        inv_gain=np.exp(np.asarray(params["log_inv_gain"], np.float64)).astype(np.float32),
    )
