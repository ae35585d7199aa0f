import json
import warnings

import msgpack
import numpy as np
import pytest

import bitstream
import codec
from codec.levels import entropy, modelfile

from .test_cli import run


def test_compression_consistent_with_quantization(bundled, test_images):
    """The decoder recovers exactly the integers the encoder produced."""
    from codec.levels.planes import to_tiles

    tiles = to_tiles(test_images[:64], bundled.part("tile").config.tile)
    choice, symbols, index = bundled.level(3).latents(tiles)
    enc = bitstream.Encoder(bundled.part("tile").tables)
    enc.add(choice, np.full(64, bundled.part("tile").frozen.cluster_table(2)))
    enc.add(symbols, index)
    dec = bitstream.Decoder(enc.finish(), bundled.part("tile").tables)
    np.testing.assert_array_equal(
        dec.read(np.full(64, bundled.part("tile").frozen.cluster_table(2))), choice
    )
    np.testing.assert_array_equal(dec.read(index), symbols)


def test_information_bounds(bundled, test_images):
    """Coded bits >= ideal bits under the frozen tables, and only the coder's flush above."""
    from codec.levels.planes import to_tiles

    choice, symbols, index = bundled.level(3).latents(
        to_tiles(test_images, bundled.part("tile").config.tile)
    )
    enc = bitstream.Encoder(bundled.part("tile").tables)
    cluster_index = np.full(len(choice), bundled.part("tile").frozen.cluster_table(2))
    enc.add(choice, cluster_index)
    enc.add(symbols, index)
    coded = 8 * len(enc.finish())
    ideal = bitstream.ideal_bits(
        choice, cluster_index, bundled.part("tile").tables
    ) + bitstream.ideal_bits(symbols, index, bundled.part("tile").tables)
    assert ideal <= coded <= ideal * 1.002 + 64


def test_frozen_tables_are_rebuilt_identically_from_the_ladder(bundled):
    """The stored integer tables are exactly what freezing computes on this machine."""
    for t, scale in enumerate(entropy.SCALE_LADDER):
        low, freqs = entropy.integer_table(float(scale))
        assert low == bundled.part("tile").frozen.lows[t]
        np.testing.assert_array_equal(freqs, bundled.part("tile").frozen.freqs[t])


def test_compression_works_after_serialization(tiny_model_path, tmp_path, test_images):
    raw = tiny_model_path.read_bytes()
    copy = tmp_path / "copy.aecm"
    copy.write_bytes(raw)
    a, b = codec.load_model(tiny_model_path), codec.load_model(copy)
    assert a.fingerprint == b.fingerprint
    assert codec.compress(test_images[:10], quality=1, model=a) == codec.compress(
        test_images[:10], quality=1, model=b
    )


def _body(path):
    return msgpack.unpackb(path.read_bytes()[4:], raw=False)


def _write(path, body):
    body = dict(body)
    body.pop("fingerprint", None)
    body["fingerprint"] = modelfile.fingerprint(body)
    path.write_bytes(modelfile.MAGIC + msgpack.packb(body, use_bin_type=True))
    return path


def test_model_file_bad_magic_and_damage_are_format_errors(tiny_model_path, tmp_path):
    raw = tiny_model_path.read_bytes()
    (tmp_path / "a").write_bytes(b"XXXX" + raw[4:])
    with pytest.raises(codec.FormatError, match="magic"):
        codec.load_model(tmp_path / "a")
    damaged = bytearray(raw)
    damaged[len(raw) // 2] ^= 1
    (tmp_path / "b").write_bytes(bytes(damaged))
    with pytest.raises(codec.FormatError):
        codec.load_model(tmp_path / "b")
    (tmp_path / "c").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(codec.TruncatedError):
        codec.load_model(tmp_path / "c")


def test_model_file_from_a_newer_format_asks_for_an_upgrade(tiny_model_path, tmp_path):
    body = _body(tiny_model_path)
    body["format"] = 99
    with pytest.raises(codec.UnsupportedVersionError, match="upgrade"):
        codec.load_model(_write(tmp_path / "new.aecm", body))


def test_model_file_with_wrong_parameter_shape_is_rejected(tiny_model_path, tmp_path):
    body = _body(tiny_model_path)
    body["params"]["pixel_mean"] = modelfile.encode_array(np.zeros(5, np.float32))
    with pytest.raises(codec.FormatError, match="pixel_mean: shape"):
        codec.load_model(_write(tmp_path / "bad.aecm", body))


def test_model_file_from_before_context_modelling_still_loads(
    tiny_model_path, tmp_path, test_images
):
    """Such files have no context groups and store table indices instead of rung positions."""
    body = _body(tiny_model_path)
    body["format"] = 1
    del body["pixel"], body["default"], body["conv"]
    body["config"] = {
        k: v for k, v in body["config"].items() if not k.startswith(("context", "pixel"))
    }
    body["params"] = {k: v for k, v in body["params"].items() if not k.startswith("context")}
    rung = modelfile.decode_array(body["frozen"].pop("rung"), what="rung")
    body["frozen"]["index"] = modelfile.encode_array(
        np.rint(rung.astype(np.float64)).astype(np.uint8)
    )
    model = codec.load_model(_write(tmp_path / "old.aecm", body))
    assert model.part("tile").config.bounds == (0, 784)
    restored = codec.decompress(
        codec.compress(test_images[:5], quality=2, model=model), model=model
    )
    assert (
        restored.shape == (5, 28, 28) and np.abs(restored.astype(int) - test_images[:5]).mean() < 40
    )


def test_fine_tuning_copies_matching_parameters_and_names_the_others(tiny_model_path):
    from flax import nnx

    from codec.levels.tile_config import ModelConfig
    from codec.training import tile as train
    from codec.training.tile_net import Codec

    tiny = {
        "clusters": 2,
        "lambdas": (1.0, 10.0),
        "context_groups": 3,
        "context_hidden": 8,
    }  # as conftest trains it
    copied = train.load_params(
        Codec(ModelConfig(hidden=8, **tiny), rngs=nnx.Rngs(1)), tiny_model_path
    )
    assert "synthesis_linear" in copied and "context2/outer/kernel" in copied
    wider = train.load_params(
        Codec(ModelConfig(hidden=16, **tiny), rngs=nnx.Rngs(1)), tiny_model_path
    )
    assert "synthesis_linear" in wider
    assert (
        "analysis_branch/inner/kernel (not copied: shape (784, 8) in the file, (784, 16) here)"
        in wider
    )


def test_a_stream_claiming_a_negative_cluster_is_a_format_error(tiny):
    encoder = bitstream.Encoder(tiny.part("tile").tables)
    # the escape carries any value
    encoder.add(np.array([-3]), np.array([tiny.part("tile").frozen.cluster_table(0)]))
    with pytest.raises(codec.FormatError, match="cluster index out of range"):
        tiny.level(1).decode(encoder.finish(), 1, [28, 28])


def test_model_file_with_absurd_config_is_rejected(tiny_model_path, tmp_path):
    body = _body(tiny_model_path)
    body["config"]["tile"] = [100000, 100000]
    with pytest.raises(codec.FormatError, match="out of range"):
        codec.load_model(_write(tmp_path / "bad.aecm", body))


def test_missing_model_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        codec.load_model(tmp_path / "none.aecm")


def test_ladder_tables_that_do_not_match_their_range_are_format_errors(tiny_model_path, tmp_path):
    body = _body(tiny_model_path)
    lows = np.frombuffer(body["frozen"]["lows"]["data"], "<i4").copy()
    lows[0] += 1  # the table now claims a range its frequencies do not cover
    body["frozen"]["lows"]["data"] = lows.tobytes()
    with pytest.raises(codec.FormatError, match="ladder table"):
        codec.load_model(_write(tmp_path / "m.aecm", body))


def test_a_model_with_absurd_gains_still_codes_cleanly(tiny_model_path, tmp_path, test_images):
    body = _body(tiny_model_path)
    gain = np.frombuffer(body["frozen"]["gain"]["data"], "<f4").copy()
    body["frozen"]["gain"]["data"] = np.full_like(gain, 3e38).tobytes()
    model = codec.load_model(_write(tmp_path / "m.aecm", body))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflowing or undefined casts on the way
        _, symbols, _ = model.level(1).latents(test_images[:4].reshape(4, -1))
        restored = codec.decompress(
            codec.compress(test_images[:4], quality=1, model=model), model=model
        )
    assert np.abs(symbols).max() == 1 << 15 and restored.shape == (4, 28, 28)


def test_each_level_is_an_object_with_one_narrative(bundled, test_images):
    kinds = [level.kind for level in bundled.levels]
    assert kinds == ["tile"] * 3 + ["pixel"] * 11
    for q in (1, 9):
        level = bundled.level(q)
        stream = level.encode(test_images[:3], min_bytes=0)
        assert level.decode(stream, 3, [28, 28]).shape == (3, 28, 28)
        assert level.ideal_bits(test_images[:3]) > 0 and level.coded_pixels(3, [28, 28]) == 3 * 784


def test_a_model_with_fewer_levels_uses_its_own_default(tiny_model_path, tmp_path, test_images):
    tiny = codec.load_model(tiny_model_path)
    assert tiny.qualities == codec.QUALITIES and tiny.default_quality == 6
    level = tiny.fields_for(6)["quality"]  # by its own measurements, its level nearest 32 dB
    np.save(tmp_path / "a.npy", test_images[:5])
    assert run("-q", "--model", str(tiny_model_path), "a.npy", cwd=tmp_path).returncode == 0
    info = json.loads(run("info", "--json", "a.npy.aec", cwd=tmp_path).stdout)
    assert info["quality"] == level
    assert codec.decompress(codec.compress(test_images[:5], model=tiny), model=tiny).shape == (
        5,
        28,
        28,
    )
