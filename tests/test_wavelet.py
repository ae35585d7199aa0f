"""The wavelet levels (codec/levels/wavelet.py, wavelet_transform.py) and their fitting."""

import hashlib

import numpy as np
import pytest

import codec
from bitstream.coder import integer_frequencies
from bitstream.errors import FormatError
from codec.errors import UsageError
from codec.levels import modelfile, wavelet
from codec.levels import wavelet_transform as wt
from codec.levels.model import Model
from codec.pretrained import DEFAULT_MODEL
from codec.training import wavelet_fit


def _photo(h: int, w: int, channels: int = 0, seed: int = 0) -> np.ndarray:
    """A deterministic smooth picture with edges and a little noise, uint8 (H, W[, C])."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = 120 + 60 * np.sin(7 * x + 3 * y) + 40 * (x + y > 0.8) + rng.normal(0, 4, (h, w))
    if channels:
        shifts = np.array([0, 25, -30])[:channels]
        base = base[..., None] + shifts * np.cos(5 * y)[..., None]
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b) ** 2))


@pytest.fixture(scope="module")
def training():
    return [_photo(67, 45, 3, 1), _photo(40, 71, 0, 2), _photo(64, 64, 3, 3)]


@pytest.fixture(scope="module")
def levels(training):
    return wavelet_fit.fit(training, (12.0, 6.0, 3.0), log=lambda _: None)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (5, 3), (17, 33), (67, 45), (99, 130)])
def test_transform_round_trip_is_exact_in_integers_on_odd_sizes(shape):
    x = np.random.default_rng(0).integers(-2000, 2000, (2, *shape))
    for depth in sorted({0, 1, wt.depth_for(*shape)}):
        bands = wt.forward(x, depth)
        assert {k: b.shape[1:] for k, b in bands.items()} == wt.band_shapes(*shape, depth)
        np.testing.assert_array_equal(wt.inverse(bands, depth), x)


def test_colour_transform_round_trip_is_exact():
    images = np.random.default_rng(1).integers(0, 256, (3, 9, 11, 3)).astype(np.uint8)
    np.testing.assert_array_equal(wt.from_coded(wt.to_coded(images), 3, (9, 11, 3)), images)


@pytest.mark.parametrize("shape", [(67, 45, 3), (45, 67), (33, 17, 3), (3, 5), (1, 1, 3)])
def test_level_round_trip_on_odd_sizes_meets_a_psnr_floor(levels, shape):
    images = np.stack([_photo(*shape[:2], shape[2] if len(shape) == 3 else 0, s) for s in (4, 5)])
    level = levels[-1]
    data = level.encode(images)
    decoded = level.decode(data, 2, shape)
    values, per_band = level.quantized(images)
    np.testing.assert_array_equal(decoded, wavelet.reconstructed(values, per_band, 2, shape))
    assert decoded.shape == images.shape and decoded.dtype == np.uint8
    assert _psnr(images, decoded) > 42
    assert 8 * len(data) >= level.ideal_bits(images)


def test_finer_steps_spend_more_bytes_for_more_psnr(levels):
    image = _photo(80, 90, 3, 7)[None]
    sizes = [len(level.encode(image)) for level in levels]
    psnrs = [
        _psnr(image, level.decode(level.encode(image), 1, image.shape[1:])) for level in levels
    ]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert psnrs == sorted(psnrs) and psnrs[-1] - psnrs[0] > 6


def test_stream_is_deterministic():
    # integers only, so that nothing depends on a machine's floating point
    i, j = np.mgrid[0:37, 0:29]
    image = np.stack([(i * 7 + j * 3) % 256, (i * j) % 251, (5 * i - 2 * j) % 256], axis=-1)
    steps = np.full(wavelet.STEPS_SHAPE, 50, np.int32)
    row = integer_frequencies(np.append(np.arange(wavelet.CLASSES, 0, -1), 1))
    signs = np.tile(integer_frequencies(np.array([3, 2, 0])), (wavelet.SIGN_CONTEXTS, 1))
    level = wavelet.WaveletLevel(steps, np.tile(row, (wavelet.CONTEXTS, 1)), signs)
    data = level.encode(image.astype(np.uint8)[None])
    assert hashlib.sha256(data).hexdigest() == (
        "35651ae26ac216cb05586c93c42d9b7f0853552f849f4b944bdd7a3ef8b5d6d6"
    )


def _model_bytes(levels) -> bytes:
    return modelfile.dumps(name="wavelet-test", meta={}, default=1, wavelet=levels)


def test_model_file_with_a_wavelet_section_codes_through_the_api(levels):
    model = Model(modelfile.loads(_model_bytes(levels)))
    assert [lv.kind for lv in model.levels] == ["wavelet"] * 3
    image = _photo(50, 61, 3, 11)
    # no measurements stored: quality 13, the top of the lossy scale, names its finest level
    restored = codec.decompress(codec.compress(image, model=model, quality=13), model=model)
    assert _psnr(image, restored) > 42


def test_wavelet_added_keeps_the_model_and_lists_its_fingerprint(training):
    base = modelfile.read(DEFAULT_MODEL)  # given a ladder: two of its levels
    meta = {k: v for k, v in modelfile.loads(base)["meta"].items() if k != "scale"}
    base = modelfile.amended(base, ladder=[["tile", 0], ["pixel", 0]], meta=meta)
    raw = wavelet_fit.wavelet_added(base, training, (8.0, 4.0), log=lambda _: None)
    old, new = modelfile.loads(base), modelfile.loads(raw)
    assert old["fingerprint"] in new["meta"]["same_model_as"]
    assert new["ladder"] == [*old["ladder"], ["wavelet", 0], ["wavelet", 1]]
    assert new["pixel"] == old["pixel"]
    model = Model(new)
    assert len(model.levels) == len(Model(old).levels) + 2
    assert len(model.part("wavelet")) == 2
    with pytest.raises(UsageError, match="already"):
        wavelet_fit.wavelet_added(raw, training, (8.0,), log=lambda _: None)


def test_damaged_streams_raise_format_error(levels):
    level, image = levels[0], _photo(40, 40, 3, 12)[None]
    data = level.encode(image)
    for damaged in (data[:-4], data + bytes(4), data[:4]):
        with pytest.raises(FormatError):
            level.decode(damaged, 1, image.shape[1:])


def test_tables_of_the_wrong_shape_are_refused(levels):
    stored = wavelet.to_dict(levels)
    rows = modelfile.decode_array(stored["tables"][0], what="t")
    stored["tables"][0] = modelfile.encode_array(rows[:-1])
    raw = modelfile.amended(_model_bytes(levels), wavelet=stored)
    with pytest.raises(FormatError, match="wavelet"):
        Model(modelfile.loads(raw))


@pytest.mark.parametrize("channels", [2, 4])
def test_images_with_alpha_are_coded_a_channel_at_a_time(levels, channels):
    rgb = _photo(33, 27, 3, 13)
    image = np.dstack([rgb, 255 - rgb[..., :1]])[..., -channels:][None]
    level = levels[-1]
    data = level.encode(image)
    restored = level.decode(data, 1, image.shape[1:])
    assert restored.shape == image.shape and _psnr(image, restored) > 40
    planes = np.moveaxis(image, 3, 1).reshape(channels, 33, 27)
    assert data == level.encode(planes)  # the same stream as its channels as grey images


def test_the_encoders_bit_costs_are_rounded_exactly_in_integers():
    """The rate-distortion choice's costs, round(64 log2 f), decided in integers near a rounding
    boundary: the same on every machine whatever its log2 (checked against 60-digit decimals)."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    rng = np.random.default_rng(5)
    for f in [1, 2, 3, (1 << 24) - 1, *rng.integers(1, 1 << 24, 300).tolist()]:
        exact = int(
            (Decimal(f).ln() / Decimal(2).ln() * 64 + Decimal("0.5")).to_integral_value(
                rounding="ROUND_FLOOR"
            )
        )
        assert wavelet._rounded_log2(f) == exact, f
    rows = np.tile(integer_frequencies(np.append(np.arange(wavelet.CLASSES, 0, -1), 1)), (3, 1))
    f = rows[:, : wavelet.CLASSES].astype(np.int64)
    expected = [[64 * 24 - wavelet._rounded_log2(int(v)) for v in row] for row in f]
    assert wavelet.rates_of(rows).tolist() == expected


def test_grey_images_with_a_channel_axis_are_coded_as_grey(levels):
    """(N, H, W, 1), as zarr hands a chunk cut across a colour array's channels: the grey stream,
    and the axis back (it raised IndexError in the colour transform)."""
    grey = np.stack([_photo(40, 30, seed=s) for s in (5, 6)])
    for level in levels:
        data = level.encode(grey[..., None])
        assert data == level.encode(grey)
        restored = level.decode(data, 2, (40, 30, 1))
        assert np.array_equal(restored, level.decode(data, 2, (40, 30))[..., None])
