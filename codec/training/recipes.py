"""Training recipes: "a model of kind K on these images", from Python as from the command line.

    raw = recipes.train_model("conv", images, TrainOptions(name="photos", workdir=Path("w")))

``TrainOptions`` holds what ``aecodec train`` takes besides its data (None: the default of the
config class that owns the setting: ``TrainConfig`` and ``ModelConfig`` for the tile kind,
``ConvTraining`` and ``ConvConfig`` for the convolutional kind). A recipe returns the model file's
bytes; writing it is the caller's. The classic autoencoders train in ``codec.family.commands``.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np

from codec.errors import CheckpointMismatchError, UsageError
from codec.io import fileio
from codec.levels import conv, conv_file, modelfile
from codec.levels.model import Model
from codec.levels.tile_config import ModelConfig
from codec.pretrained import PHOTO_MODEL
from codec.training import checkpoints, conv_model, ladder, scale_fit, wavelet_fit
from codec.training import tile as train
from codec.training.lossless_train import lossless_added

KINDS = ("auto", "tile", "conv", "lossless")
# The training values the wavelet levels' tables are counted on under auto, at most (about a
# minute on 2 cores): a random choice of whole training images.
WAVELET_VALUES = 1 << 24
# Convolutional rate points added under auto above the trained levels (finer quantizers of the
# same latent, no training; the ladder keeps those that measure better): on smooth data the
# transform still gains 2 dB a level at its top (64x64 Fashion-MNIST items: 39.5 dB at 221
# bytes, where the wavelet levels needed 400)
CONV_RATES_ABOVE = 3
WORKDIR_FILES = ("tile.aecm", "conv-params.npz")  # a run's own in its workdir, besides checkpoints


@dataclasses.dataclass(frozen=True)
class ConvTraining:
    """How the convolutional kind trains, where ``TrainOptions`` leaves it unset."""

    steps: int = 20_000  # alone (--kind conv, or auto on photos), without --minutes
    auto_steps: int = 3000  # under auto on grey 28x28 images, fine-tuned beside the tile kind
    batch_size: int = 8  # crops per step
    learning_rate: float = 5e-4  # from random weights
    fine_tune_learning_rate: float = 1e-4  # from a model's weights (the bundled photo model)
    max_crop: int = 128  # crop side; small images (patches) are not padded out to it
    # the context model a model without one gets (``conv_context``; "none": none), chosen by
    # held-out measurement (benchmarks/context.py)
    context: str = "checkerboard"


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """A training run's settings (``aecodec train``'s options); None: the owner's default."""

    kind: str = "auto"
    name: str = "model"  # recorded in the file
    workdir: Path | None = None  # checkpoints and the run's own files (WORKDIR_FILES)
    init: Path | None = None  # a model file to start from
    # the model the convolutional kind fine-tunes where init gives none (None, or from_scratch:
    # from random weights)
    start: Path | None = PHOTO_MODEL
    epochs: int | None = None
    steps: int | None = None
    minutes: float | None = None  # the whole budget; under auto half for each kind
    batch_size: int | None = None
    learning_rate: float | None = None
    prior_learning_rate: float | None = None
    val_fraction: float | None = None
    seed: int | None = None
    hidden: int | None = None
    clusters: int | None = None
    context_groups: int | None = None
    context_hidden: int | None = None
    lambdas: tuple[float, ...] | None = None
    pixel_steps: tuple[int, ...] | None = None
    conv_steps: int | None = None
    from_scratch: bool = False
    synthesis_width: int | None = None
    # the conv levels' context model: a mode of ``conv_context.MODES``, "none", or None (the start
    # model's, else ConvTraining.context)
    conv_context: str | None = None
    context_only: bool = False  # train the context network alone
    leaves: int = 1024  # the lossless coder's
    depth: int | None = None  # the lossless coder's
    data_name: str = "Fashion-MNIST train split"  # what the file says it was trained on
    command: str = ""  # the command line the file records as its recipe
    settings: dict = dataclasses.field(default_factory=dict)  # the tile kind records them
    protected: tuple[Path, ...] = ()  # files the run reads: never written, even in the workdir

    def __post_init__(self):  # paths may be given as strings, as from Python they often are
        for name in ("workdir", "init", "start"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))


def _quiet(_message: str) -> None:
    pass


def train_model(
    kind: str,
    images,
    options: TrainOptions | None = None,
    *,
    val=None,
    test=None,
    log=_quiet,
    progress=False,
) -> bytes:
    """A model file of ``kind`` (auto, tile, conv, lossless) trained on ``images`` (an array or a
    list of arrays); ``val``: images to validate on instead of a share of ``images``; ``test``:
    images to measure the tile kind's exported model on (None: the held-out share).

    Raises:
        UsageError: settings that do not fit the kind or the data; LadderError: the levels of one
        kind out of order; CheckpointMismatchError: the workdir holds another run's checkpoint.
    """
    options = dataclasses.replace(options or TrainOptions(), kind=kind)  # the recipes read it there
    if kind == "lossless":
        base = modelfile.read(options.init) if options.init else None
        return lossless_added(
            images,
            base,
            name=options.name,
            leaves=options.leaves,
            depth=options.depth,
            command=options.command,
            data_name=options.data_name,
            log=log,
        )
    if options.workdir is None:
        raise UsageError(
            f"the {kind} kind needs a workdir for its checkpoints (--workdir; from Python "
            "TrainOptions(workdir=...))"
        )
    if kind == "conv" or (kind == "auto" and not small_aligned(images)):
        return train_conv(list(images), options, val=val, auto=kind == "auto", log=log)
    return train_tile(images, options, val=val, test=test, log=log, progress=progress)


def small_aligned(images) -> bool:
    """Grey images of the tile kind's native size (Fashion-MNIST's 28 x 28): where the tile
    transform and the pixel coder are worth training beside the convolutional kind. At any other
    size the tile levels are never named (``TileLevel.fits``): training them would spend half the
    budget on levels the ladder drops."""
    shape = images.shape[1:] if hasattr(images, "shape") else None
    return shape is not None and tuple(shape) == tuple(ModelConfig().tile)


def summary(model_file: bytes) -> dict:
    """What a trained file's run measured: the held-out ladder (conv) or the test images' row."""
    meta = modelfile.loads(model_file)["meta"]
    if meta.get("kind") == "conv":
        return {"val": meta["val"]}
    return {"test": meta.get("test")}


# The tile kind (and auto on grey 28x28 images: the convolutional and wavelet levels beside it).


def tile_configs(options: TrainOptions) -> tuple[ModelConfig, train.TrainConfig]:
    """The tile kind's configs: the options given, the classes' defaults for the others."""

    def given(*names):  # options left unset keep the configs' own defaults
        return {n: getattr(options, n) for n in names if getattr(options, n) is not None}

    try:  # refused before any data is read or any time is spent training
        model_config = ModelConfig(
            **given(
                "hidden", "clusters", "context_groups", "context_hidden", "lambdas", "pixel_steps"
            )
        )
        train_config = train.TrainConfig(
            **given(
                "epochs",
                "batch_size",
                "learning_rate",
                "prior_learning_rate",
                "seed",
                "steps",
                "val_fraction",
            ),
            **tile_minutes(options),
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    return model_config, train_config


def check_tile(options: TrainOptions) -> tuple[ModelConfig, train.TrainConfig]:
    """``tile_configs``, and the workdir's checkpoint refused where it is another run's, before
    any data is read (its images: once they are)."""
    model_config, train_config = tile_configs(options)
    resumable = checkpoints.run_settings(model_config, train_config, init=options.init)
    checkpoints.check_workdir(options.workdir, resumable)
    return model_config, train_config


def minutes_split(options: TrainOptions) -> bool:
    """Whether --minutes is shared: under auto, half for the tile kind and half for the
    convolutional levels (unless --conv-steps fixes theirs), so that --minutes is the whole
    budget."""
    return bool(options.minutes) and options.kind == "auto" and options.conv_steps is None


def tile_minutes(options: TrainOptions) -> dict:
    """The tile kind's share of --minutes (see ``minutes_split``), as TrainConfig fields."""
    if not options.minutes:
        return {}
    return {"minutes": options.minutes / 2 if minutes_split(options) else options.minutes}


def train_tile(images, options: TrainOptions, *, val=None, test=None, log=_quiet, progress=False):
    """The tile kind's model file (with ``options.kind`` auto: and the convolutional levels)."""
    model_config, train_config = check_tile(options)
    try:
        model, result = train.train_and_evaluate(
            images,
            options.workdir,
            model_config=model_config,
            train_config=train_config,
            progress=progress,
            log=log,
            init=options.init,
            val_images=val,
        )
    except CheckpointMismatchError:  # the workdir's, not the options'
        raise
    except ValueError as e:  # too few images for a hold-out, ...
        raise UsageError(str(e)) from None
    model_file = _exported(model, result, images, test, options, model_config, train_config)
    # kept in the workdir first: the ladder is measured (and may be refused) before it is returned
    write_workdir(options, "tile.aecm", model_file)
    train_part, held = (
        (images, val) if val is not None else train.split_images(images, train_config)
    )
    if options.kind == "auto":  # the convolutional levels too, then the ladder by measurement
        return with_conv_levels(options, model_file, train_part, held[:500], log=log)
    _, rows = measured_ladder(model_file, held[:500], auto=False)  # LadderError unless monotone
    return scale_fit.with_level_rows(model_file, rows, data=f"{len(held[:500])} held-out images")


def _exported(model, result, images, test, options, model_config, train_config) -> bytes:
    """The trained tile model's file, measured on ``test`` (None: the held-out tiles)."""
    if test is None:  # held-out images of the data, cut to tiles as for validation
        test = result["val_tiles"].reshape(-1, *model_config.tile)
    else:  # measured as the model codes tiles: cut the same way (whole 28x28 images stay whole)
        tiles = train.training_tiles(
            test if isinstance(test, np.ndarray) else list(test),
            model_config.tile,
            np.random.default_rng(train_config.seed),
        )
        test = tiles.reshape(-1, *model_config.tile)
    meta = {
        "data": options.data_name,
        "steps": result["steps"],
        "command": options.command,
        "settings": options.settings,
        "train_config": dataclasses.asdict(train_config),
        "val": result["val"],
    }
    return train.export(
        model, None, name=options.name, meta=meta, pixel_images=images, test_images=test
    )


def with_conv_levels(options: TrainOptions, tile_file: bytes, images, val, log=_quiet) -> bytes:
    """The tile model plus fine-tuned convolutional levels, keeping the Pareto front measured on
    ``val``."""
    split = minutes_split(options)  # the other half of --minutes
    steps = None if split else options.conv_steps or ConvTraining.auto_steps
    fitted = fit_conv(
        options,
        list(images[:20_000]),
        list(val),
        steps=steps,
        minutes=options.minutes / 2 if split else None,
        log=log,
    )
    params = no_worse_than_start(options, *fitted, list(val), log=log)
    params = scale_fit.extended_rates(params, 0, CONV_RATES_ABOVE)
    candidate = modelfile.amended(tile_file, **conv_file.sections(params, conv.ladder_tables()))
    candidate = with_wavelet_levels(candidate, images, log=log)
    entries, rows = measured_ladder(candidate, list(val), auto=True)
    meta = modelfile.loads(candidate)["meta"]
    laddered = modelfile.amended(
        candidate,
        ladder=entries,
        default=ladder.default_level(rows),
        meta={
            **meta,
            "val_ladder": [{"kind": k, **r} for (k, _), r in zip(entries, rows, strict=True)],
        },
    )
    return scale_fit.with_level_rows(laddered, rows, data=f"{len(val)} held-out images")


def with_wavelet_levels(model_file: bytes, images, log=_quiet) -> bytes:
    """``model_file`` with wavelet levels (``wavelet_fit.STEPS``) whose tables are counted on a
    random choice of whole training ``images``, up to ``WAVELET_VALUES`` values: no gradient
    training, so they cost a minute whatever the budget; the ladder keeps them where they measure
    better on the held-out images."""
    chosen, values = [], 0
    for i in np.random.default_rng(0).permutation(len(images)):
        chosen.append(np.asarray(images[i]))
        values += chosen[-1].size
        if values >= WAVELET_VALUES:
            break
    log(f"counting the wavelet levels' tables on {len(chosen)} training images")
    return wavelet_fit.wavelet_added(model_file, chosen, log=_quiet, grown=False)


def measured_ladder(model_file: bytes, val: list, *, auto: bool) -> tuple[list, list]:
    """([kind, index] of the levels to keep, their measurements) on the held-out images ``val``:
    the Pareto front with ``auto``, else every level, refused (LadderError) if they are not
    monotone."""
    model = Model(modelfile.loads(model_file), source="trained model")
    seen: dict[str, int] = {}
    entries = []
    for (
        level
    ) in model.levels:  # its place among the levels of its kind, as a stored ladder names it
        entries.append([level.kind, seen.get(level.kind, 0)])
        seen[level.kind] = entries[-1][1] + 1
    rows = ladder.measure(model.levels, val)
    if auto:
        keep = ladder.pareto(rows)
    else:
        names = [f"level {n} ({lv.kind})" for n, lv in enumerate(model.levels, 1)]
        ladder.check_monotone(rows, names)
        keep = range(len(rows))
    return [entries[i] for i in keep], [rows[i] for i in keep]


def write_workdir(options: TrainOptions, name: str, data: bytes) -> None:
    """A file of the workdir's own (each run replaces it), never one the run reads (--init ...)."""
    options.workdir.mkdir(parents=True, exist_ok=True)
    fileio.write_outputs([(options.workdir / name, data)], force=True, inputs=options.protected)


# The convolutional kind.


def train_conv(images: list, options: TrainOptions, *, val=None, auto=False, log=_quiet) -> bytes:
    """The convolutional levels, on random crops of ``images``, whole images held out (or
    ``val``) to measure the ladder; by default fine-tuned from the bundled photo model (a colour
    model: grey images train as R = G = B). ``auto`` adds the wavelet levels and keeps the levels
    on the Pareto front; without it (the conv kind alone) a ladder out of order is refused."""
    try:
        split = train.TrainConfig(
            **{
                k: v
                for k, v in (("val_fraction", options.val_fraction), ("seed", options.seed))
                if v is not None
            }
        )
        train_images, val = (images, val) if val is not None else train.split_images(images, split)
    except ValueError as e:
        raise UsageError(str(e)) from None
    fitted = fit_conv(options, train_images, val, log=log)
    params = no_worse_than_start(options, *fitted, measurable(val), log=log)
    meta = {"data": options.data_name, "kind": "conv", "command": options.command}
    if auto:
        params = scale_fit.extended_rates(params, 0, CONV_RATES_ABOVE)
    candidate = conv_model.model_file(params, name=options.name, meta=meta)
    if auto:  # the wavelet levels beside them, kept where they measure better
        candidate = with_wavelet_levels(candidate, train_images, log=log)
        meta = modelfile.loads(candidate)["meta"]
    entries, rows = measured_ladder(candidate, measurable(val), auto=auto)
    meta["val"] = [{"kind": k, "index": i, **r} for (k, i), r in zip(entries, rows, strict=True)]
    laddered = modelfile.amended(
        candidate, ladder=entries, default=ladder.default_level(rows), meta=meta
    )
    return scale_fit.with_level_rows(laddered, rows, data=f"{len(val)} held-out images")


def measurable(images: list, count: int = 64, side: int = 512) -> list:
    """Up to ``count`` held-out images, each its central ``side`` x ``side`` at most: measuring
    stays quick."""
    out = []
    for a in images[:count]:
        y, x = max(0, (a.shape[0] - side) // 2), max(0, (a.shape[1] - side) // 2)
        out.append(a[y : y + side, x : x + side])
    return out


def fit_conv(options, images: list, val: list, steps=None, minutes=None, log=_quiet):
    """(the start's parameters or None, the trained float model of the convolutional kind):
    ``steps``, else ``minutes``, else the options' --steps, else --minutes; the weights that did
    best on crops of the held-out images ``val``."""
    init = conv_init(options)
    # exported before training donates its buffers
    start = conv_model.export(init) if init is not None else None
    colour = init is not None or any(a.ndim == 3 for a in images)
    images, val = [_as_input(a, colour) for a in images], [_as_input(a, colour) for a in val]
    if init is not None and options.lambdas:
        raise UsageError("--lambdas sets up a new model: give --from-scratch with it")
    cfg = conv_model.ConvConfig(
        channels=3 if colour else 1,
        ns=options.synthesis_width,
        context=context_mode(options, None),
        **({"lambdas": options.lambdas} if options.lambdas else {}),
    )
    if init is not None:
        log(
            f"fine-tuning {options.init or 'the bundled photo model (photo.aecm)'}; "
            "--from-scratch to start from random weights"
        )
    if steps is None and minutes is None:
        steps = options.steps or (None if options.minutes else ConvTraining.steps)
        minutes = options.minutes
    if options.context_only and (init.cfg if init is not None else cfg).context is None:
        raise UsageError("--context-only trains the context model: not with --context none")
    own = options.kind == "conv"  # --batch-size and --learning-rate are the tile kind's under auto
    fresh_rate = ConvTraining.fine_tune_learning_rate if init else ConvTraining.learning_rate
    smallest = min(min(a.shape[:2]) for a in images)
    return start, conv_model.train(
        images,
        cfg=init.cfg if init is not None else cfg,
        steps=steps,
        minutes=minutes,  # beside steps: a cap on this session (the workdir's checkpoint resumes)
        batch_size=own and options.batch_size or ConvTraining.batch_size,
        crop=min(ConvTraining.max_crop, max(32, smallest // 32 * 32)),
        init=init,
        learning_rate=own and options.learning_rate or fresh_rate,
        seed=options.seed or 0,
        log=log,
        grey_fraction=0.25 if colour else 0.0,
        val=val,
        workdir=options.workdir,
        context_only=options.context_only,
    )


def _as_input(a, colour: bool):
    """(H, W, 3) for a colour model (grey as R = G = B), (H, W, 1) for a grey one."""
    a = a[..., :3] if a.ndim == 3 else a[..., None]
    return np.repeat(a, 3, axis=2) if colour and a.shape[2] == 1 else a


def no_worse_than_start(options, start: dict | None, model, val: list, log=_quiet) -> dict:
    """The trained parameters (kept in the workdir), or the start model's where fine-tuning made
    the coded files on the held-out images ``val`` larger at equal PSNR: training never loses to
    its start."""
    params = keep_params(options, model)
    if start is None:
        return params

    def measured(p):
        body = modelfile.loads(conv_model.model_file(p, name="candidate", meta={}))
        return ladder.measure(Model(body, source="trained model").levels, val)

    change = ladder.rate_change(measured(start), measured(params))
    log(
        f"held-out images: the trained levels code {change:+.1%} bytes at equal PSNR against the "
        "start model's"
    )
    if change < 0:
        return params
    log("keeping the start model's convolutional levels: training did not make them better here")
    return start


def keep_params(options: TrainOptions, model) -> dict:
    """The trained parameters, also saved in the workdir (conv-params.npz) before anything can
    refuse them."""
    params = conv_model.export(model)
    arrays = {
        f"{k}_{i}_{j}": a
        for k in conv_file.CONV_NETS
        for i, layer in enumerate(params[k])
        for j, a in enumerate(layer)
    }
    arrays.update({k: params[k] for k in ("log_gain", "log_inv_gain", "log_z_scale")})
    for i, layer in enumerate(params.get("context", {}).get("layers", [])):
        arrays.update({f"context_{i}_{j}": a for j, a in enumerate(layer)})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_workdir(options, "conv-params.npz", buffer.getvalue())
    return params


def conv_params(path):
    """(parameters, tables) of a model file's convolutional levels, or None where it has none."""
    try:
        body = modelfile.loads(modelfile.read(path), what=str(path))
        return conv_file.from_body(body, source=str(path))
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from None


def conv_init(options: TrainOptions):
    """The model to fine-tune, as a trainable model: --init's, else ``options.start`` (None with
    --from-scratch or where it is not installed); with --synthesis-width, its synthesis widened to
    it."""
    if options.from_scratch:
        return None
    found = conv_params(options.init) if options.init else None
    if found is None and options.init and options.kind == "conv":
        raise UsageError(f"{options.init}: the model has no convolutional levels to start from")
    start = options.start
    if found is None and start is not None:  # auto with a --init of tile levels only: those start
        found = conv_params(start) if start.is_file() else None  # the tile kind
    if found is None:
        return None
    params = found[0]
    if options.synthesis_width:
        try:
            params = conv_model.widen_synthesis(
                params, options.synthesis_width, seed=options.seed or 0
            )
        except ValueError as e:
            raise UsageError(str(e)) from None
    return conv_model.from_params(params, context=context_mode(options, params))


def context_mode(options: TrainOptions, start: dict | None) -> str | None:
    """The context model to train: the start model's (``start``: its parameters, or None), else
    --context's, else ``ConvTraining.context``; None for none."""
    had = (start or {}).get("context", {}).get("mode")
    wanted = options.conv_context
    if had and wanted not in (None, had):
        raise UsageError(f"--context {wanted}: the model starts with a {had} context")
    mode = had or wanted or ConvTraining.context
    return None if mode == "none" else mode
