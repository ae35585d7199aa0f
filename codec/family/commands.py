"""The family's commands as functions of files and settings, returning what they make (bytes and
arrays; writing them is the caller's): ``train`` of an autoencoder kind, ``embed``, ``denoise``,
``sample`` (a picture and its array) and ``score`` (a table and a histogram)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from codec.errors import DataError, UsageError
from codec.family import pictures
from codec.family.anomalies import anomalies, checked_quantiles, score_quantiles
from codec.family.fileformat import dumps, load, loads
from codec.family.learning import train
from codec.family.networks import FamilyConfig
from codec.family.uses import denoise, embed, grid, image_shape, sample
from codec.io import data, idx
from codec.io.images import folder_files

# Each kind's own defaults, where they are not FamilyConfig's (whose zeros turn the terms off).
KIND_DEFAULTS = {
    "denoising": {"noise": 0.3},
    "contractive": {"contraction": 0.01},
    "sparse": {"beta": 0.1},
}
OPTIONS = (  # FamilyConfig's fields that aecodec train sets
    "widths",
    "noise",
    "mask",
    "l1",
    "rho",
    "beta",
    "contraction",
    "decoder",
    "neighbours",
    "arch",
)
CONV_WIDTHS = (32, 64)  # --kind convolutional: its stages' channels, after the input


@dataclasses.dataclass(frozen=True)
class FamilyTraining:
    """How ``aecodec train`` trains an autoencoder kind, where its options leave it unset."""

    steps: int = 5000
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0


def family_config(kind: str, shape: tuple, options: dict) -> FamilyConfig:
    """The config of ``kind`` (one of KINDS, or convolutional: plain with the conv architecture)
    for images of ``shape``, ``options`` (FamilyConfig's fields) over the kind's defaults."""
    options = dict(options)
    if kind == "convolutional":
        kind, options["arch"] = "plain", "conv"
    if options.get("arch") == "conv":
        options["image_shape"] = tuple(int(v) for v in shape)
        options.setdefault("widths", (math.prod(shape), *CONV_WIDTHS))
    try:
        return FamilyConfig(kind=kind, **{**KIND_DEFAULTS.get(kind, {}), **options})
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None


def train_file(images, cfg: FamilyConfig, run: FamilyTraining, *, name: str, meta: dict, log):
    """The model file (.aecf) of ``cfg`` trained on ``images`` (N, ...); a variational model with
    the logistic decoder is an anomaly scorer: its file keeps its training scores' spread."""
    try:
        model = train(
            images,
            cfg,
            steps=run.steps,
            batch_size=run.batch_size,
            learning_rate=run.learning_rate,
            seed=run.seed,
            log=log,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    meta = {**meta, "image_shape": [int(v) for v in images.shape[1:]]}
    if cfg.kind == "variational" and cfg.decoder == "logistic":
        # the spread under the weights its file will hold (float16)
        model = loads(dumps(model, name=""))[0]
        try:
            meta["score_quantiles"] = score_quantiles(model, images)
        except ValueError as e:  # NaN scores: no scorer file is written
            raise UsageError(str(e)) from None
    return dumps(model, name=name, meta=meta)


def training_images(path: Path | None):
    """The images at ``path`` as one array, or Fashion-MNIST's train split."""
    return one_size(data.training_images(path), path) if path else data.fashion_mnist("train")


def one_size(images, where):
    """``data.training_images``' result as one array (N, ...): the autoencoder kinds take images
    of one size."""
    if hasattr(images, "shape"):
        return images
    sizes = {a.shape for a in images}
    if len(sizes) > 1:
        raise UsageError(
            f"{where}: images of {len(sizes)} different sizes; the autoencoder kinds take images "
            "of one size"
        )
    return np.stack(images)


def model_images(path: Path, model, model_path) -> np.ndarray:
    """The images at ``path`` as one array, checked against the number of values the model
    takes."""
    images = one_size(data.training_images(path), path)
    if images[0].size != model.cfg.widths[0]:
        raise UsageError(
            f"{path}: images of {images[0].size} values "
            f"({'x'.join(map(str, images.shape[1:]))}); "
            f"{model_path} takes {model.cfg.widths[0]}"
        )
    return images


def picture(command: str, model_path, *, data_path=None, n=64, seed=0, labels_path=None):
    """(array, PNG bytes) of ``embed`` (the codes and their map, coloured by the labels at
    ``labels_path``), ``denoise`` (the clean images and a preview of 64) or ``sample`` (``n`` new
    images and their grid)."""
    model, body = load(model_path)
    if command == "sample":
        try:
            array = sample(model, n, seed=seed, shape=image_shape(model, body))
        except ValueError as e:
            raise UsageError(f"{model_path}: {e}") from None
        return array, pictures.png(grid(array[..., 0] if array.ndim == 4 else array))
    images = model_images(data_path, model, model_path)
    if command == "embed":
        labels = labels_of(labels_path, len(images), data_path)  # before the work
        array = embed(model, images)
        return array, pictures.map_png(array, labels)
    array = denoise(model, images)
    shown = array[:64].reshape(min(64, len(array)), *image_shape(model, body))
    return array, pictures.png(grid(shown))


def labels_of(path: Path | None, count: int, data_path) -> np.ndarray | None:
    """The labels at ``path`` (None without): one finite number per image of ``data_path``,
    ``count`` of them.

    Raises:
        DataError: not a .npy or IDX file of numbers, not (count,), NaN or infinity (exit status 1).
    """
    if not path:
        return None
    labels = read_labels(path)
    if labels.ndim != 1:
        raise DataError(
            f"{path}: labels of shape {labels.shape}: one number per image, (N,), is needed"
        )
    if labels.dtype.kind not in "biuf":
        raise DataError(
            f"{path}: labels of dtype {labels.dtype}: numbers are needed (they colour the map)"
        )
    if len(labels) != count:
        raise DataError(f"{path}: {len(labels)} labels for the {count} images of {data_path}")
    labels = np.array(labels)  # read now: (count,) numbers, a size already known
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError(f"{path}: the labels hold NaN or infinity")
    return labels


def read_labels(path: Path):
    """The array of a .npy file (mapped, not read: its shape is checked first) or of an IDX file.

    Raises:
        DataError: neither, or an .npy of objects (it would need pickle, which runs code).
    """
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError) as e:
            if "objects" in str(e) or "pickle" in str(e):  # numpy's words for an array of objects
                raise DataError(
                    f"{path}: labels that need pickle (objects) are not read: save numbers"
                ) from None
            raise DataError(f"{path}: a damaged .npy file ({e})") from None
    if magic[:2] not in (b"\x00\x00", b"\x1f\x8b"):  # IDX, or gzip-compressed IDX (read_idx checks)
        raise DataError(f"{path}: --labels takes a .npy or an IDX file of one number per image")
    return idx.read_idx(path)


def scored(model_path, data_path: Path, percentile: float) -> tuple[bytes, bytes, dict]:
    """``score``: (the table as CSV: index, file, score, anomalous; the histogram as PNG; the
    counts) of the images at ``data_path`` under the scorer at ``model_path``, the threshold at
    ``percentile`` of its training images' scores."""
    model, body = load(model_path)
    if not body["meta"].get("score_quantiles"):
        raise UsageError(
            f"{model_path}: not an anomaly scorer (train one with --kind variational "
            "--decoder logistic)"
        )
    # NaN or infinite quantiles (a diverged training): a damaged file, refused before reading images
    quantiles = checked_quantiles(body["meta"]["score_quantiles"], what=str(model_path))
    images = model_images(data_path, model, model_path)
    try:
        found = anomalies(images, model, percentile=percentile, quantiles=quantiles)
    except ValueError as e:
        raise UsageError(f"{model_path}: {e}") from None
    scores, limit, flags = found.scores, found.threshold, found.flags
    names = (
        [p.relative_to(data_path).as_posix() for p in folder_files(data_path)[0]]
        if data_path.is_dir()
        else [""] * len(scores)
    )
    rows = [
        "index,file,score_bits,anomalous",
        *(
            f"{i},{_csv_field(n)},{s:.3f},{int(f)}"
            for i, (n, s, f) in enumerate(zip(names, scores, flags, strict=True))
        ),
    ]
    text = ("\n".join(rows) + "\n").encode()
    counts = {
        "images": len(scores),
        "anomalous": int(flags.sum()),
        "threshold_bits": round(limit, 3),
        "percentile": percentile,
    }
    return text, pictures.histogram_png(scores, limit, percentile), counts


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text
