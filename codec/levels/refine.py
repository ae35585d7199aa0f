"""Encoder effort for the convolutional levels: each image's latents refined against the frozen
decoder (Yang et al. 2020, "Improving inference for neural image compression"), numpy only.

The analysis network's latents are a fast guess: nothing tells it what rounding does to this
image. With effort, the encoder looks for symbols ``s`` with a lower rate-distortion cost

    J(s) = λ · MSE(x, g_s(ŷ(s))) + bits(s) / pixels      (λ: the level's training λ)

by a few Adam steps on a continuous ``u`` (started at the analysis's unrounded symbols, each kept
between zero and its plain rounding, so that no symbol costs more bits than it did): the
distortion's gradient comes from a float copy of the integer synthesis at round(u) (straight
through), the rate's from the Gaussian bin probability of u under the level's frozen prior (the
hyper-latent, and so every table, stays as it was). The best ``round(u)`` seen is then coded and
decoded exactly, and kept only if its file is no larger and its exact J lower than the plain
encoding's: effort never makes a file larger, and the decoder and the format do not change.
"""

from __future__ import annotations

import math

import numpy as np

from codec.levels.convnet import ACT_BITS, WEIGHT_BITS
from codec.levels.entropy import SCALE_LADDER

# Adam steps per effort level (0: none, the default); each costs about two syntheses in float32
EFFORT_STEPS = (0, 6, 20, 60)
LEARNING_RATE = 0.15  # in quantization steps: a few steps can move a symbol across a rounding
ROWS = 1 << 14  # im2col rows per product: bounded memory


def float_layers(layers: list[dict]) -> list[tuple]:
    """(kernel, bias, relu) in real units, float32, of an integer stack of ``up`` layers."""
    out = []
    for layer in layers:
        kernel = layer["kernel"].astype(np.float32) / (1 << WEIGHT_BITS)
        bias = layer["bias"].astype(np.float32) / (1 << (ACT_BITS + WEIGHT_BITS))
        out.append((kernel, bias, layer["relu"]))
    return out


def _conv_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Stride-1 convolution with zero padding (k - 1) / 2: (N, H, W, C) -> (N, H, W, O)."""
    k, _, c, o = kernel.shape
    p = (k - 1) // 2
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    w = kernel.reshape(-1, o)
    rows = max(1, ROWS // max(1, x.shape[0] * x.shape[2]))
    blocks = []
    for r0 in range(0, x.shape[1], rows):
        r1 = min(x.shape[1], r0 + rows)
        band = padded[:, r0 : r1 + k - 1]
        windows = np.lib.stride_tricks.sliding_window_view(band, (k, k), axis=(1, 2))
        cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * c)
        blocks.append((cols @ w).reshape(x.shape[0], r1 - r0, x.shape[2], o))
    return np.concatenate(blocks, axis=1)


def _depth_to_space(x: np.ndarray) -> np.ndarray:
    n, h, w, c4 = x.shape
    c = c4 // 4
    return x.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c)


def _space_to_depth(x: np.ndarray) -> np.ndarray:
    n, h2, w2, c = x.shape
    h, w = h2 // 2, w2 // 2
    return x.reshape(n, h, 2, w, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h, w, 4 * c)


def synthesis_and_gradient(layers: list[tuple], y: np.ndarray, grad_of_output):
    """(output, d loss / d y): the float synthesis of ``y`` (N, h, w, m) in real units, and the
    gradient of a loss whose gradient at the output ``grad_of_output(output)`` gives."""
    masks, x = [], y
    for kernel, bias, relu in layers:
        x = _depth_to_space(_conv_same(x, kernel) + bias)
        masks.append(x > 0 if relu else None)
        if relu:
            x = x * masks[-1]
    g = grad_of_output(x)
    for (kernel, _, _), mask in zip(reversed(layers), reversed(masks), strict=True):
        if mask is not None:
            g = g * mask
        flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)
        g = _conv_same(_space_to_depth(g), np.ascontiguousarray(flipped))
    return x, g


def _phi(t: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)


def _cdf(t: np.ndarray) -> np.ndarray:
    """The standard normal CDF (Abramowitz & Stegun 7.1.26 for erf: within 1.5e-7)."""
    z = np.abs(t) / math.sqrt(2)
    k = 1 / (1 + 0.3275911 * z)
    poly = k * (
        0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429)))
    )
    erf = 1 - poly * np.exp(-z * z)
    return 0.5 * (1 + np.sign(t) * erf)


def rate_and_gradient(u: np.ndarray, sigma: np.ndarray) -> tuple[float, np.ndarray]:
    """(bits, d bits / d u) of symbols u under zero-mean Gaussians of scale ``sigma``, as the
    probability of u's unit bin."""
    hi, lo = (u + 0.5) / sigma, (u - 0.5) / sigma
    p = np.maximum(_cdf(hi) - _cdf(lo), 1e-9)
    bits = float(-np.log2(p).sum())
    grad = -(_phi(hi) - _phi(lo)) / (sigma * p * math.log(2))
    return bits, grad


def refined_symbols(plain: np.ndarray, start: np.ndarray, context: dict, steps: int) -> np.ndarray:
    """Integer symbols for the latents, from ``start`` (the unrounded symbols, float) by ``steps``
    Adam steps on J (the module's docstring); ``plain`` (the rounded ones) if nothing was better.

    ``context``: "layers" (``float_layers`` of the synthesis), "x" (the images as the
    synthesis's output should be, pixels, (N, H, W, C) float32, padded), "mask" (1 where a
    pixel is the image's, 0 on the padding), "sigma" (each symbol's prior scale), "to_latent"
    (s -> y in real units, affine: (scale, offset) per element), "lam" (the level's λ)."""
    x, mask, lam = context["x"], context["mask"], context["lam"]
    scale, offset = context["to_latent"]
    sigma = context["sigma"]
    pixels = float(mask[..., 0].sum())
    values = float(mask.sum())

    def cost_and_gradient(s: np.ndarray):
        error = {}

        def grad_of_output(out):
            diff = (out * 256.0 - x) * mask
            error["sq"] = float(np.sum(diff.astype(np.float64) ** 2))
            return diff * (2.0 * 256.0 * lam / values)

        _, g_y = synthesis_and_gradient(context["layers"], s * scale + offset, grad_of_output)
        bits, _ = rate_and_gradient(s, sigma)
        return lam * error["sq"] / values + bits / pixels, g_y * scale

    # each symbol stays between zero and where the analysis put it: under unimodal tables
    # centred on zero no move can cost bits, so the file shrinks or stays (the half-steps: what
    # still rounds there)
    low = np.minimum(plain, 0).astype(np.float32) - 0.49
    high = np.maximum(plain, 0).astype(np.float32) + 0.49
    u = np.clip(start.astype(np.float32), low, high)
    m, v = np.zeros_like(u), np.zeros_like(u)
    best, best_cost = plain, np.inf  # the first step's rounding is the plain one (ties aside)
    for t in range(1, steps + 1):
        s = np.round(u)
        cost, g_distortion = cost_and_gradient(s)
        if cost < best_cost:
            best, best_cost = s.astype(np.int64), cost
        _, g_rate = rate_and_gradient(u, sigma)  # the rate relaxed at u, not at its rounding
        g = g_distortion + g_rate / pixels
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = LEARNING_RATE * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-12)
        u = np.clip(u - step, low, high)
    s = np.round(u)
    if cost_and_gradient(s)[0] < best_cost:
        best = s.astype(np.int64)
    return best


def prior_scales(index: np.ndarray) -> np.ndarray:
    """Each symbol's prior scale, from its table's rung."""
    return SCALE_LADDER[index].astype(np.float32)
