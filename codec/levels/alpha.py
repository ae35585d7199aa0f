"""Images with an alpha channel: grey + alpha (2 channels) and RGBA (4), from container format 7.

The colour planes go through the level the file names (any quality, lossless, near-lossless);
the alpha plane always through the model's lossless coder, so transparency comes back exactly
whatever the colour gets (an edge that shifts by one pixel, or a mask that blurs, would show as a
halo). A chunk's stream is then the colour stream's length (4 bytes, little-endian), the colour
stream, and the alpha plane's lossless stream. Images of 1 or 3 channels, and every image of a file
before format 7 (whose 4-channel images were coded as four planes), go through the level alone.
"""

from __future__ import annotations

import struct

import numpy as np

from bitstream.container import FORMAT_VERSION
from bitstream.errors import FormatError

ALPHA_VERSION = 7  # the container format from which 2- and 4-channel images carry alpha
_LENGTH = struct.Struct("<I")


def has_alpha(shape) -> bool:
    """Whether images of ``shape`` (H, W[, C]) are grey + alpha or RGBA."""
    return len(shape) == 3 and shape[2] in (2, 4)


def colour_shape(shape) -> tuple:
    """The shape of the colour planes of images of ``shape`` with alpha."""
    return tuple(shape[:2]) if shape[2] == 2 else (*shape[:2], 3)


class AlphaLevel:
    """A level (``registry.Level``) that codes the alpha channel of 2- and 4-channel images with
    ``exact()`` (the model's lossless coder at the file's depth, or the error that says why there
    is none) and everything else with ``level``, whose limits and other members it shows as its
    own."""

    def __init__(self, level, exact):
        self.level, self.exact = level, exact

    def __getattr__(self, name):  # kind, limits, fits, ...: the colour level's
        if name == "with_effort" and hasattr(self.level, "with_effort"):
            return lambda effort: AlphaLevel(self.level.with_effort(effort), self.exact)
        return getattr(self.level, name)

    def coded_pixels(self, n: int, shape) -> int:
        if not has_alpha(shape):
            return self.level.coded_pixels(n, shape)
        return self.level.coded_pixels(n, colour_shape(shape)) + n * shape[0] * shape[1]

    def encode(self, images: np.ndarray, *, min_bytes: int = 0) -> bytes:
        """One stream of images (N, H, W[, C]); with alpha, the colour's then the alpha's."""
        if not has_alpha(images.shape[1:]):
            return self.level.encode(images, min_bytes=min_bytes)
        exact = self.exact()
        colour = np.ascontiguousarray(images[..., 0] if images.shape[3] == 2 else images[..., :3])
        data = self.level.encode(colour, min_bytes=min_bytes)
        return _LENGTH.pack(len(data)) + data + exact.encode(np.ascontiguousarray(images[..., -1]))

    def decode(self, data: bytes, n: int, shape, *, version: int = FORMAT_VERSION) -> np.ndarray:
        if version < ALPHA_VERSION or not has_alpha(shape):
            return self.level.decode(data, n, shape, version=version)
        exact = self.exact()
        if len(data) < _LENGTH.size or _LENGTH.unpack_from(data)[0] > len(data) - _LENGTH.size:
            raise FormatError("chunk with alpha: the colour stream's length is past its end")
        end = _LENGTH.size + _LENGTH.unpack_from(data)[0]
        colour = self.level.decode(
            data[_LENGTH.size : end], n, colour_shape(shape), version=version
        )
        alpha = exact.decode(data[end:], n, tuple(shape[:2]), version=version)
        colour = colour.reshape(n, *shape[:2], -1)
        return np.concatenate([colour, alpha.astype(colour.dtype)[..., None]], axis=-1)

    def ideal_bits(self, images: np.ndarray) -> float:
        if not has_alpha(images.shape[1:]):
            return self.level.ideal_bits(images)
        colour = images[..., 0] if images.shape[3] == 2 else images[..., :3]
        exact = self.exact()
        return self.level.ideal_bits(colour) + exact.ideal_bits(images[..., -1])
