"""An image's own context tree, grown when it is coded and sent in its stream (numpy, its histograms
compiled; integers where it matters), as JPEG XL's modular mode does at its higher efforts.

A model's tree is learned on its training images; an image unlike them (a CT when the model saw
three, an upscaled photo) codes better with a tree of its own whose leaves also choose their
predictor (``context_tree.PREDICTORS``: CALIC's, the left or upper neighbour, W + N - NW, or JPEG
XL's weighted predictor, ``weighted.py``, whose largest neighbouring error is one more property).
The tree is grown level by level, greedily: each leaf splits on the property and threshold (a
quantile of the property) that most lower the entropy of its residuals' tokens, each side with the
predictor best for it, while that saves more than a split costs (SPLIT_BITS: its bits in the stream
and what a new table costs to learn). Two trees are grown: one whose splits are chosen for CALIC's
residuals (its leaves then choose their predictor), one whose splits are chosen knowing every leaf
chooses. The encoder keeps the tree, of these two and the model's, that ``adaptive_bits`` (and
``bits_of`` the tree itself) says codes the chunk in the fewest bits, without coding it twice.

BINS and the own tables' prior (``lossless.OWN_TREE_PRIOR``) were chosen on training images only
(the deep model's three and five of the photo model's, coded with their own trees): 16 bins and a
prior worth 64 symbols 2.591 bits per sample, 32 and 16 symbols 2.571; SPLIT_BITS 150 or 600
did no better than 300.

In the stream, after the form: the nodes breadth first, each a bit (leaf or not), then a leaf's
predictor (3 bits) or an inner node's property (5 bits) and threshold (a sign and an Elias-gamma
magnitude), all raw bits.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bitstream.errors import FormatError
from codec.levels import hybrid, kernels
from codec.levels.context_tree import OWN_PROPERTIES, PREDICTORS, Tree, check_tree
from codec.levels.lossless_forms import get_bits, put_bits

MAX_LEAVES = 256
MAX_LEVELS = 12
BINS = 32  # candidate thresholds per property: its quantiles
# The split search runs on two threads: the encoder's other core (a tree is the same on any number)
THREADS = 2
QUANTILE_SAMPLES = 1 << 14  # the quantiles are those of this many of the sample's pixels, about
SPLIT_BITS = 300.0
# A larger chunk grows its tree on this many of its pixels, drawn evenly: on the training images
# (python -m benchmarks.lossless_tuning) twice as many took 0.47% fewer bytes on photos and 0.51% on
# 16-bit images for 25% more time, which would take the held-out 16-bit images' encoding past twice
# JPEG XL's time.
GROW_SAMPLES = 1 << 16


def _bits(h: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Bits to code histograms h (..., A) with their own frequencies, plus the raw bits of their
    tokens."""
    h = h.astype(np.float64)
    total = h.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.where(total > 0, total * np.log2(np.maximum(total, 1)), 0) - np.where(
            h > 0, h * np.log2(np.maximum(h, 1)), 0
        ).sum(-1)
    return own + (h * raw).sum(-1)


def sample(pixels: int, most: int = GROW_SAMPLES, seed: int = 0):
    """(the pixels a chunk of this many grows its tree on, at most ``most``: sorted indices, or None
    for all; the share they are: what a split costs in the sample's bits is that share of its
    cost)."""
    if pixels <= most:
        return None, 1.0
    return np.sort(np.random.default_rng(seed).choice(pixels, most, replace=False)), most / pixels


def grow(
    props: np.ndarray, tokens: np.ndarray, t: int, search: int = 1, scale: float = 1.0
) -> Tree:
    """A tree over properties (P, N) for tokens (K, N) (each predictor's signed tokens of the N
    pixels, a ``sample`` of the chunk's worth ``scale`` of it), its splits chosen with the
    ``search`` predictors that code the whole sample best, its leaves' predictors among all."""
    n = tokens.shape[1]
    # the signed tokens the sample holds, renumbered 0..a-1: the histograms hold no empty symbols
    # (16-bit residuals have 151 tokens, a CT's use about half)
    sym = tokens.reshape(-1) + (t - 1)
    present = np.flatnonzero(np.bincount(sym, minlength=2 * t - 1))
    renumber = np.zeros(2 * t - 1, np.int16)
    renumber[present] = np.arange(len(present))
    a = len(present)
    raw = hybrid.raw_bits_of(np.abs(present - (t - 1))).astype(np.float64)
    sym = np.ascontiguousarray(renumber[sym].reshape(tokens.shape))
    order = np.argsort(_bits(_histograms(np.zeros(n, np.int32), sym, 1, a)[0], raw), kind="stable")
    sym = np.ascontiguousarray(sym[order])  # the searched first
    counts = np.arange(n + 1, dtype=np.float64)
    xlogx = counts * np.log2(np.maximum(counts, 1))  # c log2 c of every count a leaf can hold
    thresholds, binned = _bins(props)  # from here on the bins alone: x <= th[j] is bin <= j
    node_of = np.zeros(n, np.int32)  # each pixel's current leaf (index into this level's leaves)
    nodes = [_node()]
    level_nodes = [0]
    for _ in range(MAX_LEVELS):
        m = len(level_nodes)
        whole = _histograms(node_of, sym, m, a)  # (m, K, A)
        whole_bits = _bits(whole, raw)  # (m, K)
        unsplit = whole_bits[:, :search].min(1) - SPLIT_BITS * scale
        best = _best_splits(
            node_of, thresholds, binned, sym[:search], whole[:, :search], unsplit, raw, xlogx
        )
        split_here = best[1] >= 0
        for i, node in enumerate(level_nodes):
            nodes[node]["pred"] = int(whole_bits[i].argmin())
        if not split_here.any() or len(nodes) + 2 * split_here.sum() > 2 * MAX_LEAVES:
            break
        level_nodes, new_index = _split(nodes, level_nodes, split_here, best)
        goes_left = (
            np.take_along_axis(binned, best[1][node_of].clip(0)[None], 0)[0] <= best[3][node_of]
        )
        node_of = np.where(
            split_here[node_of], new_index[node_of, np.where(goes_left, 0, 1)], -1
        ).astype(np.int32)
        keep = node_of >= 0
        binned, sym, node_of = (
            np.ascontiguousarray(binned[:, keep]),
            np.ascontiguousarray(sym[:, keep]),
            node_of[keep],
        )
        if not level_nodes:
            break
    if level_nodes and len(node_of):  # the last level's predictors
        whole = _histograms(node_of, sym, len(level_nodes), a)
        for i, node in enumerate(level_nodes):
            nodes[node]["pred"] = int(_bits(whole[i], raw).argmin())
    for node in nodes:
        node["pred"] = int(order[node["pred"]])
    return _tree(nodes)


def _node() -> dict:
    return {"feature": 0, "threshold": 0, "children": None, "pred": 0}


def _bins(props: np.ndarray) -> tuple[list, np.ndarray]:
    """(each property's candidate thresholds: quantiles of a sample, each property's bin of
    every pixel: x <= th[j] is bin <= j)."""
    few = props[:, :: max(1, props.shape[1] // QUANTILE_SAMPLES)]
    levels = np.quantile(few, np.linspace(0, 1, BINS + 1)[1:-1], axis=1, method="lower").T
    thresholds = [np.unique(row.astype(np.int64)) for row in levels]
    table = np.full((len(props), BINS), np.iinfo(np.int32).max, np.int32)  # padded past the last
    for row, th in zip(table, thresholds, strict=True):
        row[: len(th)] = th
    binned = kernels.compiled().bin_properties(np.ascontiguousarray(props, np.int32), table)
    return thresholds, binned


def _histograms(node_of: np.ndarray, sym: np.ndarray, m: int, a: int) -> np.ndarray:
    """Counts (m, K, A) of each leaf's tokens by predictor."""
    return kernels.compiled().leaf_histograms(node_of, sym, m, a)


def _best_splits(node_of, thresholds, binned, searched, whole_searched, unsplit, raw, xlogx):
    """(bits, property or -1: no split, threshold, its bin) per leaf: the cheapest split of each,
    each side with its best predictor, if it beats ``unsplit`` (the leaf's bits less a split's
    cost). The properties are searched on THREADS threads (the compiled kernels release the GIL);
    the first property of equal cost wins, as one thread would find."""
    m, a = whole_searched.shape[0], whole_searched.shape[2]
    searched, whole_searched = np.ascontiguousarray(searched), np.ascontiguousarray(whole_searched)
    compiled = kernels.compiled()

    def search(features: list) -> list:
        buffer = np.empty(m * (BINS + 1) * len(searched) * a, np.int32)
        out = []
        for f in features:
            h = buffer[: m * (len(thresholds[f]) + 1) * len(searched) * a]
            h = h.reshape(m, len(thresholds[f]) + 1, -1, a)
            compiled.split_histograms(h, node_of, binned[f], searched)
            out.append((f, *compiled.best_splits(h, whole_searched, raw, xlogx)))
        return out

    features = [f for f, th in enumerate(thresholds) if len(th)]
    found = sorted(sum(_pool().map(search, [features[i::THREADS] for i in range(THREADS)]), []))
    best = (unsplit, np.full(m, -1), np.zeros(m, np.int64), np.zeros(m, np.int64))
    for f, cost, j in found:
        better = cost < best[0]
        best = (
            np.where(better, cost, best[0]),
            np.where(better, f, best[1]),
            np.where(better, thresholds[f][j], best[2]),
            np.where(better, j, best[3]),
        )
    return best


_POOLS: dict = {}


def _pool() -> ThreadPoolExecutor:
    """The split search's threads, started once per process (a forked child, which has none of its
    parent's threads, starts its own)."""
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS.clear()
        _POOLS[pid] = ThreadPoolExecutor(THREADS, thread_name_prefix="aecodec-tree")
    return _POOLS[pid]


def _split(nodes: list, level_nodes: list, split_here: np.ndarray, best) -> tuple[list, np.ndarray]:
    """Split the leaves of this level that gain: (the next level's nodes, each split leaf's two
    children as indices into it (m, 2), -1 where not split)."""
    new_level, new_index = [], np.full((len(level_nodes), 2), -1)
    for i in np.flatnonzero(split_here):
        node = level_nodes[i]
        nodes[node].update(
            feature=int(best[1][i]),
            threshold=int(best[2][i]),
            children=(len(nodes), len(nodes) + 1),
        )
        for side in (0, 1):
            new_index[i, side] = len(new_level)
            new_level.append(len(nodes))
            nodes.append(_node())
    return new_level, new_index


def adaptive_bits(counts: np.ndarray, rows: np.ndarray, prior: int, t: int) -> float:
    """About the bits the adaptive tables (``adaptive.py``) code a chunk in: each leaf's tokens
    (``counts`` (leaves, 2T - 1)) against a table that starts as its row of ``rows`` worth
    ``prior`` symbols and counts what it codes, i.e. the Dirichlet-multinomial code length with
    pseudo-counts prior * row (exact but for the tables' refresh lag), plus the raw bits."""
    raw = hybrid.raw_bits_of(np.abs(np.arange(2 * t - 1) - (t - 1))).astype(np.float64)
    alpha = prior * rows[:, :-1].astype(np.float64) / rows.sum(1, keepdims=True)
    n = counts.astype(np.float64)
    nats = (
        _lgamma(alpha.sum(1)) - _lgamma(alpha.sum(1) + n.sum(1))
        + (_lgamma(alpha + n) - _lgamma(alpha)).sum(1)
    )  # fmt: skip
    return float(-nats.sum() / np.log(2) + (n * raw).sum())


def _lgamma(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) of x > 0 (Stirling's series past 8, the recurrence below it; error < 1e-9)."""
    z = x + 8.0
    shift = np.log(x * (x + 1) * (x + 2) * (x + 3)) + np.log((x + 4) * (x + 5) * (x + 6) * (x + 7))
    series = 1 / (12 * z) - 1 / (360 * z**3) + 1 / (1260 * z**5)
    return (z - 0.5) * np.log(z) - z + 0.5 * np.log(2 * np.pi) + series - shift


def bits_of(tree: Tree, coder_depth: int) -> int:
    """The bits ``write`` puts the tree in."""
    bits = [0]

    def add(symbols, index):  # raw bits: table k - 1 codes k of them
        bits[0] += int((np.asarray(index, np.int64) + 1).sum())

    write(tree, coder_depth, add)
    return bits[0]


def _tree(nodes: list) -> Tree:
    """A Tree from nodes numbered breadth first (parents before children)."""
    count = len(nodes)
    is_leaf = np.array([nd["children"] is None for nd in nodes])
    idx = np.arange(count)
    left = np.array(
        [nd["children"][0] if nd["children"] else i for i, nd in enumerate(nodes)], np.int64
    )
    right = np.array(
        [nd["children"][1] if nd["children"] else i for i, nd in enumerate(nodes)], np.int64
    )
    leaf = np.where(is_leaf, np.cumsum(is_leaf) - 1, -1)
    feature = np.array([nd["feature"] for nd in nodes], np.int64)
    threshold = np.array([nd["threshold"] for nd in nodes], np.int64)
    predictor = np.array([nd["pred"] for nd in nodes])[is_leaf]
    arrays = {"feature": feature, "threshold": threshold, "leaf": leaf}
    arrays |= {"left": np.where(is_leaf, idx, left), "right": np.where(is_leaf, idx, right)}
    return _checked(arrays, predictor, what="an image's tree")


def write(tree: Tree, coder_depth: int, add) -> None:
    """Put the tree in the stream, breadth first (its nodes are numbered so)."""
    inner = tree.leaf < 0
    put_bits(add, [len(tree.leaf) - 1], 16, coder_depth)
    put_bits(add, inner.astype(np.int64), 1, coder_depth)
    put_bits(add, tree.predictor.astype(np.int64), 3, coder_depth)
    put_bits(add, tree.feature[inner], 5, coder_depth)
    threshold = tree.threshold[inner]
    put_bits(add, (threshold < 0).astype(np.int64), 1, coder_depth)
    v = np.abs(threshold) + 1
    length = np.frexp(v.astype(np.float64))[1]
    put_bits(add, length - 1, 5, coder_depth)
    for bits in np.unique(length):
        if bits > 1:
            put_bits(add, v[length == bits] - (1 << (bits - 1)), int(bits) - 1, coder_depth)


def read(coder_depth: int, read) -> Tree:
    """The tree ``write`` put; FormatError if the bits are not a tree."""
    count = int(get_bits(read, 1, 16, coder_depth)[0]) + 1
    if count > 2 * MAX_LEAVES:
        raise FormatError("lossless stream: an image's tree is too large (damaged)")
    inner = get_bits(read, count, 1, coder_depth).astype(bool)
    leaves = int((~inner).sum())
    predictor = get_bits(read, leaves, 3, coder_depth)
    if (predictor >= len(PREDICTORS)).any():
        raise FormatError("lossless stream: an image's tree names no predictor (damaged)")
    feature = np.zeros(count, np.int64)
    feature[inner] = get_bits(read, int(inner.sum()), 5, coder_depth)
    negative = get_bits(read, int(inner.sum()), 1, coder_depth).astype(bool)
    length = get_bits(read, int(inner.sum()), 5, coder_depth) + 1
    v = np.ones(len(length), np.int64) << np.minimum(length - 1, 40)
    for bits in np.unique(length):
        if bits > 1:
            v[length == bits] += get_bits(
                read, int((length == bits).sum()), int(bits) - 1, coder_depth
            )
    threshold = np.zeros(count, np.int64)
    threshold[inner] = np.where(negative, -(v - 1), v - 1)
    left, right = np.arange(count), np.arange(count)
    # breadth first: the i-th inner node's children are 2i+1, 2i+2
    children = 1 + 2 * np.cumsum(inner) - 2
    left[inner], right[inner] = children[inner], children[inner] + 1
    leaf = np.where(inner, -1, np.cumsum(~inner) - 1)
    if (left[inner] >= count).any() or (right[inner] >= count).any():
        raise FormatError("lossless stream: an image's tree is not a tree (damaged)")
    arrays = {"feature": feature, "threshold": threshold, "left": left, "right": right}
    return _checked(arrays | {"leaf": leaf}, predictor, what="lossless stream")


def _checked(arrays: dict, predictor: np.ndarray, *, what: str) -> Tree:
    """The tree of ``arrays`` with its leaves' predictors, checked a tree of at most MAX_LEVELS."""
    tree = check_tree(arrays, what=what, properties=len(OWN_PROPERTIES))
    # grow never goes deeper; each level is a step of every pixel's walk
    if tree.depth > MAX_LEVELS:
        raise FormatError(
            f"lossless stream: an image's tree is {tree.depth} levels deep, more than the "
            f"{MAX_LEVELS} an encoder grows (damage, or a file made to waste time)"
        )
    return Tree(tree.feature, tree.threshold, tree.left, tree.right, tree.leaf, predictor)
