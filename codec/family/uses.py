"""What the models are for: maps, clean images, samples; the bundled model for each purpose."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from codec.errors import FormatError, InputError
from codec.family.fileformat import load
from codec.family.networks import ConvAE, DenseAE, Model, pixels
from codec.pretrained import PRETRAINED_DIR


def as_inputs(model: Model, images) -> np.ndarray:
    """A batch of images as the model's input rows, refused (InputError) where their size is not
    its."""
    a = np.asarray(images)
    if a.ndim < 2 or a[0].size != model.cfg.widths[0]:
        raise InputError(
            f"images of shape {a.shape[1:]} ({a[0].size if a.ndim else 0} values each); the model "
            f"takes {model.cfg.widths[0]} values per image (a batch (N, H, W[, C]))"
        )
    return pixels(a)


def image_shape(model: Model, body: dict | None = None) -> tuple[int, ...]:
    """The shape of the images a model was trained on (recorded in its meta; else square)."""
    recorded = (body or {}).get("meta", {}).get("image_shape")
    if recorded:
        return tuple(recorded)
    side = math.isqrt(model.cfg.widths[0])
    if side * side != model.cfg.widths[0]:
        raise FormatError(
            f"the model's {model.cfg.widths[0]} inputs are not a square image: its "
            "file should record the shape (meta.image_shape)"
        )
    return side, side


def embed(model: Model, images) -> np.ndarray:
    """The code of each image (N, k), float32; the variational kind's mean."""
    out = []
    for part in np.array_split(as_inputs(model, images), max(1, len(images) // 4096)):
        code = model.encode(jnp.asarray(part))
        out.append(np.asarray(code[0] if model.cfg.kind == "variational" else code, np.float32))
    return np.concatenate(out)


def _as_uint8(x) -> np.ndarray:
    # NaN (weights that overflow float32) to 0: its cast is undefined, so pixels differ by machine
    scaled = np.nan_to_num(np.round(np.asarray(x, np.float64) * 255))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _decoded(model: Model, code) -> np.ndarray:
    out = model.decode(jnp.asarray(code))
    if model.cfg.kind == "variational" and model.cfg.decoder == "bernoulli":
        out = jax.nn.sigmoid(out)  # the decoder's mean image
    if model.cfg.kind == "variational" and model.cfg.decoder == "logistic":
        out = out[:, : model.cfg.widths[0]]  # the logistic's means
    return np.asarray(out)


def denoise(model: Model, images) -> np.ndarray:
    """Each image through the model (a denoising one removes the noise it was trained on): uint8,
    same shape."""
    a = np.asarray(images)
    code = embed(model, a)
    return _as_uint8(_decoded(model, code)).reshape(a.shape)


def sample(model: Model, n: int, *, seed: int = 0, shape=None) -> np.ndarray:
    """``n`` new images (uint8) from the variational kind's prior, N(0, I)."""
    if model.cfg.kind != "variational":
        raise ValueError(f"sampling needs a variational model, not a {model.cfg.kind} one")
    z = np.random.default_rng(seed).normal(size=(n, model.cfg.widths[-1])).astype(np.float32)
    return _as_uint8(_decoded(model, z)).reshape(n, *(shape or image_shape(model)))


def interpolate(model: Model, a: np.ndarray, b: np.ndarray, steps: int = 8) -> np.ndarray:
    """``steps`` images (uint8) decoded along the straight line between the codes of images ``a``
    and ``b``."""
    ca, cb = embed(model, np.stack([a, b]))
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return _as_uint8(_decoded(model, (1 - t) * ca + t * cb)).reshape(steps, *a.shape)


def grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """Grey images (N, H, W) tiled into one image, ``columns`` wide (blank where the last row is
    short)."""
    n, h, w = images.shape[:3]
    rows = -(-n // columns)
    out = np.zeros((rows * h, columns * w), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = image
    return out


# The package's functions (codec.embed, ...): a model given, a file, or the bundled one for the
# purpose.

BUNDLED = {
    "embed": "fmnist-map",
    "denoise": "fmnist-denoiser",
    "sample": "fmnist-vae",
    "score": "fmnist-vae",
}


def bundled_path(purpose: str) -> Path:
    return PRETRAINED_DIR / f"{BUNDLED[purpose]}.aecf"


def resolve(model, purpose: str) -> tuple[Model, dict]:
    """(model, body) from a model, a file's path, or None: the bundled model for ``purpose``."""
    if isinstance(model, (DenseAE, ConvAE)):
        return model, {"meta": {}}
    return load(bundled_path(purpose) if model is None else model)
