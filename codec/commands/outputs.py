"""How every command reports and writes: one JSON document, one error line, and the output policy
of ``fileio`` applied to the files its options name."""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from pathlib import Path

from codec.errors import USAGE_ERRORS
from codec.io import fileio
from codec.io.images import folder_files
from codec.levels.scale import describe

OUTPUT_OPTIONS = ("out", "workdir")  # the Path options a command writes; every other one it reads


class RefusedError(Exception):
    """An output aecodec will not write without -f (binary to a terminal)."""


def _plain_json(v):
    """What a file's header holds, as strict JSON: bytes as hex, NaN and infinities as strings,
    numpy's numbers as Python's."""
    if isinstance(v, dict):
        return {str(k): _plain_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain_json(x) for x in v]
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, numbers.Real) and not isinstance(v, (bool, int, float)):  # numpy's numbers
        v = int(v) if isinstance(v, numbers.Integral) else float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


def print_json(value, **options) -> None:
    """One JSON document on standard output, strict: never the NaN or Infinity tokens that
    ``json.dumps`` writes by default and JSON parsers refuse."""
    print(json.dumps(_plain_json(value), allow_nan=False, **options))


def report(name: str | None, e: BaseException) -> int:
    """Print ``aecodec: error: FILE: message``; returns the exit status it implies.

    A system error names the file it is about (an output's missing folder, not the input)."""
    if isinstance(e, OSError) and e.errno is not None and e.strerror:
        message = e.strerror
        # the system's words: name its file
        if e.filename is not None and e.strerror == os.strerror(e.errno):
            name = os.fsdecode(e.filename)
    else:
        message = str(e) or type(e).__name__
    name = name or "stdin"
    if message.startswith(f"{name}: "):  # a message that names its file already (a model's reader)
        message = message[len(name) + 2 :]
    print(f"aecodec: error: {name}: {message}", file=sys.stderr)
    return 2 if isinstance(e, USAGE_ERRORS) else 1


def level_name(quality: int, max_error: int) -> str:
    """How a level reads: scale quality Q, or (quality 0: the lossless coder) lossless or
    near-lossless within K."""
    if quality:
        return f"quality {quality} ({describe(quality)})"
    return f"near-lossless (every pixel within {max_error})" if max_error else "lossless"


def inputs(args) -> list[Path]:
    """Every file the command reads, from its Path options (--data, --init, --val, --test,
    --model, --labels, ...; a folder: the images in it): what no output may be, even with -f."""
    found = []
    for name, value in vars(args).items():
        if name in OUTPUT_OPTIONS:
            continue
        for path in value if isinstance(value, list) else [value]:  # compare's IMAGE...: a list
            if isinstance(path, Path):
                found.extend(folder_files(path)[0] if path.is_dir() else [path])
    return found


def check_outputs(args, *paths: Path) -> None:
    """Refuse now, before any work, what ``write_outputs`` would refuse at the end."""
    fileio.check_outputs([p for p in paths if p is not None], force=args.force, inputs=inputs(args))


def write_outputs(args, files: list[tuple[Path, bytes]]) -> None:
    """How every command writes the files its options name (--out and the files beside it): the
    policy of ``fileio`` (exclusive unless -f, never an input, atomic, into a device or FIFO), all
    or none."""
    files = [(path, data) for path, data in files if path is not None]  # nothing beside a device
    fileio.write_outputs(files, force=args.force, inputs=inputs(args))


def beside(out: Path, suffix: str) -> Path | None:
    """The file written beside --out (its array, its table): --out's name with ``suffix``; none
    beside a device or FIFO (``--out /dev/null`` must not leave ``/dev/null.npy`` behind)."""
    return None if fileio.is_stream(out) else out.with_suffix(suffix)
