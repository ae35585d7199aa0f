"""A loaded model: its levels, its default level, its identity, and the rule "header -> level".

What a level is, and how each kind stores its section of the model file, is ``registry``'s
narrative; each kind lives in its own module (``tile.py``, ``pixel.py``, ``conv.py``,
``lossless.py``, imported here so that a model file's built-in sections are always known) and a
plug-in kind registers itself the same way. A ``Model`` asks every registered kind to read its
section of the file, keeps the levels (numbered 1 and up: a stored ladder's order, else the
kinds' order) and the kind that codes within a bound (the lossless coder), and is the one place
that maps a file's header to its level (``level_of``).
"""

from __future__ import annotations

import functools

import numpy as np

from codec.errors import FormatError, InputError
from codec.levels import alpha, conv, lossless, pixel, registry, scale, tile, wavelet

BUILT_IN = (tile, pixel, conv, lossless, wavelet)  # each registered itself on import


class Model:
    """A loaded, frozen codec model (``load_model`` builds one from a model file)."""

    def __init__(self, body: dict, *, source: str = "model"):
        self.name = body["name"]
        self.fingerprint = body["fingerprint"]
        self.meta = body["meta"]
        self.source = source
        registry.check_fields(body, source)
        self.parts, by_kind, self._bounded = {}, {}, None
        for kind in registry.kinds():
            section = kind.read(body, source)
            if section is None:
                continue
            self.parts[kind.name], by_kind[kind.name] = section.part, section.levels
            if kind.bounded is not None:
                self._bounded = kind
        if "ladder" in body:
            self.levels = tuple(_ladder(body["ladder"], by_kind, source))
        else:
            self.levels = tuple(level for levels in by_kind.values() for level in levels)
        if not all(isinstance(level, registry.Level) for level in self.levels):
            raise TypeError(f"{source}: a level kind made levels without the Level protocol")
        if not self.levels and self._bounded is None:
            raise FormatError(f"{source}: the model has no quality levels and no lossless coder")
        self.scale_rows = scale.read_rows(self.meta, len(self.levels), source)
        # a model of the lossless coder alone has no lossy levels: its default is lossless
        self.default_quality = scale.DEFAULT if self.levels else scale.LOSSLESS

    def part(self, kind: str):
        """What kind ``kind`` loaded, shared by its levels (the tile and conv transforms, the
        lossless coder, ...), or None if the model has none of it."""
        return self.parts.get(kind)

    @property
    def qualities(self) -> tuple[int, ...]:
        """The quality scale (``scale.QUALITIES``): every model serves every quality."""
        return scale.QUALITIES

    def check_quality(self, quality) -> int:
        """``quality`` as an int on the scale (None: the model's default).

        Raises:
            InputError: not one of ``scale.QUALITIES``.
        """
        return self.default_quality if quality is None else scale.check_quality(quality)

    @property
    def has_bounds(self) -> bool:
        """Whether the model codes within a bound (its lossless coder): qualities 14 and 15."""
        return self._bounded is not None

    def fields_for(self, quality, shape=None) -> dict:
        """The header fields (``quality``: the level's number, or 0 and ``max_error`` for the
        lossless coder) of the level that serves scale ``quality`` (None: the default) for images
        of ``shape`` (H, W[, C]; None: the model's own size), by ``scale``'s rule.

        Raises:
            InputError: an unknown quality; no level of the model codes such images.
        """
        quality = self.check_quality(quality)
        if quality in (scale.LOSSLESS, scale.NEAR_LOSSLESS):
            return {"quality": 0, "max_error": 0 if quality == scale.LOSSLESS else 1}
        rows = self._candidates(shape)
        if not rows:
            raise InputError(
                f"model {self.name!r} has no level for images of shape {tuple(shape)} "
                "(use the bundled models, or train one on such images)"
            )
        if self.scale_rows is None and self.levels and "level" in rows[0]:
            return scale.header_fields(scale.by_rank(len(self.levels), quality))
        return scale.header_fields(scale.pick(rows, quality))

    def named_qualities(self, shape=None, *, lossy: bool = False) -> list[int]:
        """The lowest quality naming each distinct level for images of ``shape`` (qualities that
        name the same level code the same bytes), low to high; ``lossy``: 1-13 only. A model
        without a lossless coder stops below quality 14."""
        named: dict[tuple, int] = {}
        top = scale.NEAR_LOSSLESS - 1 if lossy else scale.QUALITIES[-1]
        for q in scale.QUALITIES[:top]:
            fields = self.fields_for(q, shape)
            if fields["quality"] or self.has_bounds:
                named.setdefault(tuple(fields.values()), q)
        return list(named.values())

    def measured(self, quality, shape=None) -> dict | None:
        """The stored measurement (``scale_rows``) of the level ``quality`` names, or None."""
        fields = self.fields_for(quality, shape)
        return next(
            (
                r
                for r in self.scale_rows or ()
                if r.get("level", 0) == fields["quality"]
                and r.get("max_error", 0) == fields["max_error"]
            ),
            None,
        )

    def _candidates(self, shape) -> list[dict]:
        """The measured rows whose level codes images of ``shape`` as it was measured: a tile
        level only its own size; without stored rows, every level (then the lossless coder's
        bounds, at the PSNR a uniform error would give)."""
        if self.scale_rows is None:
            if self.levels:
                return [{"level": n} for n in range(1, len(self.levels) + 1)]
            rows = _nominal_bounds() if self._bounded is not None else []
        else:
            rows = (
                self.scale_rows
                if self._bounded is not None
                else [r for r in self.scale_rows if "level" in r]
            )
        return [r for r in rows if "max_error" in r or fits(self.levels[r["level"] - 1], shape)]

    def level_of(self, header, *, asked: bool = False) -> registry.Level:
        """The level a file's header names: the one rule of every reader and writer.

        ``header`` holds ``quality``, ``max_error`` and ``depth`` (a container header, or the
        fields a writer is about to write). Quality Q >= 1 is the Q-th of ``levels``; quality 0 is
        the model's bounded kind (the lossless coder) at the header's ``max_error`` (0: lossless)
        and ``depth``: the container names no kind, so lossless and near-lossless files say 0.
        Either codes the colour of images with an alpha channel, the lossless coder their alpha
        (``alpha.py``).

        Raises:
            FormatError: the model has no such level (a file made by another model, or damaged);
                with ``asked`` (a writer's request) InputError, saying what to train.
        """
        exact = {"quality": 0, "max_error": 0, "depth": header["depth"]}  # an alpha channel's
        return alpha.AlphaLevel(
            self._level_of(header, asked), functools.partial(self._level_of, exact, asked)
        )

    def _level_of(self, header, asked: bool) -> registry.Level:
        quality, max_error, depth = header["quality"], header["max_error"], header["depth"]
        if quality:
            if not 1 <= quality <= len(self.levels):
                raise (InputError if asked else FormatError)(
                    f"header quality {quality} is not one of the model's levels"
                )
            return self.levels[quality - 1]
        try:
            if self._bounded is None:
                raise InputError(
                    f"model {self.name!r} has no lossless coder "
                    "(train one with aecodec train --lossless)"
                )
            return self._bounded.bounded(
                self.parts[self._bounded.name], max_error, depth, self.name
            )
        except (InputError, ValueError) as e:
            if asked:
                raise InputError(str(e)) from None
            raise FormatError(
                f"file needs a lossless coder of {depth}-bit images, which model {self.name!r} "
                "does not have"
            ) from None

    def level(self, quality=None, shape=None) -> registry.Level:
        """The level that serves scale ``quality`` (None: the default) for 8-bit images of
        ``shape`` (None: the model's own size)."""
        asked = {**self.fields_for(quality, shape), "depth": 8}
        return self.level_of(asked, asked=True)

    def estimate_bits(self, images: np.ndarray, quality) -> float:
        """The level's own ideal bits for uint8 images (N, H, W[, C]) (``registry.Level``)."""
        a = np.asarray(images)
        level = self.level(quality, a.shape[1:] if a.ndim > 2 else a.shape)
        return level.ideal_bits(a if a.ndim != 2 else a[None])


def fits(level, shape) -> bool:
    """Whether ``level`` codes images of ``shape`` (None: any) as its stored measurement was made:
    a level with a ``fits(shape)`` method says (a tile level: its native size only), any other
    codes any shape."""
    says = getattr(level, "fits", None)
    return shape is None or says is None or bool(says(tuple(shape)))


def _nominal_bounds() -> list[dict]:
    """Rows for the lossless coder's bounds 1-16 of a model without measurements: the PSNR of
    errors spread evenly over -K..K on 8-bit values, sizes only ordered."""
    return [
        {
            "max_error": k,
            "bytes_per_image": 1.0 / k,
            "psnr": 10 * np.log10(3 * 255**2 / (k * k + k)),
        }
        for k in range(1, 17)
    ]


def _ladder(stored, by_kind: dict, source: str) -> list:
    """The levels a stored ladder keeps, in its order: [kind, index] pairs, each level at most
    once."""
    if not isinstance(stored, list) or not 1 <= len(stored) <= 64:
        raise FormatError(f"{source}: ladder is not a list of 1 to 64 levels")
    seen, levels = set(), []
    for entry in stored:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or entry[0] not in by_kind
            or type(entry[1]) is not int
            or not 0 <= entry[1] < len(by_kind[entry[0]])
            or tuple(entry) in seen
        ):
            raise FormatError(
                f"{source}: ladder entry {str(entry)[:40]} is not a level of the model (once)"
            )
        seen.add(tuple(entry))
        levels.append(by_kind[entry[0]][entry[1]])
    return levels
