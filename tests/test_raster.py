"""The lossless coder's compiled raster pass (``codec/levels/raster.py``, ``_raster.h``): its rANS
coder is constriction's word for word, its properties and tokens are the numpy definitions', and
its streams round-trip for every tree, predictor, step and form."""

import constriction
import numpy as np
import pytest

import codec
from benchmarks.budget import chain_tree
from bitstream.coder import Decoder, Encoder
from codec.api import PHOTO_MODEL
from codec.errors import FormatError
from codec.levels import context_tree, hybrid, image_tree, kernels, lossless, predict, raster
from codec.levels import lossless_forms as forms
from codec.levels.planes import to_planes


def _effective_table(model, size: int) -> np.ndarray:
    """constriction's integer table for a float model, cumulative (each symbol coded alone from an
    empty coder leaves its start as the state)."""
    starts = []
    for s in range(size):
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(np.array([s], np.int32), model)
        words = coder.get_compressed()
        starts.append(int(words[0]) if len(words) else 0)
    return np.array([*starts, 1 << 24], np.uint32)


@pytest.mark.parametrize("seed", range(4))
def test_the_raster_coder_pushes_and_reads_the_words_constriction_does(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 120))
    p = rng.random(size) ** 4 + 1e-6
    model = constriction.stream.model.Categorical(p, perfect=False)
    cum = _effective_table(model, size)
    symbols = rng.choice(size, 3000, p=p / p.sum()).astype(np.int32)
    before = constriction.stream.stack.AnsCoder()
    before.encode_reverse(rng.integers(0, size, 40).astype(np.int32), model)
    words = before.get_compressed()  # a stream to continue, as the raster part does
    reference = constriction.stream.stack.AnsCoder(words)
    reference.encode_reverse(symbols, model)
    compiled = kernels.compiled()
    pushed = compiled.rans_push(words, cum[symbols], (cum[symbols + 1] - cum[symbols]))
    assert np.array_equal(pushed, reference.get_compressed())
    read, left = compiled.rans_pop(reference.get_compressed(), cum, len(symbols))
    assert np.array_equal(read, symbols) and np.array_equal(left, words)


def _picture(seed: int, shape=(37, 53, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    base = 120 + 70 * np.sin(x / 7 + seed) * np.cos(y / 5)
    planes = [base + 20 * c + rng.normal(0, 6, base.shape) for c in range(shape[2])]
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def _chunk(images: np.ndarray, depth: int = 8, max_error: int = 0):
    channels = images.shape[3] if images.ndim == 4 else 1
    form, coded = forms.chosen(to_planes(images), channels, depth, 8, max_error)
    k = form.planes(channels)
    chunk = raster.Chunk.of((len(coded) // k, k, *coded.shape[1:]), form, depth, 1, 8)
    return form, coded, chunk


def test_the_raster_pass_computes_the_numpy_definitions_properties_and_tokens():
    images = np.stack([_picture(1), _picture(2)])
    form, coded, chunk = _chunk(images)
    n, k, h, w = chunk.shape
    tree = codec.load_model(PHOTO_MODEL).part("lossless").tree
    props, tokens, counts = raster.sample(coded, chunk, np.arange(coded.size), tree)
    expected, expected_tokens = lossless.original_properties(coded, k, form, 8, predictors=True)
    # numpy's columns go plane by plane, image by image, diagonal by diagonal; raster's pixel by
    # pixel, the planes of a pixel together
    here = np.concatenate(predict.schedule(h, w))
    y, x = here // (w + 3) - 2, here % (w + 3) - 2
    c, i, at = np.meshgrid(np.arange(k), np.arange(n), np.arange(len(here)), indexing="ij")
    order = (((i * h + y[at]) * w + x[at]) * k + c).reshape(-1)
    assert np.array_equal(props[:, order], expected)
    assert np.array_equal(tokens[:, order], expected_tokens)
    leaf = tree.apply(expected[: len(context_tree.PROPERTIES)])
    t = hybrid.tokens_per_sign(8)
    found = np.zeros_like(counts)
    np.add.at(found, (leaf, expected_tokens[0] + t - 1), 1)
    assert np.array_equal(counts, found)


def _trees():
    """Trees of every kind the stream carries: the model's, and own trees that split on the
    weighted predictor's error and predict with each predictor."""
    photo = codec.load_model(PHOTO_MODEL).part("lossless").tree
    own = [chain_tree(3, p, f) for p, f in ((0, 0), (1, 5), (2, 11), (3, 19), (4, 20))]
    return [photo, *own]


# near-lossless chunks use the model's tree (index 0)
@pytest.mark.parametrize("tree_index, max_error", [(i, 0) for i in range(6)] + [(0, 2)])
def test_every_tree_and_step_round_trips_through_the_stream(tree_index, max_error):
    coder = codec.load_model(PHOTO_MODEL).part("lossless")
    tree = _trees()[tree_index]
    images = np.stack([_picture(3), _picture(4)])
    form, coded, _ = _chunk(images, max_error=max_error)
    k = form.planes(3)
    chunk = raster.Chunk.of((2, k, *coded.shape[1:]), form, 8, 2 * max_error + 1, 8)
    rows, prior = coder.start(tree)
    push, restored = raster.encode(coded, chunk, tree, rows, prior)
    words = push(np.zeros(0, np.uint32))
    read, out = raster.decode(chunk, tree, rows, prior)
    assert read(words).size == 0  # every word read
    assert np.array_equal(out, restored)
    assert np.abs(out.astype(int) - coded).max() == max_error


def test_a_16_bit_chunk_round_trips_with_an_own_tree(monkeypatch):
    rng = np.random.default_rng(5)
    image = (_picture(5)[..., 0].astype(np.uint16) * 16 + rng.integers(0, 16, (37, 53))).astype(
        np.uint16
    )
    model = codec.load_model(codec.api.DEEP_MODEL)
    blob = codec.compress(image, lossless=True, model=model, depth=12)
    assert np.array_equal(codec.decompress(blob, model=model), image)


def test_a_damaged_stream_is_a_format_error():
    images = _picture(6)[None]
    level = codec.load_model(PHOTO_MODEL).level_of({"quality": 0, "max_error": 0, "depth": 8})
    stream = level.encode(images)
    rng = np.random.default_rng(0)
    failures = 0
    for _ in range(12):
        damaged = bytearray(stream)
        for at in rng.integers(len(stream) // 4, len(stream), 3):
            damaged[at] ^= 1 << int(rng.integers(8))
        try:
            back = level.decode(bytes(damaged), 1, images.shape[1:])
        except FormatError:
            failures += 1
            continue
        assert not np.array_equal(back, images)  # never silently the original
    assert failures >= 10  # the end marker catches nearly every damage


def test_the_adaptive_estimate_foresees_the_stream_within_one_percent():
    coder = codec.load_model(PHOTO_MODEL).part("lossless")
    images = np.stack([_picture(7, (64, 80, 3))])
    _, coded, chunk = _chunk(images)
    for tree in _trees()[:2]:
        rows, prior = coder.start(tree)
        estimate = image_tree.adaptive_bits(raster.counts(coded, chunk, tree), rows, prior, coder.t)
        push, _ = raster.encode(coded, chunk, tree, rows, prior)
        coded_bits = 32 * len(push(np.zeros(0, np.uint32)))
        assert abs(estimate - coded_bits) <= 0.01 * coded_bits + 64


def test_the_raster_part_sits_between_constriction_parts_of_one_stream():
    coder = codec.load_model(PHOTO_MODEL).part("lossless")
    _, coded, chunk = _chunk(_picture(8)[None])
    tables = lossless.adaptive.AdaptiveTables(coder.rows, coder.depth, coder.prior)
    encoder = Encoder(tables)
    forms.put_bits(encoder.add, [5, 9], 4, 8)
    push, _ = raster.encode(coded, chunk, coder.tree, coder.rows, coder.prior)
    encoder.add_words(push)
    forms.put_bits(encoder.add, [3], 2, 8)
    decoder = Decoder(encoder.finish(), tables)
    assert list(forms.get_bits(decoder.read, 2, 4, 8)) == [5, 9]
    read, out = raster.decode(chunk, coder.tree, coder.rows, coder.prior)
    decoder.read_words(read)
    assert list(forms.get_bits(decoder.read, 1, 2, 8)) == [3]
    decoder.finish()
    assert np.array_equal(out, coded)
