"""What a level is (``Level``) and the registry of level kinds (``register``, ``kinds``).

A *level* is one way of coding images at one quality, an object with one narrative, whatever its
kind (``tile.py``, ``pixel.py``, ``conv.py``, ``lossless.py``, or a plug-in):

- ``encode(images, min_bytes=...) -> bytes``: one stream for a chunk of images (N, H, W[, C]),
  padded to at least ``min_bytes`` (the container's floor of bytes per coded pixel);
- ``decode(data, n, shape, version=...) -> images``: the chunk back, from a stream of container
  format ``version`` (FormatError if the stream is damaged or has data left over);
- ``ideal_bits(images) -> float``: the level's own estimate of the bits its stream spends on the
  images, before the coder's flush and framing (a few bytes): a measurement, never used to code,
  which may be slow. Pixel and conv levels count exactly what their
  integer tables assign; tile levels what their continuous prior assigns (so the coded size
  over it measures what rounding to tables costs); the lossless coder what its adapting tables
  assign, raw bits at one bit each;
- ``coded_pixels(n, shape)``: the positions coded for ``n`` images of ``shape``, padding
  included: the work and memory of decoding the chunk at once, at most ``max_coded_pixels``;
- ``work_per_pixel``: what the container's floor of bytes per coded pixel counts each coded
  pixel as (1; more for a convolutional model costlier than the floor is sized for);
- ``max_image_values``: the values one image may have (what the encoder holds at once);
- ``chunk_images``: images per chunk (None: the container's default, ``api.CHUNK_IMAGES``) and
  ``max_chunk_values``: the values a chunk may hold;
- optionally ``fits(shape) -> bool``: whether the quality scale may name the level for images of
  ``shape`` (H, W[, C]): a level that codes other shapes far below its measured quality (the tile
  transform, away from its native size) says no; without it, every shape.

A *kind* says how its levels are stored in a model file and read back. It registers itself once,
in its own module, with one line::

    registry.register(registry.Kind("pixel", fields=(...,), read=read_section))

Its ``fields`` are the top-level fields of the model file's map that hold its section (how
each is written from what ``modelfile.dumps`` is given, from which model format on, whether
every file of that format has it); ``read(body, source)`` turns a checked body into a
``Section``: what the kind loaded, shared by its levels, and its quality levels in its own order
(a stored ladder names them as [kind, index]). A model holds the levels of every registered kind
its file has a section for, unless a ladder says otherwise in the kinds' order: by the format
that added their first field, then by name (tile, pixel, conv, lossless, then plug-ins), whatever
order their modules were imported in. The container's header names a level by number, quality
1 and up; quality 0, with a bound and a depth, names the kind that codes within a bound
(``bounded``: the lossless coder), so at most one kind may offer it. A kind that is not built in
is a new optional field of the current format: a file that has it is refused (unknown field)
where the kind is not registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from bitstream.container import MAX_CHUNK_PIXELS
from bitstream.errors import FormatError
from codec.levels.planes import WHOLE_CHUNK_PIXELS, WHOLE_IMAGE_VALUES

# The container's own fields (``modelfile``): no kind may hold a section under these names.
CONTAINER_FIELDS = frozenset({"format", "name", "meta", "default", "ladder", "fingerprint"})


@runtime_checkable
class Level(Protocol):
    """One quality level (see the module's docstring for the meaning of each member)."""

    kind: str
    max_coded_pixels: int
    max_image_values: int
    max_chunk_values: int
    chunk_images: int | None
    work_per_pixel: float

    def coded_pixels(self, n: int, shape) -> int: ...

    def encode(self, images: np.ndarray, *, min_bytes: int = 0) -> bytes: ...

    def decode(self, data: bytes, n: int, shape, *, version: int) -> np.ndarray: ...

    def ideal_bits(self, images: np.ndarray) -> float: ...


class WholeChunkLevel:
    """The limits most levels share (tile, pixel): a chunk decoded at once, one coded value per
    pixel, the container's chunk size. A kind with other limits sets its own."""

    max_coded_pixels = WHOLE_CHUNK_PIXELS  # a chunk is decoded at once: its memory bounded here
    work_per_pixel = 1  # what the floor of bytes per coded pixel counts each one as (conv.py)
    max_image_values = WHOLE_IMAGE_VALUES
    chunk_images = None  # the container's default
    max_chunk_values = MAX_CHUNK_PIXELS


def _same(value):
    return value


@dataclass(frozen=True)
class Field:
    """A top-level field of the model file that holds (part of) a kind's section.

    ``since``: the first model format that has it. ``required``: every file of a format from
    ``since`` on has it (``dumps`` writes ``empty`` for a model without the kind); otherwise only
    files of models with the kind do. ``nullable_since``: from this format on it may be nil (a
    model without the kind). ``stored_type``: the type checked before ``read`` (None: ``read``
    checks it). ``store``: what ``modelfile.dumps`` is given -> the stored form.
    """

    name: str
    since: int
    required: bool = False
    empty: Any = None
    nullable_since: int | None = None
    stored_type: type | None = None
    store: Callable[[Any], Any] = _same


class Section(NamedTuple):
    """What a kind read from a model file: ``part``, shared by its levels, and the levels."""

    part: Any
    levels: tuple


@dataclass(frozen=True)
class Kind:
    """A level kind: its name, its fields, how its section is read; ``bounded(part, max_error,
    depth, model name)``, for the one kind that codes within a bound (quality 0 in a header): its
    level at that bound and depth (InputError when the part cannot code them)."""

    name: str
    fields: tuple[Field, ...]
    read: Callable[[dict, str], Section | None]
    bounded: Callable[[Any, int, int, str], Level] | None = None


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add ``kind`` (ValueError: no fields, its name or a field taken, a second bounded kind)."""
    taken = {f.name for k in _KINDS.values() for f in k.fields} | CONTAINER_FIELDS
    if not kind.fields or kind.name in _KINDS or any(f.name in taken for f in kind.fields):
        raise ValueError(f"level kind {kind.name!r}: its name or one of its fields is taken")
    if kind.bounded is not None and any(k.bounded is not None for k in _KINDS.values()):
        raise ValueError(f"level kind {kind.name!r}: another kind already codes within a bound")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (a test's plug-in, once the test is done)."""
    del _KINDS[name]


def kinds() -> tuple[Kind, ...]:
    """The registered kinds, by the format that added their first field, then by name."""
    return tuple(sorted(_KINDS.values(), key=lambda k: (min(f.since for f in k.fields), k.name)))


def fields() -> tuple[Field, ...]:
    """Every registered kind's fields, kind by kind (``kinds``' order)."""
    return tuple(f for kind in kinds() for f in kind.fields)


def check_fields(body: dict, what: str) -> None:
    """Refuse a body whose sections do not fit its format: a field no registered kind holds
    (or not yet in that format), a required one missing, one of the wrong type (FormatError)."""
    version = body["format"]
    known = {f.name: f for f in fields() if f.since <= version}
    present = set(body) - CONTAINER_FIELDS
    required = {name for name, f in known.items() if f.required}
    if not required <= present <= set(known):
        raise FormatError(f"{what}: model file is missing fields or has unknown ones")
    for name in sorted(present, key=list(known).index):
        f, value = known[name], body[name]
        nullable = f.nullable_since is not None and version >= f.nullable_since
        if f.stored_type is None or (value is None and nullable):
            continue
        if not isinstance(value, f.stored_type):
            raise FormatError(
                f"{what}: model field {name} is a {type(value).__name__}, "
                f"not a {f.stored_type.__name__}"
            )
