"""Encoder effort: the convolutional levels' latents refined against their decoder
(``codec/levels/refine.py``): files never larger, the same decoder and format."""

import numpy as np
import pytest

import codec
from codec import api
from codec.errors import InputError
from codec.levels import refine


@pytest.fixture(scope="module")
def photo():
    """A held-out photo of the photo model (scikit-image's coffee), a 96 x 128 crop."""
    from skimage import data

    return np.ascontiguousarray(data.coffee()[150:246, 200:328])


@pytest.fixture(scope="module")
def photo_model():
    return codec.load_model(api.PHOTO_MODEL)


def _conv_levels(model):
    return [lv for lv in model.levels if lv.kind == "conv"]


def _error(a, b) -> float:
    return float(np.sum((a.astype(np.float64) - b) ** 2))


def test_effort_never_makes_a_convolutional_file_larger_and_the_same_decoder_reads_it(
    photo, photo_model
):
    smaller = 0
    for level in _conv_levels(photo_model)[2:]:
        plain = level.encode(photo[None])
        refined = level.with_effort(2).encode(photo[None])
        assert len(refined) <= len(plain)
        back = level.decode(refined, 1, photo.shape)[0]
        assert back.shape == photo.shape and back.dtype == np.uint8
        if refined != plain:  # kept only where its cost at the level's trade-off is lower
            smaller += len(refined) < len(plain)
            lam = photo_model.part("conv").config["lambdas"][level.index]
            cost = [
                lam * _error(level.decode(d, 1, photo.shape)[0], photo) / photo.size
                + 8 * len(d) / (photo.shape[0] * photo.shape[1])
                for d in (plain, refined)
            ]
            assert cost[1] < cost[0]
    assert smaller >= 1  # the refinement does find smaller files on a real photo


def test_a_refined_latent_never_moves_away_from_zero_past_its_plain_rounding():
    rng = np.random.default_rng(0)
    layers = [
        (rng.normal(0, 0.2, (3, 3, 4, 8)).astype(np.float32), np.zeros(8, np.float32), True),
        (rng.normal(0, 0.2, (3, 3, 2, 4)).astype(np.float32), np.zeros(4, np.float32), False),
    ]
    start = rng.normal(0, 3, (1, 4, 4, 4)).astype(np.float32)
    plain = np.round(start).astype(np.int64)
    context = {
        "layers": layers,
        "x": rng.uniform(0, 255, (1, 16, 16, 1)).astype(np.float32),
        "mask": np.ones((1, 16, 16, 1), np.float32),
        "sigma": np.full(start.shape, 2.0, np.float32),
        "to_latent": (np.ones(4, np.float32), np.zeros(start.shape, np.float32)),
        "lam": 0.01,
    }
    s = refine.refined_symbols(plain, start, context, 20)
    assert s.dtype == np.int64 and s.shape == plain.shape
    assert np.all(np.abs(s) <= np.abs(plain)) and np.all(s * plain >= 0)


def test_the_synthesis_gradient_is_the_float_networks_own(photo_model):
    rng = np.random.default_rng(1)
    layers = refine.float_layers(photo_model.part("conv").nets["synthesis"])
    y = rng.normal(0, 1, (1, 3, 4, layers[0][0].shape[2])).astype(np.float32)
    target = rng.uniform(0, 1, (1, 24, 32, 3)).astype(np.float32)

    def loss(v):
        out, _ = refine.synthesis_and_gradient(layers, v, np.zeros_like)
        return float(np.sum((out.astype(np.float64) - target) ** 2))

    _, grad = refine.synthesis_and_gradient(layers, y, lambda out: 2 * (out - target))
    i = np.unravel_index(np.argmax(np.abs(grad)), grad.shape)
    step = np.zeros_like(y)
    step[i] = 1e-2
    numeric = (loss(y + step) - loss(y - step)) / 2e-2
    assert numeric == pytest.approx(float(grad[i]), rel=0.02)


def test_effort_leaves_the_other_kinds_streams_as_they_were(images):
    for quality in (2, 6, 11):
        assert codec.compress(images, quality=quality, effort=3) == codec.compress(
            images, quality=quality
        )


@pytest.mark.parametrize("effort", [-1, 4, 1.5, True, "2"])
def test_an_effort_out_of_range_is_refused_by_name(images, effort):
    with pytest.raises(InputError, match="effort"):
        codec.compress(images, effort=effort)


def test_the_command_line_offers_the_efforts_the_library_takes():
    from codec import checks, cli

    assert cli.EFFORTS == checks.EFFORTS
