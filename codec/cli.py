"""The ``aecodec`` command line, with gzip's habits. It parses arguments and calls the API.

    aecodec [compress] [-c] [-f] [-o OUT] [--quality Q] FILE...   FILE -> FILE.aec
    aecodec decompress FILE.aec...  (or aecodec -d)                FILE.aec -> FILE
    aecodec info FILE.aec [--json];  aecodec test FILE.aec...;  aecodec train ...

No FILE, or '-', reads standard input and writes standard output. Inputs are kept
(unlike gzip) unless --rm is given. Errors print ``aecodec: error: FILE: message`` and the
exit status is 1 for bad input, 2 for bad usage; the other files are still processed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import itertools
import json
import logging
import math
import numbers
import os
import sys
from pathlib import Path

from codec import signals
from codec.errors import AecodecError

SUFFIX = ".aec"
COMMANDS = (
    "compress",
    "decompress",
    "info",
    "test",
    "train",
    "bench",
    "embed",
    "denoise",
    "sample",
    "score",
)
# sample --n: the images, the prior's draws and the picture (n/8 rows of images) are all in memory
# at once; 10,000 28x28 images are 8 MB and a 224 x 35,000 picture
MAX_SAMPLES = 10_000


class UsageError(Exception):
    """Bad usage: reported with exit status 2."""


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


def _print_json(value, **options) -> None:
    """One JSON document on standard output, strict: never the NaN or Infinity tokens that
    ``json.dumps`` writes by default and JSON parsers refuse."""
    print(json.dumps(_plain_json(value), allow_nan=False, **options))


def _model(args, shapes=None, depth: int = 8):
    """The model named by --model, loaded once per run; without --model, the bundled model that suits
    images of ``shapes`` (compressing), or None: the one each file names (decompressing)."""
    from codec import api

    if args.model is None:
        return None if shapes is None else api.model_for(shapes, depth)
    if getattr(args, "loaded_model", None) is None:
        args.loaded_model = api.load_model(args.model)
    return args.loaded_model


def _progress(args, total: int, name: str):
    from tqdm import tqdm

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
    from codec.io import fileio

    dst = _output_path(args, src, suffix_in) if dst is _DERIVED else dst
    if dst is None and sys.stdout.isatty() and not args.force:
        raise RefusedError(
            "refusing to write binary data to a terminal (use -f to force, or redirect)"
        )
    restoring_into_folder = (
        not suffix_in and dst is not None and dst.is_dir()
    )  # checked name by name
    if dst is not None and not restoring_into_folder:
        fileio.check_output(dst, force=args.force, inputs=[src, args.model])
    return dst


def _remover(args, paths):
    """What runs once the output is in place: removing the inputs, with --rm (None otherwise)."""
    if not args.rm or not paths:
        return None
    from codec.io.fileio import remove_inputs

    return lambda: remove_inputs(paths)


def _quality(args, model, source, sample) -> int:
    """--quality, or the level --target-psnr / --target-size pick by measuring every level on the
    first chunk of images; says on stderr which, and when the target cannot be met."""
    from codec import api

    if args.target_psnr is None and args.target_size is None:
        return args.quality
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
    return pick["quality"]


def _compress_one(args, src: str | None) -> None:
    from codec import files
    from codec.io import fileio, sources

    if src not in (None, "-") and src.endswith(SUFFIX) and not args.stdout and args.output is None:
        raise UsageError(f"already has {SUFFIX} suffix -- unchanged")
    if (
        src not in (None, "-")
        and args.output is None
        and not args.stdout
        and Path(src).name in ("", ".", "..")
    ):
        raise UsageError(f"name the archive of {src!r} with -o")
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
    if source.skipped and not args.quiet:
        shown = ", ".join(source.skipped[:5]) + (
            f" and {len(source.skipped) - 5} more" if len(source.skipped) > 5 else ""
        )
        print(
            f"aecodec: {src}: skipped {len(source.skipped)} file(s) that are not images: {shown}",
            file=sys.stderr,
        )
    model = _model(args, [source.image_shape], source.depth)
    batches = (
        source.batches()
    )  # streamed once: the first chunk also serves to pick a target quality
    first = next(batches)
    quality = None if max_error is not None else _quality(args, model, source, first)
    name = source.meta.get("name", "stdin")
    with contextlib.ExitStack() as stack:
        if dst is None:
            target = sys.stdout.buffer
        else:
            target = stack.enter_context(
                fileio.atomic_output(
                    dst, force=args.force, inputs=inputs, then=_remover(args, source.paths)
                )
            )
        out = _Counting(target)
        bar = stack.enter_context(_progress(args, source.count, name))
        raw = 0

        def advance(batch):
            nonlocal raw
            raw += batch.nbytes
            bar.update(len(batch))
            if out.count:
                bar.set_postfix(ratio=f"{raw / out.count:.1f}x", refresh=False)

        files.write_archive(
            source,
            out,
            quality=quality,
            model=model,
            batches=itertools.chain([first], batches),
            on_batch=advance,
            pool=getattr(args, "pool", None),
            max_error=max_error,
        )
        if dst is None:
            sys.stdout.buffer.flush()
    if args.target_size is not None and out.count > args.target_size and not args.quiet:
        print(
            f"aecodec: {name}: {out.count} bytes, more than the {args.target_size} asked: no quality of the "
            "model makes it smaller",
            file=sys.stderr,
        )
    level = (
        0 if max_error is not None else model.default_quality if quality is None else quality
    )  # None: the default
    shown = _level_name(level, max_error or 0)
    _note(
        args,
        f"{src or 'stdin'}: {source.count} image(s), {shown}, {out.count / source.count:.1f} bytes/image"
        + (f" -> {dst}" if dst else ""),
    )


def _shape_check(args, max_error: int | None):
    """What refuses an input's images from their header, before a pixel is read: the limits of the
    level they would be coded at (the lossless coder's are lower than the container's)."""
    from codec import api

    def check(shape) -> None:
        model = _model(args, [shape])
        api.check_codable(shape, model=model, quality=args.quality, max_error=max_error)

    return check


def _level_name(quality: int, max_error: int) -> str:
    """How a file's level reads: quality Q, or (quality 0: the lossless coder) lossless or near-lossless within K."""
    if quality:
        return f"quality {quality}"
    return f"near-lossless (every pixel within {max_error})" if max_error else "lossless"


class _CountingReader:
    """A binary file read through, counting the bytes (a pipe has no size to ask for)."""

    def __init__(self, raw):
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        b = self.raw.read(size)
        self.count += len(b)
        return b


class _Counting:
    """A write-only file that counts the bytes going through it."""

    def __init__(self, raw):
        self.raw, self.count = raw, 0

    def write(self, b: bytes) -> int:
        self.count += len(b)
        return self.raw.write(b)


def _decompress_one(args, src: str | None) -> None:
    from codec import api
    from codec.errors import InputError
    from codec.io import sinks

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
            _progress(args, reader.header["meta"].get("count"), str(src or "stdin"))
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
    from codec.io import sinks

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
    """``-d --images A:B``: those images only, read at random (only their chunks are decoded), written
    as the file the whole archive restores to (its kind, from that name), under NAME.A-LAST.SUFFIX
    (t10k.0-9 for t10k.aec, x.0-9.npy for x.npy.aec), unless -o or -c says where."""
    from codec import archive
    from codec.errors import InputError
    from codec.io import sinks

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
    """Some images of an open ``archive.Archive``, as ``sinks.restore_archive`` reads an archive: a
    header (its meta counting, and for a folder naming, only these) and batches, one per chunk."""

    def __init__(self, images, picked: range):
        meta = {**images.header["meta"], "count": len(picked)}
        if isinstance(meta.get("files"), list) and len(meta["files"]) == len(images):
            meta["files"] = [meta["files"][i] for i in picked]
        self.header = {**images.header, "meta": meta}
        self._images, self._picked = images, picked

    def __iter__(self):
        import numpy as np

        for _, run in itertools.groupby(self._picked, key=self._images.chunk_of):
            yield np.stack([self._images[i] for i in run])


def _images(text: str) -> slice:
    """'A:B' (Python's slice, negative counting from the end), 'A:', ':B' or 'A' (one image)."""
    parts = text.split(":")
    try:
        if len(parts) == 1:
            i = int(parts[0])
            return slice(i, i + 1 if i != -1 else None)
        if len(parts) == 2:
            return slice(*(int(v) if v.strip() else None for v in parts))
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"not an image or a range of them (A:B): {text!r}")


def _claim_output(args, dst: Path | None) -> None:
    """One command never writes one output twice (two archives restoring to one name would lose one)."""
    if dst is None:
        return
    claimed = args.__dict__.setdefault("outputs", set())
    key = str(dst.resolve())
    if key in claimed:
        raise FileExistsError(
            f"{dst} was written by this command already (restore the other archive with -o)"
        )
    claimed.add(key)


def _header_info(path: str, names: dict | None = None) -> dict:
    """The header and chunk totals of a file; ``names`` maps fingerprint prefixes to model names."""
    from bitstream import container

    with contextlib.ExitStack() as stack:
        f = _CountingReader(
            sys.stdin.buffer if path == "-" else stack.enter_context(open(path, "rb"))
        )
        reader = container.Reader(f)
        header = reader.header
        chunks = payload = count = 0
        shapes = []
        for n, data, shape in reader:
            chunks, payload, count = chunks + 1, payload + len(data), count + n
            if shape not in shapes:
                shapes.append(shape)
        size = f.count
    fingerprint = header["model"]["fingerprint"]
    return {
        "file": path,
        "bytes": size,
        "images": count,
        "bytes_per_image": size / max(count, 1),
        "payload_bytes": payload,
        "chunks": chunks,
        **header,
        "image_shapes": shapes,
        "model": {"name": (names or {}).get(fingerprint), "fingerprint": fingerprint},
    }


def _model_names(args) -> dict:
    """Fingerprint prefix -> name, for the models ``info`` can name: the bundled ones and ``--model``'s.

    Reads the model files without loading the networks. A damaged bundled model only costs
    its name; a ``--model`` that cannot be read is an error.
    """
    from bitstream.header import FINGERPRINT_BYTES
    from codec.api import DEEP_MODEL, DEFAULT_MODEL, PHOTO_MODEL
    from codec.errors import FormatError
    from codec.levels import modelfile

    names = {}
    for path, required in (
        (DEFAULT_MODEL, False),
        (PHOTO_MODEL, False),
        (DEEP_MODEL, False),
        (args.model, True),
    ):
        if path is None:
            continue
        try:
            body = modelfile.loads(modelfile.read(path), what=str(path))
        except (OSError, FormatError):
            if required:
                raise
            continue
        for fingerprint in [
            body["fingerprint"],
            *body["meta"].get("same_levels_as", []),
        ]:  # its files, older ones too
            names[fingerprint[: 2 * FINGERPRINT_BYTES]] = body["name"]
    return names


def _cmd_info(args) -> int:
    from codec.errors import AecodecError

    try:
        names = _model_names(args)
    except (OSError, AecodecError) as e:
        return _report(args.model, e)
    status = 0
    for path in args.files:
        try:
            info = _header_info(path, names)
        except Exception as e:  # noqa: BLE001 - reported per file, like gzip
            status = max(status, _report(path, e))
            continue
        if args.json:
            _print_json(info)
            continue
        meta, model = info["meta"], info["model"]
        shown = (
            f"{model['name']} ({model['fingerprint']})"
            if model["name"]
            else f"{model['fingerprint']} (not the bundled model; name its file with --model)"
        )
        shapes = ", ".join("x".join(map(str, s)) for s in info["image_shapes"][:4])
        more = (
            f" and {len(info['image_shapes']) - 4} more sizes"
            if len(info["image_shapes"]) > 4
            else ""
        )
        depth = f" ({info['depth']}-bit)" if info["depth"] not in (8, 16) else ""
        print(
            f"{path}:\n  images       {info['images']} of {shapes}{more} {info['dtype']}{depth}"
            f"{' (one image)' if not info['batched'] else ''}\n"
            f"  size         {info['bytes']} bytes ({info['bytes_per_image']:.1f} per image), "
            f"payload {info['payload_bytes']} in {info['chunks']} chunk(s)\n"
            f"  model        {shown}\n"
            f"  quality      {_level_name(info['quality'], info['max_error'])}\n"
            f"  coder        {info['coder']['name']} {info['coder']['version']}\n"
            f"  original     {meta.get('kind', '?')} {meta.get('name', '')}"
        )
    return status


def _test_one(args, src: str | None) -> None:
    """Decode every chunk, as gzip -t does: checksums, limits, and streams that end where they should."""
    from codec import api

    with contextlib.ExitStack() as stack:
        fileobj = sys.stdin.buffer if src in (None, "-") else stack.enter_context(open(src, "rb"))
        for _ in api.ArchiveReader(fileobj, model=_model(args)):
            pass
    _note(args, f"{src or 'stdin'}: OK")


def _report(name: str | None, e: BaseException) -> int:
    """Print ``aecodec: error: FILE: message``; returns the exit status it implies.

    A system error names the file it is about (an output's missing folder, not the input)."""
    if isinstance(e, OSError) and e.errno is not None and e.strerror:
        message = e.strerror
        if e.filename is not None and e.strerror == os.strerror(
            e.errno
        ):  # the system's words: name its file
            name = os.fsdecode(e.filename)
    else:
        message = str(e) or type(e).__name__
    name = name or "stdin"
    if message.startswith(f"{name}: "):  # a message that names its file already (a model's reader)
        message = message[len(name) + 2 :]
    print(f"aecodec: error: {name}: {message}", file=sys.stderr)
    return 2 if _is_usage(e) else 1


def _is_usage(e: BaseException) -> bool:
    """Bad usage (exit status 2): the command line asks for something aecodec will not do, such as
    writing over an input of the same run."""
    from codec.errors import OutputIsInputError

    return isinstance(e, (UsageError, OutputIsInputError))


def _cmd_files(args, one) -> int:
    from codec.errors import AecodecError

    files = args.files or ["-"]
    if getattr(args, "output", None) is not None and len(files) > 1:
        raise UsageError("-o/--output takes a single input file")
    if getattr(args, "stdout", False) and len(files) > 1 and one is _compress_one:
        raise UsageError("-c writes one archive: give one input (a folder with -r holds many)")
    try:
        _model(args)  # a missing or damaged model is the model's error, reported once
    except (AecodecError, OSError) as e:
        return _report(args.model or "bundled model", e)
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
    from codec import parallel

    try:
        return parallel.DaskPool(args.workers, scheduler=args.scheduler)
    except ImportError:
        raise UsageError(
            "--workers and --scheduler need Dask: pip install 'aecodec[scale]'"
        ) from None


def _scheduler(text: str) -> str:
    """--scheduler's address: tcp://HOST:PORT or HOST:PORT, else refused before any connection."""
    from codec import parallel

    try:
        return parallel.scheduler_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _sample_count(text: str) -> int:
    value = int(text) if text.isdecimal() else 0
    if not 1 <= value <= MAX_SAMPLES:
        raise argparse.ArgumentTypeError(
            f"not a number of images from 1 to {MAX_SAMPLES:,}: {text!r}"
        )
    return value


def _seed(text: str) -> int:
    if not text.isdecimal():
        raise argparse.ArgumentTypeError(f"not a seed (a whole number from 0): {text!r}")
    return int(text)


def _workers(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"not a number of workers from 1 to 1024: {text!r}")
    return value


def _one_file(args, one, src) -> int:
    """``one(args, src)``; the exit status it earns (errors reported as one line)."""
    from codec.errors import AecodecError

    try:
        one(args, src)
    except (AecodecError, OSError, UsageError, RefusedError, ValueError, EOFError) as e:
        return _report(src if src != "-" else None, e)
    except MemoryError:  # the machine's limit, not a bug: said so, and the next file is still tried
        e = MemoryError(
            "not enough memory to code it (the limits and what they cost: README, "
            "'Bounded work per input byte')"
        )
        return _report(src if src != "-" else None, e)
    except Exception as e:  # noqa: BLE001 - a bug: still one line, still the next file
        return _report(
            src if src != "-" else None, RuntimeError(f"internal error, please report: {e!r}")
        )
    return 0


def _lambdas(text: str) -> tuple[float, ...]:
    """'0.5,2,8' -> (0.5, 2.0, 8.0); the ranges are ModelConfig's to check."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None


def _steps(text: str) -> tuple[int, ...]:
    """'44,34,25' -> (44, 34, 25); 'none' -> (); the ranges are ModelConfig's to check."""
    if text == "none":
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of whole numbers: {text!r}"
        ) from None


def _train_conv(args, images=None, *, auto: bool = False) -> int:
    """``train --kind conv`` (and ``auto`` on data that is not small aligned grey images): the
    convolutional levels alone, on random crops of --data's images, whole images held out to measure
    the ladder; by default fine-tuned from the bundled photo model (a colour model: grey images train
    as R = G = B). ``auto`` keeps the levels on the Pareto front; ``conv`` refuses a ladder out of order."""
    from codec.levels import modelfile
    from codec.training import conv_model, ladder
    from codec.training import tile as train

    if images is None:
        images = _conv_data(args)
    try:
        split = train.TrainConfig(
            **{
                k: v
                for k, v in (("val_fraction", args.val_fraction), ("seed", args.seed))
                if v is not None
            }
        )
        train_images, val = (
            (list(images), _val_images(args)) if args.val else train.split_images(images, split)
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    params = _no_worse_than_start(args, *_fit_conv(args, train_images, val), _measurable(val))
    meta = {"data": str(args.data), "kind": "conv", "command": args.command_line}
    candidate = conv_model.model_file(params, name=args.name or args.out.stem, meta=meta)
    entries, rows = _ladder(candidate, _measurable(val), auto=auto)
    meta["val"] = [{"kind": k, "index": i, **r} for (k, i), r in zip(entries, rows, strict=True)]
    data = modelfile.amended(
        candidate, ladder=entries, default=ladder.default_level(rows), meta=meta
    )
    _write_outputs(args, [(args.out, data)])
    _print_json({"model": str(args.out), "bytes": len(data), "val": meta["val"]}, indent=1)
    return 0


def _ladder(model_file: bytes, val: list, *, auto: bool) -> tuple[list, list]:
    """([kind, index] of the levels to keep, their measurements) on the held-out images ``val``: the
    Pareto front with ``auto``, else every level, refused (LadderError) if they are not monotone."""
    from codec.levels import modelfile
    from codec.levels.model import Model
    from codec.training import ladder

    model = Model(modelfile.loads(model_file), source="trained model")
    seen: dict[str, int] = {}
    entries = []
    for level in (
        model.levels
    ):  # each level's place among the levels of its kind, as a stored ladder names it
        entries.append([level.kind, seen.get(level.kind, 0)])
        seen[level.kind] = entries[-1][1] + 1
    rows = ladder.measure(model.levels, val)
    if auto:
        keep = ladder.pareto(rows)
    else:
        ladder.check_monotone(
            rows,
            [
                f"quality {q} ({lv.kind})"
                for q, lv in zip(model.qualities, model.levels, strict=True)
            ],
        )
        keep = range(len(rows))
    return [entries[i] for i in keep], [rows[i] for i in keep]


def _conv_data(args) -> list:
    from codec.io import data

    images = data.training_images(args.data) if args.data else None
    if images is None:
        raise UsageError("--kind conv needs --data (photos, scans, ...: images of any sizes)")
    return list(images)


def _val_images(args) -> list:
    """--val's images, refused where there are none."""
    from codec.io import data

    images = data.training_images(args.val)
    if images is None or len(images) == 0:
        raise UsageError(f"{args.val}: no images to validate on")
    return list(images)


def _measurable(images: list, count: int = 64, side: int = 512) -> list:
    """Up to ``count`` held-out images, each its central ``side`` x ``side`` at most: measuring stays quick."""
    out = []
    for a in images[:count]:
        y, x = max(0, (a.shape[0] - side) // 2), max(0, (a.shape[1] - side) // 2)
        out.append(a[y : y + side, x : x + side])
    return out


def _fit_conv(
    args, images: list, val: list, steps: int | None = None, minutes: float | None = None
):
    """The trained float model of the convolutional kind: ``steps``, else ``minutes``, else --steps, else
    --minutes; the weights that did best on crops of the held-out images ``val``."""
    import numpy as np

    from codec.training import conv_model

    init = _conv_init(args)
    start = (
        conv_model.export(init) if init is not None else None
    )  # before training donates its buffers
    colour = init is not None or any(a.ndim == 3 for a in images)

    def as_input(a):  # (H, W, 3) for a colour model (grey as R = G = B), (H, W, 1) for a grey one
        a = a[..., :3] if a.ndim == 3 else a[..., None]
        return np.repeat(a, 3, axis=2) if colour and a.shape[2] == 1 else a

    images, val = [as_input(a) for a in images], [as_input(a) for a in val]
    if init is not None and args.lambdas:
        raise UsageError("--lambdas sets up a new model: give --from-scratch with it")
    cfg = conv_model.ConvConfig(
        channels=3 if colour else 1,
        ns=args.synthesis_width,
        **({"lambdas": args.lambdas} if args.lambdas else {}),
    )
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    if init is not None:
        log(
            f"fine-tuning {args.init or 'the bundled photo model (photo.aecm)'}; --from-scratch to start from random weights"
        )
    if steps is None and minutes is None:
        steps, minutes = args.steps or (None if args.minutes else 20_000), args.minutes
    own = args.kind == "conv"  # --batch-size and --learning-rate are the tile kind's under auto
    smallest = min(min(a.shape[:2]) for a in images)
    crop = min(
        128, max(32, smallest // 32 * 32)
    )  # small images (patches) are not padded out to 128
    return start, conv_model.train(
        images,
        cfg=init.cfg if init is not None else cfg,
        steps=steps,
        minutes=None if steps else minutes,
        batch_size=own and args.batch_size or 8,
        crop=crop,
        init=init,
        learning_rate=own and args.learning_rate or (1e-4 if init is not None else 5e-4),
        seed=args.seed or 0,
        log=log,
        grey_fraction=0.25 if colour else 0.0,
        val=val,
    )


def _no_worse_than_start(args, start: dict | None, model, val: list) -> dict:
    """The trained parameters (kept in --workdir), or the start model's where fine-tuning made the
    coded files on the held-out images ``val`` larger at equal PSNR: training never loses to its start."""
    from codec.levels import modelfile
    from codec.levels.model import Model
    from codec.training import conv_model, ladder

    params = _keep_params(args, model)
    if start is None:
        return params

    def measured(p):
        body = modelfile.loads(conv_model.model_file(p, name="candidate", meta={}))
        return ladder.measure(Model(body, source="trained model").levels, val)

    change = ladder.rate_change(measured(start), measured(params))
    if not args.quiet:
        print(
            f"held-out images: the trained levels code {change:+.1%} bytes at equal PSNR against the start model's",
            file=sys.stderr,
        )
    if change < 0:
        return params
    if not args.quiet:
        print(
            "keeping the start model's convolutional levels: training did not make them better here",
            file=sys.stderr,
        )
    return start


def _keep_params(args, model) -> dict:
    """The trained parameters, also saved in --workdir (conv-params.npz) before anything can refuse them."""
    import numpy as np

    from codec.levels.conv import CONV_NETS
    from codec.training import conv_model

    params = conv_model.export(model)
    arrays = {
        f"{k}_{i}_{j}": a
        for k in CONV_NETS
        for i, layer in enumerate(params[k])
        for j, a in enumerate(layer)
    }
    arrays.update({k: params[k] for k in ("log_gain", "log_inv_gain", "log_z_scale")})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _write_workdir(args, "conv-params.npz", buffer.getvalue())
    return params


def _width(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"not a width from 1 to 256: {text!r}")
    return value


def _conv_params(path):
    """(parameters, tables) of a model file's convolutional levels, or None where it has none."""
    from codec.levels import conv, modelfile

    try:
        body = modelfile.loads(modelfile.read(path), what=str(path))
        return conv.from_body(body, source=str(path))
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from None


def _conv_init(args):
    """The model to fine-tune, as a trainable model: --init's, else the bundled photo model (None with
    --from-scratch or where it is not installed); with --synthesis-width, its synthesis widened to it."""
    from codec import api
    from codec.training import conv_model

    if args.from_scratch:
        return None
    found = _conv_params(args.init) if args.init else None
    if found is None and args.init and args.kind == "conv":
        raise UsageError(f"{args.init}: the model has no convolutional levels to start from")
    if found is None:  # auto with a --init of tile levels only: those start the tile kind
        found = _conv_params(api.PHOTO_MODEL) if api.PHOTO_MODEL.is_file() else None
    if found is None:
        return None
    params = found[0]
    if args.synthesis_width:
        try:
            params = conv_model.widen_synthesis(params, args.synthesis_width, seed=args.seed or 0)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return conv_model.from_params(params)


def _leaves(text: str) -> int:
    """--leaves, refused at parsing rather than when the trained model is loaded."""
    from codec.levels.lossless import MAX_LOSSLESS_LEAVES

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 2 <= value <= MAX_LOSSLESS_LEAVES:
        raise argparse.ArgumentTypeError(
            f"not a number of leaves from 2 to {MAX_LOSSLESS_LEAVES:,}: {text!r}"
        )
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of whole numbers: {text!r}"
        ) from None


FAMILY_KINDS = (
    "plain",
    "linear",
    "denoising",
    "sparse",
    "contractive",
    "variational",
    "convolutional",
)  # family.KINDS, and plain with --arch conv


def _train_family(args) -> int:
    """``train --kind plain|linear|denoising|sparse|contractive|variational``: a classic autoencoder
    (``codec/family/autoencoders.py``) on --data (default: Fashion-MNIST's train split), written to --out."""

    from codec.family import autoencoders as family
    from codec.io import data

    defaults = {
        "denoising": {"noise": 0.3},
        "contractive": {"contraction": 0.01},
        "sparse": {"beta": 0.1},
    }
    options = {
        k: getattr(args, k)
        for k in (
            "widths",
            "noise",
            "mask",
            "l1",
            "rho",
            "beta",
            "contraction",
            "decoder",
            "neighbours",
            "arch",
        )
        if getattr(args, k) is not None
    }
    if args.blind:
        options["blind"] = True
    images = (
        _one_size(data.training_images(args.data), args.data)
        if args.data
        else data.fashion_mnist("train")
    )
    shape = images.shape[1:]
    kind = "plain" if args.kind == "convolutional" else args.kind
    if args.kind == "convolutional":
        options["arch"] = "conv"
    if options.get("arch") == "conv":
        options["image_shape"] = tuple(int(v) for v in shape)
        options.setdefault("widths", (math.prod(shape), 32, 64))
    try:
        cfg = family.FamilyConfig(kind=kind, **{**defaults.get(kind, {}), **options})
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        model = family.train(
            images,
            cfg,
            steps=args.steps or 5000,
            batch_size=args.batch_size or 128,
            learning_rate=args.learning_rate or 1e-3,
            seed=args.seed or 0,
            log=log,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    meta = {
        "data": str(args.data or "Fashion-MNIST train split"),
        "command": args.command_line,
        "image_shape": [int(v) for v in shape],
    }
    if (
        cfg.kind == "variational" and cfg.decoder == "logistic"
    ):  # an anomaly scorer: its training scores' spread,
        model = family.loads(family.dumps(model, name=""))[
            0
        ]  # under the weights its file will hold (float16)
        try:
            meta["score_quantiles"] = family.score_quantiles(model, images)
        except ValueError as e:  # NaN scores: no scorer file is written
            raise UsageError(str(e)) from None
    raw = family.dumps(model, name=args.name or args.out.stem, meta=meta)
    _write_outputs(args, [(args.out, raw)])
    _print_json({"model": str(args.out), "kind": args.kind, "widths": list(cfg.widths)})
    return 0


OUTPUT_OPTIONS = ("out", "workdir")  # the Path options a command writes; every other one it reads
WORKDIR_FILES = ("tile.aecm", "conv-params.npz")  # training's own in --workdir, besides checkpoints


def _inputs(args) -> list[Path]:
    """Every file the command reads, from its Path options (--data, --init, --val, --test, --model,
    --labels, ...; a folder: the images in it): what no output may be, even with -f."""
    from codec.io.images import folder_files

    found = []
    for name, value in vars(args).items():
        if isinstance(value, Path) and name not in OUTPUT_OPTIONS:
            found.extend(folder_files(value)[0] if value.is_dir() else [value])
    return found


def _check_outputs(args, *paths: Path) -> None:
    """Refuse now, before any work, what ``_write_outputs`` would refuse at the end."""
    from codec.io import fileio

    fileio.check_outputs(
        [p for p in paths if p is not None], force=args.force, inputs=_inputs(args)
    )


def _write_outputs(args, files: list[tuple[Path, bytes]]) -> None:
    """How every command writes the files its options name (--out and the files beside it): the
    policy of ``fileio`` (exclusive unless -f, never an input, atomic, into a device or FIFO), all
    or none."""
    from codec.io import fileio

    files = [(path, data) for path, data in files if path is not None]  # nothing beside a device
    fileio.write_outputs(files, force=args.force, inputs=_inputs(args))


def _write_workdir(args, name: str, data: bytes) -> None:
    """A file of --workdir's own (each run replaces it), never one the run reads (--init ...)."""
    from codec.io import fileio

    args.workdir.mkdir(parents=True, exist_ok=True)
    fileio.write_outputs([(args.workdir / name, data)], force=True, inputs=_inputs(args))


def _check_train_outputs(args) -> None:
    """--out and --workdir's files, refused now rather than after an hour of training."""
    from codec.io import fileio

    _check_outputs(args, args.out)
    if args.workdir is not None and args.workdir.is_dir():
        names = [args.workdir / n for n in WORKDIR_FILES]
        fileio.check_outputs(names, force=True, inputs=_inputs(args))


def _beside(out: Path, suffix: str) -> Path | None:
    """The file written beside --out (its array, its table): --out's name with ``suffix``; none beside
    a device or FIFO (``--out /dev/null`` must not leave ``/dev/null.npy`` behind)."""
    from codec.io import fileio

    return None if fileio.is_stream(out) else out.with_suffix(suffix)


def _family_command(args) -> int:
    """``embed``, ``denoise`` and ``sample``: a picture (--out, PNG) and its array beside it (.npy),
    both or neither (``_write_outputs``)."""
    import numpy as np

    from codec.family import autoencoders as family

    _check_outputs(args, _beside(args.out, ".npy"), args.out)
    args.model = args.model or family.bundled_path(args.command)
    model, body = family.load(args.model)
    if args.command == "sample":
        try:
            array = family.sample(
                model, args.n, seed=args.seed, shape=family.image_shape(model, body)
            )
        except ValueError as e:
            raise UsageError(f"{args.model}: {e}") from None
        picture = family.grid(array[..., 0] if array.ndim == 4 else array)
    else:
        images = _family_images(args, model)
        labels = _labels(args, len(images)) if args.command == "embed" else None  # before the work
        array = (
            family.embed(model, images)
            if args.command == "embed"
            else family.denoise(model, images)
        )
        if args.command == "embed":
            picture = _map_png(array, labels)
        else:
            shown = array[:64].reshape(min(64, len(array)), *family.image_shape(model, body))
            picture = family.grid(shown)
    buffer = io.BytesIO()
    np.save(buffer, array)
    npy = _beside(args.out, ".npy")
    _write_outputs(args, [(npy, buffer.getvalue()), (args.out, _png(picture))])
    _print_json({"png": str(args.out), "npy": npy and str(npy), "shape": list(array.shape)})
    return 0


def _family_images(args, model):
    """DATA's images as one array, checked against the number of values the model takes."""

    from codec.io import data

    images = _one_size(data.training_images(args.data), args.data)
    if images[0].size != model.cfg.widths[0]:
        raise UsageError(
            f"{args.data}: images of {images[0].size} values ({'x'.join(map(str, images.shape[1:]))}); "
            f"{args.model} takes {model.cfg.widths[0]}"
        )
    return images


def _one_size(images, where):
    """``data.training_images``' result as one array (N, ...): the autoencoder kinds take images of one size."""
    import numpy as np

    if hasattr(images, "shape"):
        return images
    sizes = {a.shape for a in images}
    if len(sizes) > 1:
        raise UsageError(
            f"{where}: images of {len(sizes)} different sizes; the autoencoder kinds take images of one size"
        )
    return np.stack(images)


def _png(picture) -> bytes:
    """A PNG's bytes: already encoded (matplotlib), or a uint8 array's."""
    if isinstance(picture, bytes):
        return picture
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(picture).save(out, format="PNG")
    return out.getvalue()


def _score(args) -> int:
    """``score DATA``: each image's anomaly score under a scorer (--model), the threshold at --percentile
    of its training images' scores, a flag per image: OUT.csv (index, file, score, anomalous) and a
    histogram (OUT, PNG), both or neither (``_write_outputs``); one line of JSON with the counts."""
    from codec.family import autoencoders as family
    from codec.io.images import folder_files

    if not 0 <= args.percentile <= 100:  # refused before any work
        raise UsageError(f"--percentile {args.percentile:g} is not between 0 and 100")
    _check_outputs(args, _beside(args.out, ".csv"), args.out)
    args.model = args.model or family.bundled_path("score")
    model, body = family.load(args.model)
    if not body["meta"].get("score_quantiles"):
        raise UsageError(
            f"{args.model}: not an anomaly scorer (train one with --kind variational --decoder logistic)"
        )
    # NaN or infinite quantiles (a diverged training): a damaged file, refused before reading images
    quantiles = family.checked_quantiles(body["meta"]["score_quantiles"], what=str(args.model))
    images = _family_images(args, model)
    try:
        found = family.anomalies(images, model, percentile=args.percentile, quantiles=quantiles)
    except ValueError as e:
        raise UsageError(f"{args.model}: {e}") from None
    scores, limit, flags = found.scores, found.threshold, found.flags
    names = (
        [p.relative_to(args.data).as_posix() for p in folder_files(args.data)[0]]
        if args.data.is_dir()
        else [""] * len(scores)
    )
    rows = [
        "index,file,score_bits,anomalous",
        *(
            f"{i},{_csv_field(n)},{s:.3f},{int(f)}"
            for i, (n, s, f) in enumerate(zip(names, scores, flags, strict=True))
        ),
    ]
    table = _beside(args.out, ".csv")
    text = ("\n".join(rows) + "\n").encode()
    picture = _histogram_png(scores, limit, args.percentile)
    _write_outputs(args, [(table, text), (args.out, picture)])
    _print_json(
        {
            "images": len(scores),
            "anomalous": int(flags.sum()),
            "threshold_bits": round(limit, 3),
            "percentile": args.percentile,
            "csv": table and str(table),
            "png": str(args.out),
        }
    )
    return 0


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


def _histogram_png(scores, limit: float, percentile: float) -> bytes:
    """The scores' histogram and the threshold as a line (matplotlib)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.hist(scores, bins=60, color="0.4")
    ax.axvline(
        limit,
        color="tab:red",
        label=f"threshold: {percentile:g}th percentile of the training images",
    )
    ax.set_xlabel("anomaly score (bits: the model's code length minus JPEG XL's)")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    return _png_bytes(fig)


def _png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes (written atomically by the caller), the figure closed."""
    import matplotlib.pyplot as plt

    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("the picture needs matplotlib: pip install 'aecodec[bench]'") from None
    return plt


def _labels(args, count: int):
    """--labels (None without): one finite number per image of DATA, ``count`` of them.

    Raises:
        DataError: not a .npy or IDX file of numbers, not (count,), NaN or infinity (exit status 1).
    """
    import numpy as np

    from codec.errors import DataError

    if not args.labels:
        return None
    path = args.labels
    labels = _read_labels(path)
    if labels.ndim != 1:
        raise DataError(
            f"{path}: labels of shape {labels.shape}: one number per image, (N,), is needed"
        )
    if labels.dtype.kind not in "biuf":
        raise DataError(
            f"{path}: labels of dtype {labels.dtype}: numbers are needed (they colour the map)"
        )
    if len(labels) != count:
        raise DataError(f"{path}: {len(labels)} labels for the {count} images of {args.data}")
    labels = np.array(labels)  # read now: (count,) numbers, a size already known
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError(f"{path}: the labels hold NaN or infinity")
    return labels


def _read_labels(path: Path):
    """The array of a .npy file (mapped, not read: its shape is checked first) or of an IDX file.

    Raises:
        DataError: neither, or an .npy of objects (it would need pickle, which runs code).
    """
    import numpy as np

    from codec.errors import DataError
    from codec.io import idx

    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError) as e:
            if "objects" in str(e) or "pickle" in str(e):  # numpy's words for an array of objects
                raise DataError(
                    f"{path}: labels that need pickle (objects) are not read: save numbers"
                ) from None
            raise DataError(f"{path}: a damaged .npy file ({e})") from None
    if magic[:2] not in (b"\x00\x00", b"\x1f\x8b"):  # IDX, or gzip-compressed IDX (read_idx checks)
        raise DataError(f"{path}: --labels takes a .npy or an IDX file of one number per image")
    return idx.read_idx(path)


def _map_png(points, labels) -> bytes:
    """A scatter plot of 2-D points (the first two coordinates), coloured by label where given (matplotlib)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    colours = {"c": labels, "cmap": "tab10"} if labels is not None else {"c": "k"}
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.6, **colours)
    ax.set_xticks([])
    ax.set_yticks([])
    return _png_bytes(fig)


def _train(args) -> int:
    import numpy as np

    from codec.errors import CheckpointMismatchError
    from codec.io import data
    from codec.training import tile as train

    _check_train_outputs(args)  # refused now, not after an hour of training
    if args.kind in FAMILY_KINDS:
        return _train_family(args)
    if args.kind == "lossless":
        return _train_lossless(args)
    if args.workdir is None:
        raise UsageError(f"--kind {args.kind} needs --workdir (a folder for checkpoints)")
    if args.kind == "conv":
        return _train_conv(args)
    if (
        args.kind == "auto"
        and args.data
        and not _small_aligned(images := data.training_images(args.data))
    ):
        return _train_conv(args, list(images), auto=True)
    from codec.training.tile_net import ModelConfig

    def given(*names):  # options left unset keep the configs' own defaults
        return {n: getattr(args, n) for n in names if getattr(args, n) is not None}

    try:  # refused before any data is read or any time is spent training
        model_config = ModelConfig(
            **given(
                "hidden", "clusters", "context_groups", "context_hidden", "lambdas", "pixel_steps"
            )
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        train_config = train.TrainConfig(
            **given(
                "epochs",
                "batch_size",
                "learning_rate",
                "prior_learning_rate",
                "seed",
                "steps",
                "val_fraction",
            ),
            **_tile_minutes(args),
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    # a checkpoint of other settings is refused before any data is read (its images: once they are)
    resumable = train.run_settings(model_config, train_config, init=args.init)
    train.check_workdir(args.workdir, resumable)
    images = data.training_images(args.data) if args.data else data.fashion_mnist("train")
    test = (
        data.fashion_mnist("test")
        if args.test is None and not args.data
        else (data.training_images(args.test) if args.test else None)
    )
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        model, summary = train.train_and_evaluate(
            images,
            args.workdir,
            model_config=model_config,
            train_config=train_config,
            progress=not args.quiet and sys.stderr.isatty(),
            log=log,
            init=args.init,
            val_images=_val_images(args) if args.val else None,
        )
    except CheckpointMismatchError:  # the workdir's, not the command line's
        raise
    except ValueError as e:  # too few images for a hold-out, ...
        raise UsageError(str(e)) from None
    if test is None:  # held-out images of --data, cut to tiles as for validation
        test = summary["val_tiles"].reshape(-1, *model_config.tile)
    else:  # measured as the model codes tiles: cut the same way (whole 28x28 images stay whole)
        tiles = train.training_tiles(
            test if isinstance(test, np.ndarray) else list(test),
            model_config.tile,
            np.random.default_rng(train_config.seed),
        )
        test = tiles.reshape(-1, *model_config.tile)
    settings = {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"
    }
    meta = {
        "data": str(args.data or "Fashion-MNIST train split"),
        "steps": summary["steps"],
        "command": args.command_line,
        "settings": settings,
        "train_config": dataclasses.asdict(train_config),
        "val": summary["val"],
    }
    # written in --workdir first: the ladder is measured (and may be refused) before --out is touched
    model_file = train.export(
        model,
        None,
        name=args.name or args.out.stem,
        meta=meta,
        pixel_images=images,
        test_images=test,
    )
    _write_workdir(args, "tile.aecm", model_file)
    train_part, val = (
        (images, _val_images(args)) if args.val else train.split_images(images, train_config)
    )
    if args.kind == "auto":  # the convolutional levels too, then the ladder by measurement
        model_file = _with_conv_levels(args, model_file, train_part, val[:500])
    else:
        _ladder(model_file, val[:500], auto=False)  # refused (LadderError) unless monotone
        _write_outputs(args, [(args.out, model_file)])
    test = train.read_meta(model_file).get("test")
    _print_json({"model": str(args.out), "bytes": len(model_file), "test": test}, indent=1)
    return 0


def _train_lossless(args) -> int:
    """``train --kind lossless``: a lossless coder learned on --data (Fashion-MNIST's train split by
    default), alone or (--init MODEL) added to that model, whose levels stay as they were (so its
    files still decode: the new model lists the old one's fingerprint)."""
    from codec.io import data
    from codec.levels import modelfile

    images = data.training_images(args.data) if args.data else data.fashion_mnist("train")
    base = modelfile.read(args.init) if args.init else None
    raw = lossless_added(
        images,
        base,
        name=args.name or args.out.stem,
        leaves=args.leaves,
        depth=args.depth,
        command=args.command_line,
        data_name=str(args.data or "Fashion-MNIST train split"),
        log=(lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True)),
    )
    _write_outputs(args, [(args.out, raw)])
    lossless = modelfile.loads(raw)["meta"]["lossless"]
    _print_json({"model": str(args.out), "bytes": len(raw), "lossless": lossless}, indent=1)
    return 0


def lossless_added(
    images,
    base: bytes | None,
    *,
    name: str,
    leaves: int,
    depth: int | None,
    command: str,
    data_name: str,
    log,
) -> bytes:
    """A model file: ``base`` (a model file's bytes, or None: a model of the lossless coder alone) with
    a lossless coder learned on ``images`` (an array or a list of arrays), measured on a share held out."""
    from codec.levels import lossless, modelfile
    from codec.levels.model import Model
    from codec.training import lossless_train

    groups = _same_shape_groups(images)
    depth = depth or max(8 * g.dtype.itemsize for g in groups)
    if not 1 <= depth <= 16 or any(int(g.max()) >> depth for g in groups):
        raise UsageError(f"--depth {depth}: not 1 to 16, or the images hold values beyond it")
    learn, held = _hold_out(groups)
    coder = lossless_train.fit(learn, depth, leaves=leaves, log=log)
    samples = sum(g.size for g in held)
    by_prior = {}
    for prior in (
        lossless.PRIORS if samples else ()
    ):  # how much the tables are worth against what is coded
        level = lossless.LosslessLevel(
            lossless.LosslessCoder(depth, coder.tree, coder.rows, prior), 0, depth
        )
        by_prior[prior] = sum(level.ideal_bits(g) for g in held) / samples
        log(
            f"lossless: tables worth {prior} symbols: {by_prior[prior]:.4f} bits per sample held out"
        )
    prior = (
        min(by_prior, key=by_prior.get) if by_prior else lossless.PRIORS[0]
    )  # nothing held out: adapt most
    coder = lossless.LosslessCoder(depth, coder.tree, coder.rows, prior)
    bps = by_prior.get(prior)
    info = {
        "depth": depth,
        "leaves": coder.leaves,
        "prior": prior,
        "data": data_name,
        "command": command,
        "held_out_bits_per_sample": bps,
        "held_out_samples": int(samples),
        "held_out_by_prior": {str(k): v for k, v in by_prior.items()},
    }
    log(
        f"lossless: {bps:.3f} bits per sample on {samples:,} held-out samples"
        if bps
        else "lossless: none held out"
    )
    if base is None:
        return modelfile.dumps(
            name=name,
            config=None,
            params={},
            frozen=None,
            pixel=[],
            meta={"lossless": info},
            default=0,
            lossless=coder,
        )
    body = modelfile.loads(base, what="--init")
    meta = {
        **body["meta"],
        "lossless": info,
        "same_levels_as": [*body["meta"].get("same_levels_as", []), body["fingerprint"]],
    }
    upgraded = (
        {}
        if body["format"] >= 4
        else {  # the fields format 4 added, as a format-3 file implies them
            "default": modelfile.default_from_body(body, len(Model(body).levels)),
            "conv": None,
        }
    )
    raw = modelfile.amended(
        base,
        meta=meta,
        lossless=lossless.to_dict(coder),
        format=modelfile.FORMAT,
        **upgraded,
    )
    Model(modelfile.loads(raw))  # it loads
    return raw


def _same_shape_groups(images) -> list:
    """Images as arrays (N, H, W[, C]) of one shape each."""
    import numpy as np

    if isinstance(images, np.ndarray):
        return [images]
    by_shape: dict = {}
    for image in images:
        by_shape.setdefault((image.shape, image.dtype.str), []).append(image)
    return [np.stack(v) for v in by_shape.values()]


def _hold_out(groups: list) -> tuple[list, list]:
    """(groups to learn on, groups to measure on): every tenth image of a group of ten or more, else
    every fifth group (of single images), so that what is measured was never learned from."""
    if len(groups) >= 5 and all(len(g) < 10 for g in groups):
        return [g for i, g in enumerate(groups) if i % 5 != 4], [
            g for i, g in enumerate(groups) if i % 5 == 4
        ]
    return [g[[i for i in range(len(g)) if i % 10 != 9]] if len(g) >= 10 else g for g in groups], [
        g[9::10] for g in groups if len(g) >= 10
    ]


def _minutes_split(args) -> bool:
    """Whether --minutes is shared: under auto, half for the tile kind and half for the convolutional
    levels (unless --conv-steps fixes theirs), so that --minutes is the whole budget."""
    return bool(args.minutes) and args.kind == "auto" and args.conv_steps is None


def _tile_minutes(args) -> dict:
    """The tile kind's share of --minutes (see ``_minutes_split``), as TrainConfig fields."""
    if not args.minutes:
        return {}
    return {"minutes": args.minutes / 2 if _minutes_split(args) else args.minutes}


def _small_aligned(images) -> bool:
    """Small grey images of one size (Fashion-MNIST's kind): where the tile transform and the pixel
    coder are worth training beside the convolutional kind."""
    shape = images.shape[1:] if hasattr(images, "shape") else None
    return shape is not None and len(shape) == 2 and shape[0] * shape[1] <= 64 * 64


def _with_conv_levels(args, tile_file: bytes, images, val) -> bytes:
    """The tile model plus fine-tuned convolutional levels, keeping the Pareto front measured on ``val``."""
    from codec.levels import conv, modelfile
    from codec.training import ladder

    split = _minutes_split(args)  # the other half of --minutes
    steps = None if split else args.conv_steps or 3000
    fitted = _fit_conv(
        args,
        list(images[:20_000]),
        list(val),
        steps=steps,
        minutes=args.minutes / 2 if split else None,
    )
    params = _no_worse_than_start(args, *fitted, list(val))
    candidate = modelfile.amended(tile_file, conv=conv.to_dict(params, conv.ladder_tables()))
    entries, rows = _ladder(candidate, list(val), auto=True)
    meta = modelfile.loads(candidate)["meta"]
    data = modelfile.amended(
        candidate,
        ladder=entries,
        default=ladder.default_level(rows),
        meta={
            **meta,
            "val_ladder": [{"kind": k, **r} for (k, _), r in zip(entries, rows, strict=True)],
        },
    )
    _write_outputs(args, [(args.out, data)])
    return data


def _file_options(p: argparse.ArgumentParser, *, compressing: bool) -> None:
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="inputs; none or '-' means standard input"
    )
    p.add_argument(
        "-c", "--stdout", action="store_true", help="write to standard output, keep inputs"
    )
    p.add_argument("-o", "--output", help="output file name (one input only)")
    p.add_argument(
        "-f", "--force", action="store_true", help="overwrite outputs; write binary to a terminal"
    )
    p.add_argument(
        "-k",
        "--keep",
        action="store_true",
        help="keep inputs (the default; accepted for gzip habits)",
    )
    p.add_argument(
        "--rm", action="store_true", help="remove each input after its output is complete"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    p.add_argument("-v", "--verbose", action="store_true", help="say what was done to each file")
    p.add_argument(
        "--model",
        help="model file (default: compressing, the bundled model that suits the images, "
        "Fashion-MNIST's for 28x28 grey items, the photo model otherwise; decompressing, the one the file names)",
    )
    if compressing:
        p.add_argument(
            "-r",
            "--recursive",
            action="store_true",
            help="compress a folder of images (any sizes, subfolders included) as one archive",
        )
        p.add_argument(
            "--grey-stack",
            action="store_true",
            help="take an (N, H, 3) or (N, H, 4) array as N grey images, not one colour image",
        )
        level = p.add_mutually_exclusive_group()
        level.add_argument(
            "--quality",
            type=int,
            help="quality level, 1 (smallest) upwards (default: the model's; "
            "the bundled model has 1-8 and defaults to 4)",
        )
        level.add_argument(
            "--target-psnr",
            type=float,
            metavar="DB",
            help="the smallest level that reaches this PSNR",
        )
        level.add_argument(
            "--target-size", type=int, metavar="BYTES", help="the best level whose file fits BYTES"
        )
        level.add_argument(
            "--lossless",
            action="store_true",
            help="keep every pixel exactly (the model's lossless coder; uint8 or 16-bit images)",
        )
        level.add_argument(
            "--max-error",
            type=_max_error,
            metavar="K",
            help="near-lossless: every pixel within K levels of the original (1 to 32, as JPEG-LS)",
        )
        cluster = p.add_mutually_exclusive_group()
        cluster.add_argument(
            "--workers",
            type=_workers,
            metavar="K",
            help="code the chunks on a local Dask cluster of K worker processes "
            "(the same bytes as without)",
        )
        cluster.add_argument(
            "--scheduler",
            type=_scheduler,
            metavar="ADDRESS",
            help="code the chunks on the Dask cluster at ADDRESS instead: "
            "tcp://HOST:PORT or HOST:PORT (e.g. tcp://scheduler:8786; an "
            "IPv6 address in brackets); no other address is connected to, "
            "and one that does not answer fails within a few seconds",
        )
    else:
        p.add_argument("-r", "--recursive", action="store_true", help=argparse.SUPPRESS)
        p.add_argument(
            "--images",
            type=_images,
            metavar="A:B",
            help="restore only images A to B-1 (counted from 0; negative from the end), "
            "decoding only the chunks that hold them; written as the kind of file the "
            "whole archive restores to, as NAME.A-LAST (or where -o/-c says)",
        )


def _max_error(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        k = -1
    if not 1 <= k <= 32:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 1 to 32 (0 is --lossless)"
        )
    return k


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("aecodec")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aecodec",
        description="Learned lossy compression for image datasets, "
        "used like gzip. Inputs are kept unless --rm is given.",
    )
    parser.add_argument("--version", action="version", version=f"aecodec {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "compress", help="FILE -> FILE.aec (images, .npy/.npz, IDX, folders with -r)"
    )
    _file_options(c, compressing=True)
    c.set_defaults(func=lambda a: _cmd_files(a, _compress_one))
    d = sub.add_parser("decompress", help="FILE.aec -> FILE, in its original format")
    _file_options(d, compressing=False)
    d.set_defaults(func=lambda a: _cmd_files(a, _decompress_one))
    i = sub.add_parser("info", help="print a compressed file's header")
    i.add_argument(
        "files", nargs="+", metavar="FILE", help="files to describe; '-' reads standard input"
    )
    i.add_argument("--json", action="store_true", help="one JSON object per file")
    i.add_argument(
        "--model",
        help="a model file to name, besides the bundled one, when a file was made with it",
    )
    i.set_defaults(func=_cmd_info)
    t = sub.add_parser(
        "test", help="decode every image without writing: checksums, limits and streams"
    )
    t.add_argument("files", nargs="*", metavar="FILE")
    t.add_argument("--model", help="model file (default: the bundled model the file names)")
    t.add_argument("-v", "--verbose", action="store_true")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=lambda a: _cmd_files(a, _test_one))

    tr = sub.add_parser("train", help="train a codec model (Fashion-MNIST train split by default)")
    tr.add_argument(
        "--kind",
        choices=("auto", "tile", "conv", "lossless", *FAMILY_KINDS),
        default="auto",
        help="auto (default): convolutional levels for any data, and for small grey images of one size "
        "(Fashion-MNIST's kind) the tile transform and pixel levels too, the ladder kept by "
        "measurement on held-out images; tile or conv: that kind alone (a ladder out of order is refused); "
        "lossless: the lossless coder alone (any depth to 16 bits), or with --init MODEL added to that model; "
        f"{', '.join(FAMILY_KINDS)}: a classic autoencoder (--widths, --noise, ...; --out NAME.aecf)",
    )
    tr.add_argument(
        "--widths",
        type=_int_list,
        metavar="D,H,...,K",
        help="autoencoder kinds: input, hidden and code widths (default 784,128,32,2)",
    )
    tr.add_argument(
        "--noise", type=float, help="denoising: Gaussian noise sigma on [0, 1] pixels (default 0.3)"
    )
    tr.add_argument(
        "--mask", type=float, help="denoising: share of input pixels set to 0 (default 0)"
    )
    tr.add_argument(
        "--l1", type=float, help="sparse: weight of the code's mean absolute activation"
    )
    tr.add_argument(
        "--rho", type=float, help="sparse: target mean activation of the code units (default 0.05)"
    )
    tr.add_argument("--beta", type=float, help="sparse: weight of the KL divergence from --rho")
    tr.add_argument(
        "--contraction",
        type=float,
        help="contractive: weight of the encoder Jacobian's squared norm (default 0.01)",
    )
    tr.add_argument(
        "--decoder",
        choices=("bernoulli", "gaussian", "logistic"),
        help="variational: the decoder's "
        "distribution; logistic (256 levels) makes the model an anomaly scorer (aecodec score)",
    )
    tr.add_argument(
        "--arch",
        choices=("dense", "conv"),
        help="plain and denoising: dense layers of --widths, or conv: "
        "stages of --widths[1:] channels, each halving the size (default for --kind convolutional: D,32,64)",
    )
    tr.add_argument(
        "--blind",
        action="store_true",
        help="denoising: each image's noise sigma drawn from [0, --noise]",
    )
    tr.add_argument(
        "--neighbours",
        type=float,
        help="any autoencoder kind: weight of a neighbour-graph (UMAP) term "
        "that keeps each image's nearest neighbours near it in the code (2-D maps)",
    )
    tr.add_argument(
        "--conv-steps",
        type=int,
        help="auto on small aligned images: steps of the convolutional "
        "levels' fine-tuning (default: half of --minutes where given, else 3000)",
    )
    tr.add_argument(
        "--from-scratch",
        action="store_true",
        help="--kind conv: start from random weights instead "
        "of fine-tuning the bundled photo model",
    )
    tr.add_argument(
        "--data",
        type=Path,
        help="images to train on: a folder of images (any sizes, grey or colour, "
        "subfolders too), an image, .npy, .npz or IDX; default: Fashion-MNIST train split",
    )
    tr.add_argument(
        "--test",
        type=Path,
        help="images to measure the exported model on (default: Fashion-MNIST test split)",
    )
    tr.add_argument(
        "--val",
        type=Path,
        metavar="DATA",
        help="images to validate on (choose the levels, stop a "
        "fine-tuning at its best) instead of a share of --data held out; give images of other scenes "
        "when --data holds many crops of the same ones (the crops of one photo resemble each other)",
    )
    tr.add_argument("--out", type=Path, required=True, help="model file to write (.aecm)")
    tr.add_argument(
        "-f", "--force", action="store_true", help="overwrite --out (never an input of the run)"
    )
    tr.add_argument(
        "--workdir",
        type=Path,
        help="folder for checkpoints; training resumes from it (the codec kinds: "
        "auto, tile, conv; required for them)",
    )
    tr.add_argument(
        "--name", help="model name recorded in the file (default: the --out file's name)"
    )
    # Defaults live in TrainConfig and ModelConfig (not imported here: start-up time).
    tr.add_argument("--epochs", type=int, help="passes over the data (default 40)")
    tr.add_argument(
        "--minutes",
        type=float,
        help="train for this long instead: the steps that fit are measured "
        "and the learning-rate schedule fitted to them (the log says how to repeat it: --steps N)",
    )
    tr.add_argument(
        "--steps", type=int, help="train for exactly this many steps instead of --epochs"
    )
    tr.add_argument(
        "--val-fraction",
        type=float,
        help="share of the images held out to validate (default 0.1, at most 5,000 images)",
    )
    tr.add_argument("--batch-size", type=int, help="images per step (default 128)")
    tr.add_argument(
        "--learning-rate", type=float, help="peak learning rate of the transforms (default 2e-4)"
    )
    tr.add_argument(
        "--prior-learning-rate",
        type=float,
        help="peak learning rate of gains and prior (default 2e-3)",
    )
    tr.add_argument("--hidden", type=int, help="width of the nonlinear branches (default 128)")
    tr.add_argument(
        "--clusters", type=int, help="prior clusters the encoder picks from (default 16)"
    )
    tr.add_argument(
        "--context-groups",
        type=int,
        help="latent groups coded in turn, each with context (default 8)",
    )
    tr.add_argument(
        "--context-hidden", type=int, help="width of each group's context network (default 128)"
    )
    tr.add_argument(
        "--lambdas",
        type=_lambdas,
        metavar="L1,L2,...",
        help="rate-distortion weight of each transform level, low to high: one level per value "
        "(default 0.24,0.8,2)",
    )
    tr.add_argument(
        "--pixel-steps",
        type=_steps,
        metavar="S1,S2,...",
        help="quantizer step (in pixel levels, 1 = lossless) of each pixel-coder level above the "
        "transform's, high to low; 'none' for no such levels (default 44,33,24,18,14)",
    )
    tr.add_argument(
        "--init",
        type=Path,
        metavar="MODEL",
        help="start from this model file's parameters (fine-tune)",
    )
    tr.add_argument(
        "--synthesis-width",
        type=_width,
        metavar="N",
        help="--kind conv: channels of the synthesis (the "
        "decoder; default as the model started from, or 32); a wider one grown from a narrower model "
        "starts as the same function",
    )
    tr.add_argument(
        "--seed", type=int, help="seed of initialization, shuffling and noise (default 0)"
    )
    tr.add_argument(
        "--lossless",
        action="store_true",
        help="auto, tile, conv: also learn a lossless coder "
        "(aecodec --lossless, --max-error K) on the same images",
    )
    tr.add_argument(
        "--leaves",
        type=_leaves,
        default=1024,
        help="lossless coder: leaves of its context tree, "
        "each a table (2 to 16,384, what a model file may hold; default 1024)",
    )
    tr.add_argument(
        "--depth",
        type=int,
        help="lossless coder: bits per sample it codes (default: the data's, 8 or 16)",
    )
    tr.add_argument("-q", "--quiet", action="store_true")
    tr.set_defaults(func=_train)

    for name, helptext in (
        ("embed", "a 2-D map of images: map.png and map.npy (N, 2) with --model M.aecf"),
        ("denoise", "images through a denoising autoencoder: CLEAN.npy and CLEAN.png (a preview)"),
        ("sample", "new images from a variational autoencoder: OUT.png and OUT.npy"),
    ):
        f = sub.add_parser(name, help=helptext)
        if name != "sample":
            f.add_argument(
                "data",
                type=Path,
                metavar="DATA",
                help="images: a folder, an image, .npy, .npz or IDX",
            )
        else:
            f.add_argument(
                "--n",
                type=_sample_count,
                default=64,
                help=f"how many, 1 to {MAX_SAMPLES:,} (default 64): the array and the "
                "picture hold them all",
            )
            f.add_argument(
                "--seed",
                type=_seed,
                default=0,
                help="the draw's seed, a whole number from 0 (default 0)",
            )
        f.add_argument(
            "--model",
            type=Path,
            help="an autoencoder file (aecodec train --kind ...); default: the bundled "
            f"Fashion-MNIST {dict(embed='2-D map', denoise='denoiser', sample='VAE')[name]}",
        )
        f.add_argument(
            "--out",
            type=Path,
            required=True,
            help="the picture to write (.png); the array goes beside it (.npy)",
        )
        f.add_argument(
            "-f", "--force", action="store_true", help="overwrite --out and the file beside it"
        )
        if name == "embed":
            f.add_argument(
                "--labels",
                type=Path,
                help="a .npy or IDX of one label per image: the map's colours",
            )
        f.set_defaults(func=_family_command)
    f = sub.add_parser(
        "score", help="anomaly scores of images, a threshold and a flag each: OUT.csv and OUT.png"
    )
    f.add_argument(
        "data", type=Path, metavar="DATA", help="images: a folder, an image, .npy, .npz or IDX"
    )
    f.add_argument(
        "--model",
        type=Path,
        help="an anomaly scorer (aecodec train --kind variational --decoder logistic); "
        "default: the bundled Fashion-MNIST one",
    )
    f.add_argument(
        "--percentile",
        type=float,
        default=99.0,
        help="flag images scoring above this percentile of the "
        "model's training images (default 99)",
    )
    f.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the histogram to write (.png); the scores go beside it (.csv)",
    )
    f.add_argument(
        "-f", "--force", action="store_true", help="overwrite --out and the file beside it"
    )
    f.set_defaults(func=_score)

    # Listed for --help; its options are its own (see _bench): it runs before this parser.
    sub.add_parser(
        "bench",
        add_help=False,
        help="size-vs-quality report against other codecs (aecodec bench -h)",
    )
    return parser


def _bench(argv: list[str]) -> int:
    """``aecodec bench ...``: the report's own parser takes every option (-h, --limit N, --out DIR, ...)."""
    from benchmarks import report

    report.main(argv)
    return 0


def _normalize(argv: list[str]) -> list[str]:
    """gzip style: no command means compress; -d means decompress; -t means test."""
    if argv and argv[0] in (*COMMANDS, "-h", "--help", "--version"):
        return argv
    if "-d" in argv or "--decompress" in argv:
        return ["decompress", *[a for a in argv if a not in ("-d", "--decompress")]]
    if "-t" in argv or "--test" in argv:
        return ["test", *[a for a in argv if a not in ("-t", "--test")]]
    return ["compress", *argv]


def main(argv=None) -> int:
    """The console script (``argv`` None: the process is aecodec's) or an in-process call with ``argv``."""
    previous = (
        signals.install()
    )  # first of all: a signal from here on unwinds cleanly, with no traceback
    logging_off = logging.root.manager.disable  # an interrupted pool turns logging off (_cmd_files)
    args = None
    try:
        words = _normalize(list(sys.argv[1:] if argv is None else argv))
        if words[0] == "bench":
            return _bench(words[1:])
        args = build_parser().parse_args(words)
        args.command_line = " ".join(["aecodec", *words])  # what a model file records as its recipe
        return args.func(args)
    except BrokenPipeError:  # the reader of our output left (| head): as a SIGPIPE death, quietly
        return 128 + 13  # (before OSError, which it is)
    except (AecodecError, OSError, UsageError) as e:  # train, bench, ...: one line, as files get
        named = isinstance(e, OSError) and e.filename is not None and e.strerror
        print(f"aecodec: error: {f'{e.filename}: {e.strerror}' if named else e}", file=sys.stderr)
        return 2 if _is_usage(e) else 1
    except KeyboardInterrupt as e:
        return getattr(e, "exit_status", 130)
    finally:
        if argv is None:
            signals.ignore_from_now()  # the outcome is decided: a late signal must not turn it into a crash
            _quiet_closed_stdout()
        else:
            signals.restore(previous)  # the caller's process: its own handlers again
            logging.disable(logging_off)  # and its own logging


def _quiet_closed_stdout() -> None:
    """If the reader of standard output went away (``aecodec info x | head -1``), let the exit
    flush go nowhere instead of printing a BrokenPipeError traceback."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
