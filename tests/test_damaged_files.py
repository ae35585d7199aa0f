"""A damaged or inconsistent file is a FormatError found before anything is written: flipped
header bits, deep nesting, metadata that disagrees with the stream, checksums over every chunk."""

import zlib

import numpy as np
import pytest

import codec

from .test_cli import run
from .test_folders import tree
from .test_fuzz import join, split


def test_a_flipped_header_bit_fails_before_a_byte_is_written(tmp_path, images):
    blob = bytearray(
        codec.compress(np.concatenate([images] * 200), quality=4, meta={"kind": "npy", "name": "x"})
    )
    blob[8] ^= 4  # inside the header record
    (tmp_path / "x.aec").write_bytes(bytes(blob))
    r = run("-d", "-c", "x.aec", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == b"" and b"header checksum mismatch" in r.stderr


def test_deeply_nested_fields_are_format_errors_in_decompress_test_and_info(tmp_path, images):
    header, chunks = split(codec.compress(images[:2], quality=3))
    deep: list = []
    for _ in range(1000):
        deep = [deep]
    for i, blob in enumerate(
        [join([*header[:2], deep, *header[3:]], chunks), join(header, [[deep, *chunks[0][1:]]])]
    ):
        with pytest.raises(codec.FormatError):
            codec.decompress(blob)
        (tmp_path / f"deep{i}.aec").write_bytes(blob)
        for command in ("test", "info"):
            r = run(command, f"deep{i}.aec", cwd=tmp_path)
            assert (
                r.returncode == 1
                and b"RecursionError" not in r.stderr
                and b"nested deeper" in r.stderr
            )


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"kind": "idx", "name": "a-idx3-ubyte", "count": 10}, "holds 6 images, not the 10"),
        ({"kind": "folder", "name": "f", "count": 6, "files": ["a.png"] * 6}, "lists a name twice"),
        (
            {"kind": "image", "name": "a.png", "format": "PDF"},
            "format 'PDF' is not an image format",
        ),
        ({"kind": "npz", "name": "a.npz", "key": "../x"}, "key '../x' is not a plain array name"),
        ({"kind": "npy", "name": "a.npy", "count": "6"}, "count '6' is not a whole number"),
        ({"kind": "npy", "name": "a.npy", "count": -1}, "is not a whole number"),
        ({"kind": "teapot"}, "kind 'teapot'"),
    ],
)
def test_inconsistent_metadata_is_a_format_error_and_leaves_nothing(
    tmp_path, images, meta, message
):
    header, chunks = split(codec.compress(images, quality=4))
    header[4] = meta
    (tmp_path / "x.aec").write_bytes(join(header, chunks))
    r = (
        run("-d", "-q", "-o", "out", "x.aec", cwd=tmp_path)
        if meta.get("kind") == "folder"
        else run("-d", "-q", "-c", "x.aec", cwd=tmp_path)
    )
    assert r.returncode == 1 and message in r.stderr.decode(), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) in (["x.aec"], ["out", "x.aec"])
    assert not (tmp_path / "out").exists() or tree(tmp_path / "out") == {}


def test_chunk_checksums_still_cover_the_payload(images):
    blob = bytearray(codec.compress(images, quality=4))
    header, chunks = split(bytes(blob))
    chunks[0][1] = bytes([chunks[0][1][0] ^ 1]) + chunks[0][1][1:]
    damaged = join(header, chunks, fix_crc=False)
    with pytest.raises(codec.ChecksumError):
        codec.decompress(damaged)
    assert zlib.crc32(chunks[0][1]) != chunks[0][2]
