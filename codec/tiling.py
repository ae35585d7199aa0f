"""Images <-> tiles of the model's native size (edge-replicated padding, cropped back)."""

from __future__ import annotations

import numpy as np


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


def from_tiles(tiles: np.ndarray, n: int, height: int, width: int, tile: tuple[int, int]) -> np.ndarray:
    """Inverse of ``to_tiles``: (N * rows * cols, th * tw) -> (N, H, W)."""
    rows, cols = grid(height, width, tile)
    t = tiles.reshape(n, rows, cols, tile[0], tile[1]).transpose(0, 1, 3, 2, 4)
    return t.reshape(n, rows * tile[0], cols * tile[1])[:, :height, :width]
