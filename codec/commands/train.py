"""``aecodec train``: the options as ``recipes.TrainOptions``, the data read, the recipe run, the
model file written to --out (the classic autoencoder kinds: ``codec.commands.family``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codec.commands import family
from codec.commands.outputs import check_outputs, inputs, print_json, write_outputs
from codec.errors import UsageError
from codec.family.commands import CONV_WIDTHS, KIND_DEFAULTS, FamilyTraining
from codec.family.networks import FamilyConfig
from codec.io import data, fileio
from codec.levels import conv_context, modelfile
from codec.levels.lossless import MAX_LOSSLESS_LEAVES
from codec.levels.tile_config import ModelConfig
from codec.training import recipes
from codec.training.conv_model import ConvConfig
from codec.training.recipes import ConvTraining, TrainOptions
from codec.training.tile import TrainConfig


def train(args) -> int:
    """Train the model --kind names on --data and write it to --out; one JSON line says what."""
    _check_train_outputs(args)  # refused now, not after an hour of training
    if args.kind not in recipes.KINDS:  # the parser's choices: an autoencoder kind
        return family.train(args)
    options = options_of(args)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    if args.kind == "lossless":
        images = data.training_images(args.data) if args.data else data.fashion_mnist("train")
        raw = recipes.train_model("lossless", images, options, log=log)
        write_outputs(args, [(args.out, raw)])
        lossless = modelfile.loads(raw)["meta"]["lossless"]
        print_json({"model": str(args.out), "bytes": len(raw), "lossless": lossless}, indent=1)
        return 0
    if args.workdir is None:
        raise UsageError(f"--kind {args.kind} needs --workdir (a folder for checkpoints)")
    images, test = _codec_data(args, options)
    raw = recipes.train_model(
        args.kind,
        images,
        options,
        val=_val_images(args) if args.val else None,
        test=test,
        log=log,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    write_outputs(args, [(args.out, raw)])
    print_json({"model": str(args.out), "bytes": len(raw), **recipes.summary(raw)}, indent=1)
    return 0


def _codec_data(args, options: recipes.TrainOptions):
    """(images to train on, images to test the tile kind on or None), read once the settings are
    checked: the convolutional kind needs --data; the tile kind's workdir is checked first."""
    if args.kind == "conv":
        found = data.training_images(args.data) if args.data else None
        if found is None:
            raise UsageError("--kind conv needs --data (photos, scans, ...: images of any sizes)")
        return list(found), None
    if args.kind == "auto" and args.data:
        found = data.training_images(args.data)
        if not recipes.small_aligned(found):
            return list(found), None
    # a checkpoint of other settings is refused before any data is read (its images: once they are)
    recipes.check_tile(options)
    images = data.training_images(args.data) if args.data else data.fashion_mnist("train")
    if args.test is None and not args.data:
        return images, data.fashion_mnist("test")
    return images, data.training_images(args.test) if args.test else None


def options_of(args) -> recipes.TrainOptions:
    """``aecodec train``'s options as the recipes take them."""
    settings = {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"
    }
    # fmt: skip
    same = (
        "kind",
        "workdir",
        "init",
        "epochs",
        "steps",
        "minutes",
        "batch_size",
        "learning_rate",
        "prior_learning_rate",
        "val_fraction",
        "seed",
        "hidden",
        "clusters",
        "context_groups",
        "context_hidden",
        "lambdas",
        "pixel_steps",
        "conv_steps",
        "from_scratch",
        "synthesis_width",
        "conv_context",
        "context_only",
        "leaves",
        "depth",
    )
    return recipes.TrainOptions(
        **{k: getattr(args, k) for k in same},
        name=args.name or args.out.stem,
        data_name=str(args.data or "Fashion-MNIST train split"),
        command=args.command_line,
        settings=settings,
        protected=tuple(inputs(args)),
    )


def _val_images(args) -> list:
    """--val's images, refused where there are none."""
    images = data.training_images(args.val)
    if images is None or len(images) == 0:
        raise UsageError(f"{args.val}: no images to validate on")
    return list(images)


def _check_train_outputs(args) -> None:
    """--out and --workdir's files, refused now rather than after an hour of training."""
    check_outputs(args, args.out)
    if args.workdir is not None and args.workdir.is_dir():
        names = [args.workdir / n for n in recipes.WORKDIR_FILES]
        fileio.check_outputs(names, force=True, inputs=inputs(args))


# The options, their defaults read from the configs.


def add_options(tr: argparse.ArgumentParser, family_kinds: tuple) -> None:
    """``train``'s options (``family_kinds``: the autoencoder kinds, as the command line names
    them), in the order a tile model file records them (its ``settings``), their defaults read
    from the configs that own them."""
    tr.add_argument(
        "--kind",
        choices=("auto", "tile", "conv", "lossless", *family_kinds),
        default=TrainOptions.kind,
        help="auto (default): convolutional and wavelet levels for any data, and for grey 28x28 "
        "images (Fashion-MNIST's kind) the tile transform and pixel levels too, the ladder kept by "
        "measurement on held-out images; tile or conv: that kind alone (a ladder out of order is "
        "refused); lossless: the lossless coder alone (any depth to 16 bits), or with --init "
        f"MODEL added to that model; {', '.join(family_kinds)}: a classic autoencoder "
        "(--widths, --noise, ...; --out NAME.aecf)",
    )
    _autoencoder_options(tr, FamilyConfig(), KIND_DEFAULTS, CONV_WIDTHS)
    tr.add_argument(
        "--conv-steps",
        type=int,
        help="auto on grey 28x28 images: steps of the convolutional levels' fine-tuning "
        f"(default: half of --minutes where given, else {ConvTraining.auto_steps})",
    )
    tr.add_argument(
        "--from-scratch",
        action="store_true",
        help="--kind conv: start from random weights instead "
        "of fine-tuning the bundled photo model",
    )
    _data_options(tr)
    _length_options(tr, TrainConfig(), ConvTraining(), FamilyTraining())
    _tile_options(tr, ModelConfig())
    _start_options(tr, ConvConfig(), TrainConfig())
    _lossless_options(tr, TrainOptions())
    tr.add_argument("-q", "--quiet", action="store_true")


def _autoencoder_options(tr, family, kind_defaults: dict, conv_widths: tuple) -> None:
    """The classic autoencoder kinds' options (``FamilyConfig``'s fields)."""
    widths = ",".join(map(str, family.widths))
    tr.add_argument(
        "--widths",
        type=_int_list,
        metavar="D,H,...,K",
        help=f"autoencoder kinds: input, hidden and code widths (default {widths})",
    )
    noise = kind_defaults["denoising"]["noise"]
    tr.add_argument(
        "--noise",
        type=float,
        help=f"denoising: Gaussian noise sigma on [0, 1] pixels (default {noise:g})",
    )
    tr.add_argument(
        "--mask",
        type=float,
        help=f"denoising: share of input pixels set to 0 (default {family.mask:g})",
    )
    tr.add_argument(
        "--l1",
        type=float,
        help=f"sparse: weight of the code's mean absolute activation (default {family.l1:g})",
    )
    tr.add_argument(
        "--rho",
        type=float,
        help=f"sparse: target mean activation of the code units (default {family.rho:g})",
    )
    beta = kind_defaults["sparse"]["beta"]
    tr.add_argument(
        "--beta",
        type=float,
        help=f"sparse: weight of the KL divergence from --rho (default {beta:g})",
    )
    contraction = kind_defaults["contractive"]["contraction"]
    tr.add_argument(
        "--contraction",
        type=float,
        help="contractive: weight of the encoder Jacobian's squared norm "
        f"(default {contraction:g})",
    )
    _autoencoder_shape_options(tr, family, conv_widths)


def _autoencoder_shape_options(tr, family, conv_widths: tuple) -> None:
    tr.add_argument(
        "--decoder",
        choices=("bernoulli", "gaussian", "logistic"),
        help=f"variational: the decoder's distribution (default {family.decoder}); logistic "
        "(256 levels) makes the model an anomaly scorer (aecodec score)",
    )
    tr.add_argument(
        "--arch",
        choices=("dense", "conv"),
        help=f"plain and denoising: dense layers of --widths (default {family.arch}), or conv: "
        "stages of --widths[1:] channels, each halving the size (default for --kind "
        f"convolutional: D,{','.join(map(str, conv_widths))})",
    )
    tr.add_argument(
        "--blind",
        action="store_true",
        help="denoising: each image's noise sigma drawn from [0, --noise]",
    )
    tr.add_argument(
        "--neighbours",
        type=float,
        help="any autoencoder kind: weight of a neighbour-graph (UMAP) term "
        "that keeps each image's nearest neighbours near it in the code (2-D maps)",
    )


def _data_options(tr) -> None:
    """What train reads and writes."""
    tr.add_argument(
        "--data",
        type=Path,
        help="images to train on: a folder of images (any sizes, grey or colour, "
        "subfolders too), an image, .npy, .npz or IDX; default: Fashion-MNIST train split",
    )
    tr.add_argument(
        "--test",
        type=Path,
        help="images to measure the exported model on (default: Fashion-MNIST test split)",
    )
    tr.add_argument(
        "--val",
        type=Path,
        metavar="DATA",
        help="images to validate on (choose the levels, stop a fine-tuning at its best) instead "
        "of a share of --data held out; give images of other scenes when --data holds many "
        "crops of the same ones (the crops of one photo resemble each other)",
    )
    tr.add_argument("--out", type=Path, required=True, help="model file to write (.aecm)")
    tr.add_argument(
        "-f", "--force", action="store_true", help="overwrite --out (never an input of the run)"
    )
    tr.add_argument(
        "--workdir",
        type=Path,
        help="folder for checkpoints; training resumes from it (the codec kinds: "
        "auto, tile, conv; required for them)",
    )
    tr.add_argument(
        "--name", help="model name recorded in the file (default: the --out file's name)"
    )


def _length_options(tr, tile, conv, family) -> None:
    """How long and how fast: ``tile`` is TrainConfig, ``conv`` ConvTraining, ``family``
    FamilyTraining (each kind's own defaults)."""
    tr.add_argument(
        "--epochs", type=int, help=f"tile kind: passes over the data (default {tile.epochs})"
    )
    tr.add_argument(
        "--minutes",
        type=float,
        help="train for this long instead: the steps that fit are measured "
        "and the learning-rate schedule fitted to them (the log says how to repeat it: --steps N); "
        "conv levels with --steps: a cap on this session's wall time, the run saved in --workdir "
        "and resumed by the same command",
    )
    tr.add_argument(
        "--steps",
        type=int,
        help="train for exactly this many steps instead of --epochs (default: conv "
        f"{conv.steps:,}, autoencoder kinds {family.steps:,})",
    )
    tr.add_argument(
        "--val-fraction",
        type=float,
        help=f"share of the images held out to validate (default {tile.val_fraction:g}, at most "
        f"{tile.val_size:,} images)",
    )
    tr.add_argument(
        "--batch-size",
        type=int,
        help=f"images per step (default: tile {tile.batch_size}, conv {conv.batch_size} crops, "
        f"autoencoder kinds {family.batch_size})",
    )
    tr.add_argument(
        "--learning-rate",
        type=float,
        help=f"peak learning rate (default: tile {tile.learning_rate:g}, of the transforms; conv "
        f"{conv.learning_rate:g}, {conv.fine_tune_learning_rate:g} fine-tuning; autoencoder "
        f"kinds {family.learning_rate:g})",
    )
    tr.add_argument(
        "--prior-learning-rate",
        type=float,
        help=f"tile kind: peak learning rate of gains and prior (default "
        f"{tile.prior_learning_rate:g})",
    )


def _tile_options(tr, model) -> None:
    """The tile kind's architecture: ``model`` is ModelConfig."""
    tr.add_argument(
        "--hidden", type=int, help=f"width of the nonlinear branches (default {model.hidden})"
    )
    tr.add_argument(
        "--clusters",
        type=int,
        help=f"prior clusters the encoder picks from (default {model.clusters})",
    )
    tr.add_argument(
        "--context-groups",
        type=int,
        help=f"latent groups coded in turn, each with context (default {model.context_groups})",
    )
    tr.add_argument(
        "--context-hidden",
        type=int,
        help=f"width of each group's context network (default {model.context_hidden})",
    )
    tr.add_argument(
        "--lambdas",
        type=_lambdas,
        metavar="L1,L2,...",
        help="rate-distortion weight of each transform level, low to high: one level per value "
        f"(default {','.join(f'{v:g}' for v in model.lambdas)})",
    )
    tr.add_argument(
        "--pixel-steps",
        type=_steps,
        metavar="S1,S2,...",
        help="quantizer step (in pixel levels, 1 = lossless) of each pixel-coder level above the "
        "transform's, high to low; 'none' for no such levels (default "
        f"{','.join(map(str, model.pixel_steps))})",
    )


def _start_options(tr, conv, tile) -> None:
    """Where training starts: ``conv`` is ConvConfig, ``tile`` TrainConfig."""
    tr.add_argument(
        "--init",
        type=Path,
        metavar="MODEL",
        help="start from this model file's parameters (fine-tune)",
    )
    tr.add_argument(
        "--synthesis-width",
        type=_width,
        metavar="N",
        help="--kind conv: channels of the synthesis (the decoder; default as the model started "
        f"from, or {conv.n}); a wider one grown from a narrower model starts as the same function",
    )
    tr.add_argument(
        "--context",
        dest="conv_context",
        choices=(*conv_context.MODES, "none"),
        help="the convolutional levels: code the latent in two passes, the second predicted from "
        "the first: checkerboard (by position) or channels (by channel group); added to a model "
        "without one, it starts adding nothing (default: the start model's, else "
        f"{ConvTraining.context})",
    )
    tr.add_argument(
        "--context-only",
        action="store_true",
        help="--kind conv: train the context network alone and keep every other weight of the "
        "model started from (its files' pass 1 codes as before)",
    )
    tr.add_argument(
        "--seed",
        type=int,
        help=f"seed of initialization, shuffling and noise (default {tile.seed})",
    )


def _lossless_options(tr, options) -> None:
    """The lossless coder's: ``options`` is TrainOptions."""
    tr.add_argument(
        "--lossless",
        action="store_true",
        help="auto, tile, conv: also learn a lossless coder "
        "(aecodec --lossless, --max-error K) on the same images",
    )
    tr.add_argument(
        "--leaves",
        type=_leaves,
        default=options.leaves,
        help="lossless coder: leaves of its context tree, each a table (2 to 16,384, what a "
        f"model file may hold; default {options.leaves})",
    )
    tr.add_argument(
        "--depth",
        type=int,
        help="lossless coder: bits per sample it codes (default: the data's, 8 or 16)",
    )


# Argument types: refused as they are parsed, with argparse's message and exit status 2.


def _lambdas(text: str) -> tuple[float, ...]:
    """'0.5,2,8' -> (0.5, 2.0, 8.0); the ranges are ModelConfig's to check."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None


def _steps(text: str) -> tuple[int, ...]:
    """'44,34,25' -> (44, 34, 25); 'none' -> (); the ranges are ModelConfig's to check."""
    if text == "none":
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of whole numbers: {text!r}"
        ) from None


def _width(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"not a width from 1 to 256: {text!r}")
    return value


def _leaves(text: str) -> int:
    """--leaves, refused at parsing rather than when the trained model is loaded."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 2 <= value <= MAX_LOSSLESS_LEAVES:
        raise argparse.ArgumentTypeError(
            f"not a number of leaves from 2 to {MAX_LOSSLESS_LEAVES:,}: {text!r}"
        )
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of whole numbers: {text!r}"
        ) from None
