"""One output policy for everything aecodec writes: a file appears complete, or not at all;
nothing else is touched.

Every command that writes goes through here: the CLI's archives and restorations, model files,
``train``'s checkpoints, ``embed``/``denoise``/``sample``/``score`` and the bench report.

- An existing name is kept unless ``force``; an input of the same run (the same file by any
  name) is never written, even with ``force``.
- A regular file is written to a temporary name in its folder, fsynced, then put in place.
  Without ``force`` it is *linked* to its name, which fails if the name exists, so of two writers
  finishing together one wins and the other gets FileExistsError (a check followed by a rename
  would let both succeed, one silently replacing the other).
- A character device or a FIFO (``-o /dev/null``, a named pipe) is written *into*, as a shell
  redirection would, with or without ``force`` (nothing of it is replaced; a terminal still needs
  ``force``): renaming over it would replace the device with a plain file.
- A command with several outputs (a picture and its array) checks them all before writing any,
  and puts them in place together: either all appear or none.
- A folder is restored name by name into a staging folder inside it, then each file is put
  in place as above. aecodec never deletes a tree: on failure it removes only the files and
  staging folders it created itself.
- The last steps (outputs in place, then ``then()``, e.g. removing the input) run with
  termination signals deferred, so a signal lands before them or after them, never between.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path, PurePosixPath

from codec import signals
from codec.errors import OutputIsInputError


def _refuse_existing(path: Path, force: bool) -> None:
    if not force and (path.exists() or path.is_symlink()):
        raise FileExistsError(
            errno.EEXIST, f"{path} already exists (use -f to overwrite)", str(path)
        )


def _input_at(path: Path, inputs) -> Path | None:
    """The input of this run that ``path`` is, by any name (a link, a hard link); else None."""
    if not path.exists():  # a new name, or a dangling link: no input's
        return None
    for given in inputs:
        if given is None or str(given) == "-":  # standard input: nothing to protect by name
            continue
        if Path(given).exists() and os.path.samefile(path, given):
            return Path(given)
    return None


def _refuse_input(path: Path, inputs) -> None:
    held = _input_at(path, inputs)
    if held is not None:
        raise OutputIsInputError(f"output {path} is the input {held}")


def check_output(path, *, force: bool = False, inputs=()) -> bool:
    """Check ``path`` against the output policy before anything is computed or written; returns
    True where it is a stream (a character device or FIFO, written into), False for a regular file
    (written atomically).

    Raises:
        OutputIsInputError: ``path`` is one of ``inputs`` (even with ``force``).
        FileExistsError: ``path`` exists and ``force`` is false; or is a block device, a socket, ...
        IsADirectoryError: ``path`` is a folder.
        FileNotFoundError: its folder does not exist (named as the folder).
    """
    path = Path(path)
    stream = _check_name(path, force, inputs)
    if not stream and not path.parent.is_dir():  # named as the folder, not as a temporary file
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path.parent))
    return stream


def is_stream(path) -> bool:
    """Whether ``path`` is a character device or a FIFO (through links): written into, never
    replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _check_name(path: Path, force: bool, inputs) -> bool:
    """``check_output`` but for the folder, which a folder restore creates as it goes."""
    _refuse_input(path, inputs)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:  # also a dangling link: a name taken only with force
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, f"{path} is a folder", str(path))
    if mode is not None and is_stream(path):
        return True  # nothing is replaced: a terminal is refused when it is opened (see _Stream)
    if mode is not None and not stat.S_ISREG(mode):
        message = f"{path} is not a regular file, character device or FIFO"
        raise FileExistsError(errno.EEXIST, message, str(path))
    _refuse_existing(path, force)
    return False


def check_outputs(paths, *, force: bool = False, inputs=()) -> list[bool]:
    """``check_output`` for each of a command's outputs, all before any is written; also refuses
    one name given twice (the second would replace the first). Returns which are streams."""
    seen = set()
    for path in map(Path, paths):
        key = os.path.abspath(path)
        if key in seen:
            message = f"{path} is named twice among this command's outputs"
            raise FileExistsError(errno.EEXIST, message, str(path))
        seen.add(key)
    return [check_output(p, force=force, inputs=inputs) for p in paths]


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _place(tmp: Path, path: Path, force: bool) -> None:
    """Give the complete file ``tmp`` the name ``path``: replacing it with ``force``, else only if
    it is free. A device or FIFO is never replaced (it is written into, by ``_Stream``)."""
    if force:
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):  # appeared since the check
                raise FileExistsError(
                    errno.EEXIST, f"{path} is not a regular file: not replaced", str(path)
                )
        os.replace(tmp, path)
        return
    try:
        # atomic and exclusive: EEXIST if the name is taken, even by a racing writer
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST, f"{path} already exists (use -f to overwrite)", str(path)
        ) from None
    except OSError as e:
        if e.errno not in (
            errno.EPERM,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
            errno.EMLINK,
            errno.ENOSYS,
        ):
            raise
        # A file system without hard links: reserve the name exclusively, then replace the
        # empty reservation.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.replace(tmp, path)
        return
    os.unlink(tmp)


class _File:
    """A regular file's output: a temporary file in its folder until ``place`` names it."""

    def __init__(self, path: Path, force: bool):
        self.path, self.force, self.placed = path, force, None
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb")

    def finish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.chmod(self.tmp, plain_mode())

    def place(self, inputs) -> None:
        _refuse_input(self.path, inputs)  # again: a link to an input may have appeared meanwhile
        inode = os.stat(self.tmp).st_ino
        _place(self.tmp, self.path, self.force)
        self.placed = inode
        _sync_folder(self.path.parent)

    def undo(self) -> None:
        """Remove the name ``place`` created (with ``force`` it replaced a file: that stays so)."""
        if self.placed is not None and not self.force:
            with contextlib.suppress(OSError):
                if os.lstat(self.path).st_ino == self.placed:  # still ours
                    self.path.unlink()

    def discard(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class _Stream:
    """A character device's or FIFO's output: opened without creating or truncating anything, and
    written into as the data comes (it can be neither replaced nor unwritten)."""

    def __init__(self, path: Path, force: bool):
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)  # a FIFO waits for its reader
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):  # replaced since the check
            os.close(fd)
            message = f"{path} changed while opened: not written"
            raise FileExistsError(errno.EEXIST, message, str(path))
        if os.isatty(fd) and not force:
            os.close(fd)
            message = f"{path} is a terminal: refusing to write binary data to it (use -f to force)"
            raise FileExistsError(errno.EEXIST, message, str(path))
        self.file = os.fdopen(fd, "wb")

    def finish(self) -> None:
        self.file.flush()

    def place(self, inputs) -> None:
        self.file.close()

    def undo(self) -> None:
        pass

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # a reader that left (EPIPE): already being raised
            self.file.close()


@contextlib.contextmanager
def atomic_outputs(paths, *, force: bool = False, then=None, inputs=()):
    """Yield one binary file per path in ``paths``; regular files appear only if the block
    completes, all together (see the module's policy), then ``then()`` runs (both with signals
    deferred). On any error, Ctrl-C or termination signal the temporary files are removed and no
    name is touched (a device or FIFO keeps what was written into it: it cannot be unwritten).

    Raises:
        As ``check_outputs``, before anything is opened; FileExistsError: a name taken meanwhile.
    """
    paths = [Path(p) for p in paths]
    streams = check_outputs(paths, force=force, inputs=inputs)
    targets = []
    try:
        for path, stream in zip(paths, streams, strict=True):
            targets.append((_Stream if stream else _File)(path, force))
        yield [t.file for t in targets]
        for t in targets:
            t.finish()
        with signals.deferred():
            _place_all(targets, inputs)
            if then is not None:
                then()
    except BaseException:
        with signals.deferred():
            for t in targets:
                t.discard()
        raise


def _place_all(targets, inputs) -> None:
    """Every output in place, or (a name taken meanwhile, ...) none of the names it created."""
    placed = []
    try:
        for t in targets:
            t.place(inputs)
            placed.append(t)
    except BaseException:
        for t in placed:
            t.undo()
        raise


@contextlib.contextmanager
def atomic_output(path, *, force: bool = False, then=None, inputs=()):
    """Yield a binary file that appears at ``path`` only if the block completes (``atomic_outputs``
    of one path).

    Raises:
        FileExistsError: ``path`` exists (before or after writing) and ``force`` is false.
        OutputIsInputError: ``path`` is one of ``inputs``, whatever ``force`` says.
    """
    with atomic_outputs([path], force=force, then=then, inputs=inputs) as (f,):
        yield f


def write_outputs(files, *, force: bool = False, inputs=()) -> None:
    """Write ``files``, (path, bytes) pairs (or a dict), all or none (see ``atomic_outputs``)."""
    files = list(files.items() if isinstance(files, dict) else files)  # pairs: a name twice is seen
    with atomic_outputs([p for p, _ in files], force=force, inputs=inputs) as outs:
        for f, (_, data) in zip(outs, files, strict=True):
            f.write(data)


def write_atomic(path, data: bytes, *, force: bool = False, inputs=()) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_outputs``)."""
    write_outputs([(path, data)], force=force, inputs=inputs)


def check_relative_name(name, *, what: str) -> PurePosixPath:
    """A file name inside a folder archive: relative, without '..', '.', empty parts or control
    characters.

    Raises:
        ValueError: any other name (the caller turns it into its own error type).
    """
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 4096
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise ValueError(
            f"{what}: {name!r:.80} is not a file name (empty, too long, or with control characters)"
        )
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
            raise FileExistsError(
                errno.EEXIST, f"{folder} is a symbolic link; name a real folder", str(folder)
            )
        try:
            folder.mkdir()
            self._made_dirs.append(folder)
        except FileExistsError:
            if not folder.is_dir():
                raise FileExistsError(
                    errno.EEXIST, f"{folder} exists and is not a folder", str(folder)
                ) from None
        self._stage = Path(tempfile.mkdtemp(dir=folder, prefix=".aecodec-", suffix=".part"))
        self._made_dirs.append(self._stage)
        self._files: list[PurePosixPath] = []

    def open(self, name: PurePosixPath):
        """A binary file to write the restored ``name`` into (refused at once if it cannot be
        placed)."""
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
                raise FileExistsError(
                    errno.EEXIST,
                    f"{inside} is not a plain folder (a link or a file): "
                    f"{name} is not written through it",
                    str(inside),
                )
        if _check_name(final, self.force, self.protect):
            raise FileExistsError(
                errno.EEXIST,
                f"{final} is a device or FIFO: a restored folder holds plain files only",
                str(final),
            )

    def _mkdirs(self, folder: Path, top: Path) -> None:
        missing = []
        while folder != top and not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for d in reversed(missing):
            d.mkdir()
            self._made_dirs.append(d)

    def commit(self) -> None:
        """Check every name again (something may have appeared), then put each staged file in
        place."""
        with signals.deferred():
            for name in self._files:
                self._check_target(name)
            for name in self._files:
                staged, final = self._stage / name, self.folder / name
                os.chmod(staged, plain_mode())
                self._mkdirs(final.parent, self.folder)
                _place(staged, final, self.force)
            self._files = []
            self._made_dirs = [
                d for d in self._made_dirs if d == self._stage or self._stage in d.parents
            ]
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
    """Yield a ``FolderOutput`` for ``path`` whose files appear only if the block completes; then
    ``then()``."""
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
