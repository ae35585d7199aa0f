"""aecodec files in Pillow (``codec/pillow.py``): opened, saved and seeked as Pillow images."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import codec
import codec.pillow  # noqa: F401  registers the format
from codec.errors import DataError


def _picture(channels: int) -> np.ndarray:
    y, x = np.mgrid[:40, :52]
    planes = [(x * 4 + y * c) % 256 for c in range(1, channels + 1)]
    return np.stack(planes, -1).astype(np.uint8) if channels > 1 else planes[0].astype(np.uint8)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_image_open_reads_a_file_in_its_mode_exactly(channels, mode):
    image = _picture(channels)
    with Image.open(io.BytesIO(codec.compress(image, lossless=True))) as im:
        assert (im.format, im.mode, im.size) == ("AEC", mode, (52, 40))
        assert np.array_equal(np.asarray(im), image)


def test_a_16_bit_grey_file_opens_as_i16():
    image = (_picture(1).astype(np.uint16) * 257) ^ 5
    with Image.open(io.BytesIO(codec.compress(image, lossless=True))) as im:
        assert im.mode == "I;16" and np.array_equal(np.asarray(im), image)


def test_16_bit_colour_has_no_pillow_mode_and_says_what_to_use():
    image = np.stack([_picture(1)] * 3, -1).astype(np.uint16) * 100
    with pytest.raises(DataError, match="codec.decompress"):
        Image.open(io.BytesIO(codec.compress(image, lossless=True)))


def test_save_takes_compress_options(tmp_path):
    image = Image.fromarray(_picture(3))
    image.save(tmp_path / "exact.aec", lossless=True)
    image.save(tmp_path / "small.aec", quality=2)
    with Image.open(tmp_path / "exact.aec") as im:
        assert np.array_equal(np.asarray(im), _picture(3))
    with Image.open(tmp_path / "small.aec") as im:
        assert im.size == (52, 40) and not np.array_equal(np.asarray(im), _picture(3))
    assert (tmp_path / "small.aec").stat().st_size < (tmp_path / "exact.aec").stat().st_size


def test_an_archive_opens_as_one_frame_per_image():
    images = [_picture(1), _picture(3)[:20, :30], _picture(4)[:10]]
    with Image.open(io.BytesIO(codec.compress(images, lossless=True))) as im:
        assert im.n_frames == 3 and im.is_animated
        for k, image in enumerate(images):
            im.seek(k)
            assert im.tell() == k and np.array_equal(np.asarray(im), image)
        with pytest.raises(EOFError):
            im.seek(3)


def test_other_files_are_left_to_their_plugins():
    png = io.BytesIO()
    Image.fromarray(_picture(1)).save(png, format="PNG")
    png.seek(0)
    assert Image.open(png).format == "PNG"
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(io.BytesIO(b"AEC\x63 not a container"))


def test_import_codec_registers_the_format_where_pillow_is_loaded(tmp_path):
    (tmp_path / "x.aec").write_bytes(codec.compress(_picture(1), lossless=True))
    script = "from PIL import Image; import codec; print(Image.open('x.aec').format)"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "AEC"
