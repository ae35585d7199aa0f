"""The coding transforms in exact fixed-point arithmetic: the same pixels on every machine.

Training runs the transforms in float32 under JAX (``codec.training.tile_net``). Coding cannot:
a float matrix product's rounding depends on how the library blocks and orders its sums,
which changes with the CPU, the thread count and the batch size, so a decoder on another
machine (or the same one, decoding a different batch) would produce slightly different
pixels, and an encoder could round a latent the other way. Following Ballé, Johnston and
Minnen, "Integer networks for data compression with latent-variable models" (ICLR 2019),
the coding path is an integer network derived from the trained weights at load time:

- every matrix product multiplies integers by integers. It runs on float64 BLAS, which is
  exact for integers as long as every partial sum stays below 2**53; each layer's shift is
  chosen from its weights so that the worst case (bounded input x largest column sum of
  absolute weights) does, and that bound is checked when the model is loaded;
- between products only elementwise + - * / and rounding happen (IEEE 754 rounds each of
  them correctly, so they are the same everywhere; numpy never fuses them);
- the one nonlinearity, GELU, is a table over a fixed grid whose entries are exact (see
  ``gelu_table``), never a library's tanh or exp.

It also keeps JAX out of coding altogether, which makes the command line start fast.
"""

from __future__ import annotations

import functools
import math
from decimal import ROUND_HALF_EVEN, Context, Decimal

import numpy as np

# below 2**53 with a margin: every partial sum of a product stays exactly representable
EXACT = 2.0**52
MAX_SHIFT = 30  # weights get at most 30 fractional bits; more buys nothing over float16 weights
ACT_BITS = 12  # activations and hidden units carry 12 fractional bits (steps of 1/4096)
GELU_RANGE = 8  # the table covers [-8, 8]; beyond it GELU is 0 or the identity to ~1e-14
LATENT_BITS = 16  # the decoder's latents carry 16 fractional bits
LATENT_LIMIT = (
    4096.0  # latents (in [0,1]-pixel units) beyond this are clipped: no real tile comes near
)


class FixedLinear:
    """x_int @ W as exact integers: W is rounded to ``shift`` fractional bits, chosen so that
    no partial sum can reach 2**52 for inputs bounded by ``input_bound``."""

    def __init__(self, weight: np.ndarray, input_bound: float, what: str):
        weight = np.asarray(weight, np.float64)
        column = float(np.abs(weight).sum(0).max()) or 1.0
        self.shift = min(MAX_SHIFT, math.floor(math.log2(EXACT / (input_bound * column))) - 1)
        self.weight = np.round(np.ldexp(weight, self.shift))
        self.scale = 2.0**-self.shift
        worst = input_bound * float(np.abs(self.weight).sum(0).max())  # exact: integers < 2**53
        if self.shift < 8 or worst >= EXACT:
            raise ValueError(f"{what}: weights too large for exact fixed-point coding")

    def output_bound(self, input_bound: float) -> float:
        """The largest |output| (in real units) for inputs bounded by ``input_bound``."""
        return input_bound * float(np.abs(self.weight).sum(0).max()) * 2.0**-self.shift

    def __call__(self, x_int: np.ndarray) -> np.ndarray:
        """The exact product, scaled back to real units (the scaling is a power of two: exact)."""
        out = x_int @ self.weight
        out *= self.scale
        return out


@functools.lru_cache(maxsize=1)
def gelu_table() -> np.ndarray:
    """round(gelu(i / 2**ACT_BITS) * 2**ACT_BITS) for i over the grid, as float64 integers.

    gelu is JAX's default (tanh) form: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))). numpy's
    tanh may differ between machines in the last bit, which can only matter for an entry
    whose scaled value lies next to a rounding boundary; those few are recomputed with
    Python's decimal module, whose exp is correctly rounded. So the table is the same
    everywhere, and costs about a millisecond to build.
    """
    grid = np.arange(-GELU_RANGE << ACT_BITS, (GELU_RANGE << ACT_BITS) + 1)
    x = grid / float(1 << ACT_BITS)
    scaled = (
        0.5
        * x
        * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
        * (1 << ACT_BITS)
    )
    table = np.round(scaled)
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6):
        table[i] = _gelu_exact(int(grid[i]))
    return table


def _gelu_exact(i: int) -> int:
    ctx = Context(prec=40)
    x = ctx.divide(Decimal(i), Decimal(1 << ACT_BITS))
    pi = Decimal("3.141592653589793238462643383279502884197")
    z = ctx.multiply(
        ctx.sqrt(ctx.divide(Decimal(2), pi)),
        ctx.add(x, ctx.multiply(Decimal("0.044715"), x * x * x)),
    )
    e = ctx.exp(2 * z)
    value = Decimal("0.5") * x * (1 + ctx.divide(e - 1, e + 1)) * (1 << ACT_BITS)
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


def gelu_fixed(h: np.ndarray) -> np.ndarray:
    """GELU of real-valued h, as integers with ACT_BITS fractional bits, by table lookup."""
    i = h * float(1 << ACT_BITS)  # a power of two: exact
    np.round(i, out=i)
    limit = GELU_RANGE << ACT_BITS
    position = np.clip(i, -limit, limit)
    position += limit
    looked_up = gelu_table().take(position.astype(np.intp))
    return np.where(i > limit, i, looked_up)  # above the table GELU is x; below, 0 (= table[0])


class FixedBranch:
    """f(x) = gelu(x K1 + b1) K2 + b2 with integer products; x given as integers with
    ``x_scale``."""

    def __init__(
        self, params: dict, name: str, input_bound: float, x_scale: float, extra_bound: float = 0.0
    ):
        k1 = np.asarray(params[f"{name}/inner/kernel"], np.float64)
        self.b1 = np.asarray(params[f"{name}/inner/bias"], np.float64)
        self.b2 = np.asarray(params[f"{name}/outer/bias"], np.float64)
        self.x_scale = x_scale
        self.inner = FixedLinear(k1, input_bound, f"{name}/inner")
        pre_bound = (
            self.inner.output_bound(input_bound) * x_scale
            + float(np.abs(self.b1).max())
            + extra_bound
        )
        hidden_bound = pre_bound * (1 << ACT_BITS) + 1.0
        self.outer = FixedLinear(
            np.asarray(params[f"{name}/outer/kernel"], np.float64), hidden_bound, f"{name}/outer"
        )

    def __call__(self, x_int: np.ndarray, extra=0.0) -> np.ndarray:
        """``extra``: added to the hidden units' input (bounded by the constructor's
        ``extra_bound``)."""
        pre = self.inner(x_int)
        pre *= self.x_scale
        pre += self.b1
        pre += extra
        out = self.outer(gelu_fixed(pre))
        out *= 2.0**-ACT_BITS
        out += self.b2
        return out


def fixed_latents(latents: np.ndarray) -> np.ndarray:
    """Decoder latents (real, after the inverse gain) as integers with LATENT_BITS fractional
    bits."""
    out = np.clip(latents, -LATENT_LIMIT, LATENT_LIMIT)
    out *= float(1 << LATENT_BITS)
    return np.round(out, out=out)


class FixedContext:
    """Context network c_g (``tile_net.context``) with integer products."""

    def __init__(self, params: dict, g: int):
        name = f"context{g}"
        self.quality = np.asarray(params[f"{name}/quality"], np.float64)
        self.cluster = np.asarray(params[f"{name}/cluster"], np.float64)
        extra = float(np.abs(self.quality).max() + np.abs(self.cluster).max())
        self.branch = FixedBranch(
            params, name, LATENT_LIMIT * (1 << LATENT_BITS), 2.0**-LATENT_BITS, extra
        )

    def __call__(
        self, fixed: np.ndarray, quality_index: int, cluster: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decoder latents of the groups before g as ``fixed_latents`` (N, bounds[g]) -> (mean
        shift, rung shift), each (N, size)."""
        out = self.branch(fixed, self.quality[quality_index] + self.cluster[cluster])
        n = out.shape[1] // 2
        return out[:, :n], out[:, n:]


class IntegerTransforms:
    """g_a and g_s of ``codec.training.tile_net`` as integer networks (parameters as numpy
    arrays)."""

    def __init__(self, params: dict):
        mean = np.asarray(params["pixel_mean"], np.float64)
        # g_a's input: (x - m) in 1/(255·256) units: pixels are integers, the mean gets 8
        # fractional bits
        self.centre = np.round(mean * (255 << 8))
        self.analysis_linear = FixedLinear(
            params["analysis_linear"],
            (255 << 8) + float(np.abs(self.centre).max()),
            "analysis_linear",
        )
        self.analysis_branch = FixedBranch(params, "analysis_branch", 255.0, 1.0 / 255.0)
        latent_bound = LATENT_LIMIT * (1 << LATENT_BITS)
        self.synthesis_linear = FixedLinear(
            params["synthesis_linear"], latent_bound, "synthesis_linear"
        )
        self.synthesis_branch = FixedBranch(
            params, "synthesis_branch", latent_bound, 2.0**-LATENT_BITS
        )
        self.mean = mean

    def analysis(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 tiles (N, P) -> latents (N, P) in float64, before the quality's gain."""
        x = pixels.astype(np.float64)
        linear = self.analysis_linear(x * 256.0 - self.centre) / (255 << 8)
        return linear + self.analysis_branch(x)

    def synthesis(self, latents: np.ndarray) -> np.ndarray:
        """Latents (N, P), after the inverse gain -> uint8 tiles (N, P)."""
        y = fixed_latents(latents)
        x = np.ldexp(self.synthesis_linear(y), -LATENT_BITS) + self.mean + self.synthesis_branch(y)
        return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
