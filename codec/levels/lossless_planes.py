"""The lossless coder's encoding side, one plane at a time (``lossless.py`` codes the chunk):
each pixel's residual (against CALIC's prediction, or its leaf's predictor) and the leaf of the
context tree whose table codes it.

A lossless plane goes in one pass, as its decoded neighbours are the originals; a near-lossless
one goes diagonal by diagonal (``predict.schedule``), as the decoder does, since each pixel's
reconstruction is a neighbour of the pixels after it.
"""

from __future__ import annotations

import numpy as np

from codec.levels import predict, weighted
from codec.levels.context_tree import Tree

LOSSLESS_BATCH_PIXELS = 1 << 20  # the one-pass encoder finds leaves for this many pixels at a time


def plane_parts(
    x: np.ndarray, top: int, step: int, tree: Tree, plane: int, previous, scale_depth: int, wp=None
):
    """Code one plane of each image, x (n, H, W) of values 0..top: ([(symbols, leaves) per step],
    reconstruction (n, H, W), magnitudes of CALIC's residual symbols padded (for the next plane)).
    ``wp``: the weighted predictor's pass over the plane, if made already."""
    if step == 1:
        return _lossless_parts(x, top, tree, plane, previous, scale_depth, wp)
    n, h, w = x.shape
    src, r, e, offsets = (
        predict.padded(x),
        predict.pixel_major_zeros(n, h, w),
        predict.pixel_major_zeros(n, h, w),
        predict.offsets(w),
    )
    parts = []
    for here in predict.schedule(h, w):
        pred = predict.calic_compiled(r, here, offsets, top, scale_depth)
        leaves = tree.leaves_at(r, e, here, offsets, pred, plane, previous, step)
        q = predict.quantized(src[:, here] - pred, step)  # the pixel levels' quantizer
        r[here] = predict.dequantized(pred, q, step, top).T
        e[here] = np.abs(q).T
        parts.append((q.reshape(-1), leaves))
    return parts, predict.crop(r.T, h, w), e


def _lossless_parts(
    x: np.ndarray, top: int, tree: Tree, plane: int, previous, scale_depth: int, wp=None
):
    """``plane_parts`` of a lossless plane in one pass: the decoded neighbours are the originals,
    so every pixel's properties are known at once (the decoder goes diagonal by diagonal; the
    parts are cut so)."""
    q, leaves, e = lossless_plane(x, top, tree, plane, previous, scale_depth, wp)
    bounds = np.cumsum([0] + [len(s) for s in predict.schedule(*x.shape[1:])])
    parts = [
        (q[:, a:b].reshape(-1), leaves[:, a:b].reshape(-1))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return parts, x, e


def lossless_plane(
    x: np.ndarray, top: int, tree: Tree, plane: int, previous, scale_depth: int, wp=None
):
    """(residuals (n, pixels in coding order), their leaves, CALIC's residual magnitudes
    pixel-major) of a plane x (n, H, W) coded losslessly with ``tree``."""
    n, h, w = x.shape
    steps, offsets = predict.schedule(h, w), predict.offsets(w)
    here = np.concatenate(steps)
    r = predict.padded(x)
    rt, e = np.ascontiguousarray(r.T), np.zeros((r.shape[1], n), np.int32)
    wp = (wp or weighted.whole_pass(r, steps, offsets, top)) if tree.uses_wp else None
    segments = [
        slice(a, a + max(1, LOSSLESS_BATCH_PIXELS // n))
        for a in range(0, len(here), max(1, LOSSLESS_BATCH_PIXELS // n))
    ]
    for s in segments:  # CALIC's residuals first: a pixel's properties read its neighbours'
        e[here[s]] = np.abs(
            rt[here[s]] - predict.calic_compiled(rt, here[s], offsets, top, scale_depth).T
        )
    q = np.empty((n, len(here)), np.int32)  # residuals of 16-bit data fit
    leaves = np.empty((n, len(here)), np.int16)
    for s in segments:
        calic = predict.calic_compiled(rt, here[s], offsets, top, scale_depth)
        leaf = tree.leaves_at(
            rt, e, here[s], offsets, calic, plane, previous, 1, None if wp is None else wp[1][:, s]
        )
        pred = (
            tree.prediction(
                calic, rt, here[s], offsets, top, leaf, None if wp is None else wp[0][:, s]
            )
            if tree.predicts
            else calic
        )
        q[:, s], leaves[:, s] = r[:, here[s]] - pred, leaf.reshape(n, -1)
    return q, leaves, e
