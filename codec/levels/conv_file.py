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
        conv_context.FIELD: None if context is None else conv_context.to_dict(context),
    }


def to_dict(params: dict, tables: tuple[np.ndarray, list[np.ndarray]]) -> dict:
    """The convolutional levels' parameters (``conv_model.export``) and frozen tables, as stored
    (their context model is a field of its own: ``sections``)."""
    return {
        "config": params["config"],
        "nets": {
            name: [
                {
                    "kernel": modelfile.encode_array(np.asarray(k, np.float32)),
                    "bias": modelfile.encode_array(np.asarray(b, np.float32)),
                }
                for k, b in params[name]
            ]
            for name in CONV_NETS
        },
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
            layers = stored["nets"][name]
            if not isinstance(layers, list) or len(layers) != 3:
                raise FormatError(f"{source}: conv {name} is not 3 layers")
            params[name] = [
                (
                    modelfile.decode_array(layer["kernel"], what=f"{source}: conv {name}"),
                    modelfile.decode_array(layer["bias"], what=f"{source}: conv {name}"),
                )
                for layer in layers
            ]
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
    context = conv_context.from_dict(body.get(conv_context.FIELD), source)
    if context is not None:
        params["context"] = context
    _check_tables(lows, freqs, source)
    for name in CONV_NETS:
        if any(not np.isfinite(a).all() for layer in params[name] for a in layer):
            raise FormatError(f"{source}: conv {name} holds values that are not finite")
    for key in ("log_gain", "log_inv_gain", "log_z_scale"):
        if not np.abs(params[key]).max(initial=0) <= MAX_CONV_LOG:  # ``not <=`` refuses NaN as well
            raise FormatError(
                f"{source}: conv {key} holds values beyond +-{MAX_CONV_LOG} or not finite"
            )
    return params, (lows.astype(np.int64), freqs)
