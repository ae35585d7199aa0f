"""Images <-> tiles of the model's native size (edge-replicated padding, cropped back)."""

from __future__ import annotations

import numpy as np

# Coded positions per chunk for levels that decode a chunk at once (the tile transform, the pixel
# coder): an 8192 x 8192 grey image padded to 256-pixel tiles, (8192 + 255)^2 < 2^26 + 2^23.
WHOLE_CHUNK_PIXELS = (1 << 26) + (1 << 23)
WHOLE_IMAGE_VALUES = 1 << 26  # the largest image of those levels: 8192 x 8192 grey


def grid(height: int, width: int, tile: tuple[int, int]) -> tuple[int, int]:
    """Tiles down and across for an image of ``height`` x ``width``."""
    return (-(-height // tile[0]), -(-width // tile[1]))


def to_tiles(planes: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """(N, H, W) -> (N * rows * cols, th * tw), row-major tiles of each plane in turn."""
    n, h, w = planes.shape
    rows, cols = grid(h, w, tile)
    padded = np.pad(planes, ((0, 0), (0, rows * tile[0] - h), (0, cols * tile[1] - w)), mode="edge")
    t = padded.reshape(n, rows, tile[0], cols, tile[1]).transpose(0, 1, 3, 2, 4)
    return t.reshape(n * rows * cols, tile[0] * tile[1])


def from_tiles(
    tiles: np.ndarray, n: int, height: int, width: int, tile: tuple[int, int]
) -> np.ndarray:
    """Inverse of ``to_tiles``: (N * rows * cols, th * tw) -> (N, H, W)."""
    rows, cols = grid(height, width, tile)
    t = tiles.reshape(n, rows, cols, tile[0], tile[1]).transpose(0, 1, 3, 2, 4)
    return t.reshape(n, rows * tile[0], cols * tile[1])[:, :height, :width]


def to_planes(images: np.ndarray) -> np.ndarray:
    """(N, H, W[, C]) uint8 -> (N*C, H, W) grey planes, each image's channels in turn."""
    if images.ndim == 4:
        return images.transpose(0, 3, 1, 2).reshape(-1, *images.shape[1:3])
    return images


def from_planes(planes: np.ndarray, n: int, shape) -> np.ndarray:
    """Inverse of ``to_planes``: (N*C, H, W) -> (N, H, W[, C]) for an image shape (H, W[, C])."""
    if len(shape) == 3:
        return planes.reshape(n, shape[2], shape[0], shape[1]).transpose(0, 2, 3, 1)
    return planes
