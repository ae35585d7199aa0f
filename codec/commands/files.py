"""The file commands, gzip's: compress, decompress (all of an archive, or ``--images A:B``) and
test, file by file; a bad file is reported in one line and the next one is still tried."""

from __future__ import annotations

import contextlib
import itertools
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from codec import api, archive, files, parallel
from codec.commands.outputs import RefusedError, level_name, report
from codec.errors import AecodecError, InputError, UsageError
from codec.io import fileio, sinks, sources
from codec.io.fileio import remove_inputs
from codec.levels import scale

SUFFIX = ".aec"


def _model(args, shapes=None, depth: int = 8):
    """The model named by --model, loaded once per run; without --model, the bundled model that
    suits images of ``shapes`` (compressing), or None: the one each file names (decompressing)."""
    if args.model is None:
        return None if shapes is None else api.model_for(shapes, depth)
    if getattr(args, "loaded_model", None) is None:
        args.loaded_model = api.load_model(args.model)
    return args.loaded_model


def progress(args, total: int, name: str):
    # One image gets no bar: it would sit at 0/1 until the end.
    return tqdm(
        total=total,
        unit="img",
        desc=name,
        leave=False,
        disable=args.quiet or not sys.stderr.isatty() or total is None or total <= 1,
    )


def _note(args, message: str) -> None:
    if args.verbose and not args.quiet:
        print(f"aecodec: {message}", file=sys.stderr)


def _output_path(args, src: str | None, suffix_in: bool) -> Path | None:
    """Where the result of ``src`` goes: None for stdout (also ``-o -``)."""
    if args.output == "-":
        return None
    if args.stdout or src in (None, "-"):
        return None if args.output is None else Path(args.output)
    if args.output is not None:
        return Path(args.output)
    p = Path(src)
    if suffix_in:
        return p.with_name(p.name + SUFFIX)
    if p.suffix != SUFFIX:
        raise UsageError(f"unknown suffix, expected {SUFFIX} (use -o to name the output)")
    if p.name[: -len(SUFFIX)] in ("", ".", ".."):
        raise UsageError(
            f"refusing to restore {p.name} to {p.name[: -len(SUFFIX)]!r}: name the output with -o"
        )
    return p.with_name(p.name[: -len(SUFFIX)])


_DERIVED = object()


def _destination(args, src: str | None, suffix_in: bool, dst=_DERIVED) -> Path | None:
    """``_output_path`` (or ``dst``), refused at once where the output policy (``fileio``) will
    refuse it: an existing file without -f, an input (``src``, --model), binary to a terminal."""
    dst = _output_path(args, src, suffix_in) if dst is _DERIVED else dst
    if dst is None and sys.stdout.isatty() and not args.force:
        raise RefusedError(
            "refusing to write binary data to a terminal (use -f to force, or redirect)"
        )
    # checked name by name
    restoring_into_folder = not suffix_in and dst is not None and dst.is_dir()
    if dst is not None and not restoring_into_folder:
        fileio.check_output(dst, force=args.force, inputs=[src, args.model])
    return dst


def _remover(args, paths):
    """What runs once the output is in place: removing the inputs, with --rm (None otherwise)."""
    if not args.rm or not paths:
        return None
    return lambda: remove_inputs(paths)


def _quality(args, model, source, sample) -> tuple:
    """(model, --quality), or the model (None: the bundled ones) and quality that --target-psnr /
    --target-size pick by measuring every quality on the first chunk of images; says on stderr
    which, and when the target cannot be met."""
    if args.target_psnr is None and args.target_size is None:
        return model, args.quality
    per_image = None if args.target_size is None else args.target_size / source.count
    pick = api.pick_quality(
        sample, target_psnr=args.target_psnr, target_bytes_per_image=per_image, model=model
    )
    name = source.meta.get("name", "stdin")
    if not args.quiet:
        print(
            f"aecodec: {name}: chose quality {pick['quality']} ({pick['psnr']:.2f} dB, "
            f"{pick['bytes_per_image']:.1f} bytes per image on {pick['sample']} image(s))",
            file=sys.stderr,
        )
        if not pick["met"]:
            wanted = (
                f"{args.target_psnr} dB"
                if args.target_psnr is not None
                else f"{args.target_size} bytes"
            )
            print(
                f"aecodec: {name}: no quality of the model meets {wanted}: this is the closest",
                file=sys.stderr,
            )
    return pick["model"], pick["quality"]


def compress_one(args, src: str | None) -> None:
    """FILE -> FILE.aec (a folder with -r: one archive; none or '-': stdin to stdout)."""
    _check_archive_name(args, src)
    dst = _destination(args, src, suffix_in=True)
    _claim_output(args, dst)
    max_error = 0 if args.lossless else args.max_error
    check = _shape_check(args, max_error)
    source = sources.open_source(
        src,
        recursive=args.recursive,
        stdin=sys.stdin.buffer,
        grey_stack=args.grey_stack,
        check_shape=check,
    )
    inputs = [*source.paths, args.model]  # a folder's images, each of which --rm may remove
    if dst is not None:  # before any image is coded
        fileio.check_output(dst, force=args.force, inputs=inputs)
    _note_skipped(args, src, source.skipped)
    model = _model(args)
    batches = source.batches()  # streamed once: the first chunk also picks the model and quality
    first = next(batches)
    # without --model, write_archive chooses one by measuring the first chunk
    model, quality = (
        (model, None) if max_error is not None else _quality(args, model, source, first)
    )
    name = source.meta.get("name", "stdin")
    with contextlib.ExitStack() as stack:
        if dst is None:
            target = sys.stdout.buffer
        else:
            then = _remover(args, source.paths)
            target = stack.enter_context(
                fileio.atomic_output(dst, force=args.force, inputs=inputs, then=then)
            )
        out = _Counting(target)
        files.write_archive(
            source,
            out,
            quality=quality,
            model=model,
            batches=itertools.chain([first], batches),
            on_batch=_advance(stack.enter_context(progress(args, source.count, name)), out),
            pool=getattr(args, "pool", None),
            max_error=max_error,
            effort=getattr(args, "effort", 0),
        )
        if dst is None:
            sys.stdout.buffer.flush()
    if max_error is None and quality is None:  # the default: lossless beyond 8 bits
        quality = scale.DEFAULT if source.depth == 8 else scale.LOSSLESS
    _summary(args, (src, dst, name), source.count, out.count, quality, max_error)


def _summary(args, names, count: int, size: int, quality, max_error) -> None:
    """What compressing a FILE says on stderr: a target size missed; with -v, what was done."""
    src, dst, name = names
    if args.target_size is not None and size > args.target_size and not args.quiet:
        print(
            f"aecodec: {name}: {size} bytes, more than the {args.target_size} asked: "
            "no quality of the model makes it smaller",
            file=sys.stderr,
        )
    shown = level_name(0, max_error) if max_error is not None else level_name(quality, 0)
    _note(
        args,
        f"{src or 'stdin'}: {count} image(s), {shown}, {count and size / count:.1f} bytes/image"
        + (f" -> {dst}" if dst else ""),
    )


def _check_archive_name(args, src: str | None) -> None:
    """Refuse a FILE whose archive would be no name, or that is an archive already."""
    if src in (None, "-") or args.stdout or args.output is not None:
        return
    if src.endswith(SUFFIX):
        raise UsageError(f"already has {SUFFIX} suffix -- unchanged")
    if Path(src).name in ("", ".", ".."):
        raise UsageError(f"name the archive of {src!r} with -o")


def _note_skipped(args, src: str | None, skipped: list) -> None:
    if skipped and not args.quiet:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        print(
            f"aecodec: {src}: skipped {len(skipped)} file(s) that are not images: "
            f"{', '.join(skipped[:5])}{more}",
            file=sys.stderr,
        )


def _advance(bar, out):
    """What each coded batch does to the progress bar: counts it, shows the ratio so far."""
    raw = 0

    def advance(batch):
        nonlocal raw
        raw += batch.nbytes
        bar.update(len(batch))
        if out.count:
            bar.set_postfix(ratio=f"{raw / out.count:.1f}x", refresh=False)

    return advance


def _shape_check(args, max_error: int | None):
    """What refuses an input's images from their header, before a pixel is read: the limits of the
    level they would be coded at (the lossless coder's are lower than the container's)."""

    def check(shape) -> None:
        model = _model(args, [shape])
        api.check_codable(shape, model=model, quality=args.quality, max_error=max_error)

    return check


class _Counting:
    """A write-only file that counts the bytes going through it."""

    def __init__(self, raw):
        self.raw, self.count = raw, 0

    def write(self, b: bytes) -> int:
        self.count += len(b)
        return self.raw.write(b)


def decompress_one(args, src: str | None) -> None:

    if getattr(args, "images", None) is not None:
        return _decompress_some(args, src)

    with contextlib.ExitStack() as stack:
        fileobj = sys.stdin.buffer if src in (None, "-") else stack.enter_context(open(src, "rb"))
        reader = api.ArchiveReader(fileobj, model=_model(args))
        dst, as_png = _restored_name(args, src, reader.header)
        force = args.force and not as_png  # a name the user did not give: never replaces a file
        dst = _destination(args, src, suffix_in=False, dst=dst)
        _note_png(args, src, dst, as_png)
        _claim_output(args, dst)
        inputs = [] if src in (None, "-") else [src]
        bar = stack.enter_context(
            progress(args, reader.header["meta"].get("count"), str(src or "stdin"))
        )
        try:
            sinks.restore_archive(
                reader,
                dst,
                stdout=sys.stdout.buffer,
                force=force,
                then=_remover(args, inputs),
                archive=None if not inputs else Path(src),
                on_batch=lambda b: bar.update(len(b)),
            )
        except InputError as e:  # a folder it will not restore into: bad usage
            raise UsageError(str(e)) from None
        if dst is None:
            sys.stdout.buffer.flush()
    _note(args, f"{src or 'stdin'}: restored" + (f" -> {dst}" if dst else ""))


def _restored_name(args, src: str | None, header: dict) -> tuple[Path | None, bool]:
    """(where restoring ``src`` goes, whether that is a PNG named by aecodec): ``_output_path``, but
    an image from a lossy format (JPEG) restored as PNG unless -o names the file (re-encoding it
    would lose more)."""
    dst = _output_path(args, src, suffix_in=False)
    if dst is None or args.output is not None or not sinks.lossy_original(header):
        return dst, False
    return dst.with_suffix(".png"), True


def _note_png(args, src: str | None, dst: Path | None, as_png: bool) -> None:
    if as_png and not args.quiet:
        print(
            f"aecodec: {src}: restored as {dst.name} (lossless; name a lossy file with -o)",
            file=sys.stderr,
        )


def _decompress_some(args, src: str | None) -> None:
    """``-d --images A:B``: those images only, read at random (only their chunks are decoded),
    written as the file the whole archive restores to (its kind, from that name), under
    NAME.A-LAST.SUFFIX (t10k.0-9 for t10k.aec, x.0-9.npy for x.npy.aec), unless -o or -c says
    where."""

    if src in (None, "-"):
        raise UsageError(
            "--images reads an archive at random: give its file name, not standard input"
        )
    with archive.open(src, model=_model(args)) as images:
        picked = range(*args.images.indices(len(images)))
        if not picked:
            raise UsageError(f"--images selects none of the {len(images)} images")
        whole, as_png = _restored_name(args, src, images.header)
        dst = whole
        if whole is not None and args.output is None:
            stem = whole.stem if whole.suffix else whole.name
            dst = whole.with_name(f"{stem}.{picked[0]}-{picked[-1]}{whole.suffix}")
        force = args.force and not as_png
        dst = _destination(args, src, suffix_in=False, dst=dst)
        _note_png(args, src, dst, as_png)
        _claim_output(args, dst)
        try:
            sinks.restore_archive(
                _Selection(images, picked),
                dst,
                stdout=sys.stdout.buffer,
                force=force,
                archive=Path(src),
                like=None if whole is None else whole.name,
            )
        except InputError as e:
            raise UsageError(str(e)) from None
        if dst is None:
            sys.stdout.buffer.flush()
    _note(
        args, f"{src}: images {picked[0]} to {picked[-1]} restored" + (f" -> {dst}" if dst else "")
    )


class _Selection:
    """Some images of an open ``archive.Archive``, as ``sinks.restore_archive`` reads an archive:
    a header (its meta counting, and for a folder naming, only these) and batches, one per chunk."""

    def __init__(self, images, picked: range):
        meta = {**images.header["meta"], "count": len(picked)}
        if isinstance(meta.get("files"), list) and len(meta["files"]) == len(images):
            meta["files"] = [meta["files"][i] for i in picked]
        self.header = {**images.header, "meta": meta}
        self._images, self._picked = images, picked

    def __iter__(self):
        for _, run in itertools.groupby(self._picked, key=self._images.chunk_of):
            yield np.stack([self._images[i] for i in run])


def _claim_output(args, dst: Path | None) -> None:
    """One command never writes one output twice (two archives restoring to one name would lose
    one)."""
    if dst is None:
        return
    claimed = args.__dict__.setdefault("outputs", set())
    key = str(dst.resolve())
    if key in claimed:
        raise FileExistsError(
            f"{dst} was written by this command already (restore the other archive with -o)"
        )
    claimed.add(key)


def test_one(args, src: str | None) -> None:
    """Decode every chunk, as gzip -t does: checksums, limits, and streams that end where they
    should."""
    with contextlib.ExitStack() as stack:
        fileobj = sys.stdin.buffer if src in (None, "-") else stack.enter_context(open(src, "rb"))
        for _ in api.ArchiveReader(fileobj, model=_model(args)):
            pass
    _note(args, f"{src or 'stdin'}: OK")


def run(args, one) -> int:
    files = args.files or ["-"]
    if getattr(args, "output", None) is not None and len(files) > 1:
        raise UsageError("-o/--output takes a single input file")
    if getattr(args, "stdout", False) and len(files) > 1 and one is compress_one:
        raise UsageError("-c writes one archive: give one input (a folder with -r holds many)")
    try:
        _model(args)  # a missing or damaged model is the model's error, reported once
    except (AecodecError, OSError) as e:
        return report(args.model or "bundled model", e)
    status, src = 0, None
    with contextlib.ExitStack() as stack:  # on a Ctrl-C: the line below, then the pool closes
        try:
            if getattr(args, "workers", None) or getattr(args, "scheduler", None):
                args.pool = stack.enter_context(_pool(args))
            for src in files:
                status = max(status, _one_file(args, one, src))
        except KeyboardInterrupt as e:
            logging.disable(logging.CRITICAL)  # what Dask logs as a pool closes half-way is noise
            where = "" if src is None else f"{src}: "
            print(f"aecodec: error: {where}interrupted", file=sys.stderr)
            return getattr(e, "exit_status", 130)
    return status


def _pool(args):
    """The Dask pool of --workers or --scheduler (an address checked as it was parsed).

    Raises:
        ClusterError: the scheduler cannot be reached, or what answers is not one (exit status 1).
    """
    try:
        return parallel.DaskPool(args.workers, scheduler=args.scheduler)
    except ImportError:
        raise UsageError(
            "--workers and --scheduler need Dask: pip install 'aecodec[scale]'"
        ) from None


def _one_file(args, one, src) -> int:
    """``one(args, src)``; the exit status it earns (errors reported as one line)."""
    try:
        one(args, src)
    except (AecodecError, OSError, UsageError, RefusedError, ValueError, EOFError) as e:
        return report(src if src != "-" else None, e)
    except MemoryError:  # the machine's limit, not a bug: said so, and the next file is still tried
        e = MemoryError(
            "not enough memory to code it (the limits and what they cost: README, "
            "'Bounded work per input byte')"
        )
        return report(src if src != "-" else None, e)
    except Exception as e:  # noqa: BLE001 - a bug: still one line, still the next file
        return report(
            src if src != "-" else None, RuntimeError(f"internal error, please report: {e!r}")
        )
    return 0
