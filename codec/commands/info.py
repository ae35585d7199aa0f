"""``aecodec info``: what a compressed file's header says, and the model that made it by name."""

from __future__ import annotations

import contextlib
import sys

from bitstream import container
from bitstream.header import FINGERPRINT_BYTES
from codec.commands.outputs import level_name, print_json, report
from codec.errors import AecodecError, FormatError
from codec.levels import modelfile
from codec.pretrained import DEEP_MODEL, DEFAULT_MODEL, PHOTO_MODEL


class _CountingReader:
    """A binary file read through, counting the bytes (a pipe has no size to ask for)."""

    def __init__(self, raw):
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        b = self.raw.read(size)
        self.count += len(b)
        return b


def _header_info(path: str, names: dict | None = None) -> dict:
    """The header and chunk totals of a file; ``names`` maps fingerprint prefixes to model names."""
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
    """Fingerprint prefix -> name, for the models ``info`` can name: the bundled ones and
    ``--model``'s.

    Reads the model files without loading the networks. A damaged bundled model only costs
    its name; a ``--model`` that cannot be read is an error.
    """

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
        # its files, older ones too
        for fingerprint in [
            body["fingerprint"],
            *body["meta"].get("same_levels_as", []),
            *body["meta"].get("same_model_as", []),
        ]:
            names[fingerprint[: 2 * FINGERPRINT_BYTES]] = body["name"]
    return names


def info(args) -> int:
    """``aecodec info FILE...``: each file's header, as text or (--json) one JSON object each."""
    try:
        names = _model_names(args)
    except (OSError, AecodecError) as e:
        return report(args.model, e)
    status = 0
    for path in args.files:
        try:
            found = _header_info(path, names)
        except Exception as e:  # noqa: BLE001 - reported per file, like gzip
            status = max(status, report(path, e))
            continue
        if args.json:
            print_json(found)
        else:
            print(_described(path, found))
    return status


def _stored_level(number: int, max_error: int) -> str:
    """The level a header names: the model's level N (what a scale quality chose when the file
    was written), or the lossless coder's bound."""
    return f"the model's level {number}" if number else level_name(0, max_error)


def _described(path: str, info: dict) -> str:
    """A file's header as ``aecodec info`` prints it."""
    meta, model = info["meta"], info["model"]
    shown = (
        f"{model['name']} ({model['fingerprint']})"
        if model["name"]
        else f"{model['fingerprint']} (not the bundled model; name its file with --model)"
    )
    sizes = info["image_shapes"]
    shapes = ", ".join("x".join(map(str, s)) for s in sizes[:4])
    more = f" and {len(sizes) - 4} more sizes" if len(sizes) > 4 else ""
    depth = f" ({info['depth']}-bit)" if info["depth"] not in (8, 16) else ""
    return (
        f"{path}:\n  images       {info['images']} of {shapes}{more} {info['dtype']}{depth}"
        f"{' (one image)' if not info['batched'] else ''}\n"
        f"  size         {info['bytes']} bytes ({info['bytes_per_image']:.1f} per image), "
        f"payload {info['payload_bytes']} in {info['chunks']} chunk(s)\n"
        f"  model        {shown}\n"
        f"  level        {_stored_level(info['quality'], info['max_error'])}\n"
        f"  coder        {info['coder']['name']} {info['coder']['version']}\n"
        f"  original     {meta.get('kind', '?')} {meta.get('name', '')}"
    )
