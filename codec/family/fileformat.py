"""Family model files (.aecf): "AECF" and one msgpack map, parsed as strictly as codec models
(never pickle)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import msgpack
import numpy as np
from flax import nnx

from bitstream.walk import unpack_map
from codec.errors import FormatError, LimitError
from codec.family.networks import FamilyConfig, Model, build
from codec.io.fileio import write_atomic
from codec.levels import modelfile

MAGIC = b"AECF"
FORMAT = 1
MAX_BYTES = 64 << 20
# What a file may ask to be built, all checked before anything is: the bundled models have 3 or 4
# widths, none above 784, and 0.93 million parameters at most.
MAX_WIDTHS = 16  # input, hidden..., code: 15 layers each way
MAX_WIDTH = 1 << 16  # a layer's units or a stage's channels (a 256 x 256 grey image: 65,536 inputs)
MAX_PARAMS = MAX_BYTES // 2  # what a file of float16 weights can hold
# Multiply-adds per input value of encoding and decoding an image: the bundled models need 1,190
# (dense) and 94,000 (convolutional); a file may ask 10x the most.
MAX_MULTIPLY_ADDS_PER_VALUE = 1_000_000


def _flat(model: Model):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(nnx.state(model, nnx.Param))
    return [(jax.tree_util.keystr(p), leaf) for p, leaf in leaves], treedef


def dumps(model: Model, *, name: str, meta: dict | None = None) -> bytes:
    """A family model's file: its kind and widths, every parameter (float16: half the size, and
    these models' uses never need more; ``loads`` computes in float32), the name and meta."""
    body = {
        "format": FORMAT,
        "name": name,
        "family": {
            **dataclasses.asdict(model.cfg),
            "widths": list(model.cfg.widths),
            "image_shape": list(model.cfg.image_shape),
        },
        "params": {
            path: modelfile.encode_array(np.asarray(leaf, np.float16))
            for path, leaf in _flat(model)[0]
        },
        "meta": meta or {},
    }
    body["fingerprint"] = modelfile.fingerprint(body)
    return MAGIC + msgpack.packb(body, use_bin_type=True)


def loads(raw: bytes, *, what: str = "model") -> tuple[Model, dict]:
    """(model, body without params) from a family model file's bytes.

    Raises:
        FormatError (and subclasses): not such a file, damaged, a newer format, shapes that do not
        match the architecture its config describes; LimitError: a config that asks for more layers,
        units or parameters than a model may have (refused before anything is built).
    """
    body = _body(raw, what)
    cfg = _config(body["family"], what)
    _check_meta(body["meta"], cfg, what)
    model = _build_from(cfg, body["params"], what)
    body.pop("params")
    return model, body


def _body(raw: bytes, what: str) -> dict:
    """The file's map, its fields and fingerprint checked."""
    if len(raw) > MAX_BYTES:
        raise LimitError(f"{what}: {len(raw)} bytes is larger than the {MAX_BYTES}-byte limit")
    if raw[:4] != MAGIC:
        raise FormatError(f"{what}: not an aecodec autoencoder file (bad magic)")
    body = unpack_map(
        raw,
        what=what,
        noun="autoencoder file",
        start=4,
        max_values=10_000,
        max_depth=6,
        max_bin_len=MAX_BYTES,
        max_str_len=1 << 16,
        max_array_len=4096,
        max_map_len=1000,
    )
    if set(body) != {
        "format",
        "name",
        "family",
        "params",
        "meta",
        "fingerprint",
    }:
        raise FormatError(f"{what}: autoencoder file is missing fields or has unknown ones")
    if type(body["format"]) is not int or body["format"] != FORMAT:
        raise FormatError(f"{what}: autoencoder format {body['format']!r:.20} is not {FORMAT}")
    for field in ("family", "params", "meta"):
        if not isinstance(body[field], dict):
            kind = type(body[field]).__name__
            raise FormatError(f"{what}: autoencoder field {field} is a {kind}, not a map")
    claimed = body.pop("fingerprint")
    if modelfile.fingerprint(body) != claimed:
        raise FormatError(f"{what}: fingerprint does not match its contents (damaged file)")
    body["fingerprint"] = claimed
    return body


def _sizes(value, field: str, what: str, *, most: int = MAX_WIDTHS) -> tuple[int, ...]:
    """A stored list of sizes (widths, an image's shape), whole numbers from 1 to MAX_WIDTH."""
    # type(), not isinstance: msgpack's true is a Python bool, which passes for the int 1
    if not isinstance(value, list) or not all(type(v) is int and v >= 1 for v in value):
        raise FormatError(
            f"{what}: {field} {str(value)[:40]} is not a list of whole numbers from 1"
        )
    if len(value) > most:
        raise LimitError(
            f"{what}: {field} has {len(value)} entries, more than the {most} a model may have"
        )
    if max(value, default=1) > MAX_WIDTH:
        raise LimitError(
            f"{what}: {field} holds {max(value)}, more than the {MAX_WIDTH} a model may have"
        )
    return tuple(value)


def _config(family: dict, what: str) -> FamilyConfig:
    """The stored architecture, its sizes checked before anything is built."""
    widths = _sizes(family.get("widths"), "family.widths", what)
    image_shape = _sizes(family.get("image_shape", []), "family.image_shape", what, most=3)
    try:
        return FamilyConfig(**{**family, "widths": widths, "image_shape": image_shape})
    except (TypeError, ValueError) as e:
        raise FormatError(f"{what}: bad autoencoder config: {e}") from None


def _check_meta(meta: dict, cfg: FamilyConfig, what: str) -> None:
    """The recorded image shape (what ``sample`` and ``denoise`` reshape to) fits the model's
    input."""
    if meta.get("image_shape"):
        shape = _sizes(meta["image_shape"], "meta.image_shape", what, most=3)
        if len(shape) < 2 or math.prod(shape) != cfg.widths[0]:
            raise FormatError(
                f"{what}: meta.image_shape {list(shape)} is not (H, W[, C]) of the "
                f"model's {cfg.widths[0]} inputs"
            )


def _build_from(cfg: FamilyConfig, params: dict, what: str) -> Model:
    """The model of ``cfg`` holding the file's ``params``: its shapes derived without allocating
    (``nnx.eval_shape``), its size bounded, every array checked, before any weight is made."""
    model = nnx.eval_shape(lambda: build(cfg))
    flat, treedef = _flat(model)
    total = sum(math.prod(leaf.shape) for _, leaf in flat)
    if total > MAX_PARAMS:
        raise LimitError(
            f"{what}: family.widths ask for {total:,} parameters, more than the "
            f"{MAX_PARAMS:,} a model may have"
        )
    cost = model.multiply_adds() // cfg.widths[0]
    if cost > MAX_MULTIPLY_ADDS_PER_VALUE:
        raise LimitError(
            f"{what}: family.widths ask for {cost:,} multiply-adds per input value, "
            f"more than the {MAX_MULTIPLY_ADDS_PER_VALUE:,} a model may"
        )
    if set(params) != {path for path, _ in flat}:
        raise FormatError(f"{what}: parameters do not match the architecture")
    values = []
    for path, leaf in flat:
        value = modelfile.decode_array(params[path], what=f"{what}: {path}", shape=leaf.shape)
        if value.dtype.kind != "f" or not np.isfinite(value).all():
            raise FormatError(f"{what}: parameter {path} is not finite floating point")
        values.append(jnp.asarray(value, jnp.float32))
    # every parameter is replaced: none stays abstract
    nnx.update(model, jax.tree_util.tree_unflatten(treedef, values))
    return model


def save(model: Model, path, *, name: str, meta: dict | None = None, force: bool = False) -> None:
    """Write ``model`` as an .aecf file (refused where ``path`` exists, unless ``force``)."""
    write_atomic(Path(path), dumps(model, name=name, meta=meta), force=force)


def load(path) -> tuple[Model, dict]:
    """``loads`` of a model file, read as ``modelfile.read`` reads (regular files, at most
    MAX_BYTES)."""
    return loads(modelfile.read(path, limit=MAX_BYTES), what=str(path))
