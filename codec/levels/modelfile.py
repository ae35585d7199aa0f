"""Model files (``.aecm``): the container of the level kinds' sections (msgpack, never pickle).

Layout: the 4 magic bytes ``AECM``, then one msgpack map::

    {"format": 6, "name": str, <sections>, "meta": {...}, "default": int, "ladder": [...],
     "fingerprint": hex SHA-256 of the canonical bytes of everything else}

This module keeps the container: the magic, the format versions, the limits, the arrays, the
fingerprint, the bounded parsing, the default level and the ladder (``ladder`` optional; formats
1 to 3 lack ``default``, see ``FORMAT``). Every other field is a section of a level kind, which
registers it (``registry``) and reads and writes it in its own module; the built-in ones, in the
order they are written: ``config``, ``params``, ``frozen`` (the tile levels, ``tile.py``; nil
config and frozen and no params: none), ``pixel`` (its tables, ``pixel.py``), ``conv``
(``conv.py``; nil: none) and ``lossless`` (optional, ``lossless.py``). A kind that is not built
in adds an optional field of the current format, named by it.

Arrays are ``{"shape": [...], "dtype": "<f4", "data": bytes}`` (little-endian). A model
file is untrusted input like any other: it is read from regular files only and with a size
limit (``read``, for ``.aecf`` files too), parsed with limits (``loads``: the container), then
each kind checks its section (``registry.check_fields``, then its ``read``: every array against
the shape its architecture implies, the work it asks per pixel bounded), and a newer format is
refused.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from pathlib import Path

import msgpack
import numpy as np

from bitstream.errors import FormatError, LimitError, UnsupportedVersionError
from bitstream.walk import unpack_map
from codec.io.fileio import write_atomic
from codec.levels import registry

MAGIC = b"AECM"
# 6: the convolutional levels' context model (optional); 5: the lossless coder and the wavelet
# levels (optional); 4: the default level, convolutional levels (a model may have
# only those); 3: the pixel coder's tables; 2: scales as ladder positions ("rung"), context
# networks; 1: table indices
FORMAT = 6  # the newest this reads
# What ``dumps`` writes where no section needs a newer one: a model without a context model stays
# readable by the aecodec before it.
BASE_FORMAT = 5
MAX_MODEL_BYTES = 64 << 20  # bundled models are at most 5 MB; 64 MB leaves room without risk
_ALLOWED_DTYPES = {"<f2", "<f4", "<i4", "<u4", "|u1"}
# Values and nesting a model file may hold: the bundled one has about 2,000 values, 6 levels deep.
# Walked before parsing: msgpack's per-container limits alone let nested empty arrays cost
# gigabytes.
MAX_MODEL_VALUES = 100_000
MAX_MODEL_DEPTH = 12
# Where formats 1 to 5 wrote the container's fields among the sections, which follow in the
# order of the format that added them (then of registration): meta and default after the pixel
# tables (format 3), the ladder after conv (format 4). The order is part of a file's bytes.
_POSITION = {
    "format": (0, 0),
    "name": (0, 1),
    "meta": (3, 1 << 30),
    "default": (3, (1 << 30) + 1),
    "ladder": (4, 1 << 30),
}

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
    """Rebuild an array from ``encode_array``'s dict, checking dtype, size and (optionally)
    shape."""
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
    # exact: no int64 wrap
    if not isinstance(d["data"], bytes) or len(d["data"]) != math.prod(dims) * dtype.itemsize:
        raise FormatError(f"{what}: data length does not match shape {tuple(dims)}")
    return np.frombuffer(d["data"], dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def fingerprint(body: dict) -> str:
    return hashlib.sha256(msgpack.packb(body, use_bin_type=True)).hexdigest()


def dumps(*, name: str, meta: dict, default: int, ladder: list | None = None, **sections) -> bytes:
    """Serialize a model: its ``name``, ``meta`` (what training records), ``default`` quality (the
    one used when none is asked for), ``ladder`` (optional: the levels kept, low to high quality,
    as [kind, index] pairs) and its kinds' sections, one keyword per field, each turned into its
    stored form by its kind (``registry.Field.store``). The built-in ones: ``config`` (the tile
    transform's architecture; None: no tile or pixel levels), ``params`` ('/'-joined parameter
    paths to numpy arrays), ``frozen`` (its ``FrozenPrior``), ``pixel`` (the pixel coder's tables,
    one (contexts, symbols) uint32 array per step of ``config``), ``conv`` (``conv_file.to_dict``),
    ``lossless`` (a ``lossless.LosslessCoder``). A required field left out is written empty, an
    optional one left out (or None) not at all.

    Raises:
        TypeError: a keyword that no registered kind holds.
    """
    order = {f.name: (f.since, i) for i, f in enumerate(registry.fields())}
    stored = {f.name: f for f in registry.fields()}
    unknown = sorted(set(sections) - set(stored))
    if unknown:
        raise TypeError(f"dumps: no registered level kind has the field {unknown[0]!r}")
    present = [stored[k] for k in sections if sections[k] is not None]
    version = max([BASE_FORMAT] + [f.since for f in present])
    body = {"format": version, "name": name, "meta": meta, "default": default}
    if ladder is not None:
        body["ladder"] = [[kind, int(i)] for kind, i in ladder]
    for key, field in stored.items():
        if sections.get(key) is not None:
            body[key] = field.store(sections[key])
        elif field.required:
            body[key] = field.empty
    body = {k: body[k] for k in sorted(body, key=lambda k: _POSITION.get(k) or order[k])}
    body["fingerprint"] = fingerprint(body)
    return MAGIC + msgpack.packb(body, use_bin_type=True)


def grown_meta(body: dict) -> dict:
    """``body``'s meta for a model grown from it without changing a level (levels appended,
    measurements added): its fingerprint listed in ``same_model_as``, so its files decode."""
    meta = body["meta"]
    return {**meta, "same_model_as": [*meta.get("same_model_as", []), body["fingerprint"]]}


def amended(raw: bytes, **fields) -> bytes:
    """A model file's bytes with ``fields`` of its body replaced (values in their stored form, as
    ``dumps`` writes them), fingerprinted anew and checked as ``loads`` checks the container."""
    body = msgpack.unpackb(raw[len(MAGIC) :], raw=False)
    body.pop("fingerprint")
    body.update(fields)
    for name in [k for k, v in fields.items() if v is None]:  # None: the section taken out
        body.pop(name)
    since = {f.name: f.since for f in registry.fields()}
    body["format"] = max([body["format"]] + [since.get(k, 0) for k in body])
    body["fingerprint"] = fingerprint(body)
    data = MAGIC + msgpack.packb(body, use_bin_type=True)
    loads(data)
    return data


def save(path: str | os.PathLike, data: bytes, *, force: bool = False, inputs=()) -> None:
    """Write a model file's bytes atomically, by the output policy of ``fileio``.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false. OutputIsInputError: it is an input.
    """
    write_atomic(Path(path), data, force=force, inputs=inputs)


def loads(raw: bytes, *, what: str = "model") -> dict:
    """Parse and check a model file's container; returns the body with its sections as stored
    (a kind checks its own: ``registry.check_fields``, then its ``read``, as ``Model`` does).

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
    body = _unpacked(raw, what)
    if "format" in body and type(body["format"]) is not int:  # not isinstance: true is an int (1)
        raise FormatError(f"{what}: model field format is not a whole number")
    if body.get("format", 0) > FORMAT:
        raise UnsupportedVersionError(
            f"{what}: model format {body['format']} is newer than this aecodec reads ({FORMAT}); "
            "upgrade aecodec"
        )
    version = body.get("format", 0)
    required = {"format", "name", "meta", "fingerprint"} | ({"default"} if version >= 4 else set())
    allowed = required | ({"ladder"} if version >= 4 else set())
    here = set(body) & registry.CONTAINER_FIELDS
    if not required <= here <= allowed or version not in range(1, FORMAT + 1):
        raise FormatError(f"{what}: model file is missing fields or has unknown ones")
    for field, kind in (("name", str), ("meta", dict), ("fingerprint", str), ("ladder", list)):
        if field in body and not isinstance(body[field], kind):
            raise FormatError(
                f"{what}: model field {field} is a {type(body[field]).__name__}, "
                f"not a {kind.__name__}"
            )
    claimed = body.pop("fingerprint")
    if fingerprint(body) != claimed:
        raise FormatError(f"{what}: model fingerprint does not match its contents (damaged file)")
    body["fingerprint"] = claimed
    return body


def _unpacked(raw: bytes, what: str) -> dict:
    """The map of a model file's bytes, parsed within the limits (its structure walked first)."""
    return unpack_map(
        raw,
        what=what,
        noun="model file",
        start=4,
        max_values=MAX_MODEL_VALUES,
        max_depth=MAX_MODEL_DEPTH,
        max_bin_len=MAX_MODEL_BYTES,
        max_str_len=1 << 20,
        max_array_len=100_000,
        max_map_len=10_000,
    )


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
