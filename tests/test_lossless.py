"""Lossless and near-lossless coding, 8 and 16 bits: exactness, the ±K bound, files, errors."""

import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest

import codec
from bitstream import container
from codec.errors import FormatError, InputError
from codec.io import data, deep
from codec.io.images import read_image
from codec.levels import context_tree, hybrid, modelfile
from codec.training import lossless_train

AECODEC = [sys.executable, "-m", "codec.cli"]


def _deep_images(n: int, shape=(24, 20), bits: int = 12, seed: int = 0) -> np.ndarray:
    """Smooth 16-bit images with noise: gradients, a disc, sensor-like noise (values below
    2^bits)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    out = []
    for _ in range(n):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(3, 10)
        base = 300 + 40 * x + 25 * y + 1500 * ((y - cy) ** 2 + (x - cx) ** 2 < r * r)
        out.append(np.clip(base + rng.normal(0, 30, shape), 0, (1 << bits) - 1))
    return np.stack(out).astype(np.uint16)


@pytest.fixture(scope="module")
def coder8():
    return lossless_train.fit([data.fashion_mnist("train")[:300]], 8, leaves=32, log=lambda s: None)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, coder8):
    """A model of the lossless coder alone (8 bits), as ``aecodec train --kind lossless`` writes
    it."""
    path = tmp_path_factory.mktemp("lossless") / "l8.aecm"
    path.write_bytes(
        modelfile.dumps(
            name="l8",
            config=None,
            params={},
            frozen=None,
            pixel=[],
            meta={},
            default=0,
            lossless=coder8,
        )
    )
    return path


@pytest.fixture(scope="module")
def deep_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("deep") / "d16.aecm"
    coder = lossless_train.fit([_deep_images(40, seed=1)], 16, leaves=16, log=lambda s: None)
    path.write_bytes(
        modelfile.dumps(
            name="d16",
            config=None,
            params={},
            frozen=None,
            pixel=[],
            meta={},
            default=0,
            lossless=coder,
        )
    )
    return path


def test_hybrid_tokens_round_trip_every_16_bit_magnitude():
    u = np.arange(1 << 17)
    token, raw, extra = hybrid.token_of(u)
    assert np.array_equal(hybrid.magnitude_of(token, raw), u)
    assert np.array_equal(hybrid.raw_bits_of(token), extra)
    assert token[:32].tolist() == list(range(32)) and token.max() < 4 * 17 + 12
    assert hybrid.tokens_per_sign(8) == 44 and hybrid.tokens_per_sign(16) == 76


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (31, 17), (28, 28, 3), (9, 40, 4), (2, 1, 1)])
def test_lossless_round_trips_odd_sizes_and_colour_bit_for_bit(model_path, shape):
    images = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    images[..., : shape[1] // 2] //= 8  # smooth and noisy parts
    back = codec.decompress(
        codec.compress(images, lossless=True, model=model_path), model=model_path
    )
    assert back.dtype == np.uint8 and np.array_equal(back, images)


def test_lossless_round_trips_fashion_images_bit_for_bit_smaller_than_png(model_path):
    test = data.fashion_mnist("test")[:200]
    blob = codec.compress(test, lossless=True, model=model_path)
    back = codec.decompress(blob, model=model_path)
    assert hashlib.sha256(back.tobytes()).digest() == hashlib.sha256(test.tobytes()).digest()
    assert 8 * len(blob) / test.size < 3.6  # PNG takes 5.18 bits per pixel, xz -9e 3.86


@pytest.mark.parametrize("k", [1, 2, 4, 32])
def test_near_lossless_keeps_every_pixel_within_k(model_path, k):
    images = np.concatenate([data.fashion_mnist("test")[:50], np.full((1, 28, 28), 255, np.uint8)])
    blob = codec.compress(images, max_error=k, model=model_path)
    back = codec.decompress(blob, model=model_path)
    assert int(np.abs(back.astype(np.int32) - images).max()) <= k
    assert container.unpack(blob).header["max_error"] == k
    if k == 1:
        assert len(blob) < len(codec.compress(images, lossless=True, model=model_path))


@pytest.mark.parametrize(
    "bits, shape", [(12, (24, 20)), (16, (24, 20)), (16, (5, 7, 3)), (9, (1, 3))]
)
def test_16_bit_images_round_trip_exactly_with_their_depth(deep_path, bits, shape):
    rng = np.random.default_rng(bits)
    images = (
        rng.integers(0, 1 << bits, (3, *shape), dtype=np.uint16)
        if len(shape) == 3 or shape == (1, 3)
        else _deep_images(3, shape, bits)
    )
    blob = codec.compress(images, lossless=True, model=deep_path, depth=bits)
    header = container.unpack(blob).header
    assert header["depth"] == bits and header["dtype"] == "uint16"
    back = codec.decompress(blob, model=deep_path)
    assert back.dtype == np.uint16 and np.array_equal(back, images)
    for k in (1, 3):
        near = codec.decompress(
            codec.compress(images, max_error=k, model=deep_path, depth=bits), model=deep_path
        )
        assert int(np.abs(near.astype(np.int64) - images).max()) <= k


def test_lossy_coding_of_16_bit_images_is_refused_with_the_way_out(bundled):
    with pytest.raises(
        InputError, match="losslessly or near-losslessly only.*lossless=True or max_error"
    ):
        codec.compress(np.zeros((4, 4), np.uint16), model=bundled, quality=2)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"lossless": True, "quality": 2}, "not both"),
        ({"max_error": 33}, "from 0 .lossless. to 32"),
        ({"max_error": -1}, "from 0 .lossless. to 32"),
        ({"lossless": True, "max_error": 2}, "lossless means max_error 0"),
        ({"lossless": True, "depth": 4}, "beyond 4 bits"),
        ({"lossless": True, "depth": 12}, "does not suit uint8"),
    ],
)
def test_lossless_arguments_are_checked(model_path, kw, message):
    with pytest.raises(InputError, match=message):
        codec.compress(np.full((5, 5), 200, np.uint8), model=model_path, **kw)


def test_a_model_without_a_lossless_coder_says_so(tiny):
    with pytest.raises(InputError, match="has no lossless coder"):
        codec.compress(np.zeros((28, 28), np.uint8), model=tiny, lossless=True)


def test_16_bit_images_need_a_16_bit_coder(model_path):
    with pytest.raises(InputError, match="codes losslessly up to 8 bits"):
        codec.compress(np.zeros((4, 4), np.uint16), model=model_path, lossless=True)


def test_a_damaged_lossless_stream_is_an_error_not_wrong_pixels(model_path):
    images = data.fashion_mnist("test")[:20]
    blob = bytearray(codec.compress(images, lossless=True, model=model_path))
    chunk_data = container.unpack(bytes(blob)).chunks[0][1]
    damaged = bytearray(chunk_data)
    for i in range(0, len(damaged), 7):
        damaged[i] ^= 0x5A
    from codec.levels.lossless import LosslessLevel

    level = LosslessLevel(codec.load_model(model_path).part("lossless"))
    with pytest.raises(FormatError):
        level.decode(bytes(damaged), 20, (28, 28))


def test_a_context_tree_with_a_loop_or_a_shared_child_is_refused(coder8):
    arrays = {k: v.copy() for k, v in coder8.tree.arrays().items()}
    inner = int(np.flatnonzero(arrays["leaf"] < 0)[1])
    looped = {**arrays, "left": arrays["left"].copy()}
    looped["left"][inner] = 0
    with pytest.raises(FormatError, match="not a valid context tree"):
        context_tree.check_tree(looped, what="t")
    shared = {**arrays, "right": arrays["right"].copy()}
    shared["right"][0] = arrays["left"][0]
    with pytest.raises(FormatError, match="context tree"):
        context_tree.check_tree(shared, what="t")


def test_a_recipe_trains_from_python_the_file_the_command_line_writes(tmp_path, test_images):
    from codec import cli
    from codec.training import recipes

    np.save(tmp_path / "x.npy", test_images[:200])
    words = ["train", "--kind", "lossless", "--leaves", "8", "--data", str(tmp_path / "x.npy")]
    assert cli.main([*words, "--out", str(tmp_path / "m.aecm"), "-q"]) == 0
    options = recipes.TrainOptions(
        name="m",
        leaves=8,
        data_name=str(tmp_path / "x.npy"),
        command=" ".join(["aecodec", *words, "--out", str(tmp_path / "m.aecm"), "-q"]),
    )
    raw = recipes.train_model("lossless", test_images[:200], options)
    assert raw == (tmp_path / "m.aecm").read_bytes()


def test_a_lossless_coder_added_to_a_model_keeps_its_old_files_decodable(
    tmp_path, tiny_model_path, test_images
):
    old = codec.compress(test_images[:3], quality=1, model=tiny_model_path)
    raw = lossless_train.lossless_added(
        data.fashion_mnist("train")[:200],
        tiny_model_path.read_bytes(),
        name="t",
        leaves=8,
        depth=None,
        command="test",
        data_name="test",
        log=lambda s: None,
    )
    (tmp_path / "t.aecm").write_bytes(raw)
    new = codec.load_model(tmp_path / "t.aecm")
    assert new.fingerprint != codec.load_model(tiny_model_path).fingerprint
    assert np.array_equal(
        codec.decompress(old, model=new), codec.decompress(old, model=tiny_model_path)
    )
    exact = codec.compress(test_images[:3], lossless=True, model=new)
    assert np.array_equal(codec.decompress(exact, model=new), test_images[:3])


def test_the_bundled_fashion_model_codes_losslessly_below_xz(bundled, test_images):
    blob = codec.compress(test_images, lossless=True)
    assert np.array_equal(codec.decompress(blob), test_images)
    assert 8 * len(blob) / test_images.size < 3.4  # xz -9e: 3.86 bits per pixel on the whole split


@pytest.mark.parametrize(
    "suffix, bits, channels",
    [
        (".png", 16, 1),
        (".png", 12, 3),
        (".tif", 16, 1),
        (".tif", 16, 3),
        (".pgm", 12, 1),
        (".ppm", 16, 3),
    ],
)
def test_16_bit_files_round_trip_through_the_command_line_with_their_depth(
    tmp_path, deep_path, suffix, bits, channels
):
    image = _deep_images(1, (20, 17), bits)[0]
    if channels == 3:
        image = np.stack([image, image // 2, image // 3], -1)
    fmt = {".png": "PNG", ".tif": "TIFF", ".pgm": "PPM", ".ppm": "PPM"}[suffix]
    path = tmp_path / f"x{suffix}"
    path.write_bytes(deep.write(image, fmt, bits))
    read, info = read_image(path)
    assert (
        read.dtype == np.uint16
        and np.array_equal(read, image)
        and info["depth"] == (bits if fmt != "TIFF" else 16)
    )
    done = subprocess.run(
        [*AECODEC, "--lossless", "--model", str(deep_path), str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    info_out = subprocess.run(
        [*AECODEC, "info", "--model", str(deep_path), str(path) + ".aec"],
        capture_output=True,
        text=True,
    )
    assert "lossless" in info_out.stdout and "uint16" in info_out.stdout
    path.unlink()
    done = subprocess.run(
        [*AECODEC, "-d", "--model", str(deep_path), str(path) + ".aec"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    back, back_info = read_image(path)
    assert np.array_equal(back, image) and back_info["depth"] == info["depth"]


def test_a_16_bit_file_compressed_lossily_fails_clearly_and_keeps_the_input(tmp_path, deep_path):
    path = tmp_path / "x.png"
    path.write_bytes(deep.write(_deep_images(1)[0], "PNG", 12))
    done = subprocess.run([*AECODEC, "--quality", "2", str(path)], capture_output=True, text=True)
    assert done.returncode != 0 and "aecodec: error:" in done.stderr and "--lossless" in done.stderr
    assert path.exists() and not (tmp_path / "x.png.aec").exists()


def test_near_lossless_bound_is_shown_by_info(tmp_path, model_path):
    path = tmp_path / "x.npy"
    np.save(path, data.fashion_mnist("test")[:10])
    assert (
        subprocess.run(
            [*AECODEC, "--max-error", "3", "--model", str(model_path), str(path)]
        ).returncode
        == 0
    )
    shown = subprocess.run(
        [*AECODEC, "info", "--model", str(model_path), str(path) + ".aec"],
        capture_output=True,
        text=True,
    )
    assert "near-lossless (every pixel within 3)" in shown.stdout
    bad = subprocess.run([*AECODEC, "--max-error", "40", str(path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "1 to 32" in bad.stderr


def test_a_pgm_that_lies_about_its_size_is_refused(tmp_path):
    path = tmp_path / "x.pgm"
    path.write_bytes(b"P5\n100 100\n4095\n" + b"\x00" * 50)
    with pytest.raises(OSError, match="ends after 50"):
        read_image(path)
    path.write_bytes(b"P5\n2 1\n300\n" + np.array([1, 400], ">u2").tobytes())
    with pytest.raises(OSError, match="above its maximum"):
        read_image(io.BytesIO(path.read_bytes()))


def test_a_folder_of_16_bit_images_restores_each_with_its_own_depth(tmp_path, deep_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    images = {
        "a.png": (_deep_images(1, (20, 17), 12)[0], 12),
        "b.png": (_deep_images(1, (9, 30), 14, seed=3)[0], 14),
    }
    for name, (image, bits) in images.items():
        (folder / name).write_bytes(deep.write(image, "PNG", bits))
    done = subprocess.run(
        [*AECODEC, "-r", "--lossless", "--model", str(deep_path), str(folder)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "back"
    assert (
        subprocess.run(
            [*AECODEC, "-d", "--model", str(deep_path), "-o", str(out), str(folder) + ".aec"]
        ).returncode
        == 0
    )
    for name, (image, bits) in images.items():
        back, info = read_image(out / name)
        assert np.array_equal(back, image) and info["depth"] == bits


def test_a_folder_mixing_8_and_16_bit_images_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.png").write_bytes(deep.write(_deep_images(1)[0], "PNG", 12))
    from PIL import Image

    Image.fromarray(np.zeros((5, 5), np.uint8)).save(folder / "b.png")
    done = subprocess.run(
        [*AECODEC, "-r", "--lossless", str(folder)], capture_output=True, text=True
    )
    assert done.returncode == 1 and "b.png: a 8-bit image in a folder of 12-bit ones" in done.stderr
    assert not (tmp_path / "mixed.aec").exists()
