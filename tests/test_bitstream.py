import io

import numpy as np
import pytest

import bitstream
from bitstream import container


def gaussian_tables():
    from codec.entropy import integer_table

    tables = [integer_table(s) for s in (0.2, 1.0, 5.0)]
    return bitstream.Tables([low for low, _ in tables], [f for _, f in tables])


def test_coder_roundtrip_with_escapes_and_mixed_tables():
    rng = np.random.default_rng(0)
    tables = gaussian_tables()
    index = rng.integers(0, 3, (50, 30))
    symbols = np.round(rng.normal(0, [0.2, 1.0, 5.0][0], index.shape) * np.array([0.2, 1.0, 5.0])[index]).astype(np.int64)
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
    with pytest.raises(bitstream.FormatError, match="left"):
        dec.finish()


def header(**changes):
    h = {"model": {"name": "m", "fingerprint": "f"}, "coder": {"name": "c", "version": "1"}, "quality": 3,
         "image_shape": [28, 28], "batched": True, "dtype": "uint8", "pad": [0, 0], "latent": [1, 1, 784],
         "prior": "clusters", "meta": {}}
    h.update(changes)
    return h


def test_container_roundtrip_and_header_alone():
    blob = container.pack(header(), [(3, b"abcd"), (2, b"efgh")])
    archive = container.unpack(blob)
    assert archive.header == header() and archive.chunks == [(3, b"abcd"), (2, b"efgh")] and archive.count == 5
    assert container.read_header(blob) == header()


def test_every_truncation_is_a_truncated_error():
    blob = container.pack(header(), [(3, b"abcd" * 10)])
    for cut in range(len(blob)):
        with pytest.raises(bitstream.TruncatedError):
            container.unpack(blob[:cut])


def test_trailing_bytes_wrong_magic_and_unknown_version_are_rejected():
    blob = container.pack(header(), [(1, b"abcd")])
    with pytest.raises(bitstream.FormatError, match="trailing"):
        container.unpack(blob + b"\0")
    with pytest.raises(bitstream.FormatError, match="magic"):
        container.unpack(b"XYZ\0" + blob[4:])
    with pytest.raises(bitstream.UnsupportedVersionError):
        container.unpack(blob[:4] + bytes([99]) + blob[5:])


def test_every_flipped_bit_in_the_chunks_and_checksum_is_detected():
    blob = container.pack(header(), [(1, b"abcdefgh")])
    start = len(blob) - 30
    for i in range(start * 8, len(blob) * 8):
        damaged = bytearray(blob)
        damaged[i // 8] ^= 1 << (i % 8)
        with pytest.raises(bitstream.FormatError):
            container.unpack(bytes(damaged))


@pytest.mark.parametrize("change, error", [
    ({"image_shape": [1_000_000, 1_000_000]}, bitstream.LimitError),
    ({"image_shape": [28, 28, 9]}, bitstream.LimitError),
    ({"image_shape": [28]}, bitstream.FormatError),
    ({"quality": "3"}, bitstream.FormatError),
    ({"dtype": "float64"}, bitstream.FormatError),
    ({"extra": 1}, bitstream.FormatError),
])
def test_bad_headers_are_rejected(change, error):
    with pytest.raises(error):
        container.check_header(header(**change))


def test_a_header_missing_a_field_is_rejected():
    h = header()
    del h["pad"]
    with pytest.raises(bitstream.FormatError, match="missing"):
        container.check_header(h)


def test_decompression_bomb_fails_fast_on_chunk_image_count():
    blob = container.pack(header(image_shape=[4096, 4096]), [(1_000_000, b"abcd")])
    with pytest.raises(bitstream.LimitError):
        container.unpack(blob)


def test_streaming_reader_checks_each_chunk_before_yielding_it():
    out = io.BytesIO()
    w = container.Writer(out, header())
    w.add(1, b"good")
    w.add(1, b"more")
    w.close()
    damaged = bytearray(out.getvalue())
    damaged[-12] ^= 0xFF  # inside the second chunk's data
    reader = container.Reader(io.BytesIO(bytes(damaged)))
    chunks = iter(reader)
    assert next(chunks) == (1, b"good")
    with pytest.raises(bitstream.FormatError):
        next(chunks)
