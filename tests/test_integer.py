"""The integer network that codes: exact products, an exact GELU table, the trained model's
numbers."""

import hashlib

import jax.numpy as jnp
import numpy as np
import pytest

import codec
from bitstream import container
from codec.errors import FormatError
from codec.levels import integer
from codec.levels.planes import to_tiles
from codec.training import tile_net as transforms

from .test_model import _body, _write

# Digests of the bundled model's coding of the first 300 test images at its top transform level
# (its latents and pixels) and at its top pixel level (the file). They
# pin the arithmetic itself: a machine, BLAS or numpy that computed anything differently
# fails here. (Retraining the bundled model changes them: update them with it.)
LATENTS_SHA256 = "010cf554956d83a1d69141d4b4ffe13144c699e9e253b5bfd354fec2eac50ac7"
PIXELS_SHA256 = "e26561ae55637a0f0203bcaced4288203c3ecd41b7ae3a07c72f06f29bd11b50"
# PIXEL_LEVEL_PAYLOAD_SHA256: the coded chunks (the container's header names the model, whose
# fingerprint changes when levels are added; the level's stream does not), the same as the file
# pinned before the quality scale (d3916b5b...) holds.
PIXEL_LEVEL_PAYLOAD_SHA256 = "e2a87b22bb8a602ee4b7e9ce2b50869ea6dd5d30f3c44b8e8c16a5cbe48dbcc3"
GELU_TABLE_SHA256 = "dcd14365a0e63bdf0e020171a8443325e589b63f8b0ee8cc4c6d7425503c48e8"


def test_gelu_table_is_the_same_on_every_machine():
    table = integer.gelu_table()
    assert hashlib.sha256(table.astype("<i8").tobytes()).hexdigest() == GELU_TABLE_SHA256
    grid = np.arange(
        -integer.GELU_RANGE << integer.ACT_BITS, (integer.GELU_RANGE << integer.ACT_BITS) + 1
    )
    for i in np.random.default_rng(0).choice(len(grid), 200, replace=False):
        # correctly rounded, computed in decimal
        assert table[i] == integer._gelu_exact(int(grid[i]))


def test_fixed_point_products_are_exact_at_the_worst_case_input():
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(784, 64)) * rng.uniform(0, 3, size=(1, 64))
    bound = 255 << 9
    layer = integer.FixedLinear(weight, bound, "test")
    # all terms of column 0 add up
    x = np.where(rng.random((32, 784)) < 0.5, -bound, bound) * np.sign(weight[:, 0])
    # integer matmul: no BLAS, no rounding
    exact = x.astype(np.int64) @ layer.weight.astype(np.int64)
    np.testing.assert_array_equal(
        np.ldexp(exact.astype(np.float64), -layer.shift), layer(x.astype(np.float64))
    )
    assert np.abs(exact).max() < 2**53


def test_weights_too_large_for_exact_coding_are_refused(tiny_model_path, tmp_path):
    import codec

    body = _body(tiny_model_path)
    body["params"]["synthesis_linear"]["data"] = np.full(784 * 784, 60000, "<f2").tobytes()
    with pytest.raises(FormatError, match="too large for exact fixed-point coding"):
        codec.load_model(_write(tmp_path / "huge.aecm", body))


def test_integer_coding_matches_the_trained_float_model(bundled, test_images):
    params = {k: jnp.asarray(v.astype(np.float32)) for k, v in bundled.part("tile").params.items()}
    tiles = to_tiles(test_images, bundled.part("tile").config.tile)
    y_float = np.asarray(transforms.analysis(params, jnp.asarray(tiles, jnp.float32) / 255.0))
    np.testing.assert_allclose(bundled.part("tile").analysis(tiles), y_float, atol=1e-3)
    top = bundled.part("tile").config.qualities  # the transform's highest level
    choice, symbols, _ = bundled.level(top).latents(tiles)
    latents = bundled.level(top).walk(choice, lambda lo, hi, *_: symbols[:, lo:hi])
    x_float = np.asarray(transforms.synthesis(params, jnp.asarray(latents, jnp.float32)))
    off = np.abs(
        np.clip(np.round(x_float * 255), 0, 255) - bundled.level(top).reconstruct(choice, symbols)
    )
    assert off.max() <= 1 and (off > 0).mean() < 0.005


def test_integer_context_matches_the_trained_float_context(bundled, test_images):
    params = {k: jnp.asarray(v.astype(np.float32)) for k, v in bundled.part("tile").params.items()}
    top = bundled.part("tile").config.qualities  # the transform's highest level
    choice, symbols, _ = bundled.level(top).latents(
        to_tiles(test_images, bundled.part("tile").config.tile)
    )
    latents = bundled.level(top).walk(choice, lambda lo, hi, *_: symbols[:, lo:hi])
    bounds = bundled.part("tile").config.bounds
    assert len(bounds) > 2  # the bundled model codes its latent in groups
    for g in range(1, len(bounds) - 1):
        fixed = bundled.part("tile").context(
            g, integer.fixed_latents(latents[:, : bounds[g]]), bundled.level(top).index, choice
        )
        floats = transforms.context(
            params, g, jnp.asarray(latents[:, : bounds[g]], jnp.float32), top - 1, choice
        )
        # Hidden units are rounded to 1/4096, so outputs differ by a few thousandths (measured: <
        # 0.004): a hundredth of a rung of the scale ladder, a hundredth of a quantizer step of the
        # mean.
        for a, b in zip(fixed, floats, strict=True):
            np.testing.assert_allclose(a, np.asarray(b), atol=0.01)


def test_coding_arithmetic_matches_the_pinned_reference(bundled, test_images):
    top = bundled.part("tile").config.qualities  # the transform's highest level
    choice, symbols, _ = bundled.level(top).latents(
        to_tiles(test_images, bundled.part("tile").config.tile)
    )
    digest = hashlib.sha256(
        choice.astype("<i4").tobytes() + symbols.astype("<i4").tobytes()
    ).hexdigest()
    assert digest == LATENTS_SHA256
    assert (
        hashlib.sha256(bundled.level(top).reconstruct(choice, symbols).tobytes()).hexdigest()
        == PIXELS_SHA256
    )
    # quality 9 (>= 38 dB) names the pixel level of step 14, the top one when this was pinned
    pixel_file = codec.compress(test_images, quality=9, model=bundled)
    payload = b"".join(data for _, data in container.unpack(pixel_file).chunks)
    assert hashlib.sha256(payload).hexdigest() == PIXEL_LEVEL_PAYLOAD_SHA256
