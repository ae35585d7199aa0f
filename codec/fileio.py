"""Atomic output: a file appears complete under its name, or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync, rename.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false.
        OSError: the write failed (the temporary file is removed, ``path`` untouched).
    """
    path = Path(path)
    if not force and path.exists():
        raise FileExistsError(f"{path}: already exists (use force to overwrite)")
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, plain_mode())
        if not force and path.exists():  # appeared while we wrote
            raise FileExistsError(f"{path}: already exists (use force to overwrite)")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plain_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
