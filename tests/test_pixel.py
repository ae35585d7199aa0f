"""The pixel coder of the high quality levels (codec/levels/pixel.py)."""

import numpy as np
import pytest

import bitstream
import codec
from codec.levels import modelfile, pixel, predict

from .test_model import _body, _write


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (5, 3), (28, 28), (29, 31)])
def test_schedule_visits_every_pixel_once_after_its_decoded_neighbours(shape):
    h, w = shape
    when = np.full((h + 2, predict.layout_width(w)), -2)  # the zero padding is known from the start
    when[2:, 2 : w + 2] = -1
    when = when.ravel()
    for t, here in enumerate(predict.schedule(h, w)):
        assert (when[here] == -1).all()  # not visited yet
        around = here[None] + predict.offsets(w)[:, None]
        assert (when[around] != -1).all() and (
            when[around] < t
        ).all()  # neighbours: padding or earlier
        when[here] = t
    assert (when.reshape(h + 2, predict.layout_width(w))[2:, 2 : w + 2] >= 0).all()


@pytest.mark.parametrize("step", [1, 7, 44])
def test_reconstruction_is_within_half_a_step_and_the_decoder_reproduces_it(test_images, step):
    x = test_images[:30]
    parts, encoded = pixel.quantize(x, step)
    assert np.abs(encoded.astype(int) - x).max() <= step // 2
    symbols = iter(s for s, _ in parts)
    decoded = pixel.reconstruct(x.shape, step, lambda contexts: next(symbols))
    np.testing.assert_array_equal(decoded, encoded)
    if step == 1:
        np.testing.assert_array_equal(decoded, x)  # step 1 is lossless


@pytest.mark.parametrize("step", [1, 25])  # 1: lossless, the widest tables
def test_fitted_tables_code_the_training_data_and_are_valid(test_images, step):
    rows = pixel.fit_tables(test_images[:200], step)
    pixel.check_tables(rows, step, what="tables")
    tables = pixel.tables(rows, step)
    x = test_images[200:260]
    data, expected = pixel.encode(x, step, tables)
    ideal = sum(bitstream.coder.ideal_bits(s, c, tables) for s, c in pixel.quantize(x, step)[0]) / 8
    assert ideal <= len(data) <= ideal * 1.01 + 8
    np.testing.assert_array_equal(pixel.decode(data, x.shape, step, tables), expected)


def test_pixel_levels_of_the_bundled_model_bound_the_error_of_every_pixel(bundled, test_images):
    levels = [
        (q, bundled.level(q).step) for q in bundled.qualities if bundled.level(q).kind == "pixel"
    ]
    assert len(levels) >= 4
    for q, step in levels:
        restored = codec.decompress(codec.compress(test_images[:100], quality=q))
        assert np.abs(restored.astype(int) - test_images[:100]).max() <= step // 2


def test_damaged_pixel_tables_are_a_format_error(tiny_model_path, tmp_path):
    body = _body(tiny_model_path)
    rows = modelfile.decode_array(body["pixel"][0], what="pixel").copy()
    rows[3, 0] += 1  # no longer sums to 2^24
    body["pixel"][0] = modelfile.encode_array(rows)
    with pytest.raises(
        codec.FormatError, match=r"pixel\[0\]: not valid integer tables for step 30"
    ):
        codec.load_model(_write(tmp_path / "bad.aecm", body))


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([], "one table set per pixel step"),
        # 2^30 * 2^30 * 16 elements wrap to 0 in int64: the length check must not be fooled by empty
        # data
        (
            [{"shape": [1 << 30, 1 << 30, 16], "dtype": "<u4", "data": b""}],
            "data length does not match shape",
        ),
    ],
)
def test_a_model_with_missing_or_absurd_pixel_tables_is_a_format_error(
    tiny_model_path, tmp_path, tables, message
):
    body = _body(tiny_model_path)
    body["pixel"] = tables
    with pytest.raises(codec.FormatError, match=message):
        codec.load_model(_write(tmp_path / "bad.aecm", body))


def test_estimating_the_size_at_an_unknown_level_is_an_input_error(bundled, test_images):
    with pytest.raises(codec.InputError, match="quality 16 is not on the scale 1-15"):
        bundled.estimate_bits(test_images[:2], 16)
