import io
import struct
import zlib

import msgpack
import numpy as np
import pytest

import bitstream
from bitstream import container
from bitstream.header import HEADER_FIELDS, IMPLIED, check_header

from .conftest import unmeasured


def gaussian_tables():
    from codec.levels.entropy import integer_table

    tables = [integer_table(s) for s in (0.2, 1.0, 5.0)]
    return bitstream.Tables([low for low, _ in tables], [f for _, f in tables])


def test_coder_roundtrip_with_escapes_and_mixed_tables():
    rng = np.random.default_rng(0)
    tables = gaussian_tables()
    index = rng.integers(0, 3, (50, 30))
    symbols = np.round(
        rng.normal(0, [0.2, 1.0, 5.0][0], index.shape) * np.array([0.2, 1.0, 5.0])[index]
    ).astype(np.int64)
    symbols[3, 4], symbols[7, 1], symbols[9, 9] = 400, -30000, 32767  # far outside every table
    enc = bitstream.Encoder(tables)
    enc.add(symbols[:, 0], np.full(50, 1))
    enc.add(symbols, index)
    dec = bitstream.Decoder(enc.finish(), tables)
    np.testing.assert_array_equal(dec.read(np.full(50, 1)), symbols[:, 0])
    np.testing.assert_array_equal(dec.read(index), symbols)
    dec.finish()


def test_coded_size_matches_ideal_bits_of_the_integer_tables():
    rng = np.random.default_rng(1)
    tables = gaussian_tables()
    index = np.full(200_000, 2)
    symbols = np.round(rng.normal(0, 5.0, index.shape)).astype(np.int64)
    enc = bitstream.Encoder(tables)
    enc.add(symbols, index)
    coded_bits = 8 * len(enc.finish())
    ideal = bitstream.ideal_bits(symbols, index, tables)
    assert ideal <= coded_bits <= ideal * 1.001 + 64


def test_integer_frequencies_sum_to_precision_and_keep_every_symbol_codable():
    f = bitstream.integer_frequencies(np.array([1.0, 0.0, 1e-12, 3.0]))
    assert f.sum() == 1 << bitstream.PRECISION and (f >= 1).all() and f[3] > f[0]


def test_decoder_rejects_leftover_data():
    tables = gaussian_tables()
    enc = bitstream.Encoder(tables)
    enc.add(np.arange(10) % 3, np.zeros(10, int))
    data = enc.finish()
    dec = bitstream.Decoder(data, tables)
    dec.read(np.zeros(5, int))
    with pytest.raises(bitstream.FormatError, match="does not end|left"):
        dec.finish()


FINGERPRINT = "0123456789abcdef"


def header(**changes):
    """A valid in-memory header (format 2: implied fields included)."""
    h = {
        "model": {"fingerprint": FINGERPRINT},
        "coder": {"name": "constriction-ans", "version": "0.5"},
        "quality": 3,
        "image_shape": [28, 28],
        "batched": True,
        "dtype": "uint8",
        "prior": "clusters",
        "meta": {},
        "depth": 8,
        "max_error": 0,
    }
    h.update(changes)
    return h


# An encoder of the documented layout written independently of bitstream/container.py, so the
# tests pin the format itself: magic, version, varint-framed msgpack arrays, 0x00, CRC-32.


def leb128(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out) + bytes([value])


def record(obj) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return leb128(len(body)) + body


def wire_header(**changes) -> list:
    """Format 3's header record: trailing fields that hold their defaults (batched false, meta {})
    omitted."""
    fields = {
        "model": bytes.fromhex(FINGERPRINT),
        "quality": 3,
        "image_shape": [28, 28],
        "batched": True,
        "meta": {},
    }
    fields.update(changes)
    out = list(fields.values())
    for default in ({}, False):
        if len(out) > 3 and type(out[-1]) is type(default) and out[-1] == default:
            out.pop()
    return out


def chunk(n, data, crc=None) -> list:
    return [n, data, zlib.crc32(data) if crc is None else crc]


def raw_file(
    head=None, chunks=((1, b"abcd"),), *, version: int = 3, raw_records: bytes | None = None
) -> bytes:
    """A file from wire-form fields with every checksum correct (``raw_records`` replaces the
    records). A header without a true batched field makes the single-image form (its one chunk's
    data, then the CRC)."""
    head = wire_header() if head is None else head
    if (
        version >= 3
        and raw_records is None
        and isinstance(head, list)
        and (len(head) == 3 or head[3] is False)
    ):
        body = container.MAGIC + bytes([version | 0x80]) + record(head) + chunks[0][1]
        return body + struct.pack("<I", zlib.crc32(body))
    body = container.MAGIC + (bytes([version]) if version >= 3 else bytes([0, version]))
    if raw_records is None:
        body += record(head)
        if version >= 3:
            body += struct.pack("<I", zlib.crc32(body))
        body += b"".join(record(chunk(*c) if isinstance(c, tuple) else c) for c in chunks)
        body += b"\x00"
    else:
        body += _with_header_checksum(body, raw_records) if version >= 3 else raw_records
    return body + struct.pack("<I", zlib.crc32(body))


def _with_header_checksum(start: bytes, records: bytes) -> bytes:
    """``records`` with the header's checksum after its first record, when that record is
    complete."""
    f = io.BytesIO(records)
    try:
        size = container.read_varint(f.read, "header")
    except bitstream.FormatError:
        return records
    end = f.tell() + size
    if size == 0 or end > len(records):
        return records
    return records[:end] + struct.pack("<I", zlib.crc32(start + records[:end])) + records[end:]


def test_wire_form_is_the_documented_layout_byte_for_byte():
    blob = container.pack(header(), [(3, b"abcd"), (1, b"efgh", [5, 3, 2])])
    # meta {} omitted
    head = bytes([0x94, 0xC4, 8]) + bytes.fromhex(FINGERPRINT) + bytes([3, 0x92, 28, 28, 0xC3])
    body = b"AEC" + bytes([container.FORMAT_VERSION, len(head)]) + head
    body += struct.pack("<I", zlib.crc32(body)) + bytes([13, 0x93, 3, 0xC4, 4]) + b"abcd"
    body += bytes([0xCE]) + struct.pack(">I", zlib.crc32(b"abcd"))
    body += (
        bytes([17, 0x94, 1, 0xC4, 4])
        + b"efgh"
        + bytes([0xCE])
        + struct.pack(">I", zlib.crc32(b"efgh"))
    )
    body += bytes([0x93, 5, 3, 2]) + b"\x00"  # a chunk of another shape records it
    # where the chunk records start
    first, second = (
        4 + 1 + len(head) + 4,
        4 + 1 + len(head) + 4 + 14,
    )
    index = bytes([7, 0x92, 0x92, 3, 1, 0x92, first, second])  # length 7: [counts, offsets]
    body += index + struct.pack("<II", zlib.crc32(index), len(index))
    assert blob == body + struct.pack("<I", zlib.crc32(body))
    assert container.unpack(blob).shapes == [[28, 28], [5, 3, 2]]


def test_depth_and_max_error_follow_meta_on_the_wire_only_when_not_their_defaults():
    h = header(quality=0, depth=12, max_error=3, dtype="uint16", batched=False)
    blob = container.pack(h, [(1, b"abcd")])
    head = (
        bytes([0x97, 0xC4, 8])
        + bytes.fromhex(FINGERPRINT)
        + bytes([0, 0x92, 28, 28, 0xC2, 0x80, 12, 3])
    )
    assert (
        blob[: 5 + len(head)] == b"AEC" + bytes([0x80 | container.FORMAT_VERSION, len(head)]) + head
    )
    assert container.unpack(blob).header == h
    # depth 8 and max_error 0 omitted
    lossless_8bit = container.pack(header(quality=0), [(1, b"abcd")])
    assert container.unpack(lossless_8bit).header["quality"] == 0


def test_a_format_5_file_cannot_name_the_lossless_coder():
    blob = bytearray(container.pack(header(quality=0, batched=False), [(1, b"abcd")]))
    blob[3] = 0x80 | 5
    blob[-4:] = struct.pack("<I", zlib.crc32(bytes(blob[:-4])))
    with pytest.raises(bitstream.FormatError, match="quality 0"):
        container.unpack(bytes(blob))


def test_a_single_image_is_its_header_its_stream_and_one_checksum():
    blob = container.pack(header(batched=False), [(1, b"abcd")])
    # batched false, meta {} omitted
    head = bytes([0x93, 0xC4, 8]) + bytes.fromhex(FINGERPRINT) + bytes([3, 0x92, 28, 28])
    body = b"AEC" + bytes([0x80 | container.FORMAT_VERSION, len(head)]) + head + b"abcd"
    assert blob == body + struct.pack("<I", zlib.crc32(body))
    assert len(blob) - 4 == 24  # the 24 bytes a 28x28 image costs besides its stream
    assert container.unpack(blob).chunks == [(1, b"abcd")]


def test_container_roundtrip_and_header_alone():
    meta = {
        "kind": "folder",
        "name": "x",
        "files": [f"img{i}.png" for i in range(5000)],
        "count": 5000,
        "nested": {"a": [1, 2.5, None, True, b"raw"]},
    }
    for h in (
        header(),
        header(image_shape=[5, 3, 4], batched=False, quality=255),
        header(meta=meta),
    ):
        chunks = [(1, b"abcd")] if not h["batched"] else [(3, b"abcd"), (2, b"efgh" * 1000)]
        blob = container.pack(h, chunks)
        archive = container.unpack(blob)
        assert (
            archive.header == h
            and archive.chunks == chunks
            and archive.count == sum(n for n, _ in chunks)
        )
        assert container.read_header(blob) == h
        assert [(n, d) for n, d, _ in container.Reader(io.BytesIO(blob))] == chunks


def test_implied_fields_match_the_coder_so_a_coder_change_forces_a_new_format_version():
    assert IMPLIED["coder"] == {
        "name": bitstream.CODER_NAME,
        "version": bitstream.CODER_VERSION,
    }
    assert set(HEADER_FIELDS) == set(header())


def test_every_truncation_is_a_truncated_error():
    blobs = [
        container.pack(header(), [(3, b"abcd" * 10)]),
        container.pack(header(meta={"name": "x" * 200}), [(3, b"abcd" * 100), (1, b"efgh")]),
    ]
    for blob in blobs:
        for cut in range(len(blob)):
            with pytest.raises(bitstream.TruncatedError):
                container.unpack(blob[:cut])
            with pytest.raises(bitstream.TruncatedError):
                list(container.Reader(io.BytesIO(blob[:cut])))


def test_every_truncation_of_a_real_single_image_file_is_detected(test_images):
    """Inside the header: TruncatedError; inside the stream (which has no length of its own, to keep
    a single image's file small): its checksum, which says "damaged or truncated"."""
    import codec

    blob = codec.compress(test_images[0], quality=4)
    header_end = 4 + 1 + blob[4]
    for cut in range(len(blob)):
        error = codec.TruncatedError if cut < header_end + 4 else codec.ChecksumError
        with pytest.raises(error, match="truncated"):
            codec.decompress(blob[:cut])


@pytest.mark.parametrize("quality", [1, 4, 8])
def test_single_image_container_overhead_is_24_bytes(test_images, quality):
    import codec

    blob = codec.compress(test_images[0], quality=quality)
    payload = sum(len(d) for _, d in container.unpack(blob).chunks)
    # magic and version 4, header record 16 (length 1, array 1, fingerprint 10, quality 1, shape 3),
    # CRC 4
    assert len(blob) - payload == 24


def test_trailing_bytes_wrong_magic_and_other_versions_are_rejected():
    blob = container.pack(header(), [(1, b"abcd")])
    with pytest.raises(bitstream.FormatError, match="trailing"):
        container.unpack(blob + b"\0")
    with pytest.raises(bitstream.FormatError, match="magic"):
        container.unpack(b"XYZ\0" + blob[4:])
    with pytest.raises(bitstream.FormatError, match="magic"):
        container.unpack(b"XY")
    with pytest.raises(bitstream.UnsupportedVersionError, match="newer"):
        container.unpack(blob[:3] + bytes([99]) + blob[4:])
    with pytest.raises(bitstream.UnsupportedVersionError, match="newer"):
        container.unpack(blob[:3] + bytes([99 | 0x80]) + blob[4:])
    with pytest.raises(bitstream.UnsupportedVersionError):
        container.unpack(blob[:3] + bytes([0, 0]) + blob[4:])  # the older layout, version 0
    with pytest.raises(bitstream.FormatError, match="magic"):
        container.unpack(blob[:3] + bytes([2]) + blob[4:])  # versions 1 and 2 follow a zero byte


def test_a_version_1_file_is_refused_with_a_clear_message():
    v1 = b"AEC\x00\x01" + struct.pack("<I", 2) + b"\x80\x00"  # the old u32-framed string-keyed maps
    with pytest.raises(
        bitstream.UnsupportedVersionError,
        match="format 1 is a pre-release format .* reads formats 2 and 3",
    ):
        container.unpack(v1)
    with pytest.raises(bitstream.UnsupportedVersionError, match="pre-release"):
        container.Reader(io.BytesIO(v1))


def test_every_flipped_bit_is_detected():
    blob = container.pack(header(meta={"name": "a.png"}), [(1, b"abcdefgh"), (2, b"ijkl")])
    for i in range(len(blob) * 8):
        damaged = bytearray(blob)
        damaged[i // 8] ^= 1 << (i % 8)
        with pytest.raises(bitstream.FormatError):
            container.unpack(bytes(damaged))


F, L, C = bitstream.FormatError, bitstream.LimitError, bitstream.ChecksumError
DEEP: dict = {}
for _ in range(20):
    DEEP = {"d": DEEP}

HEADER_MUTATIONS = [
    # model: 8 raw bytes
    ("model", b"\x01" * 7, F),
    ("model", b"\x01" * 9, F),
    ("model", FINGERPRINT, F),
    ("model", None, F),
    ("model", {"fingerprint": FINGERPRINT}, F),
    ("model", [1], F),
    # quality: int 1..255
    ("quality", 0, F),
    ("quality", 256, F),
    ("quality", -1, F),
    ("quality", "3", F),
    ("quality", True, F),
    ("quality", 3.0, F),
    ("quality", None, F),
    ("quality", 2**64 - 1, F),
    # image_shape: [H, W] or [H, W, C]
    ("image_shape", [28], F),
    ("image_shape", [28, 28, 1, 1], F),
    ("image_shape", [], F),
    ("image_shape", "28x28", F),
    ("image_shape", {"h": 28}, F),
    ("image_shape", [28.0, 28], F),
    ("image_shape", [True, 28], F),
    ("image_shape", [28, "28"], F),
    ("image_shape", [0, 28], L),
    ("image_shape", [28, -1], L),
    ("image_shape", [28, 28, 0], L),
    ("image_shape", [28, 28, 5], L),
    ("image_shape", [2**16 + 1, 1], L),
    ("image_shape", [8192, 8193], L),
    ("image_shape", [1_000_000, 1_000_000], L),
    # batched: bool
    ("batched", 1, F),
    ("batched", 0, F),
    ("batched", None, F),
    ("batched", "yes", F),
    # meta: map with str keys, plain values
    ("meta", None, F),
    ("meta", [], F),
    ("meta", "x", F),
    ("meta", {b"name": "x"}, F),
    ("meta", {"d": DEEP}, F),
    ("meta", {"t": msgpack.ExtType(5, b"x")}, F),
    ("meta", {"t": msgpack.Timestamp(1)}, F),
    ("meta", {"s": "x" * (2**16 + 1)}, F),
    ("meta", {"b": b"\0" * (2**16 + 1)}, F),
]


@pytest.mark.parametrize(
    "field, value, error", HEADER_MUTATIONS, ids=[f"{f}={v!r:.20}" for f, v, _ in HEADER_MUTATIONS]
)
def test_every_header_field_mutation_is_rejected_with_its_documented_error(field, value, error):
    blob = raw_file(wire_header(**{field: value}))
    with pytest.raises(error) as info:
        container.unpack(blob)
    assert type(info.value) is error


@pytest.mark.parametrize(
    "head",
    [
        wire_header()[:2],
        [*wire_header(), {}, 0],
        [*wire_header(), {}],
        [*wire_header()[:3], False],
        {"model": b"\x01" * 8},
        None,
        7,
        b"x",
    ],
)
def test_a_header_record_of_the_wrong_shape_is_a_format_error(head):
    blob = raw_file(raw_records=record(head) + record(chunk(1, b"abcd")) + b"\x00")
    with pytest.raises(bitstream.FormatError) as info:
        container.unpack(blob)
    assert type(info.value) is bitstream.FormatError


CHUNK_MUTATIONS = [
    (chunk(0, b"abcd"), F),
    (chunk(-1, b"abcd"), F),
    (chunk("1", b"abcd"), F),
    (chunk(True, b"abcd"), F),
    (chunk(None, b"abcd"), F),
    (chunk(1.0, b"abcd"), F),
    (chunk(2**63, b"abcd"), L),
    (chunk(100_000, b"abcd"), L),
    ([1, "abcd", zlib.crc32(b"abcd")], F),
    ([1, None, 0], F),
    ([1, [1, 2], 0], F),
    (chunk(1, b"abcd", zlib.crc32(b"abcd") ^ 1), C),
    (chunk(1, b"abcd", -1), F),
    (chunk(1, b"abcd", 2**32), F),
    (chunk(1, b"abcd", "x"), F),
    ([1, b"abcd", None], F),
    (chunk(1, b"abcd", float(zlib.crc32(b"abcd"))), F),
    ([1, b"abcd"], F),
    ([*chunk(1, b"abcd"), 0], F),
    ([*chunk(1, b"abcd"), [0, 28]], L),
    ([*chunk(1, b"abcd"), [2, 2, 9]], L),
    ([*chunk(1, b"abcd"), [28, 28], 0], F),
    ({"n": 1, "data": b"abcd", "crc": zlib.crc32(b"abcd")}, F),
    (None, F),
    (1, F),
    (b"abcd", F),
]


@pytest.mark.parametrize(
    "bad, error", CHUNK_MUTATIONS, ids=[f"{c!r:.30}" for c, _ in CHUNK_MUTATIONS]
)
def test_every_chunk_field_mutation_is_rejected_with_its_documented_error(bad, error):
    blob = raw_file(chunks=[(1, b"good"), bad])
    reader = container.Reader(io.BytesIO(blob))
    chunks = iter(reader)
    # a streaming reader gets the chunks before the damaged one
    assert next(chunks)[:2] == (
        1,
        b"good",
    )
    with pytest.raises(error) as info:
        next(chunks)
    assert type(info.value) is error


HEAD, CHUNK = record(wire_header()), record(chunk(1, b"b"))
FRAMING_MUTATIONS = [
    (b"\x00" + record(chunk(1, b"abcd")) + b"\x00", F),  # empty header record
    (b"\x92\x00" + HEAD[1:] + b"\x00", F),  # header length not in its shortest form
    (bytes([len(HEAD) - 1 | 0x80, 0x80, 0]) + HEAD[1:] + b"\x00", F),  # ... nor here
    (b"\xff\xff\xff\xff\xff\x01", F),  # a length of more than 5 bytes
    (leb128(container.MAX_HEADER_BYTES + 1), L),  # refused before it is read
    (HEAD + leb128(container.MAX_CHUNK_BYTES + 1), L),
    (HEAD + b"\xff\xff\xff\xff\x0f", L),
    # a header record with a value after the array
    (
        leb128(len(HEAD)) + HEAD[1:] + b"\xc0" + b"\x00",
        F,
    ),
    (leb128(len(HEAD) - 2) + HEAD[1:-1] + b"\x00", F),  # a header record that ends inside its array
    (HEAD + leb128(3) + b"\x93\x01\xc4" + b"\x00", F),  # a chunk record that ends inside its array
    # ... or its crc
    (
        HEAD + record(chunk(1, b"abcd")) + leb128(len(CHUNK) - 2) + CHUNK[1:-1] + b"\x00",
        F,
    ),
    (HEAD + record(chunk(1, b"abcd")) + b"\x80\x00", F),  # end marker not in its shortest form
]


@pytest.mark.parametrize("records, error", FRAMING_MUTATIONS)
def test_record_framing_errors_are_rejected_with_their_documented_error(records, error):
    with pytest.raises(error) as info:
        container.unpack(raw_file(raw_records=records))
    assert type(info.value) is error


def test_a_single_image_file_holds_exactly_one_image():
    single = wire_header(batched=False)
    assert container.unpack(raw_file(single, [(1, b"abcd")])).count == 1
    for chunks in ([(2, b"abcd")], [(1, b"abcd"), (1, b"efgh")], [(1, b"abcd", [5, 5])]):
        with pytest.raises(bitstream.FormatError, match="single image"):
            container.pack(header(batched=False), chunks)
    # the form of an archive, a single image's header
    archive_form = container.MAGIC + bytes([3]) + record(single)
    archive_form += (
        struct.pack("<I", zlib.crc32(archive_form)) + record(chunk(1, b"abcd")) + b"\x00"
    )
    with pytest.raises(bitstream.FormatError, match="disagrees with the file's form"):
        container.unpack(archive_form + struct.pack("<I", zlib.crc32(archive_form)))


@pytest.mark.parametrize(
    "change, error",
    [
        ({"image_shape": [1_000_000, 1_000_000]}, bitstream.LimitError),
        ({"image_shape": [28, 28, 9]}, bitstream.LimitError),
        ({"image_shape": [28]}, bitstream.FormatError),
        ({"image_shape": (28, 28)}, bitstream.FormatError),
        ({"quality": "3"}, bitstream.FormatError),
        ({"dtype": "float64"}, bitstream.FormatError),
        ({"dtype": "uint16"}, bitstream.FormatError),  # not what depth 8 stores
        # only the lossless coder (quality 0) codes other depths
        (
            {"depth": 12},
            bitstream.FormatError,
        ),
        ({"depth": 17, "quality": 0, "dtype": "uint16"}, bitstream.FormatError),
        ({"max_error": 2}, bitstream.FormatError),  # a bound on a lossy level
        ({"max_error": 33, "quality": 0}, bitstream.FormatError),
        ({"quality": -1}, bitstream.FormatError),
        ({"coder": {"name": "constriction-ans", "version": "0.6"}}, bitstream.FormatError),
        ({"prior": "gaussian"}, bitstream.FormatError),
        ({"model": {"fingerprint": FINGERPRINT * 4}}, bitstream.FormatError),
        ({"model": {"fingerprint": FINGERPRINT.upper()}}, bitstream.FormatError),
        ({"model": {"fingerprint": FINGERPRINT, "name": "m"}}, bitstream.FormatError),
        ({"meta": {1: "x"}}, bitstream.FormatError),
        ({"meta": {"x": object()}}, bitstream.FormatError),
        ({"meta": {"big": 2**64}}, bitstream.FormatError),
        ({"meta": {"names": ["x" * 1000] * 2000}}, bitstream.LimitError),  # a header over 1 MiB
        ({"extra": 1}, bitstream.FormatError),
    ],
)
def test_the_writer_refuses_headers_a_reader_would_refuse(change, error):
    with pytest.raises(error) as info:
        container.pack(header(**change), [(1, b"abcd")])
    assert type(info.value) is error


def test_a_header_missing_a_field_is_rejected():
    h = header()
    del h["quality"]
    with pytest.raises(bitstream.FormatError, match="missing"):
        check_header(h)


def test_decompression_bomb_fails_fast_on_chunk_image_count():
    blob = raw_file(wire_header(image_shape=[4096, 4096]), [(1_000_000, b"abcd")])
    with pytest.raises(bitstream.LimitError):
        container.unpack(blob)


def test_streaming_reader_checks_each_chunk_before_yielding_it():
    out = io.BytesIO()
    w = container.Writer(out, header())
    w.add(1, b"good")
    w.add(1, b"more")
    w.close()
    damaged = bytearray(out.getvalue())
    damaged[out.getvalue().index(b"more")] ^= 0xFF  # inside the second chunk's data
    reader = container.Reader(io.BytesIO(bytes(damaged)))
    chunks = iter(reader)
    assert next(chunks)[:2] == (1, b"good")
    with pytest.raises(bitstream.ChecksumError, match="chunk"):
        next(chunks)


def test_large_images_are_chunked_within_the_pixel_limit_readers_enforce(monkeypatch, test_images):
    """Chunks of CHUNK_IMAGES images would exceed MAX_CHUNK_PIXELS for large images (a 300-image
    512x512 dataset was written but refused on reading); the writer sizes chunks to the limit."""
    import codec
    from codec.levels.tile import TileLevel

    monkeypatch.setattr(container, "MAX_CHUNK_PIXELS", 5 * 784)  # 5 images of 28x28 per chunk
    # and once padded to tiles
    monkeypatch.setattr(TileLevel, "max_coded_pixels", 5 * 784 + 5 * 784 // 8)
    x = test_images[:12]
    blob = codec.compress(x, quality=2)
    assert [n for n, _ in container.unpack(blob).chunks] == [5, 5, 2]
    assert codec.decompress(blob).shape == x.shape
    # 4 tiles each once padded: over the level's limit for 2, 1 per chunk. The scale names tile
    # levels for their own size only; a model without measurements names them for any size.
    odd = np.zeros((3, 29, 29), np.uint8)
    blob = codec.compress(odd, quality=1, model=unmeasured(codec.api.DEFAULT_MODEL))
    assert [n for n, _ in container.unpack(blob).chunks] == [1, 1, 1]
