"""Images with an alpha channel (grey + alpha, RGBA): the alpha comes back exactly whatever the
colour planes get (``codec/levels/alpha.py``)."""

import numpy as np
import pytest

import codec
from bitstream import container
from codec.api import PHOTO_MODEL
from codec.errors import FormatError, InputError
from codec.levels import alpha


def _picture(channels: int, dtype=np.uint8) -> np.ndarray:
    """A smooth colour picture with a mask of three alpha values (a hard edge and a soft band)."""
    rng = np.random.default_rng(channels)
    y, x = np.mgrid[:72, :90]
    rgb = np.stack([100 + 60 * np.sin(x / 9), 120 + 50 * np.cos(y / 7), 90 + x * 0.5], -1)
    rgb = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255)
    mask = np.where((x - 45) ** 2 + (y - 36) ** 2 < 30**2, 255, 0)
    mask[30:36] = 128
    planes = [*np.moveaxis(rgb, -1, 0)][: channels - 1] + [mask]
    image = np.stack(planes, -1).astype(np.uint8)
    return image.astype(np.uint16) * 257 if dtype == np.uint16 else image


@pytest.mark.parametrize("channels", [2, 4])
@pytest.mark.parametrize(
    "options, bound", [({"quality": 5}, 40), ({"lossless": True}, 0), ({"max_error": 2}, 2)]
)
def test_alpha_comes_back_exactly_whatever_the_colour_gets(channels, options, bound):
    image = _picture(channels)
    model = codec.load_model(PHOTO_MODEL)
    back = codec.decompress(codec.compress(image, model=model, **options), model=model)
    assert back.shape == image.shape and back.dtype == np.uint8
    assert np.array_equal(back[..., -1], image[..., -1])
    error = np.abs(back[..., :-1].astype(int) - image[..., :-1]).max()
    assert error <= bound and (error == bound or bound > 2)


@pytest.mark.parametrize("channels", [2, 4])
def test_16_bit_alpha_comes_back_exactly(channels):
    image = _picture(channels, np.uint16)
    for options, bound in (({"lossless": True}, 0), ({"max_error": 3}, 3)):
        back = codec.decompress(codec.compress(image, **options))
        assert back.dtype == np.uint16 and np.array_equal(back[..., -1], image[..., -1])
        assert np.abs(back[..., :-1].astype(int) - image[..., :-1]).max() == bound


def test_an_archive_of_images_with_and_without_alpha_keeps_each_as_it_was():
    images = [_picture(4), _picture(2)[:50], _picture(4)[..., :3], _picture(2)[..., 0]]
    back = codec.decompress(codec.compress(images, lossless=True))
    assert [b.shape for b in back] == [a.shape for a in images]
    assert all(np.array_equal(a, b) for a, b in zip(images, back, strict=True))


def test_the_alpha_plane_costs_its_lossless_stream_beside_the_colour():
    image = _picture(4)
    model = codec.load_model(PHOTO_MODEL)
    with_alpha = codec.compress(image, quality=5, model=model)
    colour_only = codec.compress(image[..., :3], quality=5, model=model)
    plane = codec.compress(image[..., 3], lossless=True, model=model)
    extra = len(with_alpha) - len(colour_only)
    assert 0 < extra <= len(plane)  # the plane's stream and a length, without another container


def test_a_format6_file_of_four_channels_is_decoded_as_four_planes():
    """Before format 7, a level coded a 4-channel image as four planes: such a chunk decodes so."""
    image = _picture(4)[None]
    level = codec.load_model(PHOTO_MODEL).level(5, image.shape[1:])
    assert isinstance(level, alpha.AlphaLevel)
    old = level.level.encode(image)  # what format 6 wrote
    assert np.array_equal(
        level.decode(old, 1, image.shape[1:], version=6),
        level.level.decode(old, 1, image.shape[1:], version=6),
    )


def test_a_colour_length_past_the_chunk_is_a_format_error():
    image = _picture(4)
    blob = codec.compress(image, quality=5)
    unpacked = container.unpack(blob)
    (n, data), shape = unpacked.chunks[0], unpacked.shapes[0]
    level = codec.load_model(PHOTO_MODEL).level(5, image.shape)
    damaged = (len(data) + 1).to_bytes(4, "little") + data[4:]
    with pytest.raises(FormatError, match="colour stream's length"):
        level.decode(damaged, n, shape)
    with pytest.raises(FormatError):
        codec.decompress(blob[:-40] + bytes(40))


def test_a_model_without_a_lossless_coder_refuses_alpha_and_says_why(tiny):
    image = np.stack([np.zeros((28, 28), np.uint8), np.full((28, 28), 9, np.uint8)], -1)
    if tiny.has_bounds:
        pytest.skip("the tiny model has a lossless coder")
    with pytest.raises(InputError, match="no lossless coder"):
        codec.compress(image, quality=3, model=tiny)
