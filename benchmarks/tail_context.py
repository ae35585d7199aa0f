"""Would more context in the latent's last group pay? An experiment, not a target.

    python -m benchmarks.tail_context [--quality Q] [--model MODEL]
        [--train 20000] [--test 5000] [--steps 3000]

At high quality most bits go to the last context group (the 432 smallest latent elements,
coded with one context network that reads the 352 before them). This keeps the bundled
model's transforms, cluster choice and earlier groups fixed, and trains fresh context
networks for that group alone on its latents (noisy latents, as in training): one network as
now, the group split into 3 or 6 groups (each reading everything before it), and one network
4x wider. It prints each one's bits beside the model's own.
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from codec import api
from codec.io import data
from codec.levels import entropy
from codec.levels.planes import to_planes, to_tiles
from codec.training.tile_net import gaussian_bits


def latents(model, images: np.ndarray, quality: int) -> dict:
    """Everything the tail's context sees and codes, per tile, with the model's own prior of every
    element."""
    level = model.level(quality)
    a = model.part("tile").arrays(level.index)
    y, choice = level.analyse(to_tiles(to_planes(images), model.part("tile").config.tile))
    own_mean, own_rung = np.empty(y.shape), np.empty(y.shape)

    def record(lo, hi, mean, _index, rung):
        own_mean[:, lo:hi], own_rung[:, lo:hi] = mean, rung
        return np.rint(y[:, lo:hi] - mean)

    decoded = level.walk(choice, record)
    arrays = {
        "y": y,
        "decoded": decoded,
        "mean": a["mean64"][choice],
        "rung": a["rung"][choice],
        "own_mean": own_mean,
        "own_rung": own_rung,
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in arrays.items()} | {
        "choice": jnp.asarray(choice),
        "gain": jnp.asarray(a["gain"], jnp.float32),
    }


def bits(v, rung):
    """Bits per element, the scales at these ladder positions clipped to the ladder, as training
    clips them."""
    scale = jnp.clip(
        entropy.SCALE_MIN * jnp.exp(entropy.RUNG * rung), entropy.SCALE_MIN, entropy.SCALE_MAX
    )
    return gaussian_bits(v, scale)


def init(bounds, clusters: int, hidden: int, key) -> list[dict]:
    nets = []
    for lo, hi in itertools.pairwise(bounds):
        key, k = jax.random.split(key)
        nets.append(
            {
                "inner": jax.random.normal(k, (lo, hidden)) / np.sqrt(lo),
                "bias": jnp.zeros(hidden),
                "cluster": jnp.zeros((clusters, hidden)),
                "outer": jnp.zeros((hidden, 2 * (hi - lo))),
                "outer_bias": jnp.zeros(2 * (hi - lo)),
            }
        )
    return nets


def tail_bits(nets, bounds, d, noise=None):
    """Bits per tile of the elements bounds[0]..bounds[-1] under these context networks."""
    total = 0.0
    for net, (lo, hi) in zip(nets, itertools.pairwise(bounds), strict=True):
        hidden = jax.nn.gelu(
            d["decoded"][:, :lo] @ net["inner"] + net["bias"] + net["cluster"][d["choice"]]
        )
        out, n = hidden @ net["outer"] + net["outer_bias"], hi - lo
        v = d["y"][:, lo:hi] - d["mean"][:, lo:hi] - out[:, :n] * d["gain"][lo:hi]
        total = total + bits(
            jnp.round(v) if noise is None else v + noise[:, lo:hi], d["rung"][:, lo:hi] + out[:, n:]
        ).sum(-1)
    return total


def fit(
    bounds, train: dict, clusters: int, hidden: int, steps: int, batch: int = 256, seed: int = 0
):
    nets = init(bounds, clusters, hidden, jax.random.PRNGKey(seed))
    opt = optax.adam(optax.cosine_decay_schedule(1e-3, steps))
    state = opt.init(nets)

    @jax.jit
    def step(nets, state, d, key):
        noise = jax.random.uniform(key, d["y"].shape, minval=-0.5, maxval=0.5)
        grads = jax.grad(lambda n: tail_bits(n, bounds, d, noise).mean())(nets)
        updates, state = opt.update(grads, state, nets)
        return optax.apply_updates(nets, updates), state

    rng, key, n = np.random.default_rng(seed), jax.random.PRNGKey(seed + 1), len(train["y"])
    for _ in range(steps):
        rows, (key, k) = rng.integers(0, n, batch), jax.random.split(key)
        nets, state = step(
            nets, state, {name: v if name == "gain" else v[rows] for name, v in train.items()}, k
        )
    return nets


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quality", type=int, default=None, help="a transform level (default: the highest)"
    )
    parser.add_argument("--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--train", type=int, default=20000, help="train-split images to fit on")
    parser.add_argument("--test", type=int, default=5000, help="test-split images to measure on")
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args(argv)
    model = api.load_model(args.model)
    args.quality = args.quality or model.part("tile").config.qualities
    bounds = model.part("tile").config.bounds
    lo = bounds[-2]
    train = latents(model, data.fashion_mnist("train")[: args.train], args.quality)
    test = latents(model, data.fashion_mnist("test")[: args.test], args.quality)
    own_bits = bits(jnp.round(test["y"] - test["own_mean"]), test["own_rung"])  # (N, P)
    own, total = float(own_bits[:, lo:].sum(-1).mean()), float(own_bits.sum(-1).mean())
    print(
        f"quality {args.quality}: the model's own last group (elements {lo}-{bounds[-1]}) "
        f"{own / 8:.1f} "
        f"of {total / 8:.1f} bytes/image of latent"
    )

    def split(groups):  # the last group cut into this many equal parts
        return [lo + i * (bounds[-1] - lo) // groups for i in range(groups)] + [bounds[-1]]

    for split_bounds, hidden in (
        (split(1), 128),
        (split(3), 128),
        (split(6), 128),
        (split(1), 512),
    ):
        nets = fit(split_bounds, train, model.part("tile").config.clusters, hidden, args.steps)
        b = float(tail_bits(nets, split_bounds, test).mean())
        print(
            f"  {len(split_bounds) - 1} group(s), {hidden} hidden units, retrained: {b / 8:.1f} "
            "bytes/image "
            f"({100 * (b / own - 1):+.1f}% of the group, {100 * (b - own) / total:+.1f}% of the "
            "latent)",
            flush=True,
        )


if __name__ == "__main__":
    main()
