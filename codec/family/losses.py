"""The family's objectives, as plain functions of arrays (tested against values computed by
hand): reconstruction, sparsity, contraction, the variational terms, UMAP's neighbour term."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

# The objectives, as functions of arrays (tested by hand).


def mse(x_hat, x):
    """Mean over images of the mean squared error per pixel."""
    return jnp.mean((x_hat - x) ** 2)


def l1_activity(code):
    """Mean over images of the sum of |code|."""
    return jnp.mean(jnp.sum(jnp.abs(code), axis=-1))


def kl_sparsity(code, rho: float):
    """Sum over code units of KL(rho || the unit's mean activation over the batch), activations in
    (0, 1)."""
    mean = jnp.clip(jnp.mean(code, axis=0), 1e-6, 1 - 1e-6)
    return jnp.sum(rho * jnp.log(rho / mean) + (1 - rho) * jnp.log((1 - rho) / (1 - mean)))


def jacobian_frobenius(encode, x):
    """Mean over images of ||d encode(x_i) / d x_i||_F^2."""
    per_image = jax.vmap(jax.jacrev(lambda xi: encode(xi[None])[0]))(x)  # (N, k, d)
    return jnp.mean(jnp.sum(per_image**2, axis=(1, 2)))


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)) per image, in nats (N,)."""
    return 0.5 * jnp.sum(mean**2 + jnp.exp(log_var) - log_var - 1.0, axis=-1)


def bernoulli_nll(logits, x):
    """-log p(x | logits) per image, in nats, for pixels in [0, 1] (the cross-entropy) (N,)."""
    return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=-1)


def gaussian_nll(mean, x, log_scale):
    """-log N(x; mean, exp(log_scale)^2) per image, in nats (N,)."""
    z = (x - mean) * jnp.exp(-log_scale)
    return jnp.sum(0.5 * z**2 + log_scale + 0.5 * math.log(2 * math.pi), axis=-1)


def logistic_nll(mean, log_scale, x):
    """-log P(x | mean, scale) per image, in nats, for pixels k / 255: the mass of the logistic's
    bin of width 1/255 around each, the end bins open (PixelCNN++'s discretized logistic, one
    component). A real code length of uint8 pixels, unlike the Bernoulli and Gaussian densities
    (N,)."""
    log_scale = jnp.maximum(log_scale, -7.0)
    inv = jnp.exp(-log_scale)
    centred = x - mean
    plus, minus = inv * (centred + 0.5 / 255), inv * (centred - 0.5 / 255)
    log_cdf_plus = plus - jax.nn.softplus(plus)  # log sigmoid(plus): the bottom bin
    log_survival_minus = -jax.nn.softplus(minus)  # log (1 - sigmoid(minus)): the top bin
    delta = jax.nn.sigmoid(plus) - jax.nn.sigmoid(minus)
    mid = inv * centred  # where delta underflows: the density at the centre times the bin width
    log_mid = mid - log_scale - 2.0 * jax.nn.softplus(mid) - math.log(255.0)
    inner = jnp.where(delta > 1e-5, jnp.log(jnp.maximum(delta, 1e-12)), log_mid)
    log_p = jnp.where(
        x < 0.5 / 255, log_cdf_plus, jnp.where(x > 1 - 0.5 / 255, log_survival_minus, inner)
    )
    return -jnp.sum(log_p, axis=-1)


# UMAP's curve for min_dist 0.1, spread 1: q(d) = 1 / (1 + A d^(2B)) (umap-learn's find_ab_params).
UMAP_A, UMAP_B = 1.577, 0.895


def umap_cross_entropy(code, neighbour, negatives: int = 5, key=None):
    """Mean over pairs of UMAP's fuzzy cross-entropy in the code: -log q for each (code, neighbour)
    pair of the graph, -log(1 - q) for ``negatives`` pairings of each code with others of the batch
    (shifted, not drawn: the batch is already a random sample) (Sainburg et al. 2021, parametric
    UMAP)."""

    def q(a, b):
        d2 = jnp.sum((a - b) ** 2, axis=-1)
        return 1.0 / (1.0 + UMAP_A * (d2 + 1e-12) ** UMAP_B)

    attract = -jnp.log(jnp.clip(q(code, neighbour), 1e-4, 1.0))
    repel = sum(
        -jnp.log(jnp.clip(1.0 - q(code, jnp.roll(neighbour, s + 1, axis=0)), 1e-4, 1.0))
        for s in range(negatives)
    )
    return jnp.mean(attract + repel)


def neighbour_graph(x: np.ndarray, k: int = 15, dims: int = 50) -> np.ndarray:
    """Each row's ``k`` nearest other rows (N, k), by Euclidean distance in its top ``dims``
    principal components (exact, in blocks: 60,000 images take ~20 s on two cores)."""
    x = np.asarray(x, np.float32)
    centred = x - x.mean(0)
    basis = np.linalg.svd(centred[:: max(1, len(x) // 10_000)], full_matrices=False)[2][:dims]
    p = centred @ basis.T
    sq = (p**2).sum(1)
    out = np.empty((len(p), k), np.int64)
    for start in range(0, len(p), 2048):
        block = p[start : start + 2048]
        d = sq[start : start + 2048, None] - 2 * block @ p.T + sq[None]
        d[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
        out[start : start + 2048] = np.argpartition(d, k, axis=1)[:, :k]
    return out


def corrupt(x, key, noise: float, mask: float, blind: bool = False):
    """The denoising kind's input: Gaussian noise of σ ``noise`` (``blind``: of a σ drawn per image
    from [0, noise]) and/or a ``mask`` share of pixels zeroed."""
    k1, k2, k3 = jax.random.split(key, 3)
    if noise:
        sigma = noise * jax.random.uniform(k3, (len(x), 1)) if blind else noise
        x = x + sigma * jax.random.normal(k1, x.shape)
    if mask:
        x = jnp.where(jax.random.uniform(k2, x.shape) < mask, 0.0, x)
    return x
