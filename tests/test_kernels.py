"""The compiled loops (codec/levels/_kernels.pyx) give exactly what the numpy definitions give
(predict.py, context_tree.py, hybrid.py, weighted.py, lossless.py), carry their source's stamp, and
are needed by lossless coding only."""

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

import codec
import codec.api
import codec.levels
from bitstream import container
from codec import cli
from codec.levels import _kernels as kernels
from codec.levels import context_tree, hybrid, predict, weighted
from codec.levels import kernels as loader


def _planes(rng, n, h, w, depth):
    """Smooth-ish planes with edges and noise: every CALIC bin and tree branch gets pixels."""
    top = (1 << depth) - 1
    y, x = np.mgrid[0:h, 0:w]
    base = (
        x[None] * rng.integers(1, 9, (n, 1, 1)) + y[None] * rng.integers(-5, 5, (n, 1, 1))
    ) << max(depth - 8, 0)
    noise = rng.integers(-(1 << (depth - 3)), 1 << (depth - 3), (n, h, w))
    edges = (rng.random((n, h, w)) < 0.05) * rng.integers(0, top, (n, h, w))
    return np.clip(base + noise + edges, 0, top).astype(np.int32)


def _random_tree(rng, props, nodes=301):
    """A valid tree splitting on random properties at thresholds drawn from the properties'
    values."""
    feature, threshold, left, right = [], [], [], []
    for i in range(nodes // 2):
        f = int(rng.integers(0, props.shape[0]))
        feature.append(f)
        threshold.append(int(rng.choice(props[f])))
        left.append(2 * i + 1)
        right.append(2 * i + 2)
    leaves = nodes - nodes // 2
    feature += [0] * leaves
    threshold += [0] * leaves
    idx = np.arange(nodes)
    is_leaf = idx >= nodes // 2
    leaf = np.where(is_leaf, np.cumsum(is_leaf) - 1, -1)
    return context_tree.check_tree(
        {
            "feature": np.array(feature),
            "threshold": np.array(threshold),
            "left": np.where(is_leaf, idx, np.array(left + [0] * leaves)),
            "right": np.where(is_leaf, idx, np.array(right + [0] * leaves)),
            "leaf": leaf,
        },
        what="test",
        properties=len(context_tree.OWN_PROPERTIES),
    )


def _reference_walk(tree, props):
    """The tree's walk in numpy, level by level."""
    node = np.zeros(props.shape[1], np.int64)
    cols = np.arange(props.shape[1])
    for _ in range(tree.depth):
        goes_left = props[tree.feature[node], cols] <= tree.threshold[node]
        node = np.where(goes_left, tree.left[node], tree.right[node])
    return tree.leaf[node]


@pytest.mark.parametrize("depth", [8, 12, 16])
def test_compiled_calic_equals_numpy_predict_at_every_depth(depth):
    rng = np.random.default_rng(depth)
    planes = _planes(rng, 7, 13, 10, depth)
    r, offsets, top = predict.padded(planes), predict.offsets(10), (1 << depth) - 1
    for here in predict.schedule(13, 10):
        want = predict.calic(r, here, offsets, top, depth)
        got = predict.calic_compiled(predict.pixel_major(planes), here, offsets, top, depth)
        np.testing.assert_array_equal(got, want)


def test_compiled_walk_equals_a_level_by_level_walk():
    rng = np.random.default_rng(1)
    props = rng.integers(-300, 300, (21, 5000)).astype(np.int32)
    tree = _random_tree(rng, props)
    np.testing.assert_array_equal(tree.apply(props), _reference_walk(tree, props))
    np.testing.assert_array_equal(tree.apply(props.astype(np.int64)), _reference_walk(tree, props))


@pytest.mark.parametrize("step", [1, 3, 9])
def test_compiled_leaves_equal_the_numpy_properties_walked(step):
    """Leaves from properties computed pixel by pixel (pixel-major planes, the plane before, an own
    tree's extra property, near-lossless steps) equal numpy's properties walked level by level."""
    rng = np.random.default_rng(step)
    n, h, w, depth = 9, 11, 14, 10
    planes = _planes(rng, n, h, w, depth)
    r, offsets = predict.padded(planes), predict.offsets(w)
    e = predict.padded(rng.integers(0, 200, (n, h, w)).astype(np.int32))
    previous = predict.padded(rng.integers(0, 50, (n, h, w)).astype(np.int32))
    for here in predict.schedule(h, w)[5:40:7]:
        pred = predict.calic(r, here, offsets, (1 << depth) - 1, depth).astype(np.int64)
        extra = rng.integers(-500, 500, pred.shape)
        props = np.vstack(
            [
                context_tree.properties(r, e, here, offsets, pred, 2, previous, step),
                extra.reshape(1, -1),
            ]
        )
        tree = _random_tree(rng, props)
        got = tree.leaves_at(
            predict.pixel_major(planes),
            np.ascontiguousarray(e.T),
            here,
            offsets,
            pred,
            2,
            np.ascontiguousarray(previous.T),
            step,
            extra,
        )
        np.testing.assert_array_equal(got, _reference_walk(tree, props))


@pytest.mark.parametrize("depth", [8, 16])
def test_compiled_weighted_predictor_equals_numpy_state(depth):
    rng = np.random.default_rng(depth + 1)
    n, h, w = 5, 12, 17
    planes, top = _planes(rng, n, h, w, depth), (1 << depth) - 1
    r, offsets = predict.padded(planes), predict.offsets(w)
    reference, compiled = weighted.State(r.shape), weighted.PixelMajorState(r.shape[1], n)
    rt = predict.pixel_major(planes)
    for here in predict.schedule(h, w):
        want = reference.predict(r, here, offsets, top)
        got = compiled.predict(rt, here, offsets, top)
        for g, x in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, x)
        reference.update(here, r[:, here])
        compiled.update(here, r[:, here])
    np.testing.assert_array_equal(compiled.true, reference.true.T)


def test_compiled_own_prediction_picks_each_leafs_predictor():
    rng = np.random.default_rng(5)
    planes = _planes(rng, 4, 9, 8, 8)
    r, rt, offsets = predict.padded(planes), predict.pixel_major(planes), predict.offsets(8)
    here = predict.schedule(9, 8)[9]
    calic = predict.calic(r, here, offsets, 255, 8).astype(np.int64)
    wp = rng.integers(0, 256, calic.shape)
    tree = context_tree.Tree([0, 0, 0], [100, 0, 0], [1, 1, 2], [2, 1, 2], [-1, 0, 1])
    for which in range(len(context_tree.PREDICTORS)):
        tree.predictor = np.array([which, (which + 1) % len(context_tree.PREDICTORS)], np.int8)
        leaves = rng.integers(0, 2, calic.size).astype(np.int16)
        a, b, c = (r[:, here + o] for o in offsets[:3])
        choices = [calic, a, b, np.clip(a + b - c, 0, 255), wp]
        want = np.choose(tree.predictor[leaves].reshape(calic.shape), choices)
        np.testing.assert_array_equal(
            tree.prediction(calic, rt, here, offsets, 255, leaves, wp), want
        )


def test_compiled_count_finds_the_leaves_whose_tables_went_stale():
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 1000, (50, 9)).astype(np.int64) * 64
    fresh = rng.integers(0, 70000, 50).astype(np.int64)
    leaves = rng.integers(0, 20, 300).astype(np.int16)
    signed = rng.integers(-4, 5, 300)
    want_counts, want_fresh = counts.copy(), fresh.copy()
    np.add.at(want_counts, (leaves, signed + 4), 64)
    np.add.at(want_fresh, leaves, 64)
    touched = np.unique(leaves)
    want_stale = touched[want_fresh[touched] * 8 >= want_counts[touched].sum(1)]
    stale = kernels.count(counts, fresh, leaves, signed, 4, 64, 8)
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(fresh, want_fresh)
    np.testing.assert_array_equal(stale, want_stale)
    assert 0 < len(stale) < len(touched)  # the case is not trivial


def test_compiled_raw_bits_and_reconstruction_invert_the_hybrid_tokens():
    rng = np.random.default_rng(4)
    q = rng.integers(-40000, 40000, (6, 7)) * (rng.random((6, 7)) < 0.5) + rng.integers(
        -40, 40, (6, 7)
    )
    token, raw, _ = hybrid.token_of(np.abs(q))
    signed = np.where(q < 0, -token, token).reshape(-1).astype(np.int32)
    sent, bits = kernels.raw_bits(
        signed, hybrid.tokens_per_sign(16), hybrid.DIRECT_BITS, hybrid.MSB
    )
    np.testing.assert_array_equal(sent, np.flatnonzero(np.abs(signed) >= hybrid.DIRECT))
    np.testing.assert_array_equal(bits, hybrid.raw_bits_of(np.abs(signed))[sent] - 1)
    here = np.arange(7, dtype=np.int64) + 30
    r, e = np.zeros((60, 6), np.int32), np.zeros((60, 6), np.int32)
    pred = np.full((6, 7), 1 << 17, np.int64)
    values = kernels.reconstruct(
        r,
        e,
        here,
        pred,
        pred,
        signed,
        sent,
        raw.reshape(-1)[sent].astype(np.int32),
        1,
        (1 << 18) - 1,
        False,
        hybrid.DIRECT_BITS,
        hybrid.MSB,
    )
    np.testing.assert_array_equal(values, pred + q)
    np.testing.assert_array_equal(np.abs(q), hybrid.magnitude_of(token, raw))
    np.testing.assert_array_equal(r[here].T, pred + q)
    np.testing.assert_array_equal(e[here].T, np.abs(q))
    assert (
        kernels.raw_bits(
            np.array([5, -hybrid.tokens_per_sign(8)], np.int32),
            hybrid.tokens_per_sign(8),
            hybrid.DIRECT_BITS,
            hybrid.MSB,
        )[0][0]
        == -1
    )


FIXTURES = Path(__file__).parent / "data"
# (file stem, compress arguments): format 6, written by the numpy-only coder (commit ef253ae);
# format 7 (raster order, ``raster.py``), written of the same images by commit-time main
CASES = {
    # made with the Fashion-MNIST model (by shape then; named now, as the default measures)
    "fashion-lossless": {"lossless": True, "model": "fmnist"},
    "fashion-k2": {"max_error": 2, "model": "fmnist"},
    # the photo model named: the one chosen by measuring is kept per image size for the process
    "photo-lossless": {"lossless": True, "model": "photo"},  # colour, an own tree tried
    "coffee-lossless": {"lossless": True, "model": "photo"},  # colour, own tree, weighted predictor
    "moon-lossless": {"lossless": True, "model": "photo"},  # grey, own tree, weighted predictor
    "deep12-lossless": {"lossless": True, "model": "deep"},  # 12-bit data in uint16
    "deep12-k3": {"max_error": 3, "model": "deep"},
}


def _case(stem: str) -> tuple[dict, bytes, np.ndarray]:
    kwargs = dict(CASES[stem.split("-", 1)[1]])
    if kwargs.get("model") in ("deep", "fmnist", "photo"):
        pretrained = Path(codec.__file__).parent / "pretrained"
        kwargs["model"] = codec.load_model(pretrained / f"{kwargs['model']}.aecm")
    original = np.load(FIXTURES / f"format6-{stem.split('-', 1)[1]}.npy")
    return kwargs, (FIXTURES / f"{stem}.aec").read_bytes(), original


def _decodes_within_bound(kwargs: dict, blob: bytes, original: np.ndarray) -> None:
    back = codec.decompress(blob, model=kwargs.get("model"))
    assert back.dtype == original.dtype
    assert np.abs(back.astype(np.int64) - original).max() == kwargs.get("max_error", 0)


@pytest.mark.parametrize("stem", sorted(CASES))
def test_format6_lossless_files_still_decode(stem):
    kwargs, blob, original = _case(f"format6-{stem}")
    assert blob[3] & 0x7F == 6
    _decodes_within_bound(kwargs, blob, original)


@pytest.mark.parametrize("stem", sorted(CASES))
def test_format7_lossless_files_decode_and_reencode_byte_for_byte(stem):
    kwargs, blob, original = _case(f"format7-{stem}")
    assert blob[3] & 0x7F == 7
    _decodes_within_bound(kwargs, blob, original)
    assert_same_stream(codec.compress(original, **kwargs), blob)


def assert_same_stream(again: bytes, pinned: bytes) -> None:
    """The same chunks and header, byte for byte; the model it names may be a later fingerprint of
    the same levels (a model that grew, listing the pinned one in ``meta["same_model_as"]``)."""
    a, b = container.unpack(again), container.unpack(pinned)
    assert a.chunks == b.chunks and a.shapes == b.shapes
    named = {**b.header, "model": a.header["model"]}
    assert a.header == named
    if again != pinned:
        model = codec.api.model_named_by(a.header)
        assert any(
            f.startswith(b.header["model"]["fingerprint"]) for f in model.meta["same_model_as"]
        )


def _without_compiled_loops(monkeypatch):
    monkeypatch.setitem(sys.modules, "codec.levels._kernels", None)  # a checkout never built
    monkeypatch.delattr(codec.levels, "_kernels", raising=False)


def test_lossless_coding_without_the_compiled_loops_says_how_to_build_them(monkeypatch):
    _without_compiled_loops(monkeypatch)
    with pytest.raises(ImportError, match="not built: install the package with pip"):
        codec.compress(np.zeros((28, 28), np.uint8), lossless=True)


def test_lossy_levels_code_without_the_compiled_loops(monkeypatch, test_images):
    """A package installed without a C compiler still codes lossy: the tile and pixel levels."""
    model = codec.load_model()
    _without_compiled_loops(monkeypatch)
    images = test_images[:6]
    for quality in (1, 13):  # the lowest and the highest lossy quality
        back = codec.decompress(codec.compress(images, quality=quality, model=model), model=model)
        assert back.shape == images.shape and back.dtype == images.dtype


def test_a_target_psnr_is_met_without_the_compiled_loops_by_the_levels_they_do_not_need(
    monkeypatch, test_images
):
    """--target-psnr measures the whole scale: without a C compiler the (near-)lossless levels
    are left out of the choice, not an error."""
    model = codec.load_model()
    _without_compiled_loops(monkeypatch)
    images = test_images[:20]
    assert codec.api.pick_quality(images, target_psnr=30, model=model)["quality"] < 14
    highest = codec.api.pick_quality(images, target_psnr=99, model=model)
    assert not highest["met"] and highest["quality"] == 13


def test_the_build_carries_its_sources_stamp_and_a_stale_one_says_how_to_rebuild(monkeypatch):
    folder = Path(codec.levels.__file__).parent
    sources = (folder / "_kernels.pyx").read_bytes() + (folder / "_raster.h").read_bytes()
    assert kernels.SOURCE_SHA256 == hashlib.sha256(sources).hexdigest()
    monkeypatch.setattr(kernels, "SOURCE_SHA256", "0" * 64)
    monkeypatch.setattr(loader, "_checked", None)
    with pytest.raises(ImportError, match=r"another version of _kernels.pyx.*pip install -e \."):
        loader.compiled()
    monkeypatch.undo()
    assert loader.compiled() is kernels


def test_the_compiled_loops_compute_the_properties_and_predictors_the_trees_name():
    assert kernels.PROPERTIES == context_tree.OWN_PROPERTIES
    assert kernels.PREDICTORS == context_tree.PREDICTORS
    tree = context_tree.Tree([0], [0], [0], [0], [0])
    planes = np.zeros((2, 3, 4), np.int32)
    rt, here = predict.pixel_major(planes), predict.schedule(3, 4)[0]
    with pytest.raises(ValueError, match="rebuild"):
        kernels.leaves_at(
            rt,
            rt,
            np.zeros((0, 0), np.int32),
            np.zeros((0, 0), np.int64),
            here,
            predict.offsets(4),
            np.zeros((2, 1), np.int64),
            0,
            1,
            tree._nodes,
            tree._leaf16,
            20,
        )


def test_the_predictor_reads_zeros_beyond_every_border():
    """The one padded layout: a neighbour outside the plane (left, above, above-right) is 0."""
    h, w = 4, 5
    planes = np.arange(1, 1 + 2 * h * w, dtype=np.int32).reshape(2, h, w)
    r, offsets = predict.padded(planes), predict.offsets(w)
    outside = np.zeros((2, h + 2 + 2, w + 2 + 2), np.int32)  # a wide frame of zeros
    outside[:, 2 : h + 2, 2 : w + 2] = planes
    moves = [(0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0), (-2, 1)]  # a b c d aa bb bd
    for here in predict.schedule(h, w):
        i, j = here // predict.layout_width(w) - 2, here % predict.layout_width(w) - 2
        for got, (di, dj) in zip(predict.neighbours(r, here, offsets), moves, strict=True):
            np.testing.assert_array_equal(got, outside[:, i + di + 2, j + dj + 2])


def test_the_command_line_says_in_one_line_that_the_compiled_loops_are_missing(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), np.uint8))
    _without_compiled_loops(monkeypatch)
    assert cli.main(["-q", "--lossless", "x.npy"]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("aecodec: error: x.npy: aecodec's compiled loops") and "pip install" in err
    )
    assert "internal error" not in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "x.npy").exists() and not (tmp_path / "x.npy.aec").exists()
