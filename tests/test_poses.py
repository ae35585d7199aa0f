"""Poses: tile levels code one-tile images moved or mirrored back into the place their transform
knows."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

import bitstream
import codec
from codec.io import data
from codec.levels import poses

HERE = Path(__file__).parent


def psnr(a, b) -> float:
    return 10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2))


@pytest.fixture(scope="module")
def garments():
    return data.fashion_mnist("test")[:200]


def shifted(x, s):
    return np.pad(x, ((0, 0), (s, 0), (s, 0)))[:, :28, :28]


def test_every_pose_is_undone_exactly_where_nothing_moves_out():
    rng = np.random.default_rng(0)
    tiles = np.zeros((poses.COUNT, 28, 28), np.uint8)
    # ink 7 pixels from every edge
    tiles[:, 7:21, 7:21] = rng.integers(1, 256, (poses.COUNT, 14, 14))
    flat, every = tiles.reshape(poses.COUNT, -1), np.arange(poses.COUNT)
    moved = poses.apply(flat, every, (28, 28))
    assert np.array_equal(poses.undo(moved, every, (28, 28)), flat)
    assert (poses.lost_error(flat, every, (28, 28)) == 0).all()
    assert np.array_equal(moved[poses.IDENTITY], flat[poses.IDENTITY])


def test_a_pose_that_moves_ink_out_counts_what_the_decoder_loses():
    tile = np.zeros((1, 28 * 28), np.uint8)
    tile[0, 27] = 10  # top-right corner
    right = poses.index(0, 0, 1)
    assert poses.lost_error(tile, np.array([right]), (28, 28))[0] == 100
    assert (
        poses.undo(poses.apply(tile, np.array([right]), (28, 28)), np.array([right]), (28, 28))[
            0, 27
        ]
        == 0
    )


def test_the_pose_table_sums_to_the_coders_precision_and_favours_as_it_is():
    freqs = poses.table()
    assert int(freqs.sum(dtype=np.int64)) == 1 << bitstream.coder.PRECISION and (freqs > 0).all()
    assert freqs[poses.IDENTITY] > (1 - 1 / 8) * (1 << 24) - 2


@pytest.mark.parametrize("name", ["shifted 3px", "shifted 7px", "flipped"])
def test_moved_and_mirrored_garments_cost_about_what_aligned_ones_do(garments, name):
    moved = {
        "shifted 3px": shifted(garments, 3),
        "shifted 7px": shifted(garments, 7),
        "flipped": garments[:, :, ::-1],
    }[name]
    for quality in (1, 3):
        aligned_blob, moved_blob = (
            codec.compress(garments, quality=quality),
            codec.compress(moved, quality=quality),
        )
        back = codec.decompress(moved_blob)
        assert len(moved_blob) <= 1.5 * len(aligned_blob)  # was 1.5x-2.8x at quality 1 before poses
        assert psnr(back, moved) >= psnr(codec.decompress(aligned_blob), garments) - 0.5


def test_images_larger_than_a_tile_are_coded_as_they_are(garments):
    big = np.tile(garments[:4], (1, 2, 2))  # 56x56: four tiles each, no poses
    fmnist = codec.load_model()
    level = fmnist.level(2)
    assert not level.posed(big.shape[1:]) and level.posed(garments.shape[1:])
    assert psnr(codec.decompress(codec.compress(big, quality=2, model=fmnist)), big) > 23


def test_format_3_files_without_poses_are_still_read():
    expected = {
        "format3-q2.aec": "d5e459810d170b939c5628e4bdabc5a0f68f3453c454458644cb2b9d598e3e27",
        "format3-single-q1.aec": "089a3c18cddda70926df8dd7c4397d07d47146f33fcb6f23085f49832b30042b",
    }
    for name, digest in expected.items():
        restored = codec.decompress((HERE / "data" / name).read_bytes())
        assert hashlib.sha256(restored.tobytes()).hexdigest() == digest


def test_a_stream_claiming_an_impossible_pose_is_a_format_error(garments):
    level = codec.load_model().level(1)
    encoder = bitstream.Encoder(level.transform.tables)
    encoder.add(np.zeros(1, np.int32), np.full(1, level.transform.frozen.cluster_table(0)))
    # escaped: out of range
    encoder.add(np.array([poses.COUNT + 5]), np.full(1, level.transform.pose_table))
    with pytest.raises(codec.FormatError, match="pose out of range"):
        level.decode(encoder.finish(), 1, (28, 28))
