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
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from codec.io import data
from codec.levels import conv, conv_context, conv_file, modelfile
from codec.levels.entropy import SCALE_MAX, SCALE_MIN
from codec.training import checkpoints, conv_loop, engine
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
    ``stop_at``: stop (saved) after that step. ``context_only``: train the context network alone."""
    if steps is None and minutes is None:
        raise ValueError("give steps or minutes")
    model = init if init is not None else ConvCodec(cfg, rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    tx = _optimizer(model, state, context_only)
    step_fn = make_train_step(graphdef, tx)
    place = conv_loop.placement(batch_size, log)
    run = conv_loop.Run(graphdef, state, tx.init(state), np.random.default_rng(seed), log)
    run.settings = conv_loop.run_settings(
        model.cfg, images, val, init, batch_size, crop, learning_rate, seed, grey_fraction
    )
    run.settings.update({"context_only": True} if context_only else {})  # older ones resume
    run.path = Path(workdir) / checkpoints.CONV_CHECKPOINT if workdir is not None else None
    budget = conv_loop.Budget(steps, minutes, time.time(), log)
    checker = _checker(graphdef, val, crop, log) if val else None
    run.begin(budget, checker, place, fine_tuning=init is not None)
    key = jax.random.key(seed)
    while run.done < budget.total:
        step = run.done
        batch = place.split(random_crops(images, crop, batch_size, run.rng, grey_fraction))
        lr = learning_rate_at(step, budget.total, learning_rate)
        run.state, run.opt_state, metrics = step_fn(
            run.state, run.opt_state, batch, jax.random.fold_in(key, step), -lr
        )
        run.done = step + 1
        if conv_loop.after_step(run, budget, checker, metrics, stop_at):
            break
    # (not saved: a measurement the uninterrupted run would not make must not steer the resumed one)
    return nnx.merge(graphdef, checker.best(run.done, run.state) if checker else run.state)


def _optimizer(model: ConvCodec, state, context_only: bool):
    """Adam on clipped gradients (the rate comes from the host); with ``context_only``, of the
    context network's weights alone."""
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam())
    if not context_only:
        return tx
    if model.context is None:
        raise ValueError("context_only: the model has no context network")
    return optax.chain(optax.masked(optax.set_to_zero(), _outside_context(state)), tx)


def _outside_context(state):
    """True for every weight but the context network's (the ones ``context_only`` keeps)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: all(getattr(k, "key", None) != "context" for k in path), state
    )


VAL_CROPS = 32  # crops of the held-out images in each measurement


def _checker(graphdef, val: list[np.ndarray], crop: int, log):
    """The held-out measurement: the loss on fixed crops of ``val``."""
    crops = jnp.asarray(random_crops(val, crop, VAL_CROPS, np.random.default_rng(1)))
    loss = jax.jit(lambda state: _val_loss(nnx.merge(graphdef, state), crops))
    return conv_loop.Checkpoints(loss, log)


def _val_loss(model: ConvCodec, x):
    """Mean over the levels of λ·MSE + bits per pixel, latents rounded."""
    pixels = x.shape[1] * x.shape[2]
    total = 0.0
    for i, lam in enumerate(model.cfg.lambdas):
        mse, bits, _ = rd_terms(model, x, jnp.full((x.shape[0],), i))
        total = total + jnp.mean(lam * mse + bits / pixels)
    return total / len(model.cfg.lambdas)


def from_params(params: dict, context: str | None = None) -> ConvCodec:
    """A trainable model holding stored parameters (``conv_file.from_body``'s form): to fine-tune
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
    nets = list(conv_file.CONV_NETS) + (["context"] if stored is not None else [])
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
        **conv_file.sections(params, conv.ladder_tables()),
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
