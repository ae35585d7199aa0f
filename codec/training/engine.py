"""The one training step every kind of model uses: a loss, its gradient, an Optax update, jitted
once.

Each kind brings its loss, ``loss_fn(model, batch, key) -> (loss, metrics)`` (the tile codec,
the convolutional codec, the classic autoencoders of ``codec/family``); the step does the rest:

    step = make_step(graphdef, tx, loss_fn)
    state, opt_state, metrics = step(state, opt_state, batch, key, scale)

``scale`` multiplies the optimizer's update: 1.0 where ``tx`` holds its own learning-rate
schedule, ``-lr`` where the rate comes from the host (a schedule fitted to a time budget after
the first steps, ``conv_model.learning_rate_at``). It is an argument, not a constant, so a
changing rate never compiles the step again. ``nnx.split``/``jax.jit``/``nnx.merge`` rather than
``nnx.jit``: a cheaper call; the state and optimizer buffers are donated.
"""

from __future__ import annotations

import functools

import jax
import optax
from flax import nnx


def make_step(graphdef, tx, loss_fn):
    """``(state, opt_state, batch, key, scale=1.0) -> (state, opt_state, metrics)``, jitted once."""

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(state, opt_state, batch, key, scale):
        grads, metrics = jax.grad(
            lambda s: loss_fn(nnx.merge(graphdef, s), batch, key), has_aux=True
        )(state)
        updates, opt_state = tx.update(grads, opt_state, state)
        updates = jax.tree.map(lambda u: scale * u, updates)
        return optax.apply_updates(state, updates), opt_state, metrics

    def call(state, opt_state, batch, key, scale=1.0):
        return step(state, opt_state, batch, key, scale)

    call._cache_size = step._cache_size  # what tests check: one compilation
    return call
