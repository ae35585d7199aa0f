"""The convolutional levels' section of the model file (``conv``; nil: none): their config, their
four networks, the levels' gains and the frozen tables, with the context model's field beside it
(``conv_context``); written by ``sections``, read and checked by ``from_body`` (numpy only)."""

from __future__ import annotations

import numpy as np

from bitstream.coder import PRECISION
from bitstream.errors import FormatError
from codec.levels import conv_context, modelfile

CONV_NETS = ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis")
# |ln| of a conv level's gains and scales (the bundled ones' are within 4.3): exp stays finite
MAX_CONV_LOG = 64


def sections(params: dict, tables: tuple[np.ndarray, list[np.ndarray]]) -> dict:
    """The model file's fields of the convolutional levels (``modelfile.dumps``' and ``amended``'s
    keywords): ``conv``, and ``conv_context`` (None: the levels have no context model)."""
    context = params.get("context")
    return {
        "conv": to_dict(params, tables),
        conv_context.FIELD: None if context is None else _context_dict(context),
    }


def _stored_layers(layers) -> list[dict]:
    """A network's (kernel, bias) pairs as stored (float32 arrays)."""
    return [
        {
            "kernel": modelfile.encode_array(np.asarray(k, np.float32)),
            "bias": modelfile.encode_array(np.asarray(b, np.float32)),
        }
        for k, b in layers
    ]


def _read_layers(stored, what: str) -> list[tuple]:
    """A stored network's 3 (kernel, bias) pairs, finite (FormatError naming ``what``; KeyError,
    TypeError: malformed)."""
    if not isinstance(stored, list) or len(stored) != 3:
        raise FormatError(f"{what} is not 3 layers")
    layers = [
        (
            modelfile.decode_array(layer["kernel"], what=what),
            modelfile.decode_array(layer["bias"], what=what),
        )
        for layer in stored
    ]
    if any(not np.isfinite(a).all() for layer in layers for a in layer):
        raise FormatError(f"{what} holds values that are not finite")
    return layers


def _context_dict(context: dict) -> dict:
    """The stored form of a context model, ``{"mode", "layers": [(kernel, bias)]}``."""
    return {"mode": context["mode"], "nets": _stored_layers(context["layers"])}


def _context_from(stored, source: str) -> dict | None:
    """``{"mode", "layers"}`` of a stored context model (None: none); shapes are checked by
    ``conv.ConvTransform`` (FormatError: missing, mistyped, of an unknown mode, not finite)."""
    if stored is None:
        return None
    try:
        mode = stored["mode"]
        if mode not in conv_context.MODES:
            raise FormatError(
                f"{source}: conv context mode {mode!r:.40} is not one of {conv_context.MODES}"
            )
        return {"mode": mode, "layers": _read_layers(stored["nets"], f"{source}: conv context")}
    except (KeyError, TypeError) as e:
        raise FormatError(f"{source}: conv context is malformed ({e})") from None


def to_dict(params: dict, tables: tuple[np.ndarray, list[np.ndarray]]) -> dict:
    """The convolutional levels' parameters (``conv_model.export``) and frozen tables, as stored
    (their context model is a field of its own: ``sections``)."""
    return {
        "config": params["config"],
        "nets": {name: _stored_layers(params[name]) for name in CONV_NETS},
        **{
            k: modelfile.encode_array(np.asarray(params[k], np.float32))
            for k in ("log_gain", "log_inv_gain", "log_z_scale")
        },
        "tables": {
            "lows": modelfile.encode_array(np.asarray(tables[0], np.int32)),
            "freqs": [modelfile.encode_array(np.asarray(f, np.uint32)) for f in tables[1]],
        },
    }


def _stored_config(cfg, source: str) -> dict:
    """The conv levels' stored config, every number checked (KeyError, TypeError: malformed)."""
    for key in ("channels", "n", "m", "h", "z"):
        if type(cfg[key]) is not int or not 1 <= cfg[key] <= 256:
            raise FormatError(f"{source}: conv config {key} is not a whole number from 1 to 256")
    if "ns" in cfg and (type(cfg["ns"]) is not int or not 1 <= cfg["ns"] <= 256):
        raise FormatError(f"{source}: conv config ns is not a whole number from 1 to 256")
    if cfg["channels"] not in (1, 3):
        raise FormatError(f"{source}: conv config channels is not 1 or 3")
    lambdas = cfg["lambdas"]
    if (
        not isinstance(lambdas, list)
        or not 1 <= len(lambdas) <= 32
        or not all(type(v) in (int, float) and 0 < v < 1e3 for v in lambdas)
    ):
        raise FormatError(f"{source}: conv config lambdas is not 1-32 positive numbers")
    return {k: cfg[k] for k in ("channels", "n", "m", "h", "z", "ns", "lambdas") if k in cfg}


def _check_tables(lows: np.ndarray, freqs: list, source: str) -> None:
    """Refuse stored tables that are not the coder's integer tables over symmetric ranges."""
    for t in freqs:
        if (
            t.dtype != np.uint32
            or t.ndim != 1
            or t.size < 2
            or (t == 0).any()
            or int(t.sum(dtype=np.int64)) != 1 << PRECISION
        ):
            raise FormatError(f"{source}: conv tables are not valid integer tables")
    if (
        lows.ndim != 1
        or len(lows) != len(freqs)
        or any(2 * -int(lo) + 2 != len(f) for lo, f in zip(lows, freqs, strict=True))
    ):
        raise FormatError(f"{source}: conv tables do not cover symmetric ranges")


def from_body(body: dict, *, source: str = "model"):
    """(parameters, tables) of the convolutional levels, or None; shapes are checked by
    ``ConvTransform``.

    Raises:
        FormatError: a field missing, mistyped or out of range.
    """
    stored = body.get("conv")
    if stored is None:
        return None
    try:
        params = {"config": _stored_config(stored["config"], source)}
        for name in CONV_NETS:
            params[name] = _read_layers(stored["nets"][name], f"{source}: conv {name}")
        for key in ("log_gain", "log_inv_gain", "log_z_scale"):
            params[key] = modelfile.decode_array(stored[key], what=f"{source}: conv {key}").astype(
                np.float64
            )
        lows = modelfile.decode_array(stored["tables"]["lows"], what=f"{source}: conv tables")
        freqs = [
            modelfile.decode_array(f, what=f"{source}: conv tables")
            for f in stored["tables"]["freqs"]
        ]
    except (KeyError, TypeError) as e:
        raise FormatError(f"{source}: conv levels are malformed ({e})") from None
    context = _context_from(body.get(conv_context.FIELD), source)
    if context is not None:
        params["context"] = context
    _check_tables(lows, freqs, source)
    for key in ("log_gain", "log_inv_gain", "log_z_scale"):
        if not np.abs(params[key]).max(initial=0) <= MAX_CONV_LOG:  # ``not <=`` refuses NaN as well
            raise FormatError(
                f"{source}: conv {key} holds values beyond +-{MAX_CONV_LOG} or not finite"
            )
    return params, (lows.astype(np.int64), freqs)
