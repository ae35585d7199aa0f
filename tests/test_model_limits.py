"""Model files (.aecm, .aecf) are read with limits and ask for bounded work, or are refused at load.

Each test failed on the code before these limits (the hostile review's numbers are in the names).
Crafted files are the bundled models' msgpack bodies with one field changed, fingerprinted anew."""

import os
import re
import socket
import struct
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import msgpack
import numpy as np
import pytest

import codec
from codec import api, family
from codec.levels import convnet, lossless, modelfile
from codec.training import lossless_train

from .test_cli import AECODEC
from .test_decode_budget import refused_within_a_second

VAE = family.bundled_path("sample")


def crafted(source: Path, change) -> bytes:
    """``source``'s bytes with ``change(body)`` applied to its msgpack body, fingerprinted anew."""
    raw = source.read_bytes()
    body = msgpack.unpackb(raw[4:], raw=False)
    body.pop("fingerprint")
    change(body)
    body["fingerprint"] = modelfile.fingerprint(body)
    return raw[:4] + msgpack.packb(body, use_bin_type=True)


def written(path: Path, source: Path, change) -> Path:
    path.write_bytes(crafted(source, change))
    return path


def raised_within(seconds: float, call, fifo: Path | None = None) -> BaseException | None:
    """The exception ``call()`` raises in a thread, which must end within ``seconds``; a reader
    stuck opening ``fifo`` is let go (a writer comes and goes) before the test fails."""
    outcome = {}

    def target():
        try:
            call()
        except BaseException as e:  # noqa: BLE001 - handed to the test to judge
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if fifo is not None:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(5)
        pytest.fail(f"still running after {seconds} s")
    return outcome.get("error")


def bounded(call, error, *, seconds: float = 3.0, peak_bytes: int = 20 << 20):
    """``call()`` raises ``error`` within ``seconds`` of CPU (the bombs took 20 s and more; CPU
    time, so that a loaded machine does not fail it) and ``peak_bytes`` of Python allocations."""
    tracemalloc.start()
    start = time.process_time()
    try:
        with pytest.raises(error) as caught:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    spent = time.process_time() - start
    assert spent < seconds and peak < peak_bytes, (spent, peak)
    return caught.value


# Reading: regular files only, refused by kind before opening, and at most the size limit.

LOADERS = {"aecm": codec.load_model, "aecf": family.load}


def _special(kind: str, tmp_path: Path) -> Path:
    if kind == "FIFO":
        os.mkfifo(tmp_path / "model")
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(tmp_path / "model"))  # the socket file outlives the socket
    elif kind == "folder":
        (tmp_path / "model").mkdir()
    else:
        return Path("/dev/zero")  # a character device: read without a limit, it never ends
    return tmp_path / "model"


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("kind", ["FIFO", "socket", "folder", "character device"])
def test_a_model_that_is_not_a_regular_file_is_refused_by_its_kind_without_waiting(
    tmp_path, kind, loader
):
    path = _special(kind, tmp_path)
    error = raised_within(10, lambda: LOADERS[loader](path), fifo=path if kind == "FIFO" else None)
    assert isinstance(error, codec.FormatError), repr(error)
    assert str(path) in str(error) and f"{kind}, not a model file" in str(error)


@pytest.mark.parametrize(
    "loader, limit", [("aecm", modelfile.MAX_MODEL_BYTES), ("aecf", family.MAX_BYTES)]
)
def test_a_model_file_past_the_size_limit_is_refused_before_it_is_read(tmp_path, loader, limit):
    path = tmp_path / "big"
    with open(path, "wb") as f:
        f.truncate(limit + 1)  # sparse: no disk used
    error = bounded(lambda: LOADERS[loader](path), codec.LimitError, peak_bytes=1 << 20)
    assert str(path) in str(error) and f"{limit}-byte limit" in str(error)


def test_the_command_line_refuses_a_fifo_as_a_model_in_one_line(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), np.uint8))
    os.mkfifo(tmp_path / "m.aecm")
    for command in (
        ["-c", "--model", "m.aecm", "x.npy"],
        ["sample", "--model", "m.aecm", "--out", "s.png"],
    ):
        r = subprocess.run([AECODEC, *command], cwd=tmp_path, capture_output=True, timeout=120)
        lines = r.stderr.decode().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and r.stdout == b"", r.stderr
        assert (
            lines[0].startswith("aecodec: error: m.aecm: ")
            and "a FIFO, not a model file" in lines[0]
        )


# Work per pixel: the lossless coder's tree walk.


def _chain(depth: int):
    """A change to a model body: its lossless tree a chain ``depth`` deep (every pixel goes right,
    down to the bottom), each of its depth + 1 leaves with the first leaf's table."""
    n = 2 * depth + 1
    idx = np.arange(n)
    inner = (idx % 2 == 0) & (idx < n - 1)
    tree = {
        "feature": np.zeros(n),
        "threshold": np.where(inner, -(1 << 30), 0),
        "leaf": np.where(inner, -1, idx // 2),
        "left": np.where(inner, idx + 1, idx),
        "right": np.where(inner, idx + 2, idx),
    }

    def change(body):
        stored = body["lossless"]
        stored["tree"] = {k: modelfile.encode_array(v.astype(np.int32)) for k, v in tree.items()}
        rows = modelfile.decode_array(stored["tables"], what="tables")
        stored["tables"] = modelfile.encode_array(np.repeat(rows[:1], depth + 1, axis=0))

    return change


def test_the_reviews_16383_deep_lossless_tree_is_refused_at_load_in_a_moment(tmp_path):
    # 10.6 MB, every check passed: a 10 KB near-lossless file took 26 s to decode (0.37 s bundled)
    path = written(tmp_path / "chain.aecm", api.DEEP_MODEL, _chain(16_383))
    error = bounded(lambda: codec.load_model(path), codec.LimitError, peak_bytes=100 << 20)
    assert "lossless tree depth 16383 is more than the 64" in str(error)


def test_a_lossless_tree_one_past_the_depth_bound_is_refused_and_one_at_it_codes(tmp_path):
    bound = lossless.MAX_LOSSLESS_DEPTH
    with pytest.raises(codec.LimitError, match=f"depth {bound + 1} is more than the {bound}"):
        codec.load_model(written(tmp_path / "over.aecm", api.DEEP_MODEL, _chain(bound + 1)))
    model = codec.load_model(written(tmp_path / "at.aecm", api.DEEP_MODEL, _chain(bound)))
    images = np.random.default_rng(0).integers(0, 4096, (2, 40, 30)).astype(np.uint16)
    restored = codec.decompress(
        codec.compress(images, max_error=2, model=model, depth=12), model=model
    )
    assert np.abs(restored.astype(int) - images).max() <= 2


def test_training_grows_no_lossless_tree_deeper_than_a_model_may_hold(monkeypatch, test_images):
    # 64 leaves take at least 6 levels unbounded
    monkeypatch.setattr(lossless, "MAX_LOSSLESS_DEPTH", 3)
    coder = lossless_train.fit([test_images[:40]], 8, leaves=64, log=lambda s: None)
    assert coder.tree.depth == 3


# Work per image: an autoencoder's layers, refused from its config before anything is built.


def test_the_reviews_200_layers_of_4096_are_refused_in_a_moment_and_little_memory(tmp_path):
    def change(body):
        body["family"]["widths"] = [784, *[4096] * 200, 32]  # 2.7 GB and 20 s before
        body["params"] = {}

    path = written(tmp_path / "deep.aecf", VAE, change)
    assert path.stat().st_size < 20_000
    error = bounded(lambda: family.load(path), codec.LimitError)
    assert "family.widths has 202 entries, more than the 16" in str(error)


def test_widths_within_the_bounds_that_ask_too_many_parameters_are_refused_before_building(
    tmp_path,
):
    def change(body):
        body["family"]["widths"] = [65536, 65536, 65536, 32]
        body["meta"]["image_shape"] = [256, 256]
        body["params"] = {}

    path = written(tmp_path / "wide.aecf", VAE, change)
    error = bounded(lambda: family.load(path), codec.LimitError)
    assert f"more than the {family.MAX_PARAMS:,} a model may have" in str(error)


def test_a_convolutional_autoencoder_asking_too_much_work_per_value_is_refused_before_building(
    tmp_path,
):
    def change(body):  # the bundled denoiser (94,000 multiply-adds per value) at 256 channels
        body["family"]["widths"] = [784, 256, 256]
        body["params"] = {}

    path = written(tmp_path / "wide.aecf", family.bundled_path("denoise"), change)
    error = bounded(lambda: family.load(path), codec.LimitError)
    assert "multiply-adds per input value, more than the 1,000,000" in str(error)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("widths", [784, 70_000, 32], "family.widths holds 70000, more than the 65536"),
        (
            "widths",
            [784, 256.0, 32],
            "family.widths [784, 256.0, 32] is not a list of whole numbers",
        ),
        (
            "widths",
            [784, 256, True],
            "family.widths [784, 256, True] is not a list of whole numbers",
        ),
        ("image_shape", "x", "family.image_shape x is not a list of whole numbers"),
    ],
)
def test_mistyped_or_oversized_autoencoder_sizes_are_format_errors(tmp_path, field, value, message):
    path = written(tmp_path / "m.aecf", VAE, lambda body: body["family"].update({field: value}))
    with pytest.raises(codec.FormatError, match=re.escape(message)):
        family.load(path)


@pytest.mark.parametrize("value", ["x", [True, 784], [27, 27]])
def test_a_recorded_image_shape_that_is_not_the_models_input_is_a_format_error(tmp_path, value):
    path = written(tmp_path / "m.aecf", VAE, lambda body: body["meta"].update(image_shape=value))
    with pytest.raises(codec.FormatError, match="meta.image_shape"):
        family.load(path)


def test_the_command_line_reports_a_bad_image_shape_in_one_line(tmp_path):
    written(tmp_path / "m.aecf", VAE, lambda body: body["meta"].update(image_shape="x"))
    r = subprocess.run(
        [AECODEC, "sample", "--model", "m.aecf", "--out", "s.png"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    lines = r.stderr.decode().splitlines()
    assert (
        r.returncode == 1 and len(lines) == 1 and "meta.image_shape x is not a list" in lines[0]
    ), r.stderr
    assert not (tmp_path / "s.png").exists()


def test_a_true_format_number_is_not_taken_for_format_1(tmp_path):
    path = written(tmp_path / "m.aecf", VAE, lambda body: body.update(format=True))
    with pytest.raises(codec.FormatError, match="format True is not 1"):
        family.load(path)


# Numbers the integer networks compute with: refused where they could break exactness.


def _conv_array(body, net: str, layer: int, part: str, index: int, value: float):
    stored = body["conv"]["nets"][net][layer][part]
    array = modelfile.decode_array(stored, what=part).copy()
    array.flat[index] = value
    body["conv"]["nets"][net][layer][part] = modelfile.encode_array(array)


@pytest.mark.parametrize(
    "part, value, message",
    [
        ("kernel", 3e38, r"synthesis\[0\]: kernel weights beyond \+-32"),
        ("kernel", -40.0, r"synthesis\[0\]: kernel weights beyond \+-32"),
        ("bias", 3e38, r"synthesis\[0\]: biases beyond"),
    ],
)
def test_conv_weights_beyond_the_fixed_point_range_are_refused_on_every_machine(
    tmp_path, part, value, message
):
    path = written(
        tmp_path / "m.aecm",
        api.PHOTO_MODEL,
        lambda body: _conv_array(body, "synthesis", 0, part, 0, value),
    )
    with pytest.raises(codec.FormatError, match=message):
        codec.load_model(path)


def test_quantizing_a_weight_beyond_int64_refuses_rather_than_wrapping():
    # x86 casts 3e38 * 2^10 to -2^63, whose absolute value is negative: it passed the range check
    with pytest.raises(ValueError, match="kernel weights beyond"):
        convnet.quantize_weights(np.full((3, 3, 1, 1), 3e38), np.zeros(1), what="layer")


@pytest.mark.parametrize("key", ["log_gain", "log_inv_gain", "log_z_scale"])
@pytest.mark.parametrize("value", [np.nan, 1e30])
def test_conv_gains_and_scales_that_are_not_finite_or_too_large_are_refused(tmp_path, key, value):
    def change(body):
        array = modelfile.decode_array(body["conv"][key], what=key).copy()
        array.flat[0] = value
        body["conv"][key] = modelfile.encode_array(array)

    with pytest.raises(codec.FormatError, match=f"conv {key} holds values beyond"):
        codec.load_model(written(tmp_path / "m.aecm", api.PHOTO_MODEL, change))


# Shapes: msgpack's true is a Python bool, which is an int.


def test_a_true_in_an_array_shape_is_a_format_error_not_a_traceback(tmp_path):
    def change(body):
        leaf = body["lossless"]["tree"]["leaf"]
        leaf["shape"] = [True, *leaf["shape"]]

    with pytest.raises(
        codec.FormatError, match=r"lossless tree leaf: shape \[True, 255\] is not a list"
    ):
        codec.load_model(written(tmp_path / "m.aecm", api.DEEP_MODEL, change))


def test_the_bundled_models_load_within_every_bound_with_room_to_spare():
    for path in (api.DEFAULT_MODEL, api.PHOTO_MODEL, api.DEEP_MODEL):
        assert (
            codec.load_model(path).part("lossless").tree.depth <= lossless.MAX_LOSSLESS_DEPTH // 2
        )
    for purpose in family.BUNDLED:
        model, body = family.load(family.bundled_path(purpose))
        assert len(model.cfg.widths) <= family.MAX_WIDTHS // 4
        work = model.multiply_adds() / model.cfg.widths[0]
        assert work <= family.MAX_MULTIPLY_ADDS_PER_VALUE / 10
        assert family.image_shape(model, body) == (28, 28)


def write_model(path: Path, body: dict) -> Path:
    body["fingerprint"] = modelfile.fingerprint(body)
    path.write_bytes(modelfile.MAGIC + msgpack.packb(body, use_bin_type=True))
    return path


def model_body() -> dict:
    body = msgpack.unpackb(api.DEFAULT_MODEL.read_bytes()[4:], raw=False)
    body.pop("fingerprint")
    return body


def test_a_model_too_costly_per_pixel_is_refused_at_load(tmp_path):
    body = model_body()
    body["config"].update(tile=[1, 1], hidden=4096)
    with pytest.raises(codec.FormatError, match="tile is out of range: at least 64 pixels"):
        codec.load_model(write_model(tmp_path / "tiny-tile.aecm", body))
    body = model_body()
    body["config"].update(hidden=4096, context_hidden=4096)
    with pytest.raises(codec.FormatError, match="multiply-adds per pixel"):
        codec.load_model(write_model(tmp_path / "wide.aecm", body))


def test_a_model_of_nested_empty_arrays_is_refused_within_bounds(tmp_path):
    count = 8_000_000  # 8 MB of one-byte empty arrays: a bounded stand-in for the review's 63 MB
    raw = modelfile.MAGIC + b"\x81\xa6params\xdd" + struct.pack(">I", count) + b"\x90" * count
    (tmp_path / "nested.aecm").write_bytes(raw)
    refused_within_a_second(lambda: codec.load_model(tmp_path / "nested.aecm"), codec.LimitError)
    (tmp_path / "list.aecm").write_bytes(modelfile.MAGIC + b"\x91\x90")
    with pytest.raises(codec.FormatError, match="not a map"):
        codec.load_model(tmp_path / "list.aecm")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b["params"]["pixel_mean"].update(dtype=["<f4"]), "unsupported dtype"),
        (lambda b: b.update(config=list(b["config"].values())), "config is a list"),
        (lambda b: b["config"].update(hidden="128"), "hidden is not a whole number"),
        (lambda b: b["config"].update(tile=[28.0, 28]), "tile or pixel_steps"),
        (lambda b: b.update(name=["x"]), "name is a list"),
    ],
)
def test_mistyped_model_fields_are_format_errors_never_coerced(tmp_path, change, message):
    body = model_body()
    change(body)
    with pytest.raises(codec.FormatError, match=message):
        codec.load_model(write_model(tmp_path / "m.aecm", body))


def test_a_replaced_model_file_is_reloaded_even_with_the_same_mtime(tmp_path, tiny_model_path):
    path = tmp_path / "m.aecm"
    path.write_bytes(api.DEFAULT_MODEL.read_bytes())
    stamp = path.stat().st_mtime_ns
    first = codec.load_model(path)
    path.write_bytes(Path(tiny_model_path).read_bytes())
    os.utime(path, ns=(stamp, stamp))
    assert codec.load_model(path).fingerprint != first.fingerprint
