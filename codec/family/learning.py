"""The family's training: each kind's loss handed to ``engine.make_step`` (one jitted step, never a
loop of its own)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from codec.family.losses import (
    corrupt,
    gaussian_kl,
    jacobian_frobenius,
    kl_sparsity,
    l1_activity,
    mse,
    neighbour_graph,
    umap_cross_entropy,
)
from codec.family.networks import FamilyConfig, Model, build, pixels
from codec.training import engine


def loss_fn(model: Model, batch, key):
    """(loss, metrics) of one batch of pixels (N, d) in [0, 1], as the kind says; with
    ``neighbours``, the batch is (2, N, d): images and one graph neighbour of each."""
    cfg = model.cfg
    if cfg.neighbours:
        x, near = batch
        loss, metrics = _objective(model, x, key)
        code, near_code = model.encode(x), model.encode(near)
        if cfg.kind == "variational":
            code, near_code = code[0], near_code[0]
        penalty = cfg.neighbours * umap_cross_entropy(code, near_code)
        metrics = {**metrics, "neighbours": penalty, "loss": loss + penalty}
        return loss + penalty, metrics
    return _objective(model, batch, key)


def _objective(model: Model, x, key):
    cfg = model.cfg
    if cfg.kind == "variational":
        mean, log_var = model.encode(x)
        code = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
        nll = model.nll(model.decode(code), x)
        kl = gaussian_kl(mean, log_var)
        loss = jnp.mean(nll + kl)
        return loss, {"loss": loss, "nll": jnp.mean(nll), "kl": jnp.mean(kl)}
    source = corrupt(x, key, cfg.noise, cfg.mask, cfg.blind) if cfg.kind == "denoising" else x
    code = model.encode(source)
    loss = mse(model.decode(code), x)
    metrics = {"mse": loss}
    if cfg.kind == "sparse":
        penalty = cfg.l1 * l1_activity(code) + cfg.beta * kl_sparsity(code, cfg.rho)
        loss, metrics["penalty"] = loss + penalty, penalty
    if cfg.kind == "contractive" and cfg.contraction:
        penalty = cfg.contraction * jacobian_frobenius(model.encode, source)
        loss, metrics["penalty"] = loss + penalty, penalty
    metrics["loss"] = loss
    return loss, metrics


def train(
    images,
    cfg: FamilyConfig,
    *,
    steps: int = 2000,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    log=print,
) -> Model:
    """Train a model of ``cfg.kind`` on uint8 images with the engine's step (Adam, cosine decay)."""
    x = pixels(images)
    if x.shape[1] != cfg.widths[0]:
        raise ValueError(
            f"images of {x.shape[1]} pixels do not fit widths starting at {cfg.widths[0]}"
        )
    model = build(cfg, seed)
    graphdef, state = nnx.split(model)
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(1, steps), alpha=0.05))
    opt_state = tx.init(state)
    step_fn = engine.make_step(graphdef, tx, loss_fn)
    rng, key = np.random.default_rng(seed), jax.random.key(seed)
    graph = neighbour_graph(x) if cfg.neighbours else None
    for step in range(steps):
        rows = rng.integers(0, len(x), batch_size)
        if graph is None:
            batch = jnp.asarray(x[rows])
        else:
            batch = jnp.asarray(
                np.stack([x[rows], x[graph[rows, rng.integers(0, graph.shape[1], batch_size)]]])
            )
        state, opt_state, metrics = step_fn(state, opt_state, batch, jax.random.fold_in(key, step))
        if step % 500 == 0 or step == steps - 1:
            log(
                f"step {step}: "
                + ", ".join(f"{k} {float(v):.4f}" for k, v in jax.device_get(metrics).items())
            )
    return nnx.merge(graphdef, state)
