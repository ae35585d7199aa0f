"""The lossless coder's pixel stream from container format 7: one compiled pass over a chunk
(``_raster.h``), pixels in raster order, image by image, the planes of a pixel together.

Format 6 and before coded an anti-diagonal of pixels per step, with numpy and one entropy-coder
call per table per step: a 512 x 512 colour photo took about 2,000 steps of Python work and
200,000 coder calls. Here the whole chunk is one call: the neighbourhood, the predictors, the tree's
walk, the adaptive tables and a rANS coder that is constriction's stack coder word for word (the
stream passes between the two: the chunk's form and own tree before this part and the end marker
after it are constriction's). The arithmetic is the numpy definitions' (``predict``,
``context_tree``, ``weighted``, ``hybrid``, ``adaptive``); only the order of the pixels, and so of
the tables' adaptation, differs from format 6, and raw bits are coded exactly uniform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bitstream.errors import FormatError
from codec.levels import adaptive, hybrid, kernels, predict, weighted
from codec.levels.context_tree import Tree

ENCODE, DECODE = 0, 1
# A leaf's table is remade once 1/REFRESH of its weight is new: format 6 remade it at an eighth, a
# step of pixels at a time; here a table follows each symbol. On the training images (python -m
# benchmarks.lossless_tuning), 32 took 0.16% fewer bytes than 8 on photos and 1.0% fewer on 16-bit
# images; 128, 0.21% and 1.4%, but a remake costs the decoder a pass over the table, and at 128
# decoding the held-out 16-bit images took 2.2x JPEG XL's time (32: 1.8x).
REFRESH = 32
_DAMAGED, _TOO_LARGE = 2, 3


@dataclass(frozen=True)
class Chunk:
    """What the compiled pass needs to know of a chunk: its shape (n images, k planes each, H, W),
    per plane its largest value, tree plane and skew scale, the step (1: lossless) and the tokens
    per sign of the coder's depth."""

    shape: tuple
    planes_of: np.ndarray
    step: int
    t: int

    @classmethod
    def of(cls, shape: tuple, form, depth: int, step: int, coder_depth: int):
        """The chunk of ``shape`` (n, k, H, W) in ``form``, of ``depth``-bit images."""
        k = shape[1]
        planes_of = np.array(
            [
                [form.top(c, depth) for c in range(k)],
                [form.plane_id(c) for c in range(k)],
                [predict.skew_scale(form.scale_depth(c, depth)) for c in range(k)],
            ],
            np.int64,
        )
        return cls(tuple(shape), planes_of, step, hybrid.tokens_per_sign(coder_depth))

    def constants(self) -> np.ndarray:
        return np.concatenate(
            [
                [self.t, hybrid.DIRECT_BITS, hybrid.MSB],
                predict.SKEW_THRESHOLDS,
                predict.BLEND.reshape(-1),
                weighted.MAX_WEIGHTS,
                [weighted.P1C, weighted.P2C, weighted.P3C, weighted.EXTRA],
            ]
        ).astype(np.int64)


def _tree_arrays(tree: Tree) -> tuple:
    return tree._nodes, tree._leaf16, tree.predictor, tree.uses_wp, tree.predicts


def _run(mode: int, planes: np.ndarray, chunk: Chunk, tree: Tree, rows, prior: int, words):
    """The words after the compiled pass (FormatError: a damaged stream)."""
    out, status = kernels.compiled().raster_code(
        mode,
        planes,
        chunk.shape,
        chunk.planes_of,
        chunk.step,
        *_tree_arrays(tree),
        chunk.constants(),
        np.ascontiguousarray(rows, np.uint32),
        (1 << 24) // prior,
        REFRESH,
        adaptive.HALVE_AT,
        np.ascontiguousarray(words, np.uint32),
    )
    if status == _DAMAGED:
        raise FormatError("lossless stream codes a symbol no table holds (damaged)")
    if status == _TOO_LARGE:
        raise ValueError("lossless coder: a residual beyond the coder's depth")
    if status:
        raise MemoryError("lossless coder: out of memory")
    return out


def encode(coded: np.ndarray, chunk: Chunk, tree: Tree, rows, prior: int):
    """(``words -> words``: push the planes (n * k, H, W) onto a stream, and record the bits they
    took in its ``bits``; the reconstruction: the planes themselves, lossless, or filled in by the
    push, near-lossless)."""
    out = np.ascontiguousarray(coded, np.uint16)  # every form's values are below 2^16
    out = out.copy() if chunk.step > 1 and np.shares_memory(out, coded) else out

    def push(words: np.ndarray) -> np.ndarray:
        pushed = _run(ENCODE, out, chunk, tree, rows, prior, words)
        push.bits = 32 * (len(pushed) - len(words))
        return pushed

    push.bits = None
    return push, out


def decode(chunk: Chunk, tree: Tree, rows, prior: int):
    """(``words -> words``: read the planes off a stream, the planes (n * k, H, W) uint16 it
    fills)."""
    n, k, h, w = chunk.shape
    out = np.empty((n * k, h, w), np.uint16)

    def read(words: np.ndarray) -> np.ndarray:
        return _run(DECODE, out, chunk, tree, rows, prior, words)

    return read, out


def counts(coded: np.ndarray, chunk: Chunk, tree: Tree) -> np.ndarray:
    """Counts (leaves, 2T - 1) of the signed tokens of lossless planes in each leaf of ``tree``."""
    found, status = kernels.compiled().raster_counts(
        np.ascontiguousarray(coded, np.uint16),
        chunk.shape,
        chunk.planes_of,
        *_tree_arrays(tree),
        chunk.constants(),
    )
    if status:
        raise ValueError("lossless coder: a residual beyond the coder's depth")
    return found


def sample(coded: np.ndarray, chunk: Chunk, picked: np.ndarray, tree: Tree):
    """(properties (len(OWN_PROPERTIES), m), each predictor's signed tokens (len(PREDICTORS), m))
    of the values at the sorted positions ``picked`` (in coding order) of lossless planes, with
    CALIC's residuals around them: what an image's own tree is grown on; and ``counts`` of the
    model's ``tree``, found in the same pass."""
    props, tokens, found, status = kernels.compiled().raster_sample(
        np.ascontiguousarray(coded, np.uint16),
        chunk.shape,
        chunk.planes_of,
        tree._nodes,
        tree._leaf16,
        tree.predictor,
        chunk.constants(),
        np.ascontiguousarray(picked, np.int64),
    )
    if status:
        raise ValueError("lossless coder: a residual beyond the coder's depth")
    return props, tokens, found
