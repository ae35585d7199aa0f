"""Every level kind is held to the floor of bytes per coded pixel, which bounds a file's decoding
work by its size (docs/guarantees.md; measured per kind by ``python -m benchmarks.budget``)."""

import hashlib
import io
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import codec
from benchmarks.budget import chain_tree, coded_with_own_tree, own_tree_chain
from bitstream import container
from codec import api, checks
from codec.levels import image_tree

from .conftest import unmeasured
from .test_cli import run
from .test_fuzz import join, split

FASHION = codec.data.fashion_mnist("test")[:8]
KINDS = {
    "tile": (FASHION, {"quality": 1}),
    "pixel": (FASHION, {"quality": 8}),
    "conv": (np.tile(FASHION[0], (3, 3)), {"quality": 1}),
    "lossless": (FASHION, {"lossless": True}),
    "near-lossless": (FASHION, {"max_error": 2}),
    "lossless-16-bit": (
        (np.arange(2 * 40 * 36).reshape(2, 40, 36) * 7 % 4096).astype(np.uint16),
        {"lossless": True},
    ),
}


def level_of(blob: bytes, model=None):
    return codec.api.ArchiveReader(io.BytesIO(blob), model=model).level


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_refuses_a_chunk_claiming_more_work_than_its_bytes_allow(kind):
    images, options = KINDS[kind]
    blob = codec.compress(images, **options)
    level = level_of(blob)
    header, chunks = split(blob)
    data = chunks[0][1]
    shape = list(header[2])
    allowed = len(data) * container.MAX_PIXELS_PER_BYTE
    if header[3]:  # batched: one image more than the floor allows
        chunks[0][0] = allowed // checks.floor_pixels(level, 1, shape) + 1
    else:  # one image: taller than the floor allows
        while checks.floor_pixels(level, 1, shape) <= allowed:
            shape[0] *= 2
        header[2] = shape
    with pytest.raises(codec.LimitError, match="pixels"):
        codec.decompress(join(header, chunks[:1]))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_stream_cut_to_the_floor_is_refused_as_damaged(kind):
    """The attack the floor leaves open: as few bytes as it allows, so the decoder runs out of
    data."""
    images, options = KINDS[kind]
    blob = codec.compress(images, **options)
    header, chunks = split(blob)
    level = level_of(blob)
    keep = -(
        -checks.floor_pixels(level, chunks[0][0], list(header[2])) // container.MAX_PIXELS_PER_BYTE
    )
    chunks[0][1] = chunks[0][1][: max(keep, 8)]
    with pytest.raises(codec.FormatError):
        codec.decompress(join(header, chunks[:1]))


@pytest.mark.parametrize("inner", [image_tree.MAX_LEVELS, image_tree.MAX_LEVELS + 1, 255])
def test_an_own_tree_deeper_than_an_encoder_grows_is_refused(inner):
    """Each level of a tree is a step of every pixel's walk: a 255-deep chain made decoding 20x
    slower."""
    image = (np.arange(64 * 70 * 3).reshape(64, 70, 3) % 251).astype(np.uint8)
    blob = coded_with_own_tree(image, chain_tree(inner, 0, 0))  # CALIC's predictor, split on it
    if inner <= image_tree.MAX_LEVELS:
        assert np.array_equal(codec.decompress(blob), image)
    else:
        with pytest.raises(codec.FormatError, match="levels deep"):
            codec.decompress(blob)


def test_a_chunk_of_many_images_with_the_costliest_own_tree_decodes_in_their_memory():
    """Format 7 lets a chunk of many images carry its own tree: the decoder keeps three rows of
    state per plane whatever the tree, so its memory is the images' (format 6 held the weighted
    predictor's state for the whole chunk, and refused such chunks)."""
    images = np.zeros((512, 32, 32, 3), np.uint8)
    blob = own_tree_chain(image_tree.MAX_LEVELS, images)  # every leaf the weighted predictor
    codec.decompress(codec.compress(images[:1], lossless=True))  # the model loaded before
    tracemalloc.start()
    try:
        back = codec.decompress(blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(back, images)
    # the output and its planes, 16-bit while decoded: about 5 bytes a value (format 6's decoder
    # held some 30 per value for the weighted predictor alone)
    assert peak < 6 * images.nbytes


def test_a_convolutional_model_costlier_than_the_floor_is_sized_for_needs_more_bytes(monkeypatch):
    """The floor counts a costlier synthesis's pixels for more, so any model decodes within one
    budget."""
    from codec.levels import conv

    blank = np.zeros((512, 512), np.uint8)
    photo = unmeasured(codec.api.PHOTO_MODEL)  # quality 1: its first convolutional level
    cheap = codec.compress(blank, quality=1, model=photo)
    assert level_of(cheap, photo).kind == "conv"
    floor = container.min_chunk_bytes(1, level_of(cheap, photo).coded_pixels(1, [512, 512]))
    assert len(split(cheap)[1][0][1]) < 2 * floor  # padded to the floor, or a little above it
    # as if it cost 2x
    monkeypatch.setattr(conv, "FLOOR_MACS_PER_PIXEL", conv.FLOOR_MACS_PER_PIXEL / 2)
    costly = codec.compress(blank, quality=1, model=photo)
    assert len(split(costly)[1][0][1]) >= 2 * floor
    assert np.abs(codec.decompress(costly, model=photo).astype(int)).max() <= 20
    with pytest.raises(codec.LimitError, match="denser"):
        codec.decompress(cheap, model=photo)  # enough bytes for the cheaper floor, not this one


def refused_within_a_second(call, error):
    """``call()`` raises ``error`` within a second and 200 MB."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(error):
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < 200 << 20


HERE = Path(__file__).parent


@pytest.mark.parametrize("quality", [3, 8])
def test_an_empty_payload_claiming_many_images_is_refused_before_decoding(images, quality):
    header, chunks = split(codec.compress(images, quality=quality))
    chunks[0][0], chunks[0][1] = 85_598, b""
    refused_within_a_second(lambda: codec.decompress(join(header, chunks)), codec.LimitError)


@pytest.mark.parametrize("quality", [3, 8])
def test_a_raised_image_count_is_caught_at_the_end_of_the_stream(images, quality):
    header, chunks = split(codec.compress(images, quality=quality))
    chunks[0][0] += 1
    with pytest.raises(codec.FormatError, match="does not end where its image count says"):
        codec.decompress(join(header, chunks))


def test_aecodec_test_decodes_and_refuses_such_files(tmp_path, images):
    header, chunks = split(codec.compress(images, quality=3))
    chunks[0][0] += 1
    (tmp_path / "raised.aec").write_bytes(join(header, chunks))
    chunks[0][0], chunks[0][1] = 85_598, b""
    (tmp_path / "empty.aec").write_bytes(join(header, chunks))
    r = run("test", "raised.aec", "empty.aec", cwd=tmp_path)
    lines = r.stderr.decode().splitlines()
    assert r.returncode == 1 and "does not end" in lines[0] and "pixels per byte" in lines[1]


@pytest.mark.slow  # 5 s on 2 cores: it codes megapixels of blank images
def test_blank_images_are_padded_to_the_floor_and_still_round_trip():
    blank = np.zeros((300, 64, 64), np.uint8)
    fmnist, photo = codec.load_model(), codec.load_model(codec.api.PHOTO_MODEL)
    for model, quality in ((fmnist, 1), (fmnist, 8), (photo, 1), (photo, photo.qualities[-1])):
        blob = codec.compress(blank, quality=quality, model=model)
        ((n, payload),) = container.unpack(blob).chunks
        assert len(payload) >= blank.size // container.MAX_PIXELS_PER_BYTE
        assert np.abs(codec.decompress(blob).astype(int)).max() <= 20


def test_format_2_files_are_still_read():
    expected = {
        3: "be0946df7579e00af2c4a35c2d875f66b4e3616c75f96b9f93800fbb96dd4b65",
        6: "ba8bfadba76fa8419979b3664aff777c7b55dc4d6247ecc790cb389c29d88874",
    }
    for quality, digest in expected.items():
        restored = codec.decompress((HERE / "data" / f"format2-q{quality}.aec").read_bytes())
        assert hashlib.sha256(restored.tobytes()).hexdigest() == digest


def test_a_format_2_archive_of_blank_images_is_still_read():
    restored = codec.decompress((HERE / "data" / "format2-blank-q4.aec").read_bytes())
    assert restored.shape == (1000, 28, 28) and not restored.any()


def test_a_format_2_file_cannot_claim_unbounded_work(images):
    header, chunks = split((HERE / "data" / "format2-q3.aec").read_bytes())
    chunks[0][0], chunks[0][1] = 100_000, b"\0" * 4
    refused_within_a_second(
        lambda: codec.decompress(join(header, chunks, version=2)), codec.LimitError
    )


def test_tiny_images_cannot_multiply_the_work_by_their_padding():
    """A 1x1 image is a whole 28x28 tile at a transform level: the floor counts the tile, not the
    pixel."""
    header = api._header(codec.load_model(), 1, (1, 1), True, {})
    n = 20_000  # 20,000 tiles of work behind 20 bytes of data under a floor of raw pixels
    blob = container.pack(header, [(n, bytes(container.min_chunk_bytes(n, 1)))])
    refused_within_a_second(lambda: codec.decompress(blob), codec.LimitError)
    tiny = np.full((500, 1, 1), 7, np.uint8)
    assert (
        codec.decompress(codec.compress(tiny, quality=1))
        == codec.decompress(codec.compress(tiny, quality=1))
    ).all()
