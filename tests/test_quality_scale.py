"""One quality scale for every model (codec/levels/scale.py): what each quality means, that every
bundled model serves all of them on any input, target searches over the whole scale, and the
default model chosen by measuring."""

import numpy as np
import pytest

import codec
from bitstream import container
from codec import api
from codec.errors import FormatError, InputError
from codec.levels import modelfile, scale
from codec.levels.model import Model
from codec.pretrained import DEEP_MODEL, DEFAULT_MODEL, PHOTO_MODEL

from .conftest import unmeasured


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def items():
    return codec.data.fashion_mnist("test")[:200]


@pytest.mark.parametrize("path", [DEFAULT_MODEL, PHOTO_MODEL])
def test_every_bundled_scale_rises_and_lands_near_its_targets_on_the_validation_images(path):
    model = api.load_model(path)
    assert model.scale_rows, "the bundled model stores its scale measurements"
    rows = [model.measured(q) for q in scale.QUALITIES[: scale.NEAR_LOSSLESS - 1]]
    for low, high in zip(rows, rows[1:], strict=False):
        assert high["bytes_per_image"] >= low["bytes_per_image"] and high["psnr"] >= low["psnr"]
    assert rows[0]["bytes_per_image"] == min(r["bytes_per_image"] for r in model.scale_rows)
    for q, row in zip(scale.QUALITIES[1:], rows[1:], strict=False):
        if rows[0]["psnr"] <= scale.TARGET_DB[q]:  # above the model's smallest level
            assert abs(row["psnr"] - scale.TARGET_DB[q]) <= 1.5, q
    assert rows[-1]["psnr"] >= 46.0  # visually lossless at the top of the lossy scale


def test_fashion_mnist_qualities_land_near_their_targets_on_the_test_split(items):
    for q in scale.QUALITIES[1 : scale.NEAR_LOSSLESS - 1]:
        restored = codec.decompress(codec.compress(items, quality=q))
        assert abs(psnr(items, restored) - scale.TARGET_DB[q]) <= 2.0, q


def test_top_of_the_scale_is_near_lossless_then_lossless(items):
    near = codec.decompress(codec.compress(items, quality=scale.NEAR_LOSSLESS))
    assert np.abs(near.astype(int) - items).max() == 1
    exact = codec.decompress(codec.compress(items, quality=scale.LOSSLESS))
    np.testing.assert_array_equal(exact, items)


def _inputs():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(rng.integers(-3, 4, (2, 40, 52, 3)), axis=2).clip(0, 255) + 100
    return {
        "grey 28x28": codec.data.fashion_mnist("test")[:4],
        "small 30x30": np.pad(codec.data.fashion_mnist("test")[:4], ((0, 0), (1, 1), (1, 1))),
        "colour 40x52": smooth.clip(0, 255).astype(np.uint8),
        "large grey 70x90": rng.integers(0, 256, (1, 70, 90)).astype(np.uint8),
    }


@pytest.mark.parametrize("path", [DEFAULT_MODEL, PHOTO_MODEL])
@pytest.mark.parametrize("name", list(_inputs()))
def test_every_bundled_model_accepts_every_quality_on_any_input(path, name):
    images, model = _inputs()[name], api.load_model(path)
    done = {}
    for q in codec.QUALITIES:
        key = tuple(model.fields_for(q, images.shape[1:]).values())
        if key not in done:  # qualities naming the same level code the same bytes
            done[key] = codec.decompress(codec.compress(images, quality=q, model=model))
        assert done[key].shape == images.shape
    np.testing.assert_array_equal(done[(0, 0)], images)


def test_the_lossless_model_serves_the_scale_by_its_bounds():
    model = api.load_model(DEEP_MODEL)
    images = (np.arange(2 * 20 * 24).reshape(2, 20, 24) * 37 % 256).astype(np.uint8)
    assert model.fields_for(None) == {"quality": 0, "max_error": 0}
    for q in (1, 6, 13, 14):
        restored = codec.decompress(codec.compress(images, quality=q, model=model))
        assert np.abs(restored.astype(int) - images).max() == model.fields_for(q)["max_error"]
    deep = images.astype(np.uint16) * 200
    back = codec.decompress(codec.compress(deep, quality=scale.NEAR_LOSSLESS, model=model))
    assert np.abs(back.astype(int) - deep).max() == 1
    with pytest.raises(InputError, match="losslessly or near-losslessly only"):
        codec.compress(deep, quality=6, model=model)


@pytest.mark.parametrize("quality", [0, 16, 2.5, True, "7", None])
def test_a_quality_off_the_scale_is_refused_with_the_scale(quality):
    if quality is None:
        assert scale.check_quality(6) == 6
        return
    with pytest.raises(InputError, match="not on the scale 1-15"):
        codec.compress(np.zeros((1, 28, 28), np.uint8), quality=quality)


def test_a_target_psnr_search_crosses_into_near_lossless_and_lossless(items):
    model = api.load_model(DEFAULT_MODEL)
    near = api.pick_quality(items[:50], target_psnr=50.0, model=model)
    assert near["quality"] == scale.NEAR_LOSSLESS and near["met"]
    exact = api.pick_quality(items[:50], target_psnr=100.0, model=model)
    assert exact["quality"] == scale.LOSSLESS and exact["met"]
    roomy = api.pick_quality(items[:50], target_bytes_per_image=10_000, model=model)
    assert roomy["quality"] == scale.LOSSLESS


def test_a_target_search_without_a_model_measures_every_bundled_model(items):
    pick = api.pick_quality(items[:50], target_psnr=30.0)
    assert pick["met"] and pick["psnr"] >= 30.0
    assert pick["model"].name == api.load_model(DEFAULT_MODEL).name


@pytest.mark.parametrize(
    "name, grow",
    [
        ("framed 30x30", lambda x: np.pad(x, ((0, 0), (1, 1), (1, 1)))),
        ("padded 32x32", lambda x: np.pad(x, ((0, 0), (0, 4), (0, 4)))),
    ],
)
def test_the_default_codes_small_items_of_other_sizes_as_cheaply_as_at_28(items, name, grow):
    grown = grow(items)
    for q in (4, 8, 12):
        plain, big = codec.compress(items, quality=q), codec.compress(grown, quality=q)
        restored = codec.decompress(big)
        named = container.unpack(big).header["model"]["fingerprint"]
        assert api.load_model(DEFAULT_MODEL).fingerprint.startswith(named)
        assert len(big) <= 1.3 * len(plain), (name, q)
        assert psnr(grown, restored) >= psnr(items, codec.decompress(plain)) - 0.5


def test_photos_go_to_the_photo_model_by_measuring():
    rng = np.random.default_rng(1)
    photo = (np.cumsum(rng.normal(0, 4, (1, 96, 128, 3)), axis=2) + 128).clip(0, 255)
    chosen = api.choose_model(photo.astype(np.uint8), quality=6)
    assert chosen.name == api.load_model(PHOTO_MODEL).name


def test_stored_scale_rows_are_checked_when_a_model_loads():
    raw = DEFAULT_MODEL.read_bytes()
    meta = dict(modelfile.loads(raw)["meta"])
    meta["scale"] = {"rows": [{"level": 99, "bytes_per_image": 1.0, "psnr": 30.0}]}
    with pytest.raises(FormatError, match="names no level"):
        Model(modelfile.loads(modelfile.amended(raw, meta=meta)))
    meta["scale"] = {"rows": [{"max_error": 1, "bytes_per_image": float("nan"), "psnr": 30.0}]}
    with pytest.raises(FormatError, match="impossible size"):
        Model(modelfile.loads(modelfile.amended(raw, meta=meta)))


def test_a_model_without_measurements_spreads_the_scale_over_its_levels_in_order():
    model = unmeasured(DEFAULT_MODEL)
    numbers = [model.fields_for(q)["quality"] for q in scale.QUALITIES[: scale.NEAR_LOSSLESS - 1]]
    assert numbers[0] == 1 and numbers[-1] == len(model.levels)
    assert numbers == sorted(numbers)
