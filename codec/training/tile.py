"""Training: the rate–distortion loss, one jitted Optax step, and ``train_and_evaluate``.

loss = λ_q · D + R, per image, averaged over the batch, where D is the mean squared
error in 8-bit pixel units and R the bits of the latent under the prior. Each image in
a batch gets a random quality level q, so one network learns every level at once.
Rounding is modelled the usual mixed way: additive uniform noise for the rate term
(Ballé et al. 2017), straight-through rounding for the decoder, so the decoder trains on
the same integers it will see when decoding files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from itertools import pairwise
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from codec.levels import entropy, modelfile, pixel
from codec.levels.model import Model
from codec.levels.planes import to_planes, to_tiles
from codec.levels.tile_config import ModelConfig
from codec.training import checkpoints, engine, ladder
from codec.training.tile_net import Codec, gaussian_bits, init_from_data

PIXEL = 255.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training run settings (keyword-only in ``train``); stored in the model file's metadata."""

    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 2e-4  # transforms: peak, after warm-up; cosine decay to 1% of it
    prior_learning_rate: float = 2e-3  # gains, means, scales, cluster frequencies
    warmup_steps: int = 200
    val_fraction: float = 0.1  # of the images, held out (whole images) for validation ...
    val_size: int = (
        5000  # ... but no more than this many (Fashion-MNIST's train split: 5,000, as before)
    )
    seed: int = 0
    steps: int | None = (
        None  # instead of epochs: exactly this many steps (what --minutes chose, to reproduce it)
    )
    minutes: float | None = (
        None  # instead of epochs: as many steps as fit, the schedule fitted to them
    )

    def __post_init__(self):
        for name in ("epochs", "batch_size", "warmup_steps", "val_size"):
            if type(getattr(self, name)) is not int or getattr(self, name) < (
                0 if name == "warmup_steps" else 1
            ):
                raise ValueError(f"training setting {name} must be a positive whole number")
        if not 0 < self.val_fraction < 1:
            raise ValueError("training setting val_fraction must be between 0 and 1")
        if self.steps is not None and (type(self.steps) is not int or self.steps < 1):
            raise ValueError("training setting steps must be a positive whole number")
        if self.minutes is not None and not 0 < self.minutes <= 7 * 24 * 60:
            raise ValueError("training setting minutes must be above 0 (and at most a week)")


def rd_terms(model: Codec, x, quality_index, noise_key=None):
    """Distortion (MSE in pixel units²) and rate (bits) per tile.

    With ``noise_key`` (training) the rate uses noisy latents; without it, rounded ones
    (the model's own estimate of the coded size). The encoder picks the cluster that
    costs the fewest bits under the clusters' prior alone; then the latent's groups are
    coded in turn, each rounded around its mean as refined by the context network from the
    groups before it, exactly as the decoder will see them. Returns (mse (N,), bits (N,),
    x_hat (N, P)).
    """
    y = model.analysis(x) * model.gain(quality_index)  # (N, P)
    inv_gain = model.inv_gain(quality_index)
    mean, scale, cluster_bits = model.prior(quality_index)  # (N, M, P), (N, M)
    noise = None
    if noise_key is not None:
        noise = jax.random.uniform(noise_key, y.shape, minval=-0.5, maxval=0.5)
    yc = y[:, None, :]
    v = jnp.round(yc - mean) if noise is None else yc + noise[:, None, :] - mean
    # (N, M, P): every element under every cluster, without context
    base_bits = gaussian_bits(v, scale)
    choice = jnp.argmin(jax.lax.stop_gradient(base_bits.sum(-1) + cluster_bits), axis=1)
    bounds, parts = model.cfg.bounds, []
    # The cluster index and the first group (which has no context), as bits_all was before
    # context: a model of one group trains exactly as before. (The first group's bits are
    # computed afresh: a slice of base_bits would backpropagate through all of it.)
    first = base_bits
    if len(bounds) != 2:
        first = gaussian_bits(v[..., : bounds[1]], scale[..., : bounds[1]])
    bits = jnp.take_along_axis(first.sum(-1) + cluster_bits, choice[:, None], axis=1)[:, 0]
    mean = jnp.take_along_axis(mean, choice[:, None, None], axis=1)[:, 0]  # (N, P)
    scale = jnp.take_along_axis(scale, choice[:, None, None], axis=1)[:, 0]
    for g, (lo, hi) in enumerate(pairwise(bounds)):
        mu = mean[:, lo:hi]
        if g:
            d_mean, d_rung = model.context(
                g, jnp.concatenate(parts, 1) * inv_gain[:, :lo], quality_index, choice
            )
            mu = mu + d_mean * model.gain(quality_index)[:, lo:hi]
            s = jnp.clip(
                scale[:, lo:hi] * jnp.exp(d_rung * entropy.RUNG),
                entropy.SCALE_MIN,
                entropy.SCALE_MAX,
            )
            v = jnp.round(y[:, lo:hi] - mu) if noise is None else y[:, lo:hi] + noise[:, lo:hi] - mu
            bits = bits + gaussian_bits(v, s).sum(-1)
        rounded = jnp.round(y[:, lo:hi] - mu) + mu
        # straight-through rounding
        parts.append(y[:, lo:hi] + jax.lax.stop_gradient(rounded - y[:, lo:hi]))
    y_hat = jnp.concatenate(parts, 1)
    # The decoder clips to the pixel range, and so does the loss: overshooting into
    # black or white is free, and on Fashion-MNIST's black backgrounds that matters.
    x_hat = jnp.clip(model.synthesis(y_hat * inv_gain), 0.0, 1.0)
    mse = jnp.mean(jnp.square((x_hat - x) * PIXEL), axis=1)
    return mse, bits, x_hat


def loss_fn(model: Codec, x, quality_index, noise_key):
    lam = jnp.asarray(model.cfg.lambdas)[quality_index]
    mse, bits, _ = rd_terms(model, x, quality_index, noise_key)
    loss = jnp.mean(lam * mse + bits) / x.shape[1]  # per pixel, so the scale is readable
    return loss, {"loss": loss, "mse": jnp.mean(mse), "bits": jnp.mean(bits)}


PRIOR_PARAMS = ("log_gain", "log_inv_gain", "mean", "log_scale", "cluster_logits")


def make_optimizer(cfg: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    """Adam with warm-up and cosine decay; the prior and the context networks learn faster than the
    transforms.

    The transforms start at the PCA basis, whose entries are ~1/28: large steps would
    throw that start away, while the prior's means and scales live on a scale of 1-100.
    """

    def schedule(peak):
        warmup = min(cfg.warmup_steps, total_steps // 2)
        return optax.warmup_cosine_decay_schedule(
            0.0, peak, warmup, max(total_steps, 1), end_value=peak / 100
        )

    def label(params):
        def group(path, _):
            names = {getattr(k, "key", getattr(k, "name", None)) for k in path}
            prior = names & set(PRIOR_PARAMS) or any(str(n).startswith("context") for n in names)
            return "prior" if prior else "transform"

        return jax.tree_util.tree_map_with_path(group, params)

    return optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.multi_transform(
            {
                "transform": optax.adam(schedule(cfg.learning_rate)),
                "prior": optax.adam(schedule(cfg.prior_learning_rate)),
            },
            label,
        ),
    )


def make_train_step(graphdef, tx):
    """``(state, opt_state, x, key) -> (state, opt_state, metrics)``: the engine's step
    (``engine.py``) with this kind's loss, a random quality per image; ``tx`` holds the
    learning-rate schedule."""

    def loss_of(model, x, key):
        q_key, noise_key = jax.random.split(key)
        quality_index = jax.random.randint(q_key, (x.shape[0],), 0, len(model.cfg.lambdas))
        return loss_fn(model, x, quality_index, noise_key)

    return engine.make_step(graphdef, tx, loss_of)


def make_eval_step(graphdef):
    @jax.jit
    def eval_step(state, x, quality_index):
        mse, bits, _ = rd_terms(nnx.merge(graphdef, state), x, quality_index)
        return mse, bits

    return eval_step


def evaluate(graphdef, state, images: np.ndarray, *, batch_size: int = 1000) -> list[dict]:
    """Per quality: dataset PSNR and bits/tile of rounded latents (the model's own estimate)."""
    eval_step = make_eval_step(graphdef)
    n_q = len(nnx.merge(graphdef, state).cfg.lambdas)
    results = []
    for q in range(n_q):
        mses, bits = [], []
        for start in range(0, len(images), batch_size):
            x = to_input(images[start : start + batch_size])
            m, b = eval_step(state, x, jnp.full((x.shape[0],), q))
            mses.append(np.asarray(m)), bits.append(np.asarray(b))
        mse = float(np.concatenate(mses).mean())
        results.append(
            {
                "quality": q + 1,
                "psnr": 10 * np.log10(PIXEL**2 / max(mse, 1e-12)),
                "bits_per_image": float(np.concatenate(bits).mean()),
            }
        )
    return results


def to_input(tiles: np.ndarray) -> jnp.ndarray:
    """uint8 tiles (N, P) -> float32 in [0, 1]."""
    return jnp.asarray(tiles, jnp.float32) / PIXEL


def load_params(model: Codec, path: str | Path) -> list[str]:
    """Copy a model file's parameters into ``model`` where names and shapes agree; returns what
    happened, one entry per parameter of the file: its name, or 'name (not copied: shape ...)'."""
    body = modelfile.loads(modelfile.read(path), what=str(path))
    state = nnx.state(model, nnx.Param)
    flat = nnx.to_flat_state(state)
    copied = []
    for path_, var in flat:
        key = "/".join(map(str, path_))
        if key in body["params"]:
            value = modelfile.decode_array(body["params"][key], what=f"{path}: {key}")
            if value.shape == var[...].shape:
                var[...] = jnp.asarray(value, jnp.float32)
                copied.append(key)
            else:
                copied.append(
                    f"{key} (not copied: shape {value.shape} in the file, {var[...].shape} here)"
                )
    nnx.update(model, nnx.from_flat_state(flat))
    return copied


def params_as_numpy(model: Codec) -> dict:
    """'/'-joined parameter paths -> numpy arrays."""
    return {k: np.asarray(v) for k, v in model.params().items()}


def train_and_evaluate(
    images: np.ndarray,
    workdir: str | Path,
    *,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    test_images: np.ndarray | None = None,
    progress: bool = True,
    log=print,
    init: str | Path | None = None,
    val_images=None,
) -> tuple[Codec, dict]:
    """Train a codec on uint8 ``images`` (N, H, W); checkpoints in ``workdir``, resumes from them.

    With ``init`` (a model file), training starts from that model's parameters wherever the
    architectures agree (fine-tuning); parameters it lacks start as usual. ``val_images`` validates
    instead of a share of ``images`` held out.

    Returns the trained model (prior frozen separately by ``export``) and a summary with the
    validation (and, if given, test) rate and PSNR per quality.
    """
    started = time.time()
    model_config = model_config or ModelConfig()
    train_config = train_config or TrainConfig()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train, val = _split(images, model_config, train_config, val_images)
    digest = hashlib.sha256(np.ascontiguousarray(train)).hexdigest()[:16]
    settings = checkpoints.run_settings(model_config, train_config, init=init, data=digest)
    checkpoints.check_workdir(workdir, settings)  # before any time is spent
    checkpoint = workdir / checkpoints.CHECKPOINT
    resumed = checkpoints.read(checkpoint) if checkpoint.exists() else None
    steps_per_epoch = max(1, len(train) // train_config.batch_size)
    total = train_config.steps or steps_per_epoch * train_config.epochs
    model = Codec(model_config, rngs=nnx.Rngs(train_config.seed))
    init_from_data(model, train.astype(np.float32) / PIXEL, seed=train_config.seed)
    if init is not None:
        log(f"starting from {init}: {', '.join(load_params(model, init)) or 'no parameters match'}")
    graphdef, state = nnx.split(model)
    if train_config.minutes is not None:
        total = _steps_that_fit(graphdef, state, train, train_config, started, log)
    tx = make_optimizer(train_config, total)
    opt_state = tx.init(state)
    start_step = 0
    if resumed is not None:
        epochs_done, state, opt_state = checkpoints.restore(resumed, state, opt_state)
        start_step = min(epochs_done * steps_per_epoch, total)
        log(f"resuming from {checkpoint} after epoch {epochs_done}")
    run = _Run(graphdef, tx, train, val, train_config, steps_per_epoch, total, log)
    state, history = _epochs(run, state, opt_state, start_step, progress, checkpoint, settings)
    summary = {
        "history": history,
        "val": evaluate(graphdef, state, val),
        "steps": total,
        "val_tiles": val,
    }
    if test_images is not None:
        tiles = to_tiles(np.asarray(test_images, np.uint8), model_config.tile)
        summary["test"] = evaluate(graphdef, state, tiles)
    return nnx.merge(graphdef, state), summary


@dataclasses.dataclass(frozen=True)
class _Run:
    """What every epoch of one ``train_and_evaluate`` run shares."""

    graphdef: object
    tx: optax.GradientTransformation
    train: np.ndarray  # training tiles (N, h, w)
    val: np.ndarray  # held-out tiles
    cfg: TrainConfig
    steps_per_epoch: int
    total: int  # steps in all
    log: object


def _epochs(run: _Run, state, opt_state, start_step: int, progress, checkpoint, settings):
    """(the state after the run's last step, the validation after each validated epoch), from
    ``start_step`` on; a checkpoint saved at each validation."""
    cfg, steps_per_epoch, total = run.cfg, run.steps_per_epoch, run.total
    train_step = make_train_step(run.graphdef, run.tx)
    key = jax.random.key(cfg.seed)
    history = []
    epochs = -(-total // steps_per_epoch)
    # Validation (and a checkpoint) after every epoch; within a time budget about ten times in all,
    # so that small datasets' short epochs do not spend the budget validating.
    every = 1 if cfg.minutes is None else max(1, epochs // 10)
    bar = tqdm(total=total, initial=start_step, unit="step", disable=not progress, leave=False)
    for epoch in range(start_step // steps_per_epoch, epochs):
        t0 = time.time()
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(len(run.train))
        bar.set_description(f"epoch {epoch + 1}/{epochs}")
        for step in range(min(steps_per_epoch, total - epoch * steps_per_epoch)):
            rows = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            state, opt_state, metrics = train_step(
                state,
                opt_state,
                to_input(run.train[rows]),
                jax.random.fold_in(key, epoch * steps_per_epoch + step),
            )
            bar.update(1)
            if step % 50 == 0:
                _show(bar, jax.device_get(metrics))
        if (epoch + 1) % every == 0 or epoch + 1 == epochs:
            history.append(_validated(run, state, epoch, t0))
            checkpoints.save(checkpoint, epoch + 1, state, opt_state, settings=settings)
    bar.close()
    return state, history


def _show(bar, m) -> None:
    bar.set_postfix(
        loss=f"{m['loss']:.3f}",
        psnr=f"{10 * np.log10(PIXEL**2 / m['mse']):.2f}",
        bits=f"{m['bits']:.0f}",
    )


def _validated(run: _Run, state, epoch: int, t0: float) -> dict:
    """The epoch's record: its validation rate and PSNR per quality, logged as one JSON line."""
    val_rd = evaluate(run.graphdef, state, run.val)
    record = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1), "val": val_rd}
    shown = [(r["quality"], round(r["psnr"], 2), round(r["bits_per_image"] / 8, 1)) for r in val_rd]
    run.log(json.dumps({"epoch": epoch + 1, "seconds": record["seconds"], "val": shown}))
    return record


def planes(images):
    """Grey planes to train the tile and pixel kinds on: an array (N, H, W[, C]) -> (N*C, H, W); a
    list of images of any sizes -> a list of 2-D planes (each colour image's channels in turn)."""
    if isinstance(images, np.ndarray):
        return to_planes(np.asarray(images, np.uint8))
    return [p for image in images for p in (to_planes(image[None]) if image.ndim == 3 else [image])]


def _split(
    images, model_config: ModelConfig, train_config: TrainConfig, val_images=None
) -> tuple[np.ndarray, np.ndarray]:
    """(training tiles, validation tiles) of uint8 images: whole images held out (the last of a
    seeded shuffle), a fraction of them up to ``val_size``, or ``val_images`` where given; then each
    side cut into the model's tiles: whole tiles of same-size images, random crops (a seeded few per
    tile of area) of images of any sizes."""
    train, val = (
        (images, val_images) if val_images is not None else split_images(images, train_config)
    )
    rng = np.random.default_rng([train_config.seed, 1])
    return training_tiles(train, model_config.tile, rng), training_tiles(
        val, model_config.tile, rng
    )


def split_images(images, train_config: TrainConfig) -> tuple[list, list]:
    """(training images, held-out whole images): the last of a seeded shuffle, a fraction up to
    ``val_size``."""
    if len(images) < 2:
        raise ValueError(
            "training needs at least 2 images (whole images are held out to validate), not "
            f"{len(images)}"
        )
    held = min(train_config.val_size, max(1, round(len(images) * train_config.val_fraction)))
    order = np.random.default_rng(train_config.seed).permutation(len(images))
    return [images[i] for i in order[:-held]], [images[i] for i in order[-held:]]


def training_tiles(images, tile: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Tiles (N, th * tw) of uint8 images: whole images of the tile's size (Fashion-MNIST, as is),
    random crops with flips of any others (a list, or an array of another size)."""
    if (
        isinstance(images, list)
        and all(isinstance(a, np.ndarray) for a in images)
        and images
        and len({a.shape for a in images}) == 1
        and images[0].shape[:2] == tuple(tile)
    ):
        images = np.stack(images)
    if isinstance(images, np.ndarray) and images.shape[1:3] == tuple(tile):
        return to_tiles(planes(np.asarray(images, np.uint8)), tile)
    return random_crops(planes(list(images)), tile, rng)


CROPS_PER_TILE_AREA = (
    2  # random crops per tile's worth of an image's area: overlapping views, not a grid
)
MAX_CROPS = 200_000  # bounds the memory of the crops (200,000 28x28 crops: 157 MB)


def random_crops(
    images: list[np.ndarray], tile: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Tiles (N, th * tw) cut at random from grey images of any sizes (smaller ones edge-padded),
    with random flips: about ``CROPS_PER_TILE_AREA`` per tile of area, at most ``MAX_CROPS`` in
    all."""
    th, tw = tile
    areas = np.array([max(1, (a.shape[0] * a.shape[1]) // (th * tw)) for a in images], np.float64)
    counts = np.maximum(
        1,
        np.round(
            areas * CROPS_PER_TILE_AREA * min(1.0, MAX_CROPS / (areas.sum() * CROPS_PER_TILE_AREA))
        ),
    )
    out = []
    for image, count in zip(images, counts.astype(int), strict=True):
        a = np.pad(
            image, ((0, max(0, th - image.shape[0])), (0, max(0, tw - image.shape[1]))), mode="edge"
        )
        ys = rng.integers(0, a.shape[0] - th + 1, count)
        xs = rng.integers(0, a.shape[1] - tw + 1, count)
        flips = rng.integers(0, 2, count).astype(bool)
        for y, x, flip in zip(ys, xs, flips, strict=True):
            crop = a[y : y + th, x : x + tw]
            out.append(crop[:, ::-1] if flip else crop)
    return np.stack(out).reshape(len(out), th * tw)


def _steps_that_fit(
    graphdef, state, train: np.ndarray, cfg: TrainConfig, started: float, log
) -> int:
    """How many steps fit the time budget: a few steps of the real step are timed (on a copy of the
    state, with a throwaway optimizer), and 15% of what is left is kept for validation and
    export."""
    probe = make_train_step(graphdef, make_optimizer(cfg, 1000))
    tx = make_optimizer(cfg, 1000)
    s = jax.tree.map(jnp.copy, state)
    o = tx.init(s)
    batch = to_input(train[: cfg.batch_size])
    key = jax.random.key(cfg.seed)
    s, o, _ = probe(s, o, batch, key)  # compiles
    jax.block_until_ready(s)
    t0 = time.time()
    for i in range(20):
        s, o, _ = probe(s, o, batch, jax.random.fold_in(key, i))
    jax.block_until_ready(s)
    per_step = (time.time() - t0) / 20
    left = cfg.minutes * 60 - (time.time() - started)
    steps = max(1, int(0.85 * left / per_step))
    log(
        f"training for {steps} steps ({per_step * 1000:.0f} ms each) to fit {cfg.minutes:g} "
        "minutes; "
        f"reproduce this run with --steps {steps}"
    )
    return steps


def export(
    model: Codec,
    path: str | Path | None,
    *,
    name: str,
    meta: dict,
    pixel_images: np.ndarray | None = None,
    test_images: np.ndarray | None = None,
    default_quality: int | None = None,
    force: bool = False,
) -> bytes:
    """Freeze the prior into integer tables, count the pixel coder's tables on ``pixel_images``
    (uint8 (N, H, W), the training images; needed when the config has pixel steps), and write the
    model file to ``path`` (None: only return its bytes; a file there is replaced only with
    ``force``).

    With ``test_images``, the written model is then measured as users will run it (the
    stored float16 weights, the frozen tables, the real coder) and the numbers, per quality,
    are recorded in its metadata as ``test``.
    """
    params = params_as_numpy(model)
    frozen = entropy.freeze(params)
    steps = model.cfg.pixel_steps
    if steps and pixel_images is None:
        raise ValueError(
            "the config has pixel steps: export needs the training images to fit their tables"
        )
    tables = [pixel.fit_tables(planes(pixel_images), step) for step in steps]
    meta = json.loads(json.dumps(meta, default=float))
    levels = model.cfg.levels
    # Unless asked: the first pixel level (the first near 29 dB on Fashion-MNIST), else the top
    # level.
    default = default_quality or (model.cfg.qualities + 1 if steps else levels)

    def dump() -> bytes:
        return modelfile.dumps(
            name=name,
            config=model.cfg.to_dict(),
            params=params,
            frozen=frozen,
            pixel=tables,
            meta=meta,
            default=default,
        )

    data = dump()
    if test_images is not None:  # each level's stream as coded (the container's framing aside)
        loaded = Model(modelfile.loads(data), source=str(path or name))
        rows = ladder.measure(loaded.levels, list(test_images))
        meta["test"] = [{"quality": q, **r} for q, r in enumerate(rows, 1)]  # the levels, in order
        data = dump()
    if path is not None:
        modelfile.save(path, data, force=force)
    return data


def read_meta(model_file: bytes) -> dict:
    return modelfile.loads(model_file)["meta"]
