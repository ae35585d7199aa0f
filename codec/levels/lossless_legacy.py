"""Decoding the lossless streams of container formats 5 and 6: pixels an anti-diagonal at a time,
all images of a chunk together, plane after plane, each step's symbols read with one
entropy-coder call per table (``lossless.py`` writes format 7's stream, ``raster.py``). Kept so
that older files decode; nothing writes this stream any more.
"""

from __future__ import annotations

import numpy as np

from bitstream.coder import Decoder
from bitstream.errors import FormatError
from codec.levels import adaptive, hybrid, kernels, predict, weighted
from codec.levels import lossless_forms as forms

OWN_TREE_MAX_IMAGES = 8  # format 6's encoder grew trees for chunks of at most this many images


def decode_planes(coder, data: bytes, n: int, channels: int, h: int, w: int, step: int, depth: int):
    """Planes (n * C, H, W) int32 of a format-6 stream (FormatError if it is damaged), coded with
    ``coder`` (a ``lossless.LosslessCoder``)."""
    tables = adaptive.AdaptiveTables(coder.rows, coder.depth, coder.prior)
    decoder = Decoder(data, tables)
    form = forms.read(channels, depth, coder.depth, decoder.read)
    most = None if n <= OWN_TREE_MAX_IMAGES else OWN_TREE_MAX_IMAGES
    tree = coder.tree_in_stream(None, step, most, read=decoder.read)
    if tree is not coder.tree:
        tables.restart(coder.own_rows(tree.leaves), coder.own_prior)
    k = form.planes(channels)
    out = np.empty((n * k, h, w), np.int32)
    previous = None
    for c in range(k):
        out[c::k], previous = _decode_plane(
            coder, decoder, tables, tree, (n, h, w), form, c, depth, step, previous
        )
    decoder.finish()
    return forms.inverse(form, out, channels, depth)


def _decode_plane(coder, decoder, tables, tree, shape, form, c: int, depth: int, step: int, prev):
    """Plane c of each image (n, H, W) and the magnitudes of its residual symbols (padded,
    pixel-major)."""
    compiled = kernels.compiled()
    n, h, w = shape
    top, plane, scale_depth = form.top(c, depth), form.plane_id(c), form.scale_depth(c, depth)
    r, e, offsets = (
        predict.pixel_major_zeros(n, h, w),
        predict.pixel_major_zeros(n, h, w),
        predict.offsets(w),
    )
    state = weighted.PixelMajorState(*r.shape) if tree.uses_wp else None
    for here in predict.schedule(h, w):
        calic = predict.calic_compiled(r, here, offsets, top, scale_depth)
        wp = wp_error = None
        if state is not None:
            wp, wp_error = state.predict(r, here, offsets, top)
        leaves = tree.leaves_at(r, e, here, offsets, calic, plane, prev, step, wp_error)
        pred = tree.prediction(calic, r, here, offsets, top, leaves, wp) if tree.predicts else calic
        signed = decoder.read(leaves, tables.current)
        sent, bits = compiled.raw_bits(signed, coder.t, hybrid.DIRECT_BITS, hybrid.MSB)
        if len(sent) and sent[0] < 0:
            raise FormatError("lossless stream holds a token beyond its depth (damaged)")
        raw = decoder.read(bits) if len(sent) else np.zeros(0, np.int32)
        tables.update(leaves, signed)
        values = compiled.reconstruct(
            r, e, here, pred, calic, signed, sent, raw, step, top, tree.predicts,
            hybrid.DIRECT_BITS, hybrid.MSB,
        )  # fmt: skip
        if state is not None:
            state.update(here, values)
    return predict.crop(r.T, h, w), e
