"""Atomic output: a file appears complete under its name, or not at all; nothing else is touched.

Everything aecodec writes goes through here: the API's file functions, model files, and
the CLI's streamed archives and restorations.

- A file is written to a temporary name in its folder, fsynced, then put in place. Without
  ``force`` it is *linked* to its name, which fails if the name exists, so of two writers
  finishing together one wins and the other gets FileExistsError (a check followed by a
  rename would let both succeed, one silently replacing the other).
- A folder is restored name by name into a staging folder inside it, then each file is put
  in place as above. aecodec never deletes a tree: on failure it removes only the files and
  staging folders it created itself.
- The last steps (output in place, then ``then()``, e.g. removing the input) run with
  termination signals deferred, so a signal lands before them or after them, never between.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path, PurePosixPath

from codec import signals


def _refuse_existing(path: Path, force: bool) -> None:
    if not force and (path.exists() or path.is_symlink()):
        raise FileExistsError(errno.EEXIST, f"{path} already exists (use -f to overwrite)", str(path))


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _place(tmp: Path, path: Path, force: bool) -> None:
    """Give the complete file ``tmp`` the name ``path``: replacing it with ``force``, else only if it is free."""
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic and exclusive: EEXIST if the name is taken, even by a racing writer
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"{path} already exists (use -f to overwrite)", str(path)) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        # A file system without hard links: reserve the name exclusively, then replace the empty reservation.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(path, *, force: bool = False, then=None):
    """Yield a binary file that appears at ``path`` only if the block completes.

    It is a temporary file in the same folder, fsynced and put in place at the end, then
    ``then()`` runs (both with signals deferred). On any error, Ctrl-C or termination signal
    the temporary file is removed and ``path`` is untouched.

    Raises:
        FileExistsError: ``path`` exists (before or after writing) and ``force`` is false.
    """
    path = Path(path)
    _refuse_existing(path, force)
    if not path.parent.is_dir():  # named as the output's folder, not as a temporary file inside it
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path.parent))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, plain_mode())
        with signals.deferred():
            _place(tmp, path, force)
            _sync_folder(path.parent)
            if then is not None:
                then()
    except BaseException:
        with signals.deferred():
            tmp.unlink(missing_ok=True)
        raise


def write_atomic(path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path, force=force) as f:
        f.write(data)


def check_relative_name(name, *, what: str) -> PurePosixPath:
    """A file name inside a folder archive: relative, without '..', '.', empty parts or control characters.

    Raises:
        ValueError: any other name (the caller turns it into its own error type).
    """
    if not isinstance(name, str) or not name or len(name) > 4096 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"{what}: {name!r:.80} is not a file name (empty, too long, or with control characters)")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: {name!r:.80} is not valid UTF-8 (rename it)") from None
    p = PurePosixPath(name)
    if p.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"{what}: {name!r:.80} is not a plain relative file name")
    return p


class FolderOutput:
    """Files restored into ``folder``, each written in full to a staging folder inside it, then
    put in place by ``commit``: never through a symbolic link, never over a folder or over one of
    the ``protect``ed files (the inputs), never over an existing file unless ``force``."""

    def __init__(self, folder: Path, *, force: bool, protect=()):
        self.folder, self.force, self.protect = folder, force, [Path(p) for p in protect]
        self._made_dirs: list[Path] = []  # created by us: the only folders we may remove
        if folder.is_symlink():
            raise FileExistsError(errno.EEXIST, f"{folder} is a symbolic link; name a real folder", str(folder))
        try:
            folder.mkdir()
            self._made_dirs.append(folder)
        except FileExistsError:
            if not folder.is_dir():
                raise FileExistsError(errno.EEXIST, f"{folder} exists and is not a folder", str(folder)) from None
        self._stage = Path(tempfile.mkdtemp(dir=folder, prefix=".aecodec-", suffix=".part"))
        self._made_dirs.append(self._stage)
        self._files: list[PurePosixPath] = []

    def open(self, name: PurePosixPath):
        """A binary file to write the restored ``name`` into (refused at once if it cannot be placed)."""
        self._check_target(name)
        staged = self._stage / name
        self._mkdirs(staged.parent, self._stage)
        self._files.append(name)
        return open(staged, "xb")

    def _check_target(self, name: PurePosixPath) -> None:
        final = self.folder / name
        inside = self.folder
        for part in name.parts[:-1]:
            inside = inside / part
            if inside.is_symlink() or (inside.exists() and not inside.is_dir()):
                raise FileExistsError(errno.EEXIST, f"{inside} is not a plain folder (a link or a file): "
                                      f"{name} is not written through it", str(inside))
        if final.is_dir() and not final.is_symlink():
            raise IsADirectoryError(errno.EISDIR, f"{final} is a folder", str(final))
        _refuse_existing(final, self.force)
        if final.exists() and any(p.exists() and os.path.samefile(final, p) for p in self.protect):
            raise FileExistsError(errno.EEXIST, f"{final} is an input of this command", str(final))

    def _mkdirs(self, folder: Path, top: Path) -> None:
        missing = []
        while folder != top and not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for d in reversed(missing):
            d.mkdir()
            self._made_dirs.append(d)

    def commit(self) -> None:
        """Check every name again (something may have appeared), then put each staged file in place."""
        with signals.deferred():
            for name in self._files:
                self._check_target(name)
            for name in self._files:
                staged, final = self._stage / name, self.folder / name
                os.chmod(staged, plain_mode())
                self._mkdirs(final.parent, self.folder)
                _place(staged, final, self.force)
            self._files = []
            self._made_dirs = [d for d in self._made_dirs if d == self._stage or self._stage in d.parents]
            self.discard()
            _sync_folder(self.folder)

    def discard(self) -> None:
        """Remove what is still staged: only files and folders this object created."""
        with signals.deferred():
            for name in self._files:
                (self._stage / name).unlink(missing_ok=True)
            for d in reversed(self._made_dirs):
                with contextlib.suppress(OSError):  # a folder now holding a user's file stays
                    d.rmdir()


@contextlib.contextmanager
def atomic_folder(path, *, force: bool = False, then=None, protect=()):
    """Yield a ``FolderOutput`` for ``path`` whose files appear only if the block completes; then ``then()``."""
    out = FolderOutput(Path(path), force=force, protect=protect)
    try:
        yield out
        with signals.deferred():
            out.commit()
            if then is not None:
                then()
    except BaseException:
        out.discard()
        raise


def remove_inputs(paths) -> None:
    """Remove the input files that went into a complete output (folders stay, as with gzip -r)."""
    for p in paths:
        Path(p).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's files are 0600)."""
    return 0o666 & ~_umask()
