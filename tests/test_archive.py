"""Random access: the index of an archive, reading single images and slices, damaged chunks."""

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import codec
from bitstream import container
from codec import api

HERE = Path(__file__).parent


@pytest.fixture()
def small_chunks(monkeypatch):
    monkeypatch.setattr(api, "CHUNK_IMAGES", 16)


@pytest.fixture()
def archive(small_chunks, test_images):
    """70 images in chunks of 16 (the last one 6), quality 2, and what decompress restores."""
    blob = codec.compress(test_images[:70], quality=2)
    return blob, codec.decompress(blob)


def test_every_image_and_slice_reads_as_decompress_restores_it(archive):
    blob, full = archive
    with codec.open(io.BytesIO(blob)) as images:
        assert len(images) == 70 and len(images._chunks) == 5
        for i in (0, 15, 16, 47, 69, -1, -70, np.int64(33)):
            assert np.array_equal(images[i], full[i])
        for s in (
            slice(None),
            slice(10, 40),
            slice(60, 100),
            slice(None, None, 7),
            slice(50, 10, -3),
            slice(5, 5),
        ):
            assert np.array_equal(images[s], full[s])
        assert np.array_equal(np.stack(list(images)), full)
        with pytest.raises(IndexError, match="out of range: the archive holds 70"):
            images[70]
        with pytest.raises(TypeError):
            images["3"]


def test_reading_one_image_decodes_only_the_chunk_that_holds_it(archive, monkeypatch):
    blob, full = archive
    with codec.open(io.BytesIO(blob)) as images:
        decoded = []
        original = images.level.decode
        monkeypatch.setattr(
            images.level,
            "decode",
            lambda data, n, *a, **k: decoded.append(n) or original(data, n, *a, **k),
        )
        assert np.array_equal(images[50], full[50]) and np.array_equal(images[49], full[49])
        assert decoded == [16]  # one chunk, decoded once for both
        images[69]
        assert decoded == [16, 6]


def test_a_damaged_chunk_names_the_images_it_held_and_the_others_still_read(archive, tmp_path):
    blob, full = archive
    with codec.open(io.BytesIO(blob)) as images:
        offset = images._chunks._offsets[2]
    damaged = bytearray(blob)
    damaged[offset + 12] ^= 0x10  # inside the third chunk's data: images 32 to 47
    (tmp_path / "d.aec").write_bytes(damaged)
    with codec.open(tmp_path / "d.aec") as images:
        assert np.array_equal(images[31], full[31]) and np.array_equal(images[48], full[48])
        with pytest.raises(
            codec.ChecksumError,
            match=r"images 32 to 47 \(chunk 3 of 5\) cannot be read: chunk checksum",
        ):
            images[40]
        assert np.array_equal(images[69], full[69])
    with pytest.raises(codec.ChecksumError):
        codec.decompress(bytes(damaged))


def _with_index(blob: bytes, counts, offsets) -> bytes:
    """``blob`` with its index replaced (checksums made right): a file damaged where no CRC sees
    it."""
    index_size = struct.unpack("<I", blob[-8:-4])[0]
    body = blob[: -12 - index_size]
    index = container._record([counts, offsets], "index", container.MAX_INDEX_BYTES)
    body += index + struct.pack("<II", zlib.crc32(index), len(index))
    return body + struct.pack("<I", zlib.crc32(body))


def test_the_index_is_checked_against_its_checksum_and_the_chunks(archive):
    blob, _ = archive
    with codec.open(io.BytesIO(blob)) as images:
        counts, offsets = list(images._chunks.counts), list(images._chunks._offsets)
    assert _with_index(blob, counts, offsets) == blob
    damaged = bytearray(blob)
    damaged[-14] ^= 1  # inside the index
    with pytest.raises(codec.ChecksumError, match="index checksum"):
        codec.open(io.BytesIO(bytes(damaged)))
    for bad_counts, bad_offsets, message in (
        ([16, 16, 16, 16, 5], offsets, "holds 6 images, its index entry 5"),
        (
            counts,
            [offsets[0], offsets[1] + 1, *offsets[2:]],
            "does not fill the place the index gives it",
        ),
        (counts[:4], offsets[:4], "does not fill the place"),
        (counts, [offsets[0] - 1, *offsets[1:]], "index offsets lie outside the chunks"),
        ([16, 16], offsets[:1] * 2, "not increasing"),
    ):
        lying = _with_index(blob, bad_counts, bad_offsets)
        with pytest.raises(codec.FormatError, match=message):
            with codec.open(io.BytesIO(lying)) as images:
                list(images)
        # the sequential reader compares the index with what it read
        with pytest.raises(codec.FormatError):
            codec.decompress(lying)


def test_archives_of_format_4_without_an_index_are_read_at_random_too():
    path = HERE / "data" / "format4-q3-chunks16.aec"
    full = codec.decompress(path.read_bytes())
    assert (
        hashlib.sha256(full.tobytes()).hexdigest()
        == "275f71ac471b62e551a25635c141613a12b856680c01dd4ef707a9f0d3866255"
    )
    with codec.open(path) as images:
        assert images._chunks.version == 4 and len(images._chunks) == 3
        assert np.array_equal(images[33], full[33]) and np.array_equal(images[:], full)


def test_a_single_image_file_and_a_pipe(test_images):
    blob = codec.compress(test_images[0], quality=3)
    with codec.open(io.BytesIO(blob)) as images:
        assert len(images) == 1 and np.array_equal(images[0], codec.decompress(blob))

    class Pipe(io.RawIOBase):
        def seekable(self):
            return False

    with pytest.raises(codec.InputError, match="can seek"):
        codec.open(Pipe())


def test_opening_a_missing_or_foreign_file_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        codec.open(tmp_path / "missing.aec")
    (tmp_path / "x.aec").write_bytes(b"not an archive at all")
    with pytest.raises(codec.FormatError, match="bad magic"):
        codec.open(tmp_path / "x.aec")


def test_damaged_archives_read_at_random_fail_only_with_aecodec_errors(small_chunks, test_images):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from .test_fuzz import cut_or_flipped

    valid = codec.compress(test_images[:40], quality=3)

    @settings(
        max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(st.data())
    def check(data):
        try:
            with codec.open(io.BytesIO(cut_or_flipped(valid, data))) as images:
                for c in range(len(images.starts) - 1):
                    try:
                        images.chunk(c)
                    except codec.AecodecError:
                        pass
        except codec.AecodecError:
            pass

    check()


# Every kind of archive: lossy, lossless, near-lossless, grey and colour, 8- and 16-bit (the
# fixtures of tests/data, each made by an earlier aecodec), read at random and by -d --images.
FIXTURES = sorted(p.name for p in (HERE / "data").glob("*.aec"))


def images_of(path: Path) -> list:
    """The images a fixture holds, as decompress restores them (checked against the original, its
    .npy, within the file's bound)."""
    header = container.unpack(path.read_bytes()).header
    whole = codec.decompress(path.read_bytes())
    if path.with_suffix(".npy").is_file():
        original = np.load(path.with_suffix(".npy"))
        assert np.abs(whole.astype(int) - original).max() <= header["max_error"]
    return list(whole) if header["batched"] else [whole]


def test_the_fixtures_hold_every_kind_of_archive():
    headers = [container.unpack((HERE / "data" / f).read_bytes()).header for f in FIXTURES]
    kinds = {(h["quality"] > 0, h["max_error"] > 0, h["depth"] > 8) for h in headers}
    assert {(True, False, False), (False, False, False), (False, True, False)} <= kinds
    assert {(False, False, True), (False, True, True)} <= kinds
    assert any(len(h["image_shape"]) == 3 for h in headers)  # colour


@pytest.mark.parametrize("name", FIXTURES)
def test_every_kind_of_archive_is_read_at_random(name):
    path = HERE / "data" / name
    expected = images_of(path)
    with codec.open(path) as images:
        assert len(images) == len(expected)
        assert images[-1].dtype == expected[-1].dtype
        assert all(np.array_equal(images[i], expected[i]) for i in range(len(expected)))
        assert np.array_equal(images[0:2], np.stack(expected[0:2]))


@pytest.mark.parametrize("name", FIXTURES)
def test_every_kind_of_archive_restores_in_part_with_aecodec_d_images(name, tmp_path):
    from codec import cli

    path = tmp_path / name
    path.write_bytes((HERE / "data" / name).read_bytes())
    expected = np.stack(images_of(path)[0:2])
    assert (
        cli.main(["-q", "-d", "--images", "0:2", "-o", str(tmp_path / "part.npy"), str(path)]) == 0
    )
    restored = np.load(tmp_path / "part.npy")
    assert restored.dtype == expected.dtype
    assert np.array_equal(restored.reshape(expected.shape), expected)
