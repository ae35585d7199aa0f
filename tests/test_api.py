import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import codec
from codec.api import container


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_qualities_constant_matches_bundled_model(bundled):
    assert codec.QUALITIES == bundled.qualities
    assert len(codec.QUALITIES) >= 6


@pytest.mark.parametrize("quality", codec.QUALITIES)
def test_roundtrip_every_quality_keeps_shape_dtype_and_reaches_its_trained_psnr(
    bundled, test_images, quality
):
    restored = codec.decompress(codec.compress(test_images, quality=quality))
    assert restored.shape == test_images.shape and restored.dtype == np.uint8
    if quality == codec.QUALITIES[-1]:
        np.testing.assert_array_equal(restored, test_images)
        return
    # The model file records the PSNR of the level each quality names on validation images.
    recorded = bundled.measured(quality)["psnr"]
    assert psnr(test_images, restored) > recorded - 1.0


def test_higher_quality_gives_larger_files_and_higher_psnr(test_images):
    sizes, psnrs = [], []
    for q in codec.QUALITIES:
        blob = codec.compress(test_images, quality=q)
        sizes.append(len(blob))
        psnrs.append(psnr(test_images, codec.decompress(blob)))
    assert sizes == sorted(sizes) and psnrs == sorted(psnrs)
    assert psnrs[0] < 23 and psnrs[-1] > 37


def test_bundled_quality_levels_span_22_to_38_db_on_the_whole_test_split(bundled):
    # measured on all 10,000 test images when exported
    recorded = [r["psnr"] for r in bundled.meta["test"]]
    assert min(recorded) <= 22 and max(recorded) >= 38


@pytest.mark.parametrize(
    "shape",
    [(1, 1), (5, 3), (29, 31), (2, 29, 31), (1, 28, 28, 3), (2, 5, 3, 4), (3, 28, 28), (37, 41, 3)],
)
def test_odd_shapes_round_trip_within_the_levels_bounds(shape, test_images):
    """Real image content cut to odd shapes: every pixel within half the step at a pixel level, and
    a PSNR floor at a transform level (its tiles are edge-padded, then cropped back)."""
    # garments side by side, cut at odd sizes from their corner
    mosaics = [
        test_images[36 * k : 36 * (k + 1)]
        .reshape(6, 6, 28, 28)
        .transpose(0, 2, 1, 3)
        .reshape(168, 168)
        for k in range(4)
    ]
    # as codec.compress reads arrays
    colour = len(shape) == 4 or len(shape) == 3 and shape[-1] in (3, 4)
    h, w = shape[-3:-1] if colour else shape[-2:]
    channels = shape[-1] if colour else 1
    count = shape[0] if len(shape) == 4 or (len(shape) == 3 and not colour) else 1
    images = [
        np.stack([mosaics[(i + c) % 4][:h, :w] for c in range(channels)], -1) for i in range(count)
    ]
    x = np.stack(images).reshape(shape)
    fmnist = codec.load_model()  # its levels' bounds; the photo model's odd sizes: test_conv.py
    pixel = codec.decompress(codec.compress(x, quality=9, model=fmnist), model=fmnist)
    assert pixel.shape == x.shape and pixel.dtype == np.uint8
    assert np.abs(pixel.astype(int) - x).max() <= 7  # quality 9 (>= 38 dB): step 14
    tile = codec.decompress(codec.compress(x, quality=3, model=fmnist), model=fmnist)
    assert tile.shape == x.shape and psnr(x, tile) > 20


def test_colour_round_trips_each_channel_with_its_own_content(test_images):
    # three different channels
    rgb = np.stack([test_images[:20], test_images[20:40], test_images[40:60]], axis=-1)
    # channels as planes
    restored = codec.decompress(codec.compress(rgb, quality=6, model=codec.load_model()))
    assert restored.shape == rgb.shape
    for c in range(3):
        assert psnr(rgb[..., c], restored[..., c]) > 28
    assert psnr(rgb[..., 0], restored[..., 1]) < 15  # the channels are not mixed up


@pytest.mark.parametrize("quality", [2, 5])  # a transform level and a pixel level
def test_decoded_pixels_do_not_depend_on_batching(test_images, quality):
    x = test_images[:50]
    whole = codec.decompress(codec.compress(x, quality=quality))
    ones = np.stack([codec.decompress(codec.compress(img, quality=quality)) for img in x])
    sevens = np.concatenate(
        [codec.decompress(codec.compress(x[i : i + 7], quality=quality)) for i in range(0, 50, 7)]
    )
    np.testing.assert_array_equal(whole, ones)
    np.testing.assert_array_equal(whole, sevens)


def test_compression_is_deterministic(test_images):
    assert codec.compress(test_images[:40], quality=3) == codec.compress(
        test_images[:40], quality=3
    )


def test_coded_size_is_within_one_percent_of_the_models_estimate(bundled, test_images):
    for q in (1, 4, 8):
        blob = codec.compress(test_images, quality=q)
        payload = sum(len(d) for _, d in container.unpack(blob).chunks)
        estimate = bundled.estimate_bits(test_images, q) / 8
        assert abs(payload / estimate - 1) < 0.01


def test_many_images_share_chunks(test_images):
    blob = codec.compress(np.concatenate([test_images] * 4), quality=2)
    archive = container.unpack(blob)
    size = codec.api.CHUNK_IMAGES
    assert [n for n, _ in archive.chunks] == [size] * (1200 // size) + [1200 % size] * (
        1200 % size > 0
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 28, 28), np.float32), "dtype float32"),
        (np.full((2, 28, 28), np.nan), "NaN"),
        (np.zeros((0, 28, 28), np.uint8), "empty"),
        (np.zeros((28,), np.uint8), "1 dimensions"),
        (np.zeros((1, 2, 28, 28, 1), np.uint8), "5 dimensions"),
        (np.zeros((1, 28, 28, 5), np.uint8), "5 channels"),
        (np.zeros((2, 28, 28), np.int64), "dtype int64"),
        # 2^29 values and one row more
        (
            np.zeros((32769, 16384), np.uint8),
            "larger than aecodec accepts",
        ),
    ],
)
def test_bad_arrays_raise_input_error_naming_the_problem(bad, message):
    with pytest.raises(codec.InputError, match=message):
        codec.compress(bad)


@pytest.mark.parametrize("shape", [(8192, 8192), (4096, 4096, 4)])
def test_the_documented_largest_image_is_accepted_though_padding_to_tiles_makes_it_larger(shape):
    # the tile and pixel levels' limit (convolutional levels go further, in tiles)
    fmnist = codec.load_model()
    for quality in (1, 9):  # a transform level (padded to whole tiles) and a pixel level
        # the size checks happen here
        codec.api.ArchiveWriter(io.BytesIO(), shape, quality=quality, model=fmnist)
    with pytest.raises(codec.InputError, match="larger than aecodec accepts with 'aecodec-fmnist'"):
        codec.api.ArchiveWriter(io.BytesIO(), (8193, 8192), quality=1, model=fmnist)


def test_bool_images_are_taken_as_black_and_white():
    x = np.zeros((1, 28, 28), bool)
    x[0, 10:18, 10:18] = True
    y = codec.decompress(codec.compress(x, quality=9))
    assert y.dtype == np.uint8 and y[0, 14, 14] > 200 and y[0, 2, 2] < 30


@pytest.mark.parametrize("quality", [0, 16, 2.5, "4", True])
def test_unknown_quality_is_an_input_error(quality):
    with pytest.raises(codec.InputError, match="quality"):
        codec.compress(np.zeros((28, 28), np.uint8), quality=quality)


def test_decoding_with_another_model_is_a_model_mismatch(tiny, test_images):
    blob = codec.compress(test_images[:3], quality=2)
    with pytest.raises(codec.ModelMismatchError, match="tiny"):
        codec.decompress(blob, model=tiny)
    with pytest.raises(codec.ModelMismatchError):
        codec.decompress(codec.compress(test_images[:3], quality=2, model=tiny))


def test_truncated_file_raises_truncated_error_which_is_also_eof_and_value_error(test_images):
    blob = codec.compress(test_images[:5])
    for cut in (0, 3, 10, len(blob) // 2, len(blob) - 1):
        with pytest.raises(codec.TruncatedError) as info:
            codec.decompress(blob[:cut])
        assert isinstance(info.value, EOFError) and isinstance(info.value, ValueError)


def test_flipped_bit_is_detected(test_images):
    blob = bytearray(codec.compress(test_images[:5]))
    blob[len(blob) // 2] ^= 0x10
    with pytest.raises(codec.FormatError):
        codec.decompress(bytes(blob))


def test_decompress_rejects_non_bytes():
    with pytest.raises(codec.InputError, match="bytes"):
        codec.decompress("not bytes")


def test_file_roundtrip_through_npy(tmp_path, test_images):
    src, packed, out = tmp_path / "x.npy", tmp_path / "x.aec", tmp_path / "y.npy"
    np.save(src, test_images[:10])
    codec.compress_file(src, packed, quality=6)
    restored = codec.decompress_file(packed, out)
    np.testing.assert_array_equal(np.load(out), restored)
    assert restored.shape == (10, 28, 28)
    with pytest.raises(FileExistsError):
        codec.compress_file(src, packed)


def test_archive_writer_streams_in_pieces_and_reads_back_identically(test_images):
    out = io.BytesIO()
    with codec.api.ArchiveWriter(out, (28, 28), quality=5) as writer:
        for start in range(0, 300, 70):  # pieces that straddle chunk boundaries differently
            writer.write(test_images[start : start + 70])
    assert writer.count == 300
    assert out.getvalue() == codec.compress(test_images, quality=5)
    reader = codec.api.ArchiveReader(io.BytesIO(out.getvalue()))
    np.testing.assert_array_equal(np.concatenate(list(reader)), codec.decompress(out.getvalue()))


def test_single_image_archive_refuses_a_second_image(test_images):
    writer = codec.api.ArchiveWriter(io.BytesIO(), (28, 28), batched=False)
    writer.write(test_images[:1])
    with pytest.raises(codec.InputError, match="exactly one image"):
        writer.write(test_images[1:2])


def test_choose_quality_meets_a_size_or_a_psnr_target(bundled, test_images):
    sample = test_images[:64]
    sizes = [len(codec.compress(sample, quality=q)) / len(sample) for q in codec.QUALITIES]
    between = (sizes[2] + sizes[3]) / 2
    assert codec.api.choose_quality(sample, target_bytes_per_image=between) == 3
    # nothing fits: the smallest
    assert codec.api.choose_quality(sample, target_bytes_per_image=1.0) == 1
    psnr = codec.api.measure(bundled, sample, 5)["psnr"]
    assert codec.api.choose_quality(sample, target_psnr=psnr - 0.01) == 5


CODEC = Path(codec.__file__).parent


def test_bad_meta_passed_to_compress_is_an_input_error(images):
    for meta in ("text", {1: "x"}, {"a": object()}):
        with pytest.raises(codec.InputError, match="meta"):
            codec.compress(images, meta=meta)


def test_the_api_holds_no_coding_algorithm_and_no_level_arithmetic():
    api = (CODEC / "api.py").read_text()
    assert "Encoder(" not in api and "Decoder(" not in api and "to_tiles" not in api
    offenders = [
        p.name
        for p in CODEC.glob("*.py")
        if p.name != "model.py" and "quality - 1" in p.read_text()
    ]
    assert offenders == []


def test_coding_never_imports_jax_or_training_code(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:20])
    code = (
        "import sys, numpy as np, codec; x = np.load(sys.argv[1]); "
        "[codec.decompress(codec.compress(x, quality=q)) for q in (1, 8)]; "
        "print(sorted(m for m in ('jax', 'flax', 'optax', 'codec.training.tile', "
        "'codec.training.tile_net') if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_a_target_is_chosen_by_measurement_not_by_the_order_of_the_levels(test_images):
    # off the model's grid: its transform levels lose
    shifted = np.roll(test_images[:64], 7, axis=2)
    pick = codec.api.pick_quality(shifted, target_psnr=18)
    results = [
        codec.api.measure(codec.load_model(), shifted, q) for q in codec.load_model().qualities
    ]
    meeting = [r for r in results if r["psnr"] >= 18]
    assert pick["met"] and pick["bytes_per_image"] == min(r["bytes_per_image"] for r in meeting)


def test_user_meta_cannot_turn_an_array_into_a_list():
    x = np.zeros((2, 28, 28), np.uint8)
    assert isinstance(codec.decompress(codec.compress(x, meta={"list": True})), np.ndarray)


@pytest.mark.parametrize("bad", [np.zeros(5, bool), np.zeros((1, 1, 1, 1, 1), bool)])
def test_bool_arrays_get_the_same_checks(bad):
    with pytest.raises(codec.InputError, match="dimensions"):
        codec.compress(bad)


def test_every_error_class_of_codec_errors_is_a_name_of_the_package():
    from codec import errors

    classes = {n for n in errors.__all__ if isinstance(getattr(errors, n), type)}
    assert classes <= set(codec.__all__)
    assert all(getattr(codec, n) is getattr(errors, n) for n in classes)
