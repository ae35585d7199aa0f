"""The forms a chunk takes before lossless coding: colour transforms, palettes, value sets."""

import numpy as np
import pytest

import codec
from bitstream.coder import Decoder, Encoder
from codec.api import PHOTO_MODEL
from codec.errors import FormatError
from codec.levels import adaptive, hybrid
from codec.levels import lossless_forms as forms
from codec.levels.planes import to_planes


@pytest.mark.parametrize("depth", [8, 12, 16])
@pytest.mark.parametrize("colour", [forms.SUBTRACT_GREEN, forms.YCOCG])
def test_colour_transforms_invert_exactly_and_keep_the_depth(depth, colour):
    x = np.random.default_rng(depth).integers(0, 1 << depth, (4, 3, 9, 11))
    x[0] = [[[0]], [[(1 << depth) - 1]], [[0]]]  # the extremes wrap
    y = forms._colour_forward(x, colour, depth)
    assert y.min() >= 0 and y.max() < 1 << depth
    assert np.array_equal(forms._colour_inverse(y, colour, depth), x)


def _form_round_trip(form, channels, depth, coder_depth):
    tables = adaptive.AdaptiveTables(
        np.full((1, 2 * hybrid.tokens_per_sign(coder_depth)), 1, np.uint32), coder_depth, 256
    )
    encoder = Encoder(tables)
    forms.write(form, channels, depth, coder_depth, encoder.add)
    decoder = Decoder(encoder.finish(), tables)
    back = forms.read(channels, depth, coder_depth, decoder.read)
    decoder.finish()
    return back


@pytest.mark.parametrize("depth, coder_depth", [(8, 8), (12, 16), (16, 16)])
def test_a_form_with_palette_and_value_sets_reads_back_as_written(depth, coder_depth):
    rng = np.random.default_rng(depth)
    palette = rng.integers(0, 1 << depth, (200, 3))
    used = np.unique(np.concatenate([[0, (1 << depth) - 1], rng.integers(0, 1 << depth, 300)]))
    form = forms.Form(forms.PALETTE, palette, (used,))
    back = _form_round_trip(form, 3, depth, coder_depth)
    assert back.colour == forms.PALETTE and np.array_equal(back.palette, palette)
    assert np.array_equal(back.values[0], used)
    grey = _form_round_trip(forms.Form(forms.NONE, None, (used[1:],)), 1, depth, coder_depth)
    assert np.array_equal(grey.values[0], used[1:])


def test_a_few_colour_image_is_coded_as_palette_indices_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (12, 3), dtype=np.uint8)
    image = colours[np.repeat(rng.integers(0, 12, (20, 45)), 2, axis=1)]
    planes = to_planes(image[None])
    form = forms.choose(planes, 3, 8, 8)
    assert form.colour == forms.PALETTE and len(form.palette) == 12
    model = codec.load_model(PHOTO_MODEL)
    blob = codec.compress(image, lossless=True, model=model)
    assert np.array_equal(codec.decompress(blob, model=model), image)
    # the palette beats even near-lossless
    assert len(blob) < len(codec.compress(image, max_error=1, model=model))


def test_a_histogram_stretched_image_is_coded_as_ranks_and_round_trips():
    rng = np.random.default_rng(1)
    y, x = np.mgrid[:64, :80]  # at least MIN_VALUE_SET_SAMPLES
    smooth = np.clip(50 + x + y // 2 + rng.normal(0, 2, x.shape), 0, 84).astype(np.int64)
    image = (smooth * 3).astype(np.uint8)  # every third value: a stretched histogram
    form = forms.choose(to_planes(image[None]), 1, 8, 8)
    assert form.values[0] is not None and np.array_equal(form.values[0], np.unique(image))
    small = image[:32, :32]  # a small 8-bit image: its runs would cost what they save
    assert forms.choose(to_planes(small[None]), 1, 8, 8).values == ()
    model = codec.load_model(PHOTO_MODEL)
    blob = codec.compress(image, lossless=True, model=model)
    assert np.array_equal(codec.decompress(blob, model=model), image)


def test_a_damaged_value_set_is_a_format_error():
    runs_past_the_end = forms.Form(forms.NONE, None, (np.array([3, 250, 255]),))
    tables = adaptive.AdaptiveTables(
        np.full((1, 2 * hybrid.tokens_per_sign(8)), 1, np.uint32), 8, 256
    )
    encoder = Encoder(tables)
    forms.write(runs_past_the_end, 1, 8, 8, encoder.add)
    data = encoder.finish()
    with pytest.raises(FormatError, match="value set"):
        forms.read(1, 7, 8, Decoder(data, tables).read)  # read as 7-bit: the runs overrun 2^7
