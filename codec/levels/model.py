"""A loaded model: its config, its quality levels, its default level and its identity.

A *level* is one way of coding images at one quality, an object with one narrative:
``encode(images, min_bytes=...) -> bytes``, ``decode(data, n, shape, version=...) -> images`` (the container's format version),
``ideal_bits(images)``, ``coded_pixels(n, shape)`` (padding included: the chunk's memory) and
``work_per_pixel`` (what the floor of bytes per coded pixel counts each one as: the work of
decoding). Each kind lives in its own module (``tile.py``, ``pixel.py``, ``conv.py``,
``lossless.py``); a model
file holds whichever kinds its training kept, and this is the one place that maps a quality
number to its level.
"""

from __future__ import annotations

import numpy as np

from codec.errors import FormatError, InputError
from codec.levels import modelfile, pixel
from codec.levels.tile import TileLevel, TileTransform


class Model:
    """A loaded, frozen codec model (``load_model`` builds one from a model file)."""

    def __init__(self, body: dict, *, source: str = "model"):
        self.name = body["name"]
        self.fingerprint = body["fingerprint"]
        self.meta = body["meta"]
        self.source = source
        tile_and_pixel = self._tile_and_pixel_levels(body, source)
        by_kind = {
            "tile": [lv for lv in tile_and_pixel if lv.kind == "tile"],
            "pixel": [lv for lv in tile_and_pixel if lv.kind == "pixel"],
            "conv": self._conv_levels(body, source),
        }
        if "ladder" in body:
            self.levels = tuple(_ladder(body["ladder"], by_kind, source))
        else:
            self.levels = (*tile_and_pixel, *by_kind["conv"])
        self.lossless = modelfile.lossless_from_body(body, source=source)
        if not self.levels and self.lossless is None:
            raise FormatError(f"{source}: the model has no quality levels and no lossless coder")
        # a model of the lossless coder alone has no lossy levels: its default is lossless (quality 0)
        self.default_quality = (
            modelfile.default_from_body(body, len(self.levels), source=source) if self.levels else 0
        )

    def _tile_and_pixel_levels(self, body: dict, source: str) -> list:
        """The tile transform's levels, then the pixel coder's (``config`` None: none of either)."""
        from codec.levels.transforms import ModelConfig

        self.config = self.transform = None
        if body["config"] is None:
            if body["params"] or body["frozen"] is not None or body["pixel"]:
                raise FormatError(f"{source}: tile or pixel parameters without their config")
            return []
        try:
            self.config = ModelConfig.from_dict(body["config"])
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise FormatError(f"{source}: {e}") from None
        self.transform = TileTransform(self.config, body, source=source)
        try:
            rows = modelfile.pixel_from_body(body, self.config.pixel_steps)
        except (KeyError, TypeError) as e:
            raise FormatError(f"{source}: pixel tables are malformed ({e})") from None
        steps = self.config.pixel_steps
        return [
            *(TileLevel(self.transform, i) for i in range(self.config.qualities)),
            *(
                pixel.PixelLevel(step, pixel.tables(r, step))
                for r, step in zip(rows, steps, strict=True)
            ),
        ]

    def _conv_levels(self, body: dict, source: str) -> list:
        """The convolutional levels, low to high (after any others)."""
        from codec.levels.conv import ConvLevel, ConvTransform

        self.conv = None
        stored = modelfile.conv_from_body(body, source=source)
        if stored is None:
            return []
        try:
            self.conv = ConvTransform(*stored)
        except ValueError as e:
            raise FormatError(f"{source}: conv levels: {e}") from None
        return [ConvLevel(self.conv, i) for i in range(len(self.conv.config["lambdas"]))]

    @property
    def qualities(self) -> tuple[int, ...]:
        """Every level's quality number, low to high."""
        return tuple(range(1, len(self.levels) + 1))

    def check_quality(self, quality) -> int:
        """``quality`` as an int if it names one of the levels (None: the model's default).

        Raises:
            InputError: not one of ``qualities``.
        """
        if quality is None or (quality == 0 and not self.levels):
            return self.default_quality
        if (
            isinstance(quality, bool)
            or not isinstance(quality, (int, np.integer))
            or quality not in self.qualities
        ):
            raise InputError(
                f"quality {quality!r} is not one of the model's levels {self.qualities}"
            )
        return int(quality)

    def level(self, quality):
        """The level object of ``quality`` (None: the default level; 0 on a model of the lossless coder alone: it, lossless)."""
        quality = self.check_quality(quality)
        return self.levels[quality - 1] if quality else self.lossless_level()

    def level_for(self, quality: int, max_error: int = 0, depth: int = 8):
        """The level a file's header names: a lossy level, or (quality 0) the lossless coder at its bound and depth."""
        return self.level(quality) if quality else self.lossless_level(max_error, depth)

    def lossless_level(self, max_error: int = 0, depth: int = 8):
        """The lossless coder as a level: every pixel within ``max_error`` (0: exact) of ``depth``-bit images.

        Raises:
            InputError: the model has no lossless coder, or codes fewer bits than ``depth``.
        """
        from codec.levels.lossless import LosslessLevel

        if self.lossless is None:
            raise InputError(
                f"model {self.name!r} has no lossless coder (train one with aecodec train --lossless)"
            )
        if depth > self.lossless.depth:
            raise InputError(
                f"{depth}-bit images: model {self.name!r} codes losslessly up to {self.lossless.depth} bits "
                "(train a model on such images)"
            )
        return LosslessLevel(self.lossless, max_error, depth)

    def estimate_bits(self, images: np.ndarray, quality) -> float:
        """The level's own ideal bits for uint8 images (N, H, W[, C]) (see each kind's ``ideal_bits``)."""
        level = self.level(quality)
        a = np.asarray(images)
        return level.ideal_bits(a if a.ndim != 2 else a[None])


def _ladder(stored, by_kind: dict, source: str) -> list:
    """The levels a stored ladder keeps, in its order: [kind, index] pairs, each level at most once."""
    if not isinstance(stored, list) or not 1 <= len(stored) <= 64:
        raise FormatError(f"{source}: ladder is not a list of 1 to 64 levels")
    seen, levels = set(), []
    for entry in stored:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
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
