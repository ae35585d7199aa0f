"""Atomic output: a file (or folder) appears complete under its name, or not at all.

Everything aecodec writes goes through here: the API's file functions, model files, and
the CLI's streamed archives and restorations.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def _refuse_existing(path: Path, force: bool) -> None:
    if not force and (path.exists() or path.is_symlink()):
        raise FileExistsError(f"{path} already exists (use -f to overwrite)")


@contextlib.contextmanager
def atomic_output(path, *, force: bool = False):
    """Yield a binary file that appears at ``path`` only if the block completes.

    It is a temporary file in the same folder, fsynced and renamed at the end; on any
    error (or Ctrl-C) it is removed and ``path`` is untouched.

    Raises:
        FileExistsError: ``path`` exists (before or after writing) and ``force`` is false.
    """
    path = Path(path)
    _refuse_existing(path, force)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, plain_mode())
        _refuse_existing(path, force)  # it may have appeared while we wrote
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(path, *, force: bool = False):
    """Yield a temporary folder beside ``path`` that replaces it only if the block completes."""
    path = Path(path)
    _refuse_existing(path, force)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # as mkdir would (mkdtemp uses 0700)
        _refuse_existing(path, force)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_atomic(path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path, force=force) as f:
        f.write(data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's files are 0600)."""
    return 0o666 & ~_umask()
