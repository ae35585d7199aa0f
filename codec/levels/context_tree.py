"""The lossless coder's context trees: the properties of a pixel's causal neighbourhood a tree
splits on (``properties``, the numpy definition; the compiled walk ``leaves_at``, held to it by the
tests), the predictors an image's own tree may choose per leaf, and the frozen ``Tree`` with the
check that refuses a stored tree that is not one (``check_tree``).
"""

from __future__ import annotations

import numpy as np

from bitstream.errors import FormatError
from codec.levels import kernels

PROPERTIES = (
    "prediction",
    "a",
    "b",
    "c",
    "d",
    "|e_a|",
    "|e_b|",
    "|e_c|",
    "|e_d|",
    "row",
    "column",
    "activity",
    "|e_a|+|e_b|",
    "a-c",
    "b-c",
    "d-b",
    "a-aa",
    "b-bb",
    "plane",
    "|e_plane|",
)

# what a leaf of an image's own tree may predict with (WP: weighted.py)
PREDICTORS = (
    "CALIC",
    "W",
    "N",
    "W+N-NW",
    "WP",
)
WP = PREDICTORS.index("WP")
# an image's own tree may also split on the weighted predictor's error
OWN_PROPERTIES = (
    *PROPERTIES,
    "WP max error",
)


class Tree:
    """A frozen context tree: per node a property, an integer threshold and two children (a
    leaf's children are itself, so every pixel takes ``depth`` steps), and per node its leaf
    number (-1: inner); per leaf, the predictor its pixels use (PREDICTORS; a model's trees use
    CALIC's throughout)."""

    def __init__(self, feature, threshold, left, right, leaf, predictor=None):
        self.feature = np.asarray(feature, np.int64)
        self.threshold = np.asarray(threshold, np.int64)
        self.left, self.right = np.asarray(left, np.int64), np.asarray(right, np.int64)
        self.leaf = np.asarray(leaf, np.int64)
        self.leaves = int(self.leaf.max()) + 1
        self.depth = _depth(self.left, self.right)
        self.predictor = (
            np.zeros(self.leaves, np.int8) if predictor is None else np.asarray(predictor, np.int8)
        )
        self.predicts = bool(self.predictor.any())
        inner = self.leaf < 0
        self.uses_wp = bool(
            (self.predictor == WP).any() or (self.feature[inner] >= len(PROPERTIES)).any()
        )
        # one cache line per node
        self._nodes = np.stack([self.feature, self.threshold, self.left, self.right], 1)
        self._leaf16 = self.leaf.astype(np.int16)

    def prediction(self, pred, r, here, offsets, top: int, leaves, wp=None) -> np.ndarray:
        """Each pixel's prediction by its leaf's predictor (``pred``: CALIC's; ``wp``: the
        weighted one's) of planes r stored ``predict.pixel_major``."""
        compiled = kernels.compiled()
        return compiled.own_prediction(
            r,
            here,
            offsets,
            top,
            np.ascontiguousarray(pred, np.int64),
            np.zeros((0, 0), np.int64) if wp is None else np.ascontiguousarray(wp, np.int64),
            np.ascontiguousarray(leaves, np.int16).reshape(-1),
            self.predictor,
        )

    def apply(self, props: np.ndarray) -> np.ndarray:
        """Leaf index (int16: the coder's argsort then runs as a radix sort) of each column of
        ``props`` (P, k)."""
        compiled = kernels.compiled()
        return compiled.walk(self._nodes, self._leaf16, np.ascontiguousarray(props))

    def leaves_at(
        self, r, e, here, offsets, calic, plane: int, previous, step: int, extra=None
    ) -> np.ndarray:
        """Leaf index (int16) of each pixel at ``here`` of padded planes r, over ``properties``
        (the same arguments, but r, e and previous stored ``predict.pixel_major``; ``extra``: an
        own tree's weighted-predictor property), without building them."""
        compiled = kernels.compiled()
        previous = np.zeros((0, 0), np.int32) if previous is None else previous
        extra = (
            np.zeros((0, 0), np.int64) if extra is None else np.ascontiguousarray(extra, np.int64)
        )
        return compiled.leaves_at(
            r,
            e,
            previous,
            extra,
            here,
            offsets,
            np.ascontiguousarray(calic),
            plane,
            step,
            self._nodes,
            self._leaf16,
            len(OWN_PROPERTIES),
        )

    def arrays(self) -> dict:
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "left": self.left,
            "right": self.right,
            "leaf": self.leaf,
        }


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Longest root-to-leaf path (nodes are numbered parents first, as check_tree requires)."""
    depth = np.zeros(len(left), np.int64)
    for i in range(len(left)):
        for child in (left[i], right[i]):
            if child != i:
                depth[child] = max(depth[child], depth[i] + 1)
    return int(depth.max())


def check_tree(arrays: dict, *, what: str, properties: int = len(PROPERTIES)) -> Tree:
    """A Tree from stored arrays, refusing any that is not a proper tree over known properties
    (FormatError)."""
    try:
        f, t, lo, hi, leaf = (
            np.asarray(arrays[k]) for k in ("feature", "threshold", "left", "right", "leaf")
        )
    except (KeyError, TypeError):
        raise FormatError(f"{what}: context tree arrays are missing") from None
    n = len(f)
    if not 1 <= n <= 1 << 16 or any(
        a.shape != (n,) or a.dtype.kind != "i" for a in (f, t, lo, hi, leaf)
    ):
        raise FormatError(f"{what}: context tree arrays differ in shape or type")
    idx = np.arange(n)
    is_leaf = leaf >= 0
    inner_ok = ((lo > idx) & (hi > idx) & (lo < n) & (hi < n))[
        ~is_leaf
    ].all()  # children after parents: no loops
    leaf_ok = (lo[is_leaf] == idx[is_leaf]).all() and (hi[is_leaf] == idx[is_leaf]).all()
    leaves = leaf[is_leaf]
    if (
        not inner_ok
        or not leaf_ok
        or ((f < 0) | (f >= properties)).any()
        or leaf[~is_leaf].min(initial=-1) != -1
        or sorted(leaves.tolist()) != list(range(len(leaves)))
    ):
        raise FormatError(f"{what}: not a valid context tree")
    children = np.concatenate([lo[~is_leaf], hi[~is_leaf]])
    if len(np.unique(children)) != len(children) or 0 in children:
        raise FormatError(f"{what}: not a valid context tree (a node with two parents)")
    return Tree(f, t, lo, hi, leaf)


def properties(r, e, here, offsets, pred, plane: int, previous, step: int, rows=None) -> np.ndarray:
    """The tree's properties (len(PROPERTIES), n * k) of the pixels at ``here``: ``r`` the
    decoded padded planes, ``e`` the magnitudes of their coded residuals (in steps), ``previous``
    those of the plane before (None for the first plane). Given ``rows``, the pixels are
    (rows[m], here[m])."""

    def at(a, o=0):
        return a[:, here + o] if rows is None else a[rows, here + o]

    a, b, c, d, aa, bb = (at(r, o) for o in offsets[:6])
    ea, eb, ec, ed = (at(e, o) for o in offsets[:4])
    width = -offsets[1]
    row = np.broadcast_to((here // width - 2).astype(np.int32), pred.shape)
    col = np.broadcast_to((here % width - 2).astype(np.int32), pred.shape)
    ep = at(previous) if previous is not None else np.zeros_like(pred)
    grads = [np.abs(d - b) + np.abs(b - c) + np.abs(c - a), a - c, b - c, d - b, a - aa, b - bb]
    if step > 1:
        grads = [np.floor_divide(g, step) for g in grads]
    props = [
        pred,
        a,
        b,
        c,
        d,
        ea,
        eb,
        ec,
        ed,
        row,
        col,
        grads[0],
        ea + eb,
        *grads[1:],
        np.full_like(pred, plane),
        ep,
    ]
    return np.stack([p.reshape(-1) for p in props])
