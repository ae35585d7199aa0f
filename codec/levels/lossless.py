"""Lossless and near-lossless coding of images of any depth from 1 to 16 bits (integers only; a
chunk's pixels coded in one compiled pass, ``raster.py``, held by the tests to the numpy
definitions here and in ``context_tree.py`` and ``weighted.py``).

Each pixel is predicted from its decoded neighbours by CALIC's gradient-adjusted predictor (the
pixel coder's, ``predict.py``, scaled to the depth) and the residual is coded against the table
of a *context tree* (``context_tree.py``): a decision tree, learned by ``aecodec train``
(``lossless_train.py``), over integer properties of the causal neighbourhood (the prediction, the
neighbours, their gradients, the residuals already coded around the pixel, the position, the
plane). JPEG XL's modular mode does the same with its MA trees; here the tree is learned on the
user's images, so it learns what their images share (on Fashion-MNIST: where the garment's edge
is likely to be). On Fashion-MNIST's test split the bundled coder (a learned tree of 1,024 leaves,
tables that adapt, the forms of ``lossless_forms.py``) takes 3.150 bits per pixel (``python -m
benchmarks.lossless``); CALIC's 288 fixed contexts took 3.44. Residuals are coded as JPEG XL's
hybrid integers (``hybrid.py``).

Near-lossless (``max_error`` K >= 1) is the pixel levels' method with the tree for contexts: each
residual is quantized with step 2K + 1 before coding (``predict.quantized``, the reconstruction in
the loop, as JPEG-LS), so every pixel is within K of the original; the tree's gradient properties
are divided by the step, so a tree learned on lossless residuals sees the statistics it knows
(JPEG-LS scales its context thresholds the same way).

Pixels are coded in raster order, image by image, the planes of a pixel together, each plane with
its index and the residual of the plane before at the same pixel as properties (the decoder has
it). A chunk may carry a tree of its own (``image_tree.py``), chosen without coding the chunk
twice (``own_tree``). Streams of container format 6, coded an anti-diagonal at a time, are
decoded by ``lossless_legacy.py``; ``original_properties`` (the numpy definition of every
pixel's properties, for training and the tests) computes them the old way, all at once.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bitstream.coder import PRECISION, Decoder, Encoder, integer_frequencies
from bitstream.container import FORMAT_VERSION
from bitstream.errors import FormatError, LimitError
from codec.errors import InputError
from codec.levels import (
    adaptive,
    hybrid,
    image_tree,
    lossless_legacy,
    modelfile,
    predict,
    raster,
    registry,
    weighted,
)
from codec.levels import lossless_forms as forms
from codec.levels.context_tree import Tree, check_tree, properties
from codec.levels.planes import WHOLE_CHUNK_PIXELS, from_planes, to_planes

MAX_ERROR = 32  # near-lossless bounds offered: 1..32
RASTER_VERSION = 7  # container format from which chunks are coded in raster order (raster.py)
LOSSLESS_BATCH_PIXELS = 1 << 20  # original_properties computes this many pixels' at a time

# The largest image, and chunk, the lossless coder encodes: it holds about 14 bytes per value while
# encoding (the planes in 16 bits, 8 bytes per coded symbol gathered for the backward rANS, the
# input), so 2^24 values (4096 x 4096 grey, a 2560 x 1600 colour photo: 265 MB at peak, the
# process included) stay near a third of a GB. (Format 6's encoder held about 50 bytes per value.)
# Files of up to 2^26 values per chunk, written before this limit, are still decoded
# (``WHOLE_CHUNK_PIXELS``).
LOSSLESS_VALUES = 1 << 24


def original_properties(
    coded: np.ndarray, k: int, form, depth: int, predictors: bool = False, wp=None, columns=None
):
    """(properties (P, pixels), signed tokens) of planes (n * k, H, W) already in their ``form``,
    coded losslessly with CALIC's predictor: the decoded neighbours are the originals, so every
    pixel's are computed at once. ``predictors``: the properties of an image's own tree
    (OWN_PROPERTIES), and tokens (len(PREDICTORS), pixels), each predictor's (``wp``: the
    weighted predictor's passes, if made). ``columns``: only these pixels (sorted indices into
    all of them: plane by plane, image by image, in coding order), so that memory follows the
    sample, not the image."""
    n, h, w = coded.shape
    offsets, steps = predict.offsets(w), predict.schedule(h, w)
    here = np.concatenate(steps)
    plane_size = (n // k) * len(here)
    props, tokens, previous = [], [], None
    for c in range(k):
        x = predict.padded(coded[c::k])  # int32, as e: whole planes in half the memory of int64
        top = form.top(c, depth)
        wp_pred, wp_error = (
            (wp[c] if wp is not None else weighted.whole_pass(x, steps, offsets, top))
            if predictors
            else (None, None)
        )
        # = predict
        calic = predict.calic_compiled(
            np.ascontiguousarray(x.T, np.int32), here, offsets, top, form.scale_depth(c, depth)
        )
        e = np.zeros_like(x)
        step = max(1, LOSSLESS_BATCH_PIXELS // len(x))
        for s in range(0, len(here), step):  # a batch at a time: the difference is int64
            e[:, here[s : s + step]] = np.abs(x[:, here[s : s + step]] - calic[:, s : s + step])
        picked = (
            np.arange(plane_size)
            if columns is None
            else columns[(columns >= c * plane_size) & (columns < (c + 1) * plane_size)]
            - c * plane_size
        )
        if not picked.size:  # only its residuals are needed: the next plane's properties read them
            previous = e
            continue
        rows, at = picked // len(here), picked % len(here)
        pos = here[at]
        p = properties(x, e, pos, offsets, calic[rows, at], form.plane_id(c), previous, 1, rows)
        if predictors:
            p = np.vstack([p, wp_error[rows, at].reshape(1, -1).astype(p.dtype)])
        by = [calic[rows, at]]
        if predictors:
            a, b, cc = (x[rows, pos + o] for o in offsets[:3])
            by += [a, b, np.clip(a + b - cc, 0, top), wp_pred[rows, at]]
        props.append(p.astype(np.int32))  # int32: half the memory
        value = x[rows, pos]
        tokens.append(
            np.stack([hybrid.signed(hybrid.token_of(np.abs(value - q))[0], value < q) for q in by])
        )
        previous = e
    tokens = np.concatenate(tokens, axis=1)
    return np.concatenate(props, axis=1), tokens if predictors else tokens[0]


# The leaves' tables start as the model's, worth ``prior`` symbols, and adapt (``adaptive.py``).
# The prior's worth is the model's, chosen at training by measurement on held-out images (PRIORS):
# on Fashion-MNIST the model's tables, counted on 20 million pixels, are worth much; on a user's
# unusual photo, little.
PRIORS = (256, 1024, 4096, 16384)
OWN_TREE_PRIOR = 16  # an image's own tree starts from a generic table: it adapts fast
# A chunk of at most this many images grows its own tree on a sample of all its pixels; a chunk of
# more (many small images) on its first OWN_TREE_SCREEN values, which also estimate what each tree
# costs: a tree grown for an archive unlike the model's training images pays on every chunk, and
# the screen keeps the cost of finding out to a fraction of coding the chunk. (Format 6 grew trees
# for chunks of at most 8 images only.)
OWN_TREE_MAX_IMAGES = 8
OWN_TREE_SCREEN = 1 << 18
SCREEN_SAMPLES = 1 << 16  # of the screen's values, the tree grows on
OWN_TREE_MIN_SAMPLES = 1 << 12
# The predictors an own tree's splits are chosen with: the three that code the chunk's sample
# best. On the training images (python -m benchmarks.lossless_tuning), two took 0.31% more bytes on
# photos and 2.0% more on 16-bit images, for 8% less time; all five 0.10% fewer on photos but 0.17%
# more on 16-bit images, for 13% more time. A second tree whose splits were chosen for CALIC's
# residuals alone (grown before format 7) was estimated smaller on none of the held-out images.
SEARCHED_PREDICTORS = 3


class LosslessCoder:
    """A depth's context tree and its tables (one per leaf: signed tokens -(T-1)..T-1 and an
    escape)."""

    kind = "lossless"
    max_coded_pixels = WHOLE_CHUNK_PIXELS
    max_image_values = LOSSLESS_VALUES
    own_prior = OWN_TREE_PRIOR

    def __init__(self, depth: int, tree: Tree, rows: np.ndarray, prior: int = 1024):
        if prior not in PRIORS:
            raise ValueError(f"prior {prior} is not one of {PRIORS}")
        self.depth, self.tree, self.rows, self.prior = depth, tree, rows, prior
        self.t = hybrid.tokens_per_sign(depth)
        self.leaves = len(rows)

    def encode_planes(
        self,
        planes: np.ndarray,
        channels: int,
        max_error: int = 0,
        depth: int | None = None,
        *,
        min_bytes: int = 0,
    ):
        """One stream of planes (n * C, H, W) (each image's channels in turn) of ``depth``-bit
        samples (at most the coder's, its default), and the reconstruction. The chunk's form
        (colour transform, value sets: ``lossless_forms.py``) is written first; then, lossless,
        whether the chunk has a tree of its own (``image_tree.py``: grown for every chunk of at
        least OWN_TREE_MIN_SAMPLES values, and kept where it codes the chunk in fewer bits than
        the model's tree is estimated to: ``own_tree``); then the pixels, in one compiled pass
        (``raster.py``)."""
        step, depth = 2 * max_error + 1, depth or self.depth
        form, coded = forms.chosen(planes, channels, depth, self.depth, max_error)
        chunk = raster.Chunk.of(_shape(coded, form.planes(channels)), form, depth, step, self.depth)
        own, model_bits = (None, None)
        if step == 1 and coded.size >= OWN_TREE_MIN_SAMPLES:
            own, model_bits = self.own_tree(coded, chunk)
        coded_as = (form, channels, depth, step, coded, chunk, min_bytes)
        stream, out, bits = self._stream(*coded_as, own)
        if model_bits is not None and bits + image_tree.bits_of(own, self.depth) >= model_bits:
            stream, out, _ = self._stream(*coded_as, None)  # the estimate of the model's: better
        return stream, planes if step == 1 else forms.inverse(form, out, channels, depth)

    def _stream(self, form, channels: int, depth: int, step: int, coded, chunk, min_bytes, own):
        """(the chunk's stream with ``own`` or the model's tree, the coded planes' reconstruction,
        the bits of its pixels)."""
        encoder = Encoder(adaptive.raw_tables(self.depth))
        forms.write(form, channels, depth, self.depth, encoder.add)
        tree = self.tree_in_stream(own, step, add=encoder.add)
        push, out = raster.encode(coded, chunk, tree, *self.start(tree))
        encoder.add_words(push)
        return encoder.finish(min_bytes=min_bytes), out, push.bits

    def start(self, tree: Tree) -> tuple[np.ndarray, int]:
        """(the tables the leaves of ``tree`` start with, what they are worth in symbols)."""
        if tree is self.tree:
            return self.rows, self.prior
        return self.own_rows(tree.leaves), OWN_TREE_PRIOR

    def own_tree(self, coded: np.ndarray, chunk) -> tuple[Tree | None, float | None]:
        """(a tree of the chunk's own or None, the bits the model's tree is estimated to code the
        chunk's pixels in, or None when the choice is made already). The tree is grown on a sample
        of the chunk, its splits chosen knowing that every leaf chooses its predictor among the
        SEARCHED_PREDICTORS best, and each tree's bits are estimated from its leaves' counts
        (``image_tree.adaptive_bits``) over the whole chunk: coding the chunk with the own tree
        then says what it costs, against the model's estimate. A chunk of many images is judged on
        its first images (OWN_TREE_SCREEN values), both trees' counts scaled to the chunk."""
        n, k, h, w = chunk.shape
        first = n if n <= OWN_TREE_MAX_IMAGES else max(1, OWN_TREE_SCREEN // (k * h * w))
        part = replace(chunk, shape=(min(n, first), k, h, w))
        seen = coded[: part.shape[0] * k]
        scale = coded.size / seen.size
        most = image_tree.GROW_SAMPLES if first >= n else SCREEN_SAMPLES
        columns, share = image_tree.sample(seen.size, most)
        picked = np.arange(seen.size) if columns is None else columns
        props, tokens, model_counts = raster.sample(seen, part, picked, self.tree)
        tree = image_tree.grow(props, tokens, self.t, SEARCHED_PREDICTORS, share / scale)
        model_bits = self._bits(self.tree, model_counts * scale)
        if first >= n:
            return tree, model_bits
        bits = self._bits(tree, raster.counts(seen, part, tree) * scale)
        return (tree if bits + image_tree.bits_of(tree, self.depth) < model_bits else None), None

    def _bits(self, tree: Tree, counts: np.ndarray) -> float:
        rows, prior = self.start(tree)
        return image_tree.adaptive_bits(counts, rows, prior, self.t)

    def tree_in_stream(self, own, step: int, most: int | None = None, add=None, read=None) -> Tree:
        """The tree a lossless chunk is coded with: a bit (own tree or the model's), then the own
        tree. Near-lossless chunks use the model's, no bit. FormatError: a chunk of more than
        ``most`` images claims one (format 6's encoder grew none for them: damaged)."""
        if step > 1:
            return self.tree
        if read is not None:
            has_own = bool(forms.get_bits(read, 1, 1, self.depth)[0])
            own = image_tree.read(self.depth, read) if has_own else None
            if own is not None and most is not None:
                raise FormatError(
                    f"lossless stream: a chunk of more than {most} images with a tree of its own "
                    "(damaged)"
                )
        else:
            forms.put_bits(add, [own is not None], 1, self.depth)
            if own is not None:
                image_tree.write(own, self.depth, add)
        return self.tree if own is None else own

    def own_rows(self, leaves: int) -> np.ndarray:
        """An own tree's starting tables: the model's tables' mean, for every leaf."""
        mean = adaptive.integer_rows(self.rows.astype(np.int64).sum(0, keepdims=True))
        return np.repeat(mean, leaves, axis=0)

    def decode_planes(
        self,
        data: bytes,
        n: int,
        channels: int,
        h: int,
        w: int,
        max_error: int = 0,
        depth: int | None = None,
        *,
        version: int = FORMAT_VERSION,
    ) -> np.ndarray:
        """Planes (n * C, H, W) int32 from ``encode_planes``'s stream, or a stream of container
        format ``version`` (FormatError if it is damaged)."""
        depth, step = depth or self.depth, 2 * max_error + 1
        if version < RASTER_VERSION:
            return lossless_legacy.decode_planes(self, data, n, channels, h, w, step, depth)
        decoder = Decoder(data, adaptive.raw_tables(self.depth))
        form = forms.read(channels, depth, self.depth, decoder.read)
        tree = self.tree_in_stream(None, step, read=decoder.read)
        chunk = raster.Chunk.of((n, form.planes(channels), h, w), form, depth, step, self.depth)
        read, out = raster.decode(chunk, tree, *self.start(tree))
        decoder.read_words(read)
        decoder.finish()
        return forms.inverse(form, out, channels, depth)

    def ideal_bits(
        self, planes: np.ndarray, channels: int, max_error: int = 0, depth: int | None = None
    ) -> float:
        """The bits of the pixels' part of the stream with the model's tree (what training
        measures the tables' prior by): they are coded, which takes as long as counting them."""
        step, depth = 2 * max_error + 1, depth or self.depth
        form, coded = forms.chosen(planes, channels, depth, self.depth, max_error)
        chunk = raster.Chunk.of(_shape(coded, form.planes(channels)), form, depth, step, self.depth)
        push, _ = raster.encode(coded, chunk, self.tree, self.rows, self.prior)
        return 32.0 * len(push(np.zeros(0, np.uint32)))


def _shape(coded: np.ndarray, k: int) -> tuple:
    """(n, k, H, W) of planes (n * k, H, W)."""
    return (len(coded) // k, k, *coded.shape[1:])


def fit_rows(counts: np.ndarray) -> np.ndarray:
    """Integer tables (leaves, 2T) from token counts (leaves, 2T - 1): half a count added to each
    token (Krichevsky-Trofimov), an escape of half a count (never needed)."""
    return np.stack([integer_frequencies(np.append(row + 0.5, 0.5)) for row in counts])


def check_rows(rows: np.ndarray, depth: int, leaves: int, *, what: str) -> None:
    t = hybrid.tokens_per_sign(depth)
    if (
        rows.dtype != np.uint32
        or rows.shape != (leaves, 2 * t)
        or (rows == 0).any()
        or (rows.sum(1, dtype=np.int64) != 1 << PRECISION).any()
    ):
        raise FormatError(
            f"{what}: not valid integer tables for {leaves} leaves of {depth}-bit residuals"
        )


class LosslessLevel:
    """The lossless coder as a level (a ``registry.Level``) at one bound and depth: what a
    lossless or near-lossless file (container quality 0) is coded and decoded with."""

    kind = "lossless"
    max_coded_pixels = WHOLE_CHUNK_PIXELS  # a chunk is decoded at once: its memory bounded here
    work_per_pixel = 1  # what the floor of bytes per coded pixel counts each one as (conv.py)
    max_image_values = LOSSLESS_VALUES  # encoded at once: the encoder's memory bounded here
    max_chunk_values = LOSSLESS_VALUES
    # Images per chunk: the coder's work per step is mostly fixed costs (a tree walk, a coder call
    # per leaf), so larger chunks of small images code faster (4096 Fashion-MNIST images: 2x 512's
    # speed).
    chunk_images = 4096

    def __init__(self, coder: LosslessCoder, max_error: int = 0, depth: int = 8):
        if not 0 <= max_error <= MAX_ERROR:
            raise ValueError(f"max_error {max_error} is not from 0 to {MAX_ERROR}")
        if not 1 <= depth <= coder.depth:
            raise ValueError(
                f"{depth}-bit images: the model's lossless coder codes 1 to {coder.depth} bits"
            )
        self.coder, self.max_error, self.depth = coder, max_error, depth

    def coded_pixels(self, n: int, shape) -> int:
        return n * int(np.prod(shape))

    def encode(self, images: np.ndarray, *, min_bytes: int = 0) -> bytes:
        """One ANS stream of images (N, H, W[, C]) whose values are below 2^depth."""
        channels = images.shape[3] if images.ndim == 4 else 1
        return self.coder.encode_planes(
            to_planes(images), channels, self.max_error, self.depth, min_bytes=min_bytes
        )[0]

    def decode(self, data: bytes, n: int, shape, *, version: int = FORMAT_VERSION) -> np.ndarray:
        channels = shape[2] if len(shape) == 3 else 1
        planes = self.coder.decode_planes(
            data, n, channels, shape[0], shape[1], self.max_error, self.depth, version=version
        )
        return from_planes(planes, n, shape).astype(np.uint8 if self.depth <= 8 else np.uint16)

    def ideal_bits(self, images: np.ndarray) -> float:
        channels = images.shape[3] if images.ndim == 4 else 1
        return self.coder.ideal_bits(to_planes(images), channels, self.max_error, self.depth)


# The lossless kind's section of the model file ("lossless", optional from format 5): its depth,
# its context tree and its tables. It has no quality levels: it codes the files whose header
# names quality 0, at the header's bound and depth (``bounded``).

MAX_LOSSLESS_LEAVES = 1 << 14
# Steps of the context tree's walk, taken for every pixel coded: the bundled trees are 22 (1,024
# leaves), 18 (512) and 10 (128) deep, and training (lossless_train.fit) stops growing at this
# depth, so a learned tree always loads. It keeps a hostile model's walk within ~3x the bundled
# one's (a 16,383-deep chain cost 70x: 26 s for a 10 KB near-lossless file).
MAX_LOSSLESS_DEPTH = 64


def to_dict(coder) -> dict:
    """The lossless coder's stored form: its depth, its context tree (int32 arrays) and tables."""
    return {
        "depth": coder.depth,
        "prior": coder.prior,
        "tree": {
            k: modelfile.encode_array(v.astype(np.int32)) for k, v in coder.tree.arrays().items()
        },
        "tables": modelfile.encode_array(np.asarray(coder.rows, np.uint32)),
    }


def from_body(body: dict, *, source: str = "model"):
    """The model's ``LosslessCoder``, or None; every array checked (FormatError)."""
    stored = body.get("lossless")
    if stored is None:
        return None
    if (
        not isinstance(stored, dict)
        or set(stored) != {"depth", "prior", "tree", "tables"}
        or not isinstance(stored["tree"], dict)
        or stored["prior"] not in PRIORS
    ):
        raise FormatError(f"{source}: lossless coder is malformed")
    depth = stored["depth"]
    if type(depth) is not int or not 1 <= depth <= 16:
        raise FormatError(f"{source}: lossless coder depth {depth!r} is not 1 to 16")
    tree = check_tree(
        {
            k: modelfile.decode_array(v, what=f"{source}: lossless tree {k}").astype(np.int64)
            for k, v in stored["tree"].items()
        },
        what=source,
    )
    if tree.leaves > MAX_LOSSLESS_LEAVES:
        raise FormatError(f"{source}: lossless coder has more than {MAX_LOSSLESS_LEAVES} leaves")
    if tree.depth > MAX_LOSSLESS_DEPTH:  # every pixel walks it: the work per pixel is bounded here
        raise LimitError(
            f"{source}: lossless tree depth {tree.depth} is more than the "
            f"{MAX_LOSSLESS_DEPTH} a model may have"
        )
    rows = modelfile.decode_array(stored["tables"], what=f"{source}: lossless tables")
    check_rows(rows, depth, tree.leaves, what=f"{source}: lossless tables")
    return LosslessCoder(depth, tree, rows, stored["prior"])


def read_section(body: dict, source: str) -> registry.Section | None:
    coder = from_body(body, source=source)
    return None if coder is None else registry.Section(coder, ())


def bounded(coder: LosslessCoder, max_error: int, depth: int, name: str) -> LosslessLevel:
    """The coder as the level of files within ``max_error`` (0: exact) of ``depth``-bit images.

    Raises:
        InputError: the coder codes fewer bits than ``depth``.
    """
    if depth > coder.depth:
        raise InputError(
            f"{depth}-bit images: model {name!r} codes losslessly up to {coder.depth} bits "
            "(train a model on such images)"
        )
    return LosslessLevel(coder, max_error, depth)


registry.register(
    registry.Kind(
        "lossless",
        fields=(registry.Field("lossless", since=5, stored_type=dict, store=to_dict),),
        read=read_section,
        bounded=bounded,
    )
)
