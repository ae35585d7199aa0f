"""Files in, files out: ``compress_file`` and ``decompress_file``, and the two steps they share with
the command line, ``write_archive`` (a source read from files into an archive) and
``restore_archive`` (an archive back into the kind of file it came from).

The face over two layers: ``api`` codes images, ``codec.io`` reads and writes files; neither
imports the other's half, so the file layer never imports the API.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from codec import api
from codec.io.fileio import atomic_output
from codec.io.sinks import restore_archive
from codec.io.sources import Source, open_source


def write_archive(
    source: Source,
    fileobj,
    *,
    quality=None,
    model=None,
    batches=None,
    on_batch=None,
    pool=None,
    max_error: int | None = None,
    effort: int = 0,
) -> int:
    """Compress ``source`` (its ``batches``, if given, stand for the rest of its stream) into an
    archive on ``fileobj``, recording what restoring it needs; ``on_batch(batch)`` after each; the
    chunks coded on ``pool``'s workers where given (``parallel.DaskPool``: the same bytes);
    ``max_error`` (0: lossless) codes with the model's lossless coder; ``model`` None: the bundled
    model ``api.choose_model`` picks on the first batch; ``effort``: the encoder's (``compress``).
    Returns the count."""
    batches = iter(source.batches() if batches is None else batches)
    first = next(batches)
    if model is None:
        model = api.choose_model(first, quality=quality, max_error=max_error, depth=source.depth)
    writer = api.ArchiveWriter(
        fileobj,
        source.image_shape,
        quality=quality,
        model=model,
        batched=source.batched,
        meta={**source.meta, "count": source.count},
        pool=pool,
        max_error=max_error,
        depth=source.depth,
        effort=effort,
    )
    for batch in itertools.chain([first], batches):
        writer.write(batch)
        if on_batch is not None:
            on_batch(batch)
    writer.close()
    return writer.count


def compress_file(src, dst, *, force: bool = False, quality=None, model=None, pool=None) -> int:
    """Compress the images in ``src`` (an image file, .npy, .npz, IDX, or a folder) to ``dst``,
    recording what ``decompress_file`` and ``aecodec -d`` need to restore the same kind of file;
    returns bytes written. With ``pool`` (a ``parallel.DaskPool``) the chunks are coded on its
    workers: the same bytes.

    Raises:
        OutputIsInputError (an InputError): ``dst`` is ``src`` (even with ``force``).
        InputError: the images cannot be coded. DataError: unreadable input.
        FileExistsError: ``dst`` exists and ``force`` is false.
    """
    src, dst = Path(src), Path(dst)

    def check(shape):  # from headers, before pixels are read
        api.check_codable(shape, model=model, quality=quality)

    source = open_source(str(src), recursive=src.is_dir(), check_shape=check)
    with atomic_output(dst, force=force, inputs=[src, *source.paths]) as f:
        write_archive(source, f, quality=quality, model=model, pool=pool)
        return f.tell()


def decompress_file(src, dst, *, force: bool = False, model=None):
    """Decompress ``src`` and write it to ``dst``, whose suffix decides the format (.npy, .npz,
    image, IDX; a folder for a folder archive), as ``aecodec -d -o dst src`` does; returns the
    images (as ``decompress``).

    Raises:
        FileExistsError: ``dst`` exists and ``force`` is false.
        DataError: ``dst`` has an unknown suffix, or names one image file for several images.
        OutputIsInputError (an InputError): ``dst`` is ``src`` (even with ``force``).
        InputError: ``dst`` is a folder that must not be restored into ('.', one holding ``src``).
        FormatError, ModelMismatchError: as ``decompress``.
    """
    src, dst = Path(src), Path(dst)
    parts = []
    with open(src, "rb") as f:
        reader = api.ArchiveReader(f, model=model)
        restore_archive(reader, dst, force=force, archive=src, on_batch=parts.append)
    return api.joined(parts, reader.header)
