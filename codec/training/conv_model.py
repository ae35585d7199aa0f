"""The convolutional kind's float twin, for training (JAX/Flax/Optax); ``conv.py`` codes with its
integer form.

    loss = λ_l · MSE + bits per pixel,   for a random level l of each image

with additive uniform noise standing in for rounding in the rate (Ballé et al. 2017) and
straight-through rounding for what the decoder sees, a mean-scale Gaussian hyperprior for y (Ballé
et al. 2018, Minnen et al. 2018) and a zero-mean Gaussian per channel for z. The layers are
``conv.layer_specs``; the forward pass computes what ``convnet`` computes in integers (input x/256,
zero padding (k-1)/2, depth-to-space upsampling), so ``export`` only has to round the weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from codec.io import data
from codec.levels import conv, conv_context, modelfile
from codec.levels.entropy import SCALE_MAX, SCALE_MIN
from codec.training import checkpoints, engine
from codec.training.tile_net import gaussian_bits


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """Architecture of a convolutional model; stored in its model file."""

    channels: int = 3  # 1 for grey data, 3 for colour (coded jointly)
    n: int = 32  # width of the analysis and synthesis transforms
    m: int = 64  # latent channels
    h: int = 32  # width of the hyperprior's networks
    z: int = 24  # hyper-latent channels
    ns: int | None = None  # width of the synthesis (the decoder), when not n
    # λ per level, low to high quality (MSE in grey levels²; about 0.1-1.5 bits per pixel on photos)
    lambdas: tuple[float, ...] = (0.0009, 0.0018, 0.0036, 0.0072, 0.0144, 0.0288)
    context: str | None = None  # the context model's mode (``conv_context.MODES``), or none

    def to_dict(self) -> dict:
        """The stored config (the context's mode is stored with its network, not here)."""
        out = {**dataclasses.asdict(self), "lambdas": list(self.lambdas)}
        del out["context"]
        if out["ns"] is None:  # files of models without it stay byte-identical
            del out["ns"]
        return out


# What the convolutions compute in: float32, or bfloat16 with float32 sums (benchmarks.train_speed
# measures both; the weights, the optimizer and the rate stay float32 either way)
COMPUTE_DTYPE = jnp.float32


def _conv(x, kernel, bias, stride: int):
    p = (kernel.shape[0] - 1) // 2
    y = jax.lax.conv_general_dilated(
        x.astype(COMPUTE_DTYPE),
        kernel.astype(COMPUTE_DTYPE),
        (stride, stride),
        ((p, p), (p, p)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        preferred_element_type=jnp.float32,
    )
    return y + bias


def depth_to_space(x):
    n, h, w, c4 = x.shape
    c = c4 // 4
    return x.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c)


class Network(nnx.Module):
    """A stack of layers of ``conv.layer_specs``: kernels (k, k, in, out) and biases; with
    ``zero_last`` the last layer starts at zero (the network adds nothing until trained)."""

    def __init__(self, spec: list[tuple], *, rngs: nnx.Rngs, zero_last: bool = False):
        self.spec = tuple(spec)
        self.kernels = nnx.List(
            [
                nnx.Param(
                    jax.random.normal(rngs.params(), (k, k, c_in, conv.up_channels(kind, c_out)))
                    * (0.0 if zero_last and i == len(spec) - 1 else math.sqrt(2.0 / (k * k * c_in)))
                )
                for i, (kind, k, c_in, c_out, _) in enumerate(spec)
            ]
        )
        self.biases = nnx.List(
            [nnx.Param(jnp.zeros(conv.up_channels(kind, c_out))) for kind, _, _, c_out, _ in spec]
        )

    def __call__(self, x):
        for (kind, _, _, _, relu), kernel, bias in zip(
            self.spec, self.kernels, self.biases, strict=True
        ):
            x = _conv(x, kernel[...], bias[...], 2 if kind == "down" else 1)
            if kind == "up":
                x = depth_to_space(x)
            if relu:
                x = jax.nn.relu(x)
        return x


class ConvCodec(nnx.Module):
    def __init__(self, cfg: ConvConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        specs = conv.layer_specs(cfg.channels, cfg.n, cfg.m, cfg.h, cfg.z, cfg.ns)
        self.analysis = Network(specs["analysis"], rngs=rngs)
        self.synthesis = Network(specs["synthesis"], rngs=rngs)
        self.hyper_analysis = Network(specs["hyper_analysis"], rngs=rngs)
        self.hyper_synthesis = Network(specs["hyper_synthesis"], rngs=rngs)
        self.context = None  # the context model's network (``conv_context``), or none
        if cfg.context is not None:
            spec = conv_context.layer_specs(cfg.m, cfg.h)
            self.context = nnx.data(Network(spec, rngs=rngs, zero_last=True))
        levels = len(cfg.lambdas)
        # Gains start spread over the levels (a step of quantization per level), inverse gains their
        # inverse.
        start = np.log(np.geomspace(0.25, 4.0, levels))[:, None] * np.ones((1, cfg.m))
        self.log_gain = nnx.Param(jnp.asarray(start, jnp.float32))
        self.log_inv_gain = nnx.Param(jnp.asarray(-start, jnp.float32))
        self.log_z_scale = nnx.Param(jnp.zeros(cfg.z))


def rd_terms(model: ConvCodec, x, level, key=None):
    """(MSE per image in grey levels², bits per image, reconstruction) of uint8 images x (N, H,
    W, C), H and W multiples of 32; with ``key`` (training) the rate is measured on noisy
    latents."""
    x = x.astype(jnp.float32) / 256.0
    y = model.analysis(x)
    z = model.hyper_analysis(y)
    noise = (
        (lambda k, shape: jax.random.uniform(k, shape, minval=-0.5, maxval=0.5))
        if key is not None
        else None
    )
    keys = jax.random.split(key, 2) if key is not None else (None, None)
    z_hat = z + jax.lax.stop_gradient(jnp.round(z) - z)  # what the decoder sees
    z_rate = z + noise(keys[0], z.shape) if key is not None else jnp.round(z)
    bits = gaussian_bits(z_rate, jnp.exp(model.log_z_scale[...])).sum((1, 2, 3))
    h = model.hyper_synthesis(z_hat)
    gain = jnp.exp(model.log_gain[...][level])[:, None, None, :]  # (N, 1, 1, m)
    inv_gain = jnp.exp(model.log_inv_gain[...][level])[:, None, None, :]
    mean, log_scale = _in_context(model, y, h, gain, inv_gain)
    scale = jnp.clip(jnp.exp(log_scale) * gain, SCALE_MIN, SCALE_MAX)
    v = y * gain - mean * gain
    rounded = v + jax.lax.stop_gradient(jnp.round(v) - v)
    v_rate = v + noise(keys[1], v.shape) if key is not None else jnp.round(v)
    bits = bits + gaussian_bits(v_rate, scale).sum((1, 2, 3))
    y_hat = (rounded + mean * gain) * inv_gain
    x_hat = model.synthesis(y_hat)
    mse = jnp.mean(((x_hat - x) * 256.0) ** 2, axis=(1, 2, 3))
    return mse, bits, x_hat


def _in_context(model: ConvCodec, y, h, gain, inv_gain):
    """The mean and log-scale of every latent element: the hyperprior's, and with a context model
    pass 2's from the context network's reading of pass 1's decoded half (``conv_context``)."""
    m = model.cfg.m
    mean, log_scale = h[..., :m], h[..., m:]
    if model.context is None:
        return mean, log_scale
    v = y * gain - mean * gain
    y_hat = (v + jax.lax.stop_gradient(jnp.round(v) - v) + mean * gain) * inv_gain
    first = jnp.asarray(conv_context.first_half(model.cfg.context, y.shape))
    h2 = h + model.context(conv_context.network_input(y_hat, first, h, xp=jnp))
    return jnp.where(first, mean, h2[..., :m]), jnp.where(first, log_scale, h2[..., m:])


def loss_fn(model: ConvCodec, x, level, key):
    mse, bits, _ = rd_terms(model, x, level, key)
    lambdas = jnp.asarray(model.cfg.lambdas)[level]
    pixels = x.shape[1] * x.shape[2]
    loss = jnp.mean(lambdas * mse + bits / pixels)
    return loss, {"loss": loss, "mse": jnp.mean(mse), "bpp": jnp.mean(bits) / pixels}


def make_train_step(graphdef, tx):
    """``(state, opt_state, x, key, -lr) -> (state, opt_state, metrics)``: the engine's step
    (``engine.py``) with this kind's loss, a random level per image; the rate comes from the host
    (``learning_rate_at``)."""

    def loss_of(model, x, key):
        level_key, noise_key = jax.random.split(key)
        level = jax.random.randint(level_key, (x.shape[0],), 0, len(model.cfg.lambdas))
        return loss_fn(model, x, level, noise_key)

    return engine.make_step(graphdef, tx, loss_of)


def random_crops(
    images: list[np.ndarray],
    size: int,
    count: int,
    rng: np.random.Generator,
    grey_fraction: float = 0.0,
) -> np.ndarray:
    """(count, size, size, C) uint8 crops with random flips, drawn from images in proportion to
    their area; with ``grey_fraction``, that share of colour crops is made grey (R = G = B, the
    luma) so that one colour model also learns to spend nothing on the colour of grey images."""
    areas = np.array([a.shape[0] * a.shape[1] for a in images], np.float64)
    picks = rng.choice(len(images), size=count, p=areas / areas.sum())
    out = []
    for i in picks:
        a = images[i]
        a = np.pad(
            a, ((0, max(0, size - a.shape[0])), (0, max(0, size - a.shape[1])), (0, 0)), mode="edge"
        )
        y, x = rng.integers(0, a.shape[0] - size + 1), rng.integers(0, a.shape[1] - size + 1)
        crop = a[y : y + size, x : x + size]
        crop = crop[:, ::-1] if rng.integers(2) else crop
        if crop.shape[2] == 3 and rng.random() < grey_fraction:
            crop = np.repeat(data.luma(crop)[..., None], 3, axis=2)
        out.append(crop)
    return np.stack(out)


def learning_rate_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 500 steps (or tenth), then a cosine down to peak/20 at
    ``total``. The warm-up does not depend on ``total``, so a run whose total was fitted to a
    time budget after its first steps is the same run as one given that total from the start."""
    warm = min(500, total // 10 + 1)
    if step < warm:
        return peak * step / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    return peak / 20 + (peak - peak / 20) * 0.5 * (1 + math.cos(math.pi * t))


def train(
    images: list[np.ndarray],
    *,
    cfg: ConvConfig,
    steps: int | None = None,
    batch_size: int = 16,
    crop: int = 64,
    learning_rate: float = 1e-4,
    seed: int = 0,
    log=print,
    init: ConvCodec | None = None,
    minutes: float | None = None,
    grey_fraction: float = 0.0,
    val: list[np.ndarray] | None = None,
    workdir=None,
    stop_at: int | None = None,
    context_only: bool = False,
) -> ConvCodec:
    """Train on random crops of uint8 images (H, W, C) with C = cfg.channels; returns the model.

    ``steps`` fixes the run (``minutes`` beside it: a cap on this session's wall time); ``minutes``
    alone fits the steps to a time budget, measured after the first steps (the log says which
    ``steps`` repeats the run), and stops at the budget whatever happens. ``init`` fine-tunes a
    model instead of starting from random weights. With ``val`` (held-out images) the loss on fixed
    crops of them is measured about twenty times (and before the first step when fine-tuning) and
    the best weights are returned: a small dataset is over-fitted long before an hour is up, and a
    fine-tuned model must not come back worse than it started.

    With ``workdir`` the run is saved there (``checkpoints.CONV_CHECKPOINT``) at each measurement
    and when it stops; the same settings on the same images (and devices) resume it bit for bit.
    ``stop_at``: stop (saved) after that step, as a session cut short would. ``context_only``:
    train the context network alone, every other weight kept (a context added to a model trained
    on other data learns to predict its latents without moving them)."""
    if steps is None and minutes is None:
        raise ValueError("give steps or minutes")
    model = init if init is not None else ConvCodec(cfg, rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam())
    if context_only:
        if model.context is None:
            raise ValueError("context_only: the model has no context network")
        tx = optax.chain(optax.masked(optax.set_to_zero(), _outside_context(state)), tx)
    step_fn = make_train_step(graphdef, tx)
    place = _placement(batch_size, log)
    run = _Run(graphdef, state, tx.init(state), np.random.default_rng(seed), log)
    run.settings = _run_settings(
        model.cfg, images, val, init, batch_size, crop, learning_rate, seed, grey_fraction
    )
    if context_only:  # (absent otherwise: older checkpoints stay resumable)
        run.settings["context_only"] = True
    run.path = Path(workdir) / checkpoints.CONV_CHECKPOINT if workdir is not None else None
    budget = _Budget(steps, minutes, time.time(), log)
    checker = _Checkpoints(graphdef, val, crop, log) if val else None
    if not run.resume(budget, checker) and checker and init is not None:
        checker.measure(0, run.state)
    run.state, run.opt_state = place.replicated((run.state, run.opt_state))
    key = jax.random.key(seed)
    while run.done < budget.total:
        step = run.done
        batch = place.split(random_crops(images, crop, batch_size, run.rng, grey_fraction))
        lr = learning_rate_at(step, budget.total, learning_rate)
        run.state, run.opt_state, metrics = step_fn(
            run.state, run.opt_state, batch, jax.random.fold_in(key, step), -lr
        )
        run.done = step + 1
        if _after_step(run, budget, checker, metrics, stop_at):
            break
    # (not saved: a measurement the uninterrupted run would not make must not steer the resumed one)
    return nnx.merge(graphdef, checker.best(run.done, run.state) if checker else run.state)


def _outside_context(state):
    """True for every weight but the context network's (the ones ``context_only`` keeps)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: all(getattr(k, "key", None) != "context" for k in path), state
    )


def _after_step(run, budget, checker, metrics, stop_at) -> bool:
    """The log, the held-out measurement and the checkpoint after a step; whether to stop (the
    minutes spent, or ``stop_at``)."""
    step = run.done - 1
    budget.probe(step, run.state)
    out_of_time = budget.spent()
    if step % 500 == 0 or run.done == budget.total or out_of_time:
        _log_step(run.log, step, jax.device_get(metrics))
    every = max(100, budget.total // 20) if checker else 1000  # total is fitted at step 50
    if checker and run.done % every == 0:
        checker.measure(run.done, run.state)
    if run.done % every == 0 or run.done in (budget.total, stop_at) or out_of_time:
        run.save(budget.total, checker)
    if out_of_time or run.done == stop_at:
        why = f"the {budget.minutes:g} minutes are spent" if out_of_time else "as asked"
        run.log(f"stopped at step {step} of {budget.total} ({why})" + run.resumable())
    return out_of_time or run.done == stop_at


class _Placement:
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


def _placement(batch_size: int, log) -> _Placement:
    devices = jax.devices()
    if len(devices) < 2 or batch_size % len(devices):
        return _Placement()
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices), ("batch",))
    log(f"training data-parallel on {len(devices)} {devices[0].platform} devices")
    return _Placement(
        (NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("batch")))
    )


def _run_settings(cfg, images, val, init, batch_size, crop, learning_rate, seed, grey) -> dict:
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


class _Run:
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


def _log_step(log, step: int, m: dict) -> None:
    psnr = 10 * np.log10(255**2 / m["mse"])
    log(f"step {step}: loss {m['loss']:.3f}, {psnr:.2f} dB, {m['bpp']:.3f} bpp")


class _Budget:
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


VAL_CROPS = 32  # crops of the held-out images in each measurement


class _Checkpoints:
    """The loss on fixed crops of held-out images, every level, rounded latents (what coding does);
    keeps a host copy of the best weights seen."""

    def __init__(self, graphdef, val: list[np.ndarray], crop: int, log):
        self.crops = jnp.asarray(random_crops(val, crop, VAL_CROPS, np.random.default_rng(1)))
        self.log = log
        self.best_score, self.best_step, self.best_state = math.inf, None, None
        self.loss = jax.jit(lambda state: _val_loss(nnx.merge(graphdef, state), self.crops))

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


def _val_loss(model: ConvCodec, x):
    """Mean over the levels of λ·MSE + bits per pixel, latents rounded."""
    pixels = x.shape[1] * x.shape[2]
    total = 0.0
    for i, lam in enumerate(model.cfg.lambdas):
        mse, bits, _ = rd_terms(model, x, jnp.full((x.shape[0],), i))
        total = total + jnp.mean(lam * mse + bits / pixels)
    return total / len(model.cfg.lambdas)


def from_params(params: dict, context: str | None = None) -> ConvCodec:
    """A trainable model holding stored parameters (``conv.from_body``'s form): to fine-tune
    from. ``context``: a context model of that mode added where the parameters have none (its
    last layer zero: the model computes what it did)."""
    stored = params.get("context")
    if stored is not None and context not in (None, stored["mode"]):
        raise ValueError(f"the model's context model is {stored['mode']}, not {context}")
    cfg = ConvConfig(
        **{
            k: params["config"][k]
            for k in ("channels", "n", "m", "h", "z", "ns")
            if k in params["config"]
        },
        lambdas=tuple(params["config"]["lambdas"]),
        context=stored["mode"] if stored is not None else context,
    )
    model = ConvCodec(cfg, rngs=nnx.Rngs(0))
    nets = list(conv.CONV_NETS) + (["context"] if stored is not None else [])
    for name in nets:
        net = getattr(model, name)
        layers = stored["layers"] if name == "context" else params[name]
        for i, (k, b) in enumerate(layers):
            if net.kernels[i][...].shape != k.shape:
                raise ValueError(
                    f"{name}[{i}]: stored kernel {k.shape} does not fit the architecture"
                )
            net.kernels[i] = nnx.Param(jnp.asarray(k, jnp.float32))
            net.biases[i] = nnx.Param(jnp.asarray(b, jnp.float32))
    for name in ("log_gain", "log_inv_gain", "log_z_scale"):
        setattr(model, name, nnx.Param(jnp.asarray(params[name], jnp.float32)))
    return model


def widen_synthesis(params: dict, ns: int, seed: int = 0) -> dict:
    """``params`` (``export``'s form) with a synthesis ``ns`` wide that computes the same
    function: the old units keep their weights, new units get random incoming weights and zero
    outgoing ones, so training starts exactly where the narrower model stands and grows from
    there (as in Net2Net's wider layers)."""
    old = params["config"].get("ns") or params["config"]["n"]
    if ns < old:
        raise ValueError(f"a synthesis {old} wide cannot be narrowed to {ns}")
    rng = np.random.default_rng(seed)
    layers, c_in_new = [], None
    for i, (kernel, bias) in enumerate(params["synthesis"]):
        k, _, c_in, c4 = kernel.shape
        c_out = c4 // 4
        c_out_new = ns if i < len(params["synthesis"]) - 1 else c_out
        c_in_new = c_in if i == 0 else ns
        w = rng.normal(0, math.sqrt(2.0 / (k * k * c_in_new)), (k, k, c_in_new, 4, c_out_new))
        w[:, :, c_in:, :, :c_out] = 0  # new inputs do not reach old units
        w[:, :, :c_in, :, :c_out] = kernel.reshape(k, k, c_in, 4, c_out)
        b = np.zeros((4, c_out_new))
        b[:, :c_out] = bias.reshape(4, c_out)
        layers.append((w.reshape(k, k, c_in_new, 4 * c_out_new), b.reshape(-1)))
    return {**params, "config": {**params["config"], "ns": ns}, "synthesis": layers}


def export(model: ConvCodec) -> dict:
    """The parameters as numpy arrays, in ``conv.ConvTransform``'s form."""

    def layers(net: Network):
        return [
            (np.asarray(k[...], np.float64), np.asarray(b[...], np.float64))
            for k, b in zip(net.kernels, net.biases, strict=True)
        ]

    return {
        "config": model.cfg.to_dict(),
        "analysis": layers(model.analysis),
        "synthesis": layers(model.synthesis),
        "hyper_analysis": layers(model.hyper_analysis),
        "hyper_synthesis": layers(model.hyper_synthesis),
        "log_gain": np.asarray(model.log_gain[...], np.float64),
        "log_inv_gain": np.asarray(model.log_inv_gain[...], np.float64),
        "log_z_scale": np.asarray(model.log_z_scale[...], np.float64),
        **(
            {"context": {"mode": model.cfg.context, "layers": layers(model.context)}}
            if model.context is not None
            else {}
        ),
    }


def model_file(params: dict, *, name: str, meta: dict, default: int | None = None) -> bytes:
    """The bytes of a model file of convolutional levels only (``export``'s parameters, integer
    tables frozen now)."""
    levels = len(params["config"]["lambdas"])
    return modelfile.dumps(
        name=name,
        meta=meta,
        default=default or (levels + 1) // 2,
        **conv.sections(params, conv.ladder_tables()),
    )


def export_model(
    model: ConvCodec,
    path,
    *,
    name: str,
    meta: dict,
    default: int | None = None,
    force: bool = False,
) -> bytes:
    """Write a model file of convolutional levels only (refused where ``path`` exists, unless
    ``force``); returns its bytes."""
    raw = model_file(export(model), name=name, meta=meta, default=default)
    modelfile.save(path, raw, force=force)
    return raw
