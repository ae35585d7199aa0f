"""Flax NNX modules: the analysis transform g_a, the synthesis transform g_s, and the prior.

The model codes *tiles* of the native size (28x28 for Fashion-MNIST): any H x W is padded
to a multiple of the tile by edge replication and cropped back, so the tile is the total
stride. Within a tile the transforms are global. That choice is measured, not assumed:
aligned, centred datasets have strong long-range correlations (a sleeve predicts the
other sleeve), which global transforms exploit and small-kernel convolutional stacks do
not; a 95k-parameter convolutional model reached 26.2 dB at 196 bytes/image after six
epochs here, where the PCA coder needs 99 (benchmarks/results/conv-attempt-train.log).

g_a(x) = (x - m) W_a + f_a(x),  g_s(ŷ) = ŷ W_s + m + f_s(ŷ)

W_a, W_s start as the PCA basis of the training data and f_a, f_s (small MLPs) start at
zero, so training starts from the classical transform coder and learns away from it.
The latent has one element per pixel; elements that carry nothing cost nothing.

Each quality level q has a per-element gain (before rounding) and inverse gain (after).
The prior is a mixture with explicit selection: M clusters, each a Gaussian per latent
element and quality (learned mean and scale). The encoder picks, per tile, the cluster
that codes it in the fewest bits and sends its index first; images of different kinds
(a sandal, a coat) get different means and scales, as a per-class PCA coder would.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from codec.levels.entropy import LIKELIHOOD_MIN, SCALE_MIN  # shared with the frozen form
from codec.levels.tile_config import ModelConfig

# The transforms as pure functions of a parameter dict (JAX); coding runs their integer twin.


def context(params: dict, g: int, latents, quality_index, cluster):
    """c_g: the decoder's latents of the groups before g (N, bounds[g]), after the inverse gain
    -> (mean shift (N, n) before the gain, scale shift (N, n) in rungs of the scale ladder)."""
    name = f"context{g}"
    out = branch(
        params,
        name,
        latents,
        params[f"{name}/quality"][quality_index],
        params[f"{name}/cluster"][cluster],
    )
    n = out.shape[-1] // 2
    return out[..., :n], out[..., n:]


def branch(params: dict, name: str, x, *extra):
    """gelu(x K1 + b1 + extra...) K2 + b2: ``extra`` terms are added to the hidden units' input,
    in order."""
    pre = x @ params[f"{name}/inner/kernel"] + params[f"{name}/inner/bias"]
    for term in extra:
        pre = pre + term
    inner = jax.nn.gelu(pre)
    return inner @ params[f"{name}/outer/kernel"] + params[f"{name}/outer/bias"]


def analysis(params: dict, x):
    """g_a: tiles (N, P) in [0, 1] -> latents (N, P), before the quality's gain."""
    return (x - params["pixel_mean"]) @ params["analysis_linear"] + branch(
        params, "analysis_branch", x
    )


def synthesis(params: dict, y):
    """g_s: latents (N, P), after the inverse gain -> tiles (N, P) in [0, 1] (unclipped)."""
    return (
        y @ params["synthesis_linear"]
        + params["pixel_mean"]
        + branch(params, "synthesis_branch", y)
    )


class Branch(nnx.Module):
    """A small MLP whose output starts at exactly zero: the nonlinear correction of a linear map
    (applied by ``branch``)."""

    def __init__(self, dim: int, hidden: int, rngs: nnx.Rngs):
        self.inner = nnx.Linear(dim, hidden, rngs=rngs)
        self.outer = nnx.Linear(hidden, dim, kernel_init=nnx.initializers.zeros, rngs=rngs)


class Context(nnx.Module):
    """c_g (``context``): starts at zero, so the prior starts as the clusters' alone."""

    def __init__(self, before: int, size: int, cfg: ModelConfig, rngs: nnx.Rngs):
        self.inner = nnx.Linear(before, cfg.context_hidden, rngs=rngs)
        self.quality = nnx.Param(jnp.zeros((cfg.qualities, cfg.context_hidden)))
        self.cluster = nnx.Param(jnp.zeros((cfg.clusters, cfg.context_hidden)))
        self.outer = nnx.Linear(
            cfg.context_hidden, 2 * size, kernel_init=nnx.initializers.zeros, rngs=rngs
        )


class Codec(nnx.Module):
    """Transforms plus prior. Tiles are flattened: x (N, P) in [0, 1], P = tile pixels."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        p, q, m = cfg.pixels, cfg.qualities, cfg.clusters
        self.cfg = cfg
        self.pixel_mean = nnx.Param(jnp.full((p,), 0.5))
        self.analysis_linear = nnx.Param(jnp.eye(p))
        self.synthesis_linear = nnx.Param(jnp.eye(p))
        self.analysis_branch = Branch(p, cfg.hidden, rngs)
        self.synthesis_branch = Branch(p, cfg.hidden, rngs)
        self.log_gain = nnx.Param(jnp.zeros((q, p)))
        self.log_inv_gain = nnx.Param(jnp.zeros((q, p)))
        self.mean = nnx.Param(jnp.zeros((m, q, p)))
        self.log_scale = nnx.Param(jnp.zeros((m, q, p)))
        self.cluster_logits = nnx.Param(jnp.zeros((q, m)))
        b = cfg.bounds
        for g in range(1, len(b) - 1):
            setattr(self, f"context{g}", Context(b[g], b[g + 1] - b[g], cfg, rngs))

    def params(self) -> dict:
        """The parameters as a flat dict keyed like ``param_shapes``."""
        return {
            "/".join(map(str, path)): v[...]
            for path, v in nnx.to_flat_state(nnx.state(self, nnx.Param))
        }

    def analysis(self, x):
        """g_a: (N, P) -> (N, P), before the quality's gain."""
        return analysis(self.params(), x)

    def synthesis(self, y):
        """g_s: (N, P), after the inverse gain -> (N, P) pixels in [0, 1] (unclipped)."""
        return synthesis(self.params(), y)

    def context(self, g: int, latents, quality_index, cluster):
        """Group g's (mean shift before the gain, scale shift in ladder rungs), each (N, size)."""
        return context(self.params(), g, latents, quality_index, cluster)

    def gain(self, quality_index):
        return jnp.exp(self.log_gain[...][quality_index])  # (N, P)

    def inv_gain(self, quality_index):
        return jnp.exp(self.log_inv_gain[...][quality_index])

    def prior(self, quality_index):
        """(mean, scale) each (N, M, P), and cluster bits (N, M), for a vector of quality
        indices."""
        mean = jnp.moveaxis(self.mean[...][:, quality_index], 1, 0)
        scale = SCALE_MIN + jnp.exp(jnp.moveaxis(self.log_scale[...][:, quality_index], 1, 0))
        cluster_bits = -jax.nn.log_softmax(
            self.cluster_logits[...][quality_index], axis=-1
        ) / jnp.log(2.0)
        return mean, scale, cluster_bits


def gaussian_bits(v, scale):
    """Bits of the unit-width bin around v under N(0, scale): -log2(Φ((½-|v|)/s) -
    Φ((-½-|v|)/s))."""
    v = jnp.abs(v)
    upper = jax.scipy.special.ndtr((0.5 - v) / scale)
    lower = jax.scipy.special.ndtr((-0.5 - v) / scale)
    return -jnp.log2(jnp.maximum(upper - lower, LIKELIHOOD_MIN))


def initial_gains(qualities: int) -> np.ndarray:
    """Gains (in 1/[0,1]-pixel units) spanning quantizer steps of ~120 to ~13 pixel levels,
    the range where the PCA coder goes from ~22 to ~38 dB; training then tunes them."""
    return np.geomspace(255.0 / 120.0, 255.0 / 13.0, qualities)


def _kmeans(
    points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 15
) -> np.ndarray:
    """Plain Lloyd's k-means with k-means++ seeding; returns the labels."""
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d = np.min([((points - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(points[rng.choice(len(points), p=d / d.sum())])
    centres = np.array(centres)
    for _ in range(iterations):
        d = (points**2).sum(1)[:, None] - 2 * points @ centres.T + (centres**2).sum(1)[None]
        labels = d.argmin(1)
        for j in range(k):
            if (labels == j).any():
                centres[j] = points[labels == j].mean(0)
    return labels


def init_from_data(model: Codec, tiles: np.ndarray, *, seed: int = 0, sample: int = 20000) -> None:
    """Start from the PCA coder of ``tiles`` (N, P) in [0, 1]: PCA basis, per-cluster statistics."""
    rng = np.random.default_rng(seed)
    x = tiles[rng.permutation(len(tiles))[:sample]].astype(np.float64)
    mean = x.mean(0)
    eigval, eigvec = np.linalg.eigh(np.cov(x - mean, rowvar=False))
    basis = eigvec[:, ::-1]
    coefficients = (x - mean) @ basis
    labels = _kmeans(coefficients[:, :32], model.cfg.clusters, rng)  # cluster on the coarse shape
    gains = initial_gains(model.cfg.qualities)
    m, q, p = model.cfg.clusters, model.cfg.qualities, model.cfg.pixels
    cluster_mean, cluster_std, counts = np.zeros((m, p)), np.ones((m, p)), np.ones(m)
    for j in range(m):
        members = coefficients[labels == j]
        counts[j] = len(members) + 1
        if len(members) > 1:
            cluster_mean[j], cluster_std[j] = members.mean(0), members.std(0) + 1e-3
    model.pixel_mean[...] = jnp.asarray(mean, jnp.float32)
    model.analysis_linear[...] = jnp.asarray(basis, jnp.float32)
    model.synthesis_linear[...] = jnp.asarray(basis.T, jnp.float32)
    model.log_gain[...] = jnp.asarray(np.log(gains)[:, None] * np.ones((q, p)), jnp.float32)
    model.log_inv_gain[...] = -model.log_gain[...]
    model.mean[...] = jnp.asarray(cluster_mean[:, None, :] * gains[None, :, None], jnp.float32)
    scale = cluster_std[:, None, :] * gains[None, :, None]
    model.log_scale[...] = jnp.asarray(np.log(np.maximum(scale - SCALE_MIN, 1e-2)), jnp.float32)
    model.cluster_logits[...] = jnp.asarray(
        np.log(counts / counts.sum())[None, :] * np.ones((q, 1)), jnp.float32
    )


def count_flops(cfg: ModelConfig) -> dict:
    """Operations per tile: multiply-adds x 2 for g_a, g_s and the context networks, plus the
    encoder's cluster choice."""
    p, h, m = cfg.pixels, cfg.hidden, cfg.clusters
    linear = 2 * p * p
    branch = 2 * 2 * p * h
    # per element and cluster: subtract the mean, round, look the cost up, add it
    choice = 4 * m * p
    b = cfg.bounds
    context = sum(
        2 * cfg.context_hidden * (b[g] + 2 * (b[g + 1] - b[g])) for g in range(1, len(b) - 1)
    )
    return {"encode": linear + branch + choice + context, "decode": linear + branch + context}
