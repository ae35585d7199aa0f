"""Learning the lossless coder's context tree and tables (training only: scikit-learn, numpy).

The tree is scikit-learn's decision tree with the entropy criterion, grown best-first to a number
of leaves: each split is the one that most lowers the entropy of the residual tokens, which is what
a static table per leaf then codes. Its float thresholds become integers (properties are integers,
so ``x <= t`` is ``x <= floor(t)``) and the tables are counted on more pixels than the tree saw.
"""

from __future__ import annotations

import numpy as np

from codec.errors import UsageError
from codec.levels import hybrid, lossless, modelfile
from codec.levels import lossless_forms as forms
from codec.levels.context_tree import Tree
from codec.levels.model import Model
from codec.levels.planes import to_planes


def lossless_properties(images: np.ndarray, depth: int, coder_depth: int | None = None):
    """(properties (P, pixels), signed tokens (pixels,)) of images (N, H, W[, C]), coded losslessly
    in the form the coder would choose for them as one chunk."""
    a = np.asarray(images).astype(np.int64)
    channels = 1 if a.ndim == 3 else a.shape[3]
    form = forms.choose(to_planes(a), channels, depth, coder_depth or depth)
    coded = forms.forward(form, to_planes(a), channels, depth)
    return lossless.original_properties(coded, form.planes(channels), form, depth)


def _sample(
    groups, depth: int, limit: int, rng, batch_pixels: int = 1 << 22
) -> tuple[np.ndarray, np.ndarray]:
    """Properties and tokens of groups of same-shape images, at most ``limit`` pixels drawn evenly
    (computed ``batch_pixels`` at a time: 20 properties of 8 bytes each per pixel add up)."""
    total = sum(g.size for g in groups)
    keep = min(1.0, limit / total)
    props, tokens = [], []
    for g in groups:
        # a photo: its own form
        step = 1 if g[0].size >= 1 << 16 else max(1, batch_pixels // max(1, g[0].size))
        for start in range(0, len(g), step):
            p, t = lossless_properties(g[start : start + step], depth)
            if keep < 1:
                chosen = np.flatnonzero(rng.random(len(t)) < keep)
                p, t = p[:, chosen], t[chosen]
            props.append(p)
            tokens.append(t)
    return np.concatenate(props, axis=1), np.concatenate(tokens)


def grow_tree(
    props: np.ndarray, tokens: np.ndarray, leaves: int, min_leaf: int, max_depth: int | None = None
) -> Tree:
    """The context tree: scikit-learn's, as integer arrays (leaf nodes point at themselves)."""
    # 1.0 s to import (-X importtime); only growing a tree needs it, not the rest of training
    from sklearn.tree import DecisionTreeClassifier

    fitted = (
        DecisionTreeClassifier(
            criterion="entropy",
            max_leaf_nodes=leaves,
            min_samples_leaf=min_leaf,
            max_depth=max_depth,
            random_state=0,
        )
        .fit(props.T, tokens)
        .tree_
    )
    left, right = fitted.children_left.astype(np.int64), fitted.children_right.astype(np.int64)
    is_leaf = left < 0
    idx = np.arange(len(left))
    leaf = np.where(is_leaf, np.cumsum(is_leaf) - 1, -1)
    feature = np.where(is_leaf, 0, fitted.feature).astype(np.int64)
    threshold = np.where(is_leaf, 0, np.floor(fitted.threshold)).astype(np.int64)
    return Tree(
        feature, threshold, np.where(is_leaf, idx, left), np.where(is_leaf, idx, right), leaf
    )


def count_tokens(tree: Tree, props: np.ndarray, tokens: np.ndarray, depth: int) -> np.ndarray:
    """(leaves, 2T - 1) counts of each leaf's signed tokens."""
    t = hybrid.tokens_per_sign(depth)
    counts = np.zeros((tree.leaves, 2 * t - 1), np.int64)
    for start in range(0, len(tokens), 1 << 20):
        leaf = tree.apply(props[:, start : start + (1 << 20)])
        np.add.at(counts, (leaf, tokens[start : start + (1 << 20)] + t - 1), 1)
    return counts


def fit(
    groups,
    depth: int,
    *,
    leaves: int = 1024,
    tree_pixels: int = 3_000_000,
    count_pixels: int = 20_000_000,
    seed: int = 0,
    log=print,
) -> lossless.LosslessCoder:
    """A lossless coder for ``depth``-bit images, learned on groups of same-shape images (each an
    array (N, H, W[, C])): the tree on up to ``tree_pixels`` pixels, the tables on
    ``count_pixels``."""
    rng = np.random.default_rng(seed)
    groups = [np.asarray(g) for g in groups]
    props, tokens = _sample(groups, depth, count_pixels, rng)
    few = rng.choice(len(tokens), min(tree_pixels, len(tokens)), replace=False)
    min_leaf = max(50, len(few) // (20 * leaves))
    # no deeper than a model file may hold (a bound real data never met: 1,024 leaves grew 22 deep)
    tree = grow_tree(props[:, few], tokens[few], leaves, min_leaf, lossless.MAX_LOSSLESS_DEPTH)
    log(
        f"lossless: a context tree of {tree.leaves} leaves (depth {tree.depth}) on "
        f"{len(few):,} pixels, "
        f"tables counted on {len(tokens):,}"
    )
    return lossless.LosslessCoder(
        depth, tree, lossless.fit_rows(count_tokens(tree, props, tokens, depth))
    )


def lossless_added(
    images,
    base: bytes | None,
    *,
    name: str,
    leaves: int,
    depth: int | None,
    command: str,
    data_name: str,
    log,
) -> bytes:
    """A model file: ``base`` (a model file's bytes, or None: a model of the lossless coder alone)
    with a lossless coder learned on ``images`` (an array or a list of arrays), measured on a share
    held out.

    Raises:
        UsageError: ``depth`` is not 1 to 16, or the images hold values beyond it.
    """
    groups = _same_shape_groups(images)
    depth = depth or max(8 * g.dtype.itemsize for g in groups)
    if not 1 <= depth <= 16 or any(int(g.max()) >> depth for g in groups):
        raise UsageError(f"--depth {depth}: not 1 to 16, or the images hold values beyond it")
    learn, held = _hold_out(groups)
    coder = fit(learn, depth, leaves=leaves, log=log)
    samples = sum(g.size for g in held)
    by_prior = _bits_by_prior(coder, depth, held, samples, log)
    # nothing held out: the prior that adapts most
    prior = min(by_prior, key=by_prior.get) if by_prior else lossless.PRIORS[0]
    coder = lossless.LosslessCoder(depth, coder.tree, coder.rows, prior)
    bps = by_prior.get(prior)
    info = {
        "depth": depth,
        "leaves": coder.leaves,
        "prior": prior,
        "data": data_name,
        "command": command,
        "held_out_bits_per_sample": bps,
        "held_out_samples": int(samples),
        "held_out_by_prior": {str(k): v for k, v in by_prior.items()},
    }
    log(
        f"lossless: {bps:.3f} bits per sample on {samples:,} held-out samples"
        if bps
        else "lossless: none held out"
    )
    if base is None:
        return modelfile.dumps(
            name=name,
            meta={"lossless": info},
            default=0,
            lossless=coder,
        )
    return _added_to(base, coder, info)


def _bits_by_prior(coder, depth: int, held: list, samples: int, log) -> dict:
    """Bits per held-out sample under each prior: how much the tables are worth against what is
    coded (none where nothing is held out)."""
    by_prior = {}
    for prior in lossless.PRIORS if samples else ():
        level = lossless.LosslessLevel(
            lossless.LosslessCoder(depth, coder.tree, coder.rows, prior), 0, depth
        )
        by_prior[prior] = sum(level.ideal_bits(g) for g in held) / samples
        log(
            f"lossless: tables worth {prior} symbols: {by_prior[prior]:.4f} bits per sample "
            "held out"
        )
    return by_prior


def _added_to(base: bytes, coder, info: dict) -> bytes:
    """``base`` (a model file) with ``coder`` as its lossless coder; its levels stay as they were
    (its files still decode: the new model lists the old one's fingerprint)."""
    body = modelfile.loads(base, what="--init")
    meta = {
        **body["meta"],
        "lossless": info,
        "same_levels_as": [*body["meta"].get("same_levels_as", []), body["fingerprint"]],
    }
    upgraded = (
        {}
        if body["format"] >= 4
        else {  # the fields format 4 added, as a format-3 file implies them
            "default": modelfile.default_from_body(body, len(Model(body).levels)),
            "conv": None,
        }
    )
    raw = modelfile.amended(
        base,
        meta=meta,
        lossless=lossless.to_dict(coder),
        format=modelfile.FORMAT,
        **upgraded,
    )
    Model(modelfile.loads(raw))  # it loads
    return raw


def _same_shape_groups(images) -> list:
    """Images as arrays (N, H, W[, C]) of one shape each."""
    if isinstance(images, np.ndarray):
        return [images]
    by_shape: dict = {}
    for image in images:
        by_shape.setdefault((image.shape, image.dtype.str), []).append(image)
    return [np.stack(v) for v in by_shape.values()]


def _hold_out(groups: list) -> tuple[list, list]:
    """(groups to learn on, groups to measure on): every tenth image of a group of ten or more, else
    every fifth group (of single images), so that what is measured was never learned from."""
    if len(groups) >= 5 and all(len(g) < 10 for g in groups):
        learn = [g for i, g in enumerate(groups) if i % 5 != 4]
        return learn, [g for i, g in enumerate(groups) if i % 5 == 4]
    learn = [g[[i for i in range(len(g)) if i % 10 != 9]] if len(g) >= 10 else g for g in groups]
    return learn, [g[9::10] for g in groups if len(g) >= 10]
