"""Training speed of the convolutional kind: milliseconds per step of the bundled photo model's
training step, and what the input pipeline and other shapes and XLA settings change.

    python -m benchmarks.train_speed [--steps 30] [--variants baseline,pipeline,...]

Each variant runs in a process of its own (XLA flags are read at start-up), on random crops of
the training photos of ``benchmarks/photos.py``, the model fine-tuned from ``photo.aecm``'s weights
as ``aecodec train`` does; the median of ``--steps`` timed steps after 5 untimed ones (compiling),
and pixels per second, so that shapes of other sizes compare. Run on an otherwise idle machine:
the numbers are the machine's, not the code's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# variant: (crop, batch, extra XLA flags)
VARIANTS = {
    "baseline": (128, 8, ""),  # what `aecodec train` runs (ConvTraining)
    "crop 64 x 32": (64, 32, ""),  # the same pixels per step in smaller crops
    "crop 256 x 2": (256, 2, ""),
    "crop 96 x 16": (96, 16, ""),
    "one thread": (128, 8, "--xla_cpu_multi_thread_eigen=false"),
    "oneDNN": (128, 8, "--xla_cpu_use_onednn=true"),  # XLA's other CPU kernels
    "XNNPACK": (128, 8, "--xla_cpu_use_xnnpack=true"),
    "fast math": (128, 8, "--xla_cpu_enable_fast_math=true"),
    "bfloat16": (128, 8, "bf16"),  # convolutions in bfloat16, sums in float32
    # the cores as XLA devices, the batch split between them: what `aecodec train` does
    "2 devices": (128, 8, "--xla_force_host_platform_device_count=2"),
}


def time_steps(crop: int, batch: int, steps: int) -> dict:
    """Milliseconds per training step (median), and of the crops alone."""
    import jax
    import numpy as np
    import optax
    from flax import nnx

    from benchmarks import photos
    from codec.pretrained import PHOTO_MODEL
    from codec.training import conv_loop, conv_model, recipes

    train, _ = photos.wallpapers()
    images = list(train.values())
    model = conv_model.from_params(recipes.conv_params(PHOTO_MODEL)[0])
    graphdef, state = nnx.split(model)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam())
    opt_state = tx.init(state)
    step = conv_model.make_train_step(graphdef, tx)
    place = conv_loop.placement(batch, lambda s: None)  # data-parallel where several devices
    state, opt_state = place.replicated((state, opt_state))
    rng, key = np.random.default_rng(0), jax.random.key(0)
    crops_ms, step_ms = [], []
    for i in range(steps + 5):
        t0 = time.perf_counter()
        x = place.split(conv_model.random_crops(images, crop, batch, rng, 0.25))
        t1 = time.perf_counter()
        state, opt_state, metrics = step(state, opt_state, x, jax.random.fold_in(key, i), -1e-5)
        jax.block_until_ready(metrics)
        t2 = time.perf_counter()
        if i >= 5:
            crops_ms.append(1000 * (t1 - t0))
            step_ms.append(1000 * (t2 - t0))
    ms = statistics.median(step_ms)
    return {
        "ms_per_step": ms,
        "crops_ms": statistics.median(crops_ms),
        "megapixels_per_s": crop * crop * batch / ms / 1000,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a variant, in its own process
    args = parser.parse_args(argv)
    if args.one:
        crop, batch, flags = VARIANTS[args.one]
        if flags == "bf16":
            import jax.numpy as jnp

            from codec.training import conv_model

            conv_model.COMPUTE_DTYPE = jnp.bfloat16
        print(json.dumps(time_steps(crop, batch, args.steps)))
        return
    print(f"{'variant':14s} {'ms/step':>8s} {'crops ms':>9s} {'Mpixel/s':>9s}")
    for name in args.variants.split(","):
        crop, batch, flags = VARIANTS[name]
        xla = "" if flags == "bf16" else flags
        env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {xla}".strip())
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.train_speed",
                "--one",
                name,
                "--steps",
                str(args.steps),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{name:14s} {r['ms_per_step']:8.1f} {r['crops_ms']:9.2f} {r['megapixels_per_s']:9.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
