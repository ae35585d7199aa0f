"""The ``aecodec`` command line, with gzip's habits. It parses arguments, dispatches to the
commands (``codec.commands``) and reports the errors that end one (a file's own error is reported
by ``codec.commands.outputs.report``, and the next file is still processed).

    aecodec [compress] [-c] [-f] [-o OUT] [--quality Q] FILE...   FILE -> FILE.aec
    aecodec decompress FILE.aec...  (or aecodec -d)                FILE.aec -> FILE
    aecodec info FILE.aec [--json];  aecodec test FILE.aec...;  aecodec train ...

No FILE, or '-', reads standard input and writes standard output. Inputs are kept
(unlike gzip) unless --rm is given. Errors print ``aecodec: error: FILE: message`` and the
exit status is 1 for bad input, 2 for bad usage; the other files are still processed.

The commands are imported when dispatched to, not at the top: ``codec.__main__`` installs the
signal handlers before this module loads, and no numerical library may load before them
(``import codec.cli`` takes 0.03 s; the file commands' modules 0.17 s more: numpy, the coders;
``train``'s 1.4 s more: JAX, so its options, whose defaults are read from the config classes,
are only built for ``aecodec train``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import metadata
from pathlib import Path

from codec import signals
from codec.errors import USAGE_ERRORS, AecodecError

# the encoder's efforts: codec.checks.EFFORTS, not imported (it loads numpy before the signal
# handlers); a test holds the two equal
EFFORTS = (0, 1, 2, 3)

COMMANDS = (
    "compress",
    "decompress",
    "info",
    "test",
    "train",
    "embed",
    "denoise",
    "sample",
    "score",
    "compare",
)
# sample --n: the images, the prior's draws and the picture (n/8 rows of images) are all in memory
# at once; 10,000 28x28 images are 8 MB and a 224 x 35,000 picture
MAX_SAMPLES = 10_000
# codec.family.KINDS, and plain with --arch conv (named here: the family loads JAX)
FAMILY_KINDS = (
    "plain",
    "linear",
    "denoising",
    "sparse",
    "contractive",
    "variational",
    "convolutional",
)


# Dispatch: each command's module, imported as it runs (see the module's docstring).


def _compress(args) -> int:
    from codec.commands import files

    return files.run(args, files.compress_one)


def _decompress(args) -> int:
    from codec.commands import files

    return files.run(args, files.decompress_one)


def _test(args) -> int:
    from codec.commands import files

    return files.run(args, files.test_one)


def _info(args) -> int:
    from codec.commands import info

    return info.info(args)


def _train(args) -> int:
    from codec.commands import train

    return train.train(args)


def _picture(args) -> int:
    from codec.commands import family

    return family.picture(args)


def _compare(args) -> int:
    from codec.commands import compare

    return compare.compare(args)


def _score(args) -> int:
    from codec.commands import family

    return family.score(args)


# Argument types: refused as they are parsed, with argparse's message and exit status 2.


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


def _scheduler(text: str) -> str:
    """--scheduler's address: tcp://HOST:PORT or HOST:PORT, else refused before any connection."""
    from codec import parallel  # asyncio, sockets: 0.08 s that only --scheduler needs

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


# The parser: one function per command's options.


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; ``command``: the one being run, when known (the options of
    ``train``, whose defaults are read from the training configs, are built only for it)."""
    parser = argparse.ArgumentParser(
        prog="aecodec",
        description="Learned compression for image datasets, lossy and lossless, "
        "used like gzip. Inputs are kept unless --rm is given.",
    )
    parser.add_argument("--version", action="version", version=f"aecodec {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "compress", help="FILE -> FILE.aec (images, .npy/.npz, IDX, folders with -r)"
    )
    _file_options(c)
    _compress_options(c)
    c.set_defaults(func=_compress)
    d = sub.add_parser("decompress", help="FILE.aec -> FILE, in its original format")
    _file_options(d)
    _decompress_options(d)
    d.set_defaults(func=_decompress)
    _info_parser(sub)
    _test_parser(sub)
    tr = sub.add_parser("train", help="train a codec model (Fashion-MNIST train split by default)")
    if command in (None, "train"):  # loads JAX (see the module's docstring)
        from codec.commands import train

        train.add_options(tr, FAMILY_KINDS)
    tr.set_defaults(func=_train)
    _picture_parsers(sub)
    _score_parser(sub)
    _compare_parser(sub)
    return parser


def _version() -> str:
    try:
        return metadata.version("aecodec")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _file_options(p: argparse.ArgumentParser) -> None:
    """What compress and decompress share: gzip's options."""
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
        "Fashion-MNIST's for 28x28 grey items, the photo model otherwise; decompressing, the one "
        "the file names)",
    )


def _compress_options(p: argparse.ArgumentParser) -> None:
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
        help="1 (a small preview), 2-13 (about 25-47 dB, 21 + 2Q), 14 near-lossless, 15 lossless: "
        "the same on every model (default 6, about 33 dB; docs/cli.md has the scale)",
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
    p.add_argument(
        "--effort",
        type=int,
        choices=EFFORTS,
        default=0,
        help="encoder effort, 0 (default, fastest) to 3: the convolutional levels refine each "
        "image's latents against their decoder (files no larger; the same decoder)",
    )
    _cluster_options(p)


def _cluster_options(p: argparse.ArgumentParser) -> None:
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


def _decompress_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-r", "--recursive", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--images",
        type=_images,
        metavar="A:B",
        help="restore only images A to B-1 (counted from 0; negative from the end), "
        "decoding only the chunks that hold them; written as the kind of file the "
        "whole archive restores to, as NAME.A-LAST (or where -o/-c says)",
    )


def _info_parser(sub) -> None:
    i = sub.add_parser("info", help="print a compressed file's header")
    i.add_argument(
        "files", nargs="+", metavar="FILE", help="files to describe; '-' reads standard input"
    )
    i.add_argument("--json", action="store_true", help="one JSON object per file")
    i.add_argument(
        "--model",
        help="a model file to name, besides the bundled one, when a file was made with it",
    )
    i.set_defaults(func=_info)


def _test_parser(sub) -> None:
    t = sub.add_parser(
        "test", help="decode every image without writing: checksums, limits and streams"
    )
    t.add_argument("files", nargs="*", metavar="FILE")
    t.add_argument("--model", help="model file (default: the bundled model the file names)")
    t.add_argument("-v", "--verbose", action="store_true")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=_test)


def _picture_parsers(sub) -> None:
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
            _sample_options(f)
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
        f.set_defaults(func=_picture)


def _sample_options(f: argparse.ArgumentParser) -> None:
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


def _score_parser(sub) -> None:
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


def _qualities(text: str) -> tuple[int, ...]:
    try:
        qualities = tuple(int(q) for q in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of qualities like 2,6,10: {text!r}") from None
    if not qualities or not all(1 <= q <= 13 for q in qualities):
        raise argparse.ArgumentTypeError(f"the lossy qualities are 1 to 13, not {text!r}")
    return qualities


def _side(text: str) -> int:
    if not text.isdigit() or not 16 <= int(text) <= 4096:
        raise argparse.ArgumentTypeError(f"a side from 16 to 4096 pixels, not {text!r}")
    return int(text)


def _compare_parser(sub) -> None:
    c = sub.add_parser(
        "compare",
        help="an HTML page: aecodec beside WebP, AVIF and JPEG XL at the same bytes, zoomable",
    )
    c.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="8-bit image files, or folders of them",
    )
    c.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        help="the page to write (.html; '-': standard output)",
    )
    c.add_argument(
        "--model", type=Path, help="a model file (default: the bundled one that suits each image)"
    )
    c.add_argument(
        "--qualities",
        type=_qualities,
        help="the aecodec levels shown, e.g. 3,6,9 (default 2,4,6,8,10,12); the curve has them all",
    )
    c.add_argument(
        "--max-side",
        type=_side,
        default=1024,
        help="cut a larger image to its central N x N (default 1024; 16 to 4096)",
    )
    c.add_argument("-f", "--force", action="store_true", help="overwrite --out")
    c.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    c.set_defaults(func=_compare)


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
    """The console script (``argv`` None: the process is aecodec's) or an in-process call with
    ``argv``."""
    logging_off = logging.root.manager.disable  # an interrupted pool turns logging off (files.run)
    previous = None
    try:
        # first of all, inside the try: a signal from here on (even one that lands while the
        # handlers are being installed, ours already from codec.__main__) unwinds cleanly
        previous = signals.install()
        words = _normalize(list(sys.argv[1:] if argv is None else argv))
        if words[:1] == ["train"]:
            _cores_as_devices()
        args = build_parser(words[0]).parse_args(words)
        args.command_line = " ".join(["aecodec", *words])  # what a model file records as its recipe
        return args.func(args)
    except BrokenPipeError:  # the reader of our output left (| head): as a SIGPIPE death, quietly
        return 128 + 13  # (before OSError, which it is)
    except (AecodecError, OSError) as e:  # train, embed, ...: one line, as files get
        named = isinstance(e, OSError) and e.filename is not None and e.strerror
        print(f"aecodec: error: {f'{e.filename}: {e.strerror}' if named else e}", file=sys.stderr)
        return 2 if isinstance(e, USAGE_ERRORS) else 1
    except KeyboardInterrupt as e:
        return getattr(e, "exit_status", 130)
    finally:
        if argv is None:
            # the outcome is decided: a late signal must not turn it into a crash
            signals.ignore_from_now()
            _quiet_closed_stdout()
        elif previous is not None:
            signals.restore(previous)  # the caller's process: its own handlers again
            logging.disable(logging_off)  # and its own logging


def _cores_as_devices() -> None:
    """Before JAX starts (not at all once it has): let XLA see this machine's cores as devices,
    so that the convolutional kind trains data-parallel on them (``conv_model.train``: 1.3x the
    steps per second on 2 cores, benchmarks.train_speed). XLA_FLAGS set by the user win."""
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in os.environ.get(
        "XLA_FLAGS", ""
    ):
        return
    cores = min(len(os.sched_getaffinity(0)), 8)
    if cores > 1:
        flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={cores}"
        os.environ["XLA_FLAGS"] = flags.strip()


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
