"""The bookkeeping of a convolutional training run (``conv_model.train``): where its steps run
(one device or data-parallel), its length (steps, or fitted to minutes), its held-out
measurements and best weights, its checkpoint in the workdir, its log."""

from __future__ import annotations

import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from codec.training import checkpoints


def after_step(run, budget, checker, metrics, stop_at) -> bool:
    """The log, the held-out measurement and the checkpoint after a step; whether to stop (the
    minutes spent, or ``stop_at``)."""
    step = run.done - 1
    budget.probe(step, run.state)
    out_of_time = budget.spent()
    if step % 500 == 0 or run.done == budget.total or out_of_time:
        log_step(run.log, step, jax.device_get(metrics))
    every = max(100, budget.total // 20) if checker else 1000  # total is fitted at step 50
    if checker and run.done % every == 0:
        checker.measure(run.done, run.state)
    if run.done % every == 0 or run.done in (budget.total, stop_at) or out_of_time:
        run.save(budget.total, checker)
    if out_of_time or run.done == stop_at:
        why = f"the {budget.minutes:g} minutes are spent" if out_of_time else "as asked"
        run.log(f"stopped at step {step} of {budget.total} ({why})" + run.resumable())
    return out_of_time or run.done == stop_at


class Placement:
    """Where a step runs: one device, or (several, as ``aecodec train`` makes of a machine's
    cores) data-parallel: the weights on every device, each crop batch split between them, the
    gradients summed by XLA. A run is reproducible for a given number of devices."""

    def __init__(self, sharding=None):
        self.sharding = sharding

    def replicated(self, tree):
        if self.sharding is None:
            return tree
        return jax.device_put(tree, self.sharding[0])

    def split(self, crops: np.ndarray):
        if self.sharding is None:
            return jnp.asarray(crops)
        return jax.device_put(crops, self.sharding[1])


def placement(batch_size: int, log) -> Placement:
    devices = jax.devices()
    if len(devices) < 2 or batch_size % len(devices):
        return Placement()
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices), ("batch",))
    log(f"training data-parallel on {len(devices)} {devices[0].platform} devices")
    return Placement(
        (NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("batch")))
    )


def run_settings(cfg, images, val, init, batch_size, crop, learning_rate, seed, grey) -> dict:
    """What a checkpoint must share with the run that resumes it (JSON's types)."""
    start = None if init is None else checkpoints.digest(jax.tree.leaves(nnx.state(init)))
    settings = {
        **cfg.to_dict(),
        **({"context": cfg.context} if cfg.context else {}),  # older checkpoints stay resumable
        "batch_size": batch_size,
        "crop": crop,
        "learning_rate": learning_rate,
        "seed": seed,
        "grey_fraction": grey,
        "init": start,
        "data": checkpoints.digest(images),
        "val": checkpoints.digest(val or []),
    }
    return json.loads(json.dumps(settings))


class Run:
    """A training run's state between steps: the weights, the optimizer's state, the crop
    generator and the steps done; saved to and resumed from ``path`` (None: not saved)."""

    def __init__(self, graphdef, state, opt_state, rng, log):
        self.graphdef, self.state, self.opt_state, self.rng, self.log = (
            graphdef,
            state,
            opt_state,
            rng,
            log,
        )
        self.done, self.path, self.settings = 0, None, {}

    def resume(self, budget, checker) -> bool:
        """Go on from the checkpoint at ``path`` if there is one (refused where other settings
        or images wrote it)."""
        if self.path is None or not self.path.is_file():
            return False
        checkpoints.check_workdir(self.path.parent, self.settings, checkpoints.CONV_CHECKPOINT)
        body = checkpoints.read(self.path)
        self.done, self.state, self.opt_state = checkpoints.restore(
            body, self.state, self.opt_state
        )
        self.rng.bit_generator.state = json.loads(body["rng"])
        if budget.steps is None:  # a time budget's run: the total its first session fitted
            budget.steps = budget.total = body["total"]
        if checker and body.get("best"):
            best = body["best"]
            checker.best_score, checker.best_step = best["score"], best["step"]
            checker.best_state = jax.device_get(checkpoints.decoded(best["leaves"], self.state))
        self.log(f"resuming from {self.path} after step {self.done}")
        return True

    def begin(self, budget, checker, place, *, fine_tuning: bool) -> None:
        """Resume from the workdir, or measure the start held out (fine-tuning); then place the
        weights and the optimizer's state."""
        if not self.resume(budget, checker) and checker and fine_tuning:
            checker.measure(0, self.state)
        self.state, self.opt_state = place.replicated((self.state, self.opt_state))

    def save(self, total: int, checker) -> None:
        if self.path is None:
            return
        best = None
        if checker and checker.best_state is not None:
            best = {
                "score": checker.best_score,
                "step": checker.best_step,
                "leaves": checkpoints.encoded(checker.best_state),
            }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        checkpoints.save(
            self.path,
            self.done,
            self.state,
            self.opt_state,
            settings=self.settings,
            total=total,
            rng=json.dumps(self.rng.bit_generator.state),
            best=best,
        )

    def resumable(self) -> str:
        return f"; the same command resumes from {self.path}" if self.path else ""


def log_step(log, step: int, m: dict) -> None:
    psnr = 10 * np.log10(255**2 / m["mse"])
    log(f"step {step}: loss {m['loss']:.3f}, {psnr:.2f} dB, {m['bpp']:.3f} bpp")


class Budget:
    """How many steps a run takes: ``steps``, or (``minutes``) as many as fit, measured on steps 10
    to ``PROBE_AT`` (compiling excluded), with the run stopped at the budget whatever happens."""

    PROBE_AT = 50

    def __init__(self, steps: int | None, minutes: float | None, started: float, log):
        self.steps, self.minutes, self.started, self.log = steps, minutes, started, log
        self.total = steps or 10**9
        self._probe_start = None

    def probe(self, step: int, state) -> None:
        """After ``step``: without ``steps``, the timing starts at step 10 and fits ``total`` at
        ``PROBE_AT``."""
        if self.steps is not None:
            return
        if step == 10:
            jax.block_until_ready(state)
            self._probe_start = time.time()
        if step == self.PROBE_AT:
            jax.block_until_ready(state)
            per_step = (time.time() - self._probe_start) / (self.PROBE_AT - 10)
            left = self.minutes * 60 - (time.time() - self.started)
            self.total = max(self.PROBE_AT + 1, self.PROBE_AT + 1 + int(0.97 * left / per_step))
            self.log(
                f"training for {self.total} steps ({per_step * 1000:.0f} ms each) to fit "
                f"{self.minutes:g} minutes; reproduce this run with --steps {self.total}"
            )

    def spent(self) -> bool:
        """Whether the minutes are up; a time budget's run first takes the steps that measure
        its length (so that its checkpoint records a length to resume)."""
        if self.steps is None and self.total == 10**9:  # not fitted yet (step PROBE_AT)
            return False
        return self.minutes is not None and time.time() - self.started > 60 * self.minutes


class Checkpoints:
    """The loss on fixed crops of held-out images, every level, rounded latents (what coding does);
    keeps a host copy of the best weights seen."""

    def __init__(self, loss, log):
        self.loss, self.log = loss, log  # loss: the weights -> the held-out loss (jitted)
        self.best_score, self.best_step, self.best_state = math.inf, None, None

    def measure(self, step: int, state) -> None:
        score = float(self.loss(state))
        if score < self.best_score:
            self.best_score, self.best_step, self.best_state = score, step, jax.device_get(state)
        best = " (best so far)" if self.best_step == step else ""
        self.log(f"step {step}: held-out loss {score:.4f}{best}")

    def best(self, step: int, state):
        """The best weights measured, after measuring the last ones."""
        if self.best_step != step:
            self.measure(step, state)
        if self.best_step == step:
            return state
        self.log(
            f"keeping the weights of step {self.best_step}: the held-out loss was lowest there"
        )
        return jax.tree.map(jnp.asarray, self.best_state)
