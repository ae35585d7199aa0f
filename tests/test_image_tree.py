"""An image's own context tree: grown at encode time, sent in the stream, kept only when it wins."""

import numpy as np
import pytest

import codec
from bitstream.coder import Decoder, Encoder
from codec.api import PHOTO_MODEL
from codec.errors import FormatError
from codec.levels import adaptive, context_tree, hybrid, image_tree, lossless
from codec.levels import lossless_forms as forms
from codec.levels.planes import to_planes


def _upscaled(seed: int = 0) -> np.ndarray:
    """A smooth noisy grey image, every pixel doubled across and down (nearest-neighbour
    upscaling)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:96, :128]
    small = np.clip(100 + 60 * np.sin(x / 9) * np.cos(y / 13) + rng.normal(0, 6, x.shape), 0, 255)
    return np.repeat(np.repeat(small.astype(np.uint8), 2, 0), 2, 1)


def _grown(image: np.ndarray, search: int) -> context_tree.Tree:
    planes = to_planes(image[None]).astype(np.int32)
    form = forms.choose(planes, 1, 8, 8)
    props, tokens = lossless.original_properties(
        forms.forward(form, planes, 1, 8), 1, form, 8, predictors=True
    )
    return image_tree.grow(props, tokens, hybrid.tokens_per_sign(8), search)


def _tables():
    return adaptive.AdaptiveTables(
        np.full((1, 2 * hybrid.tokens_per_sign(8)), 1, np.uint32), 8, 256
    )


@pytest.mark.parametrize("search", [1, len(context_tree.PREDICTORS)])
def test_an_image_tree_reads_back_as_written(search):
    tree = _grown(_upscaled(), search)
    # an upscaled image: leaves that predict from a neighbour
    assert tree.leaves > 4 and tree.predicts
    tables = _tables()
    encoder = Encoder(tables)
    image_tree.write(tree, 8, encoder.add)
    decoder = Decoder(encoder.finish(), tables)
    back = image_tree.read(8, decoder.read)
    decoder.finish()
    for name in ("feature", "threshold", "left", "right", "leaf", "predictor"):
        assert np.array_equal(getattr(back, name), getattr(tree, name)), name


def test_an_upscaled_image_codes_smaller_with_its_own_tree_and_round_trips(monkeypatch):
    image = _upscaled(1)
    model = codec.load_model(PHOTO_MODEL)
    own = codec.compress(image, lossless=True, model=model)
    assert np.array_equal(codec.decompress(own, model=model), image)
    monkeypatch.setattr(
        lossless.LosslessCoder, "own_tree", lambda *a: (None, None)
    )  # the model's tree
    models_tree = codec.compress(image, lossless=True, model=model)
    assert np.array_equal(codec.decompress(models_tree, model=model), image)
    assert len(own) < 0.8 * len(models_tree)


def test_bits_that_are_not_a_tree_are_a_format_error():
    tables = _tables()
    encoder = Encoder(tables)
    forms.put_bits(encoder.add, [2], 16, 8)  # three nodes
    forms.put_bits(encoder.add, [1, 1, 1], 1, 8)  # all inner: their children would lie past the end
    forms.put_bits(encoder.add, np.zeros(8, np.int64), 8, 8)
    with pytest.raises(FormatError, match="tree"):
        image_tree.read(8, Decoder(encoder.finish(), tables).read)


def test_a_chunk_of_many_images_unlike_the_models_grows_a_tree_from_its_first_images(
    monkeypatch,
):
    """An archive of small images unlike the model's training images: its chunks carry their own
    tree, found on their first images (``OWN_TREE_SCREEN`` values), and decode."""
    images = np.stack([_upscaled(i)[:32, :32] for i in range(200)])
    model = codec.load_model(PHOTO_MODEL)
    level = model.level_of({"quality": 0, "max_error": 0, "depth": 8})
    own = level.encode(images)
    assert np.array_equal(level.decode(own, len(images), images.shape[1:]), images)
    monkeypatch.setattr(lossless.LosslessCoder, "own_tree", lambda *a: (None, None))
    assert len(own) < 0.85 * len(level.encode(images))


def _own_tree_bytes(seed: int) -> int:
    image = _upscaled(seed)
    return len(codec.compress(image, lossless=True, model=codec.load_model(PHOTO_MODEL)))


@pytest.mark.filterwarnings("ignore:os.fork")  # JAX, imported by other tests, warns: unused here
def test_a_forked_process_grows_its_own_trees_as_its_parent():
    """The split search's threads belong to the process that started them: a child forked after
    the parent grew a tree (a Dask or multiprocessing worker) starts its own and codes alike."""
    import multiprocessing

    parent = _own_tree_bytes(3)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_own_tree_bytes, (3,)).get(timeout=60) == parent
