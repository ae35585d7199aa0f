"""Model files (``.aecm``): msgpack, never pickle.

Layout: the 4 magic bytes ``AECM``, then one msgpack map::

    {"format": 5, "name": str, "config": {...} | None, "params": {path: array},
     "frozen": {...} | None, "pixel": [array per pixel step], "default": int,
     "conv": {...} | None, "ladder": [...], "lossless": {...}, "meta": {...},
     "fingerprint": hex SHA-256 of the canonical bytes of everything else}

(``ladder`` and ``lossless`` optional; formats 1 to 4 lack the later fields, see ``FORMAT``.)

Arrays are ``{"shape": [...], "dtype": "<f4", "data": bytes}`` (little-endian). A model
file is untrusted input like any other: it is read from regular files only and with a size
limit (``read``, for ``.aecf`` files too), parsed with limits, every array is checked against
the shape the architecture config implies, the work it asks per pixel is bounded (the
lossless tree's depth, the transforms' multiply-adds, the integer networks' ranges), and a
newer format is refused.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from pathlib import Path

import msgpack
import numpy as np

from bitstream.coder import PRECISION
from bitstream.errors import FormatError, LimitError, TruncatedError, UnsupportedVersionError
from bitstream.walk import check_structure
from codec.levels.entropy import FrozenPrior

MAGIC = b"AECM"
FORMAT = 5  # 5: the lossless coder (optional); 4: the default level, convolutional levels (a model may have only those); 3: the pixel coder's tables; 2: scales as ladder positions ("rung"),
# context networks; 1: table indices
_FIELDS = {
    "format",
    "name",
    "config",
    "params",
    "frozen",
    "meta",
    "fingerprint",
}  # of formats 1 and 2
_ADDED = {3: {"pixel"}, 4: {"pixel", "default", "conv"}, 5: {"pixel", "default", "conv"}}
_OPTIONAL = {4: {"ladder"}, 5: {"ladder", "lossless"}}  # fields a format may leave out
MAX_MODEL_BYTES = 64 << 20  # bundled models are at most 5 MB; 64 MB leaves room without risk
_ALLOWED_DTYPES = {"<f2", "<f4", "<i4", "<u4", "|u1"}
MAX_LOSSLESS_LEAVES = 1 << 14
# Steps of the context tree's walk, taken for every pixel coded: the bundled trees are 22 (1,024
# leaves), 18 (512) and 10 (128) deep, and training (lossless_train.fit) stops growing at this
# depth, so a learned tree always loads. It keeps a hostile model's walk within ~3x the bundled
# one's (a 16,383-deep chain cost 70x: 26 s for a 10 KB near-lossless file).
MAX_LOSSLESS_DEPTH = 64
# Values and nesting a model file may hold: the bundled one has about 2,000 values, 6 levels deep.
# Walked before parsing: msgpack's per-container limits alone let nested empty arrays cost gigabytes.
MAX_MODEL_VALUES = 100_000
MAX_MODEL_DEPTH = 12


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _check_regular(mode: int, what: str) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
        raise FormatError(
            f"{what}: {kind}, not a model file (models are read from regular files only)"
        )


def read(
    path: str | os.PathLike, *, limit: int = MAX_MODEL_BYTES, what: str | None = None
) -> bytes:
    """A model file's bytes (``.aecm`` or ``.aecf``), at most ``limit`` of them.

    Checked by name before opening (opening a FIFO waits for a writer, a device may act on it)
    and again on the open file (it may have been replaced in between); read with a bound (a
    device or a growing file never ends).

    Raises:
        OSError: the file cannot be opened (missing, no permission).
        FormatError: not a regular file (a folder, FIFO, socket or device).
        LimitError: larger than ``limit`` bytes.
    """
    what = str(path) if what is None else what
    _check_regular(os.stat(path).st_mode, what)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        _check_regular(st.st_mode, what)
        if st.st_size > limit:
            raise LimitError(
                f"{what}: {st.st_size} bytes is larger than the {limit}-byte limit for model files"
            )
        # one past its size: a file that grows meanwhile is read on, up to the bound
        data = f.read(st.st_size + 1)
        if len(data) > st.st_size:
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:
        raise LimitError(f"{what}: larger than the {limit}-byte limit for model files")
    return data


def encode_array(a: np.ndarray) -> dict:
    a = np.asarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return {"shape": list(a.shape), "dtype": a.dtype.str, "data": np.ascontiguousarray(a).tobytes()}


def decode_array(d, *, what: str, shape=None) -> np.ndarray:
    """Rebuild an array from ``encode_array``'s dict, checking dtype, size and (optionally) shape."""
    if not isinstance(d, dict) or set(d) != {"shape", "dtype", "data"}:
        raise FormatError(f"{what}: not an encoded array")
    if not isinstance(d["dtype"], str) or d["dtype"] not in _ALLOWED_DTYPES:
        raise FormatError(f"{what}: unsupported dtype {d['dtype']!r}")
    dims = d["shape"]
    # type(), not isinstance: msgpack's true is a Python bool, which is an int that reshape refuses
    whole = isinstance(dims, list) and all(type(v) is int and 0 <= v < 1 << 31 for v in dims)
    if not whole or len(dims) > 8:
        raise FormatError(f"{what}: shape {str(dims)[:60]} is not a list of up to 8 whole numbers")
    if shape is not None and tuple(dims) != tuple(shape):
        raise FormatError(
            f"{what}: shape {tuple(dims)} does not match the architecture's {tuple(shape)}"
        )
    dtype = np.dtype(d["dtype"])
    if (
        not isinstance(d["data"], bytes) or len(d["data"]) != math.prod(dims) * dtype.itemsize
    ):  # exact: no int64 wrap
        raise FormatError(f"{what}: data length does not match shape {tuple(dims)}")
    return np.frombuffer(d["data"], dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


HALF_PRECISION = (
    "analysis_linear",
    "synthesis_linear",
    "analysis_branch",
    "synthesis_branch",
    "context",
    "log_scale",
)


def _stored(name: str, value: np.ndarray) -> np.ndarray:
    """Transform and context weights and scales are stored as float16 (the model *is* the rounded weights,
    on every machine); means, gains and cluster logits stay float32."""
    return value.astype(np.float16) if name.startswith(HALF_PRECISION) else value.astype(np.float32)


def _frozen_to_dict(f: FrozenPrior) -> dict:
    # The means are the parameter "mean" itself: stored once, with the parameters.
    return {
        "lows": encode_array(f.lows),
        "freqs": [encode_array(t) for t in f.freqs],
        "rung": encode_array(f.rung),  # the table indices are its nearest integers: not stored
        "gain": encode_array(f.gain),
        "inv_gain": encode_array(f.inv_gain),
    }


def _frozen_from_dict(
    d: dict, mean: np.ndarray, *, m: int, q: int, p: int, version: int
) -> FrozenPrior:
    # Format 1 (before context modelling) stores table indices ("index") instead of rung positions.
    scales = "rung" if version >= 2 else "index"
    if not isinstance(d, dict) or set(d) != {"lows", "freqs", "gain", "inv_gain", scales}:
        raise FormatError("frozen: missing or unknown fields")
    lows = decode_array(d["lows"], what="frozen.lows")
    if lows.ndim != 1 or not q < lows.size <= 256 + q or (np.abs(lows) > 4096).any():
        raise FormatError("frozen.lows: out of range")
    if not isinstance(d["freqs"], list) or len(d["freqs"]) != lows.size:
        raise FormatError("frozen.freqs: one table per entry of lows expected")
    freqs = []
    for t, raw in enumerate(d["freqs"]):
        table = decode_array(raw, what=f"frozen.freqs[{t}]")
        if (
            table.dtype != np.uint32
            or table.ndim != 1
            or not 2 <= table.size <= 8192
            or (table == 0).any()
            or int(table.sum(dtype=np.int64)) != 1 << PRECISION
        ):
            raise FormatError(f"frozen.freqs[{t}]: not a valid integer table")
        freqs.append(table)
    ladder = lows.size - q
    if scales == "rung":
        rung = decode_array(d["rung"], what="frozen.rung", shape=(m, q, p))
        if rung.dtype != np.float16 or not np.isfinite(rung).all():
            raise FormatError("frozen.rung: not finite float16 values")
    else:
        index = decode_array(d["index"], what="frozen.index", shape=(m, q, p))
        if index.dtype != np.uint8 or index.max(initial=0) >= ladder:
            raise FormatError("frozen.index: table index out of range")
        rung = index.astype(
            np.float16
        )  # whole rungs: FrozenPrior.index gives the same indices back
    if any(lows[t] > 0 or len(freqs[t]) != 2 * -int(lows[t]) + 2 for t in range(ladder)):
        raise FormatError(
            "frozen: a ladder table does not cover a symmetric range -K..K plus its escape"
        )
    if any(lows[ladder + j] != 0 or len(freqs[ladder + j]) != m + 1 for j in range(q)):
        raise FormatError("frozen: cluster tables do not match the number of clusters")
    gain = decode_array(d["gain"], what="frozen.gain", shape=(q, p))
    inv_gain = decode_array(d["inv_gain"], what="frozen.inv_gain", shape=(q, p))
    for name, a in (("mean", mean), ("gain", gain), ("inv_gain", inv_gain)):
        if a.dtype != np.float32 or not np.isfinite(a).all():
            raise FormatError(f"frozen.{name}: not finite float32 values")
    return FrozenPrior(
        lows=lows, freqs=tuple(freqs), rung=rung, mean=mean, gain=gain, inv_gain=inv_gain
    )


def fingerprint(body: dict) -> str:
    return hashlib.sha256(msgpack.packb(body, use_bin_type=True)).hexdigest()


def dumps(
    *,
    name: str,
    config: dict | None,
    params: dict,
    frozen: FrozenPrior | None,
    pixel: list,
    meta: dict,
    default: int,
    conv: dict | None = None,
    ladder: list | None = None,
    lossless=None,
) -> bytes:
    """Serialize a model. ``config`` (None: no tile or pixel levels) is the tile transform's
    architecture; ``params`` maps '/'-joined parameter paths to numpy arrays; ``pixel`` holds the
    pixel coder's tables, one (contexts, symbols) uint32 array per step of ``config``; ``conv`` the
    convolutional levels (``conv_to_dict``); ``default`` is the quality used when none is asked for;
    ``ladder`` (optional) the levels kept, low to high quality, as [kind, index] pairs (``ladder.py``);
    ``lossless`` (optional) a ``lossless.LosslessCoder``."""
    body = {
        "format": FORMAT,
        "name": name,
        "config": config,
        "params": {k: encode_array(_stored(k, v)) for k, v in sorted(params.items())},
        "frozen": None if frozen is None else _frozen_to_dict(frozen),
        "pixel": [encode_array(np.asarray(t, np.uint32)) for t in pixel],
        "meta": meta,
        "default": default,
        "conv": conv,
    }
    if ladder is not None:
        body["ladder"] = [[kind, int(i)] for kind, i in ladder]
    if lossless is not None:
        body["lossless"] = lossless_to_dict(lossless)
    body["fingerprint"] = fingerprint(body)
    return MAGIC + msgpack.packb(body, use_bin_type=True)


def amended(raw: bytes, **fields) -> bytes:
    """A model file's bytes with ``fields`` of its body replaced (values in their stored form, as
    ``dumps`` writes them), fingerprinted anew and checked as a reader checks it."""
    body = msgpack.unpackb(raw[len(MAGIC) :], raw=False)
    body.pop("fingerprint")
    body.update(fields)
    body["fingerprint"] = fingerprint(body)
    data = MAGIC + msgpack.packb(body, use_bin_type=True)
    loads(data)
    return data


def save(path: str | os.PathLike, data: bytes, *, force: bool = False, inputs=()) -> None:
    """Write a model file's bytes atomically, by the output policy of ``fileio``.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false. OutputIsInputError: it is an input.
    """
    from codec.io.fileio import write_atomic

    write_atomic(Path(path), data, force=force, inputs=inputs)


def loads(raw: bytes, *, what: str = "model") -> dict:
    """Parse and check a model file's bytes; returns the body with arrays decoded (params unchecked).

    Raises:
        FormatError (and subclasses): not a model file, damaged, or from a newer format.
    """
    if len(raw) > MAX_MODEL_BYTES:
        raise LimitError(
            f"{what}: {len(raw)} bytes is larger than the {MAX_MODEL_BYTES}-byte limit for models"
        )
    if raw[:4] != MAGIC:
        raise FormatError(f"{what}: not an aecodec model file (bad magic)")
    if raw[4:5] and not (0x80 <= raw[4] <= 0x8F or raw[4] in (0xDE, 0xDF)):  # the type first: a map
        raise FormatError(f"{what}: model file is damaged (not a map)")
    try:
        end = check_structure(
            raw, what=what, max_values=MAX_MODEL_VALUES, max_depth=MAX_MODEL_DEPTH, start=4
        )
    except TruncatedError:
        raise TruncatedError(f"{what}: model file is truncated") from None
    if end != len(raw):
        raise FormatError(f"{what}: model file has bytes after its end")
    try:
        body = msgpack.unpackb(
            raw[4:],
            raw=False,
            strict_map_key=True,
            max_bin_len=MAX_MODEL_BYTES,
            max_str_len=1 << 20,
            max_array_len=100_000,
            max_map_len=10_000,
        )
    except msgpack.OutOfData:
        raise TruncatedError(f"{what}: model file is truncated") from None
    except (msgpack.UnpackException, ValueError) as e:
        if "incomplete input" in str(e):  # how unpackb reports data that stops early
            raise TruncatedError(f"{what}: model file is truncated") from None
        raise FormatError(f"{what}: model file is damaged: {e}") from None
    if not isinstance(body, dict):
        raise FormatError(f"{what}: model file is damaged (not a map)")
    if "format" in body and type(body["format"]) is not int:  # not isinstance: true is an int (1)
        raise FormatError(f"{what}: model field format is not a whole number")
    if body.get("format", 0) > FORMAT:
        raise UnsupportedVersionError(
            f"{what}: model format {body['format']} is newer than this aecodec reads ({FORMAT}); upgrade aecodec"
        )
    required = _FIELDS | _ADDED.get(body.get("format"), set())
    allowed = required | _OPTIONAL.get(body.get("format"), set())
    if not required <= set(body) <= allowed or body["format"] not in (1, 2, 3, 4, FORMAT):
        raise FormatError(f"{what}: model file is missing fields or has unknown ones")
    optional = (
        {"config", "frozen", "conv"} if body["format"] >= 4 else set()
    )  # a model of conv levels only
    for field, kind in (
        ("name", str),
        ("config", dict),
        ("params", dict),
        ("frozen", dict),
        ("meta", dict),
        ("fingerprint", str),
        ("conv", dict),
        ("ladder", list),
        ("lossless", dict),
    ):
        if field not in body or (body[field] is None and field in optional):
            continue
        if not isinstance(body[field], kind):
            raise FormatError(
                f"{what}: model field {field} is a {type(body[field]).__name__}, not a {kind.__name__}"
            )
    claimed = body.pop("fingerprint")
    if fingerprint(body) != claimed:
        raise FormatError(f"{what}: model fingerprint does not match its contents (damaged file)")
    body["fingerprint"] = claimed
    return body


def pixel_from_body(body: dict, steps: tuple[int, ...]) -> list[np.ndarray]:
    """The pixel coder's tables, checked against the config's steps (files before format 3 have none)."""
    from codec.levels import pixel

    stored = body.get("pixel", [])
    if not isinstance(stored, list) or len(stored) != len(steps):
        raise FormatError("model: one table set per pixel step expected")
    rows = []
    for k, (raw, step) in enumerate(zip(stored, steps, strict=True)):
        t = decode_array(raw, what=f"pixel[{k}]")
        pixel.check_tables(t, step, what=f"model: pixel[{k}]")
        rows.append(t)
    return rows


def lossless_to_dict(coder) -> dict:
    """The lossless coder's stored form: its depth, its context tree (int32 arrays) and tables."""
    return {
        "depth": coder.depth,
        "prior": coder.prior,
        "tree": {k: encode_array(v.astype(np.int32)) for k, v in coder.tree.arrays().items()},
        "tables": encode_array(np.asarray(coder.rows, np.uint32)),
    }


def lossless_from_body(body: dict, *, source: str = "model"):
    """The model's ``lossless.LosslessCoder``, or None; every array checked (FormatError)."""
    from codec.levels import context_tree, lossless

    stored = body.get("lossless")
    if stored is None:
        return None
    if (
        not isinstance(stored, dict)
        or set(stored) != {"depth", "prior", "tree", "tables"}
        or not isinstance(stored["tree"], dict)
        or stored["prior"] not in lossless.PRIORS
    ):
        raise FormatError(f"{source}: lossless coder is malformed")
    depth = stored["depth"]
    if type(depth) is not int or not 1 <= depth <= 16:
        raise FormatError(f"{source}: lossless coder depth {depth!r} is not 1 to 16")
    tree = context_tree.check_tree(
        {
            k: decode_array(v, what=f"{source}: lossless tree {k}").astype(np.int64)
            for k, v in stored["tree"].items()
        },
        what=source,
    )
    if tree.leaves > MAX_LOSSLESS_LEAVES:
        raise FormatError(f"{source}: lossless coder has more than {MAX_LOSSLESS_LEAVES} leaves")
    if tree.depth > MAX_LOSSLESS_DEPTH:  # every pixel walks it: the work per pixel is bounded here
        raise LimitError(
            f"{source}: lossless tree depth {tree.depth} is more than the "
            f"{MAX_LOSSLESS_DEPTH} a model may have"
        )
    rows = decode_array(stored["tables"], what=f"{source}: lossless tables")
    lossless.check_rows(rows, depth, tree.leaves, what=f"{source}: lossless tables")
    return lossless.LosslessCoder(depth, tree, rows, stored["prior"])


CONV_NETS = ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis")
# |ln| of a conv level's gains and scales (the bundled ones' are within 4.3): exp stays finite
MAX_CONV_LOG = 64


def conv_to_dict(params: dict, tables: tuple[np.ndarray, list[np.ndarray]]) -> dict:
    """The convolutional levels' parameters (``conv_model.export``) and frozen tables, as stored."""
    return {
        "config": params["config"],
        "nets": {
            name: [
                {
                    "kernel": encode_array(np.asarray(k, np.float32)),
                    "bias": encode_array(np.asarray(b, np.float32)),
                }
                for k, b in params[name]
            ]
            for name in CONV_NETS
        },
        **{
            k: encode_array(np.asarray(params[k], np.float32))
            for k in ("log_gain", "log_inv_gain", "log_z_scale")
        },
        "tables": {
            "lows": encode_array(np.asarray(tables[0], np.int32)),
            "freqs": [encode_array(np.asarray(f, np.uint32)) for f in tables[1]],
        },
    }


def conv_from_body(body: dict, *, source: str = "model"):
    """(parameters, tables) of the convolutional levels, or None; shapes are checked by ``ConvTransform``.

    Raises:
        FormatError: a field missing, mistyped or out of range.
    """
    stored = body.get("conv")
    if stored is None:
        return None
    try:
        cfg = stored["config"]
        for key in ("channels", "n", "m", "h", "z"):
            if type(cfg[key]) is not int or not 1 <= cfg[key] <= 256:
                raise FormatError(
                    f"{source}: conv config {key} is not a whole number from 1 to 256"
                )
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
        params = {
            "config": {
                k: cfg[k] for k in ("channels", "n", "m", "h", "z", "ns", "lambdas") if k in cfg
            }
        }
        for name in CONV_NETS:
            layers = stored["nets"][name]
            if not isinstance(layers, list) or len(layers) != 3:
                raise FormatError(f"{source}: conv {name} is not 3 layers")
            params[name] = [
                (
                    decode_array(layer["kernel"], what=f"{source}: conv {name}"),
                    decode_array(layer["bias"], what=f"{source}: conv {name}"),
                )
                for layer in layers
            ]
        for key in ("log_gain", "log_inv_gain", "log_z_scale"):
            params[key] = decode_array(stored[key], what=f"{source}: conv {key}").astype(np.float64)
        lows = decode_array(stored["tables"]["lows"], what=f"{source}: conv tables")
        freqs = [decode_array(f, what=f"{source}: conv tables") for f in stored["tables"]["freqs"]]
    except (KeyError, TypeError) as e:
        raise FormatError(f"{source}: conv levels are malformed ({e})") from None
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
    for name in CONV_NETS:
        if any(not np.isfinite(a).all() for layer in params[name] for a in layer):
            raise FormatError(f"{source}: conv {name} holds values that are not finite")
    for key in ("log_gain", "log_inv_gain", "log_z_scale"):
        if not np.abs(params[key]).max(initial=0) <= MAX_CONV_LOG:  # ``not <=`` refuses NaN as well
            raise FormatError(
                f"{source}: conv {key} holds values beyond +-{MAX_CONV_LOG} or not finite"
            )
    return params, (lows.astype(np.int64), freqs)


def default_from_body(body: dict, levels: int, *, source: str = "model") -> int:
    """The model's default quality: stored from format 4 on; before, the first pixel level (the
    first at or above 29 dB on Fashion-MNIST), or the top level of a model without any."""
    if body["format"] < 4:
        pixel_steps = body["config"].get("pixel_steps", [])
        return levels - len(pixel_steps) + 1 if pixel_steps else levels
    default = body["default"]
    if type(default) is not int or not 1 <= default <= levels:
        raise FormatError(
            f"{source}: default quality {default!r:.40} is not one of the model's {levels} levels"
        )
    return default


def frozen_from_body(body: dict, mean: np.ndarray, *, m: int, q: int, p: int) -> FrozenPrior:
    try:
        return _frozen_from_dict(body["frozen"], mean, m=m, q=q, p=p, version=body["format"])
    except (KeyError, TypeError) as e:
        raise FormatError(f"model: frozen tables are malformed ({e})") from None
