"""Every level kind is held to the floor of bytes per coded pixel, which bounds a file's decoding
work by its size (docs/guarantees.md; measured per kind by ``python -m benchmarks.budget``)."""

import io

import numpy as np
import pytest

import codec
from benchmarks.budget import chain_tree, coded_with_own_tree
from bitstream import container
from codec.levels import image_tree

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


def level_of(blob: bytes):
    return codec.api.ArchiveReader(io.BytesIO(blob)).level


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
        chunks[0][0] = allowed // codec.api.floor_pixels(level, 1, shape) + 1
    else:  # one image: taller than the floor allows
        while codec.api.floor_pixels(level, 1, shape) <= allowed:
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
        -codec.api.floor_pixels(level, chunks[0][0], list(header[2]))
        // container.MAX_PIXELS_PER_BYTE
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


def test_a_convolutional_model_costlier_than_the_floor_is_sized_for_needs_more_bytes(monkeypatch):
    """The floor counts a costlier synthesis's pixels for more, so any model decodes within one
    budget."""
    from codec.levels import conv

    blank = np.zeros((512, 512), np.uint8)
    cheap = codec.compress(blank, quality=1)
    floor = container.min_chunk_bytes(1, level_of(cheap).coded_pixels(1, [512, 512]))
    assert len(split(cheap)[1][0][1]) < 2 * floor  # padded to the floor, or a little above it
    monkeypatch.setattr(
        conv, "FLOOR_MACS_PER_PIXEL", conv.FLOOR_MACS_PER_PIXEL / 2
    )  # as if it cost 2x
    costly = codec.compress(blank, quality=1)
    assert len(split(costly)[1][0][1]) >= 2 * floor
    assert np.abs(codec.decompress(costly).astype(int)).max() <= 20
    with pytest.raises(codec.LimitError, match="denser"):
        codec.decompress(cheap)  # enough bytes for the cheaper model's floor, not for this one's
