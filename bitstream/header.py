"""The header record of an ``.aec`` file: its fields, the limits on their values, their checks,
and the array each format version stores them as (``bitstream.container`` describes the file).
"""

from __future__ import annotations

from bitstream.errors import FormatError, LimitError, show

MAX_IMAGE_PIXELS = 1 << 29  # one image: 16384 x 16384 grey, 100+ megapixels in colour
MAX_DIM = 1 << 16
MAX_CHANNELS = 4
MAX_QUALITY = 255
LOSSLESS_QUALITY = 0  # the quality of a file coded by the model's lossless coder (format 6)
MAX_DEPTH = 16
MAX_ERROR = 32
FINGERPRINT_BYTES = 8  # of the model's SHA-256: identifies a model, not a security boundary
MAX_META_DEPTH = 8
# What version 2 implies instead of storing. The coder's name and version are written out
# here (not imported) on purpose: a new coder is a new container version (a test checks that
# bitstream.coder still matches).
IMPLIED = {"coder": {"name": "constriction-ans", "version": "0.5"}, "prior": "clusters"}
# the header array, in order
WIRE_FIELDS = (
    "model",
    "quality",
    "image_shape",
    "batched",
    "meta",
    "depth",
    "max_error",
)
# the in-memory header dict (dtype: from the depth)
HEADER_FIELDS = (
    *WIRE_FIELDS,
    *IMPLIED,
    "dtype",
)


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_meta(meta) -> None:
    """Plain msgpack values only (nil, bool, int, float, str, bin, arrays, maps with str keys),
    bounded depth."""
    stack = [(meta, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_META_DEPTH:
            raise FormatError(f"header meta is nested deeper than {MAX_META_DEPTH} levels")
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise FormatError("header meta has a map key that is not a string")
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)
        elif value is not None and not isinstance(value, (bool, int, float, str, bytes)):
            raise FormatError(f"header meta holds a {type(value).__name__}, not a plain value")
        elif is_int(value) and not -(1 << 63) <= value < 1 << 64:
            raise FormatError("header meta holds an integer msgpack cannot store")


def check_header(header: dict) -> dict:
    """Validate an in-memory header: fields, types, ranges and the sizes they claim; returns it.

    Raises:
        FormatError: a field is missing, unknown, of the wrong type or out of range, or an
            implied field (coder, dtype, prior) differs from what this format version implies.
        LimitError: the image shape exceeds aecodec's limits.
    """
    if not isinstance(header, dict):
        raise FormatError("header is not a map")
    missing = set(HEADER_FIELDS) - set(header)
    unknown = set(header) - set(HEADER_FIELDS)
    if missing or unknown:
        raise FormatError(
            f"header has missing fields {sorted(missing)} or unknown fields "
            f"{sorted(map(str, unknown))}"
        )
    for name, value in IMPLIED.items():
        if header[name] != value:
            raise FormatError(
                f"header {name} {show(header[name])} is not what the format implies ({show(value)})"
            )
    _check_model(header["model"])
    quality = header["quality"]
    if not is_int(quality) or not LOSSLESS_QUALITY <= quality <= MAX_QUALITY:
        raise FormatError(
            f"header quality {show(quality)} is not an integer from {LOSSLESS_QUALITY} to "
            f"{MAX_QUALITY}"
        )
    depth, max_error = header["depth"], header["max_error"]
    if not is_int(depth) or not 1 <= depth <= MAX_DEPTH:
        raise FormatError(f"header depth {show(depth)} is not an integer from 1 to {MAX_DEPTH}")
    if (
        not is_int(max_error)
        or not 0 <= max_error <= MAX_ERROR
        or (max_error and quality != LOSSLESS_QUALITY)
    ):
        raise FormatError(
            f"header max_error {show(max_error)} is not 0, "
            f"or 1 to {MAX_ERROR} for the lossless coder"
        )
    if depth != 8 and quality != LOSSLESS_QUALITY:
        raise FormatError(
            f"header depth {depth} with a lossy level: only the lossless coder codes other depths"
        )
    if header["dtype"] != dtype_of(depth):
        raise FormatError(
            f"header dtype {show(header['dtype'])} is not {dtype_of(depth)} for depth {depth}"
        )
    check_shape(header["image_shape"], "header image_shape")
    if not isinstance(header["batched"], bool):
        raise FormatError(f"header batched {show(header['batched'])} is not a bool")
    if not isinstance(header["meta"], dict):
        raise FormatError(f"header meta should be a map, not {type(header['meta']).__name__}")
    _check_meta(header["meta"])
    return header


def _check_model(model) -> None:
    """The model field: {"fingerprint": the hex of the first ``FINGERPRINT_BYTES`` of its hash}."""
    fingerprint = (
        model.get("fingerprint")
        if isinstance(model, dict) and set(model) == {"fingerprint"}
        else None
    )
    if (
        not isinstance(fingerprint, str)
        or len(fingerprint) != 2 * FINGERPRINT_BYTES
        or fingerprint.strip("0123456789abcdef")
    ):
        raise FormatError(
            f"header model {show(model)} is not "
            f"{{'fingerprint': {2 * FINGERPRINT_BYTES} lowercase hex digits}}"
        )


def check_shape(shape, what: str) -> None:
    if not isinstance(shape, list) or len(shape) not in (2, 3) or not all(is_int(d) for d in shape):
        raise FormatError(f"{what} {show(shape)} is not [H, W] or [H, W, C]")
    if any(d < 1 or d > MAX_DIM for d in shape) or (len(shape) == 3 and shape[2] > MAX_CHANNELS):
        raise LimitError(f"{what} {show(shape)} is out of range")
    if image_pixels(shape) > MAX_IMAGE_PIXELS:
        raise LimitError(
            f"{what} {show(shape)} claims more than {MAX_IMAGE_PIXELS} pixels per image"
        )


def image_pixels(shape) -> int:
    return shape[0] * shape[1] * (shape[2] if len(shape) == 3 else 1)


# batched, meta, depth, max_error: omitted from the end of a header record when they hold these
_DEFAULTS = (
    False,
    {},
    8,
    0,
)


def dtype_of(depth: int) -> str:
    """The pixel type of ``depth``-bit samples."""
    return "uint8" if depth <= 8 else "uint16"


def to_wire(header: dict, version: int) -> list:
    """The header record's array for format ``version``, trailing defaults omitted (from 3 on)."""
    fields = [
        bytes.fromhex(header["model"]["fingerprint"]),
        *(header[name] for name in WIRE_FIELDS[1:]),
    ]
    while version >= 3 and len(fields) > 3 and _same(fields[-1], _DEFAULTS[len(fields) - 4]):
        fields.pop()
    return fields


def _sizes(version: int) -> tuple[int, ...]:
    """The lengths a header record may have in ``version``."""
    return (3, 4, 5, 6, 7) if version >= 6 else (3, 4, 5) if version >= 3 else (5,)


def from_wire(fields, version: int) -> dict:
    """The in-memory header (every field, implied ones filled in) of a format-``version`` record,
    checked (``check_header``)."""
    sizes = _sizes(version)
    if not isinstance(fields, list) or len(fields) not in sizes:
        raise FormatError(
            "header record is not an array of "
            f"{' to '.join(map(str, sizes[:: len(sizes) - 1 or 1]))} fields"
        )
    if version >= 3 and len(fields) > 3 and _same(fields[-1], _DEFAULTS[len(fields) - 4]):
        raise FormatError(
            f"header record holds a default it should omit ({WIRE_FIELDS[len(fields) - 1]} "
            f"{show(fields[-1])})"
        )
    fields = [*fields, *_DEFAULTS[len(fields) - 3 :]]
    fingerprint = fields[0]
    if not isinstance(fingerprint, bytes) or len(fingerprint) != FINGERPRINT_BYTES:
        raise FormatError(f"header model fingerprint is not {FINGERPRINT_BYTES} bytes")
    header = dict(zip(WIRE_FIELDS, fields, strict=True))
    header["model"] = {"fingerprint": fingerprint.hex()}
    header.update(
        (name, dict(value) if isinstance(value, dict) else value) for name, value in IMPLIED.items()
    )
    header["dtype"] = dtype_of(header["depth"]) if is_int(header["depth"]) else None
    if version < 6 and header["quality"] == LOSSLESS_QUALITY:
        raise FormatError(f"header quality 0 (the lossless coder) in a format-{version} file")
    return check_header(header)


def _same(value, default) -> bool:
    """``value`` is ``default`` in kind and value (msgpack's False is not its 0)."""
    return type(value) is type(default) and value == default
