"""Hypothesis fuzzing of the decoder with damaged and hostile files.

The property: ``codec.decompress`` on any mutation of a valid file either returns uint8
images or raises an ``AecodecError`` subclass; never another exception, never a crash.
Mutations whose checksums are *repaired* reach the structural checks behind the CRCs.
CI runs a bounded budget; ``AECODEC_FUZZ_EXAMPLES=100000`` runs a long campaign.
"""

import io
import os
import struct
import zlib

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import codec
from bitstream import container

from .test_bitstream import record

EXAMPLES = int(os.environ.get("AECODEC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=EXAMPLES <= 1000,
)


# the bundled model's top transform level and a pixel level
@pytest.fixture(scope="module", params=[3, 8])
def valid(request):
    images = codec.data.fashion_mnist("test")[:5]
    return codec.compress(images, quality=request.param)


def split(blob: bytes):
    """(header fields, [chunk fields]) of a valid container: its positional msgpack arrays, the
    header with all 5 fields (defaults filled in); a single image's stream as one chunk [1, data,
    crc]."""
    legacy = blob[3] == 0
    f = io.BytesIO(blob[5:] if legacy else blob[4:])
    header = msgpack.unpackb(f.read(container.read_varint(f.read, "header")), raw=False)
    header += [False, {}][len(header) - 3 :]
    if not legacy and blob[3] & container.SINGLE_IMAGE:
        data = f.read()[:-4]
        return header, [[1, data, zlib.crc32(data)]]
    if not legacy:
        f.read(4)  # the header's checksum
    chunks = []
    while (size := container.read_varint(f.read, "chunk")) != 0:
        chunks.append(msgpack.unpackb(f.read(size), raw=False))
    return header, chunks


def wire(header, version: int):
    """Format 3 omits the header's trailing defaults (batched false, meta {})."""
    if version < 3 or not isinstance(header, list):
        return header
    header = list(header)
    for default in ({}, False):
        if len(header) > 3 and type(header[-1]) is type(default) and header[-1] == default:
            header.pop()
    return header


def join(header, chunks, version: int = container.FORMAT_VERSION, fix_crc: bool = True) -> bytes:
    """A container from wire-form records, every checksum correct (each chunk's too, unless
    ``fix_crc`` is false): the single-image form when the header's batched field is false and the
    first chunk has bytes."""
    head = wire(header, version)
    first = chunks[0] if chunks else None
    single = (
        version >= 3
        and isinstance(head, list)
        and len(head) == 3
        and isinstance(first, list)
        and len(first) >= 2
        and isinstance(first[1], bytes)
    )
    if single:
        body = container.MAGIC + bytes([version | container.SINGLE_IMAGE]) + record(head) + first[1]
        return body + struct.pack("<I", zlib.crc32(body))
    body = container.MAGIC + (bytes([version]) if version >= 3 else bytes([0, version]))
    body += record(head)
    if version >= 3:
        body += struct.pack("<I", zlib.crc32(body))
    counts, offsets = [], []  # format 5's index
    for c in chunks:
        if fix_crc and isinstance(c, list) and len(c) == 3 and isinstance(c[1], bytes):
            c = [c[0], c[1], zlib.crc32(c[1])]
        counts.append(c[0] if isinstance(c, list) and c and isinstance(c[0], int) else 1)
        offsets.append(len(body))
        body += record(c)
    body += b"\x00"
    if version >= container.INDEXED_VERSION:
        index = record([counts, offsets])
        body += index + struct.pack("<II", zlib.crc32(index), len(index))
    return body + struct.pack("<I", zlib.crc32(body))


def cut_or_flipped(valid: bytes, data) -> bytes:
    """``valid`` truncated at, or with one bit flipped at, a position Hypothesis draws."""
    blob = bytearray(valid)
    pos = data.draw(st.integers(0, len(blob) - 1))
    if data.draw(st.booleans()):
        return bytes(blob[:pos])
    blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    return bytes(blob)


def check(blob: bytes) -> None:
    try:
        out = codec.decompress(blob)
    except codec.AecodecError:
        return
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8


def test_reassembly_of_a_valid_file_is_exact(valid):
    header, chunks = split(valid)
    assert join(header, chunks) == valid


@FUZZ
@given(data=st.data())
def test_truncations_flips_and_insertions_never_escape_as_other_errors(valid, data):
    blob = bytearray(valid)
    action = data.draw(st.sampled_from(["truncate", "flip", "insert", "overwrite"]))
    pos = data.draw(st.integers(0, len(blob) - 1))
    if action == "truncate":
        blob = blob[:pos]
    elif action == "flip":
        blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif action == "insert":
        blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        chunk = data.draw(st.binary(min_size=1, max_size=16))
        blob[pos : pos + len(chunk)] = chunk
    assume(bytes(blob) != valid)
    with pytest.raises(codec.AecodecError):
        codec.decompress(bytes(blob))


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=16),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


HEADER_VALUES = (
    msgpack_values
    | st.lists(st.integers(-5, 2**40), max_size=4)
    | st.integers(-2, 300)
    | st.binary(max_size=10)
)
N, DATA, CRC = range(3)


def nested(depth: int, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


INCONSISTENT_META = st.sampled_from(
    [
        {"kind": "idx", "name": "x-idx3-ubyte", "count": 99},
        {"kind": "folder", "name": "f", "count": 5, "files": ["a.png"] * 5},
        {
            "kind": "folder",
            "name": "f",
            "count": 5,
            "files": ["../a.png", "b.png", "c.png", "d.png", "e.png"],
        },
        {"kind": "image", "format": "PDF"},
        {"kind": "npz", "key": "../x"},
        {"kind": "npy", "count": "5"},
        {"kind": "folder", "count": 1, "files": ["a.png"]},
        {"kind": 7},
        {"count": -3},
        {"kind": "image", "count": 5},
    ]
)


@FUZZ
@given(data=st.data())
def test_nested_fields_and_inconsistent_meta_behind_repaired_checksums(
    valid, data, tmp_path_factory
):
    """Deep nesting anywhere is a FormatError (never a RecursionError); meta that disagrees with the
    images is refused by the CLI's restoration, which leaves nothing behind."""
    header, chunks = split(valid)
    where = data.draw(st.sampled_from(["header", "chunk", "meta"]))
    if where == "header":
        header[data.draw(st.integers(0, 4))] = nested(
            data.draw(st.integers(2, 500)), data.draw(msgpack_values)
        )
    elif where == "chunk":
        chunks[0][data.draw(st.integers(0, 2))] = nested(data.draw(st.integers(1, 500)), 1)
    else:
        header[4] = data.draw(INCONSISTENT_META)
    blob = join(header, chunks)
    check(blob)
    if where == "meta":
        from codec.io import sinks

        with pytest.raises(codec.AecodecError):
            reader = codec.api.ArchiveReader(io.BytesIO(blob))
            sink = sinks.Sink(reader.header, sinks.restore_kind(reader.header, None), io.BytesIO())
            for batch in reader:
                sink.write(batch)
            sink.finish()


@FUZZ
@given(data=st.data())
def test_header_field_mutations_behind_repaired_checksums(valid, data):
    header, chunks = split(valid)
    action = data.draw(st.sampled_from(["replace", "delete", "insert", "whole"]))
    if action == "whole":
        header = data.draw(msgpack_values)
    else:
        # model, quality, image_shape, batched, meta
        pos = data.draw(st.integers(0, len(header) - 1))
        if action == "replace":
            header[pos] = data.draw(HEADER_VALUES)
        elif action == "delete":
            del header[pos]
        else:
            header.insert(data.draw(st.integers(0, len(header))), data.draw(msgpack_values))
    check(join(header, chunks))


@FUZZ
@given(data=st.data())
def test_chunk_mutations_behind_repaired_checksums(valid, data):
    header, chunks = split(valid)
    i = data.draw(st.integers(0, len(chunks) - 1))
    field = data.draw(st.sampled_from([N, DATA, CRC, "shape", "raised", "short", None]))
    if field == N:
        chunks[i][N] = data.draw(st.integers(-(2**63), 2**64 - 1) | msgpack_values)
    elif field == "raised":  # more images than were coded: the stream must not decode past its end
        chunks[i][N] += data.draw(st.integers(1, 100_000))
    # an empty or cut payload: refused by the floor of bytes per pixel, or by its end
    elif field == "short":
        chunks[i][DATA] = chunks[i][DATA][: data.draw(st.integers(0, len(chunks[i][DATA])))]
    elif field == DATA:
        raw = bytearray(chunks[i][DATA])
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        chunks[i][DATA] = bytes(raw) + data.draw(st.binary(max_size=8))
    elif field == CRC:
        chunks[i][CRC] = data.draw(msgpack_values)
    elif field == "shape":  # a field too many or too few
        if data.draw(st.booleans()):
            chunks[i].append(data.draw(msgpack_values))
        else:
            del chunks[i][data.draw(st.integers(0, 2))]
    else:
        chunks[i] = data.draw(msgpack_values)
    check(join(header, chunks, fix_crc=field != CRC))


def test_decompression_bomb_fails_fast_without_allocating(valid):
    header, chunks = split(valid)
    header[2] = [8192, 8192]  # image_shape: the latent grid and padding follow from it
    chunks[0][N] = 10**6
    with pytest.raises(codec.LimitError):
        codec.decompress(join(header, chunks))


CLI_EXAMPLES = max(3, EXAMPLES // 50)


@settings(
    max_examples=CLI_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
@given(data=st.data())
def test_cli_decompress_and_test_reject_mutated_files_cleanly(valid, tmp_path_factory, data):
    """The console script on damaged files: exit 1, one 'aecodec: error: FILE: ...' line, no output
    left."""
    import subprocess

    from .test_cli import AECODEC

    folder = tmp_path_factory.mktemp("cli-fuzz")
    (folder / "x.npy.aec").write_bytes(cut_or_flipped(valid, data))
    for command in (["test", "x.npy.aec"], ["-d", "x.npy.aec"]):
        r = subprocess.run([AECODEC, *command], cwd=folder, capture_output=True, timeout=300)
        lines = r.stderr.decode().strip().splitlines()
        assert (
            r.returncode == 1
            and len(lines) == 1
            and lines[0].startswith("aecodec: error: x.npy.aec: ")
        )
    assert sorted(p.name for p in folder.iterdir()) == ["x.npy.aec"]
