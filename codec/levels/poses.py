"""Poses: a one-tile image moved by up to ``SHIFT`` pixels and maybe mirrored before a tile level
codes it.

A tile-global transform learns where things sit in its tile: Fashion-MNIST's garments are centred
and its shoes point left, and the same garment moved by three pixels or mirrored costs up to three
times the bytes at a lower PSNR. So, from container format 4, a tile level codes every image of
exactly one tile in a *pose* of the encoder's choosing, and sends the pose (the decoder undoes it):

    posed = shift(mirror?(image), dy, dx)      image = mirror?(shift(posed, -dy, -dx))

with zeros moved in at the edges both ways (the encoder may put anything in the pixels the
decoder throws away: see ``apply``). Pixels the encoder moves out of the tile are lost to
the decoder, which puts zeros there; the search below counts that loss as distortion. A pose is
one symbol, ``mirror * SIDE² + (dy + SHIFT) * SIDE + (dx + SHIFT)``, coded against a fixed
table in which "as it is" has probability 7/8: aligned images pay 0.19 bit each, a moved one
about 12 bits.

The encoder's search (not part of the format) first tries, besides "as it is", the move that
centres an image's ink (pixels 16 grey levels above its darkest) on the ink of the model's mean
tile, where it is off-centre, and the mirror image, where the image leans against the mean tile's
left-right asymmetry; then, around every image that moved, one pixel off each way and its ink
lined up by a corner. Each candidate is coded (exact table bits) and the one with the smallest
bits + λ·(lost squared error) / pixels wins, λ the level's own. Aligned images rarely get past
the first test, so an aligned dataset is searched at a few percent of the encoder's time.
"""

from __future__ import annotations

import functools

import numpy as np

SHIFT = 7  # the largest move, in pixels, either way
SIDE = 2 * SHIFT + 1
COUNT = 2 * SIDE * SIDE  # poses: two mirrorings of SIDE x SIDE moves
IDENTITY = SHIFT * SIDE + SHIFT  # as it is: not mirrored, not moved
INK = 16  # grey levels above a tile's darkest pixel that count as ink when locating it
MIRROR_LEAN = (
    20.0  # how far a tile must lean against the reference's asymmetry to be tried mirrored
)
_OTHERS = 1 << 21  # the total frequency of the poses that move or mirror (of 2^24): 1/8


def index(mirror, dy, dx) -> np.ndarray:
    return (
        np.asarray(mirror) * SIDE * SIDE
        + (np.asarray(dy) + SHIFT) * SIDE
        + (np.asarray(dx) + SHIFT)
    )


@functools.lru_cache(maxsize=1)
def table() -> np.ndarray:
    """The pose table (COUNT symbols from 0, then the escape): integer frequencies summing to 2^24.
    Made once and shared: read-only."""
    each = _OTHERS // (COUNT - 1)
    freqs = np.full(COUNT + 1, each, np.uint32)
    freqs[-1] = 1  # the escape: never needed, but every table has one
    freqs[IDENTITY] = (1 << 24) - each * (COUNT - 1) - 1
    freqs.flags.writeable = False
    return freqs


@functools.lru_cache(maxsize=8)
def _maps(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(forward, inverse) gather maps (COUNT, h*w) into a flattened tile followed by one zero:
    ``padded[maps[pose]]`` is the posed (or restored) tile; index h*w picks the zero."""
    y, x = np.mgrid[:h, :w]
    forward, inverse = np.empty((COUNT, h * w), np.intp), np.empty((COUNT, h * w), np.intp)
    for mirror in (0, 1):
        for dy in range(-SHIFT, SHIFT + 1):
            for dx in range(-SHIFT, SHIFT + 1):
                p = int(index(mirror, dy, dx))
                sy, sx = y - dy, x - dx  # posed[y, x] = mirrored[y - dy, x - dx]
                inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
                sx_m = (w - 1 - sx) if mirror else sx
                forward[p] = np.where(inside, sy * w + sx_m, h * w).ravel()
                ux = (w - 1 - x) if mirror else x  # image[y, x] = posed[y + dy, mirror?(x) + dx]
                ty, tx = y + dy, ux + dx
                inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
                inverse[p] = np.where(inside, ty * w + tx, h * w).ravel()
    return forward, inverse


def _gather(tiles: np.ndarray, gather: np.ndarray) -> np.ndarray:
    """``tiles`` (N, P) read at ``gather`` (N, P) rows of a map, index P reading zero."""
    padded = np.concatenate([tiles, np.zeros((len(tiles), 1), tiles.dtype)], axis=1)
    return np.take_along_axis(padded, gather, axis=1)


def apply(tiles: np.ndarray, poses: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """Tiles (N, h*w) in their poses (N,), for coding. Where a move brings in pixels from outside,
    the decoder throws them away (``undo`` moves them back out), so they may hold anything: they get
    the tile's mirror image where that is a pixel from inside, else zero. A garment cut off at one
    side is thus coded whole (most are left-right symmetric), which costs fewer bytes than a cut."""
    h, w = tile
    forward = _maps(h, w)[0][poses]
    posed = _gather(tiles, forward)
    outside = (forward == h * w).reshape(-1, h, w)
    mirrored = posed.reshape(-1, h, w)[:, :, ::-1]
    fill = outside & ~outside[:, :, ::-1]
    return np.where(fill, mirrored, posed.reshape(-1, h, w)).reshape(len(tiles), h * w)


def undo(tiles: np.ndarray, poses: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """Decoded posed tiles (N, h*w) put back as they were (zeros where the pose moved pixels
    out)."""
    return _gather(tiles, _maps(*tile)[1][poses])


def lost_error(tiles: np.ndarray, poses: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """Squared error (N,) of the pixels a pose moves out of the tile: the decoder has zeros
    there."""
    forward, inverse = _maps(*tile)
    back = _gather(_gather(tiles, forward[poses]), inverse[poses]).astype(np.int64)
    return ((tiles.astype(np.int64) - back) ** 2).sum(1)


def _ink_box(tiles: np.ndarray, tile: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """(top, bottom, left, right) of each tile's ink (the whole tile where there is none)."""
    h, w = tile
    a = tiles.reshape(-1, h, w).astype(np.int16)
    ink = a > a.min(axis=(1, 2), keepdims=True) + INK
    rows, cols = ink.any(2), ink.any(1)
    none = ~rows.any(1)
    top, bottom = rows.argmax(1), h - 1 - rows[:, ::-1].argmax(1)
    left, right = cols.argmax(1), w - 1 - cols[:, ::-1].argmax(1)
    return (
        np.where(none, 0, top),
        np.where(none, h - 1, bottom),
        np.where(none, 0, left),
        np.where(none, w - 1, right),
    )


def _boxes(tiles: np.ndarray, reference: np.ndarray, tile: tuple[int, int], mirror: int) -> tuple:
    """(twice the centring move, top-left move, bottom-right move) per tile, each (dy, dx), lining
    its ink's box (mirrored or not) up with the reference's."""
    h, w = tile
    r_top, r_bottom, r_left, r_right = (int(v[0]) for v in _ink_box(reference[None], tile))
    a = tiles.reshape(-1, h, w)[:, :, ::-1].reshape(len(tiles), -1) if mirror else tiles
    top, bottom, left, right = _ink_box(a, tile)
    # the centres' offset, doubled
    twice = (
        r_top + r_bottom - top - bottom,
        r_left + r_right - left - right,
    )
    return twice, (r_top - top, r_left - left), (r_bottom - bottom, r_right - right)


def _pose(mirror, move) -> np.ndarray:
    return index(mirror, np.clip(move[0], -SHIFT, SHIFT), np.clip(move[1], -SHIFT, SHIFT))


def first_guesses(
    tiles: np.ndarray, reference: np.ndarray, tile: tuple[int, int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(which tiles, pose) pairs worth trying after "as it is", against the model's mean tile
    ``reference``: a tile whose ink is off-centre is tried centred; one that leans the way the
    reference does not (correlation with the reference's left-right asymmetry below -MIRROR_LEAN)
    is tried mirrored (and centred). Aligned images rarely qualify, so they cost almost nothing to
    search."""
    h, w = tile
    (ty, tx), _, _ = _boxes(tiles, reference, tile, 0)
    off = (np.abs(ty) >= 2) | (np.abs(tx) >= 2)  # half a pixel off is centred enough
    ref = reference.reshape(h, w).astype(np.float64)
    a = tiles.astype(np.float64)
    lean = a @ (ref - ref[:, ::-1]).ravel() / np.maximum(np.sqrt((a * a).sum(1)), 1.0)
    leans_wrong = lean < -MIRROR_LEAN
    (my, mx), _, _ = _boxes(tiles, reference, tile, 1)
    both = leans_wrong & ((np.abs(my) >= 2) | (np.abs(mx) >= 2))
    out = [(np.flatnonzero(leans_wrong), np.full(leans_wrong.sum(), index(1, 0, 0)))]
    for mirror, which, (y2, x2) in ((0, off, (ty, tx)), (1, both, (my, mx))):
        # an odd offset is half a pixel: both ways of rounding it are tried
        odd = which & ((y2 % 2 == 1) | (x2 % 2 == 1))
        out.append((np.flatnonzero(which), _pose(mirror, (y2 // 2, x2 // 2))[which]))
        out.append((np.flatnonzero(odd), _pose(mirror, (-(-y2 // 2), -(-x2 // 2)))[odd]))
    return out


def refinements(
    tiles: np.ndarray, pose: np.ndarray, reference: np.ndarray, tile: tuple[int, int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(which tiles, pose) pairs around the poses found so far, for tiles already better moved
    than where they were: one pixel off each way, and the ink lined up by its top-left or
    bottom-right corner."""
    mirror, dy, dx = pose // (SIDE * SIDE), (pose // SIDE) % SIDE - SHIFT, pose % SIDE - SHIFT
    moved = np.flatnonzero((dy != 0) | (dx != 0))  # mirrored only: aligned already
    mirror, dy, dx = mirror[moved], dy[moved], dx[moved]
    out = [
        (moved, _pose(mirror, (dy + ey, dx + ex)))
        for ey, ex in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))
    ]
    for m in (0, 1):
        which = moved[mirror == m]
        if not len(which):
            continue
        _, top_left, bottom_right = _boxes(tiles[which], reference, tile, m)
        out += [(which, _pose(m, top_left)), (which, _pose(m, bottom_right))]
    return out
