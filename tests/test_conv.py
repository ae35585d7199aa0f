"""The convolutional level kind: its integer networks agree with the float twin, code exactly, and
train."""

import hashlib
import itertools
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from codec.levels import conv, convnet
from codec.training import conv_model, recipes

SMALL = conv_model.ConvConfig(channels=3, n=8, m=8, h=8, z=4, lambdas=(0.002, 0.02))


@pytest.fixture(scope="module")
def trained(test_images):
    """A small colour model trained for a few steps on garments in three different channels."""
    colour = [
        np.stack([test_images[i], test_images[i + 1], test_images[i + 2]], -1)
        for i in range(0, 60, 3)
    ]
    model = conv_model.train(
        colour, cfg=SMALL, steps=30, batch_size=4, crop=32, learning_rate=1e-3, log=lambda s: None
    )
    return model, conv.ConvTransform(conv_model.export(model), conv.ladder_tables()), colour


def test_an_integer_layer_is_the_float_layer_rounded(test_images):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 37, 45, 3)).astype(np.int64)
    for k, stride in ((5, 2), (3, 1), (3, 2)):
        kernel, bias = rng.normal(0, 0.1, (k, k, 3, 8)), rng.normal(0, 0.1, 8)
        w, b = convnet.quantize_weights(kernel, bias)
        out = convnet.conv(x, w, b, stride=stride, relu=False)
        ref = conv_model._conv(
            jnp.asarray(x / 256.0), jnp.asarray(w / 1024.0), jnp.asarray(b / 2.0**18), stride
        )
        assert (
            out.shape == ref.shape and np.abs(out / 256.0 - np.asarray(ref)).max() <= 1 / 512 + 1e-9
        )


def test_the_integer_coder_agrees_with_the_float_model(trained):
    model, transform, colour = trained
    x = colour[0][None, :, :, :]
    x = np.pad(x, ((0, 0), (0, 4), (0, 4), (0, 0)), mode="edge")  # 32x32
    for lv in range(len(SMALL.lambdas)):
        _, bits, x_hat = conv_model.rd_terms(model, jnp.asarray(x), jnp.array([lv]))
        level = conv.ConvLevel(transform, lv)
        coded = level.ideal_bits(x)
        # tables and rounding, not a different model
        assert abs(coded - float(bits[0])) <= 0.25 * float(bits[0]) + 64
        restored = level.decode(level.encode(x), 1, x.shape[1:])
        # the same network, in integers: a few symbols round the other way, nothing more (a layout
        # mistake, e.g. depth-to-space in another order, is off by tens of grey levels)
        assert (
            np.abs(
                restored.astype(int) - np.clip(np.round(np.asarray(x_hat[0]) * 256), 0, 255)
            ).mean()
            < 8
        )


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 3, 3), (29, 31, 3), (40, 33), (17, 23, 4)])
def test_odd_sizes_and_channel_counts_round_trip(trained, shape):
    _, transform, colour = trained
    base = np.concatenate([colour[0], colour[1]], axis=1)  # 28x56x3
    channels = shape[2] if len(shape) == 3 else 1
    x = np.resize(
        base[..., : min(channels, 3)], shape[:2] + ((channels,) if len(shape) == 3 else ())
    )
    level = conv.ConvLevel(transform, 1)
    data = level.encode(x[None])
    restored = level.decode(data, 1, x.shape)[0]
    assert restored.shape == x.shape and restored.dtype == np.uint8
    assert level.ideal_bits(x[None]) / 8 <= len(data) + 16


def test_decoding_is_deterministic_across_processes_and_thread_counts(trained, tmp_path):
    """The same file and the same pixels with 1 thread or many: the products are exact."""
    _, transform, colour = trained
    x = np.stack(colour[:4])
    level = conv.ConvLevel(transform, 1)
    data = level.encode(x)
    here = hashlib.sha256(data + level.decode(data, 4, x.shape[1:]).tobytes()).hexdigest()
    params = conv_model.export(trained[0])
    np.savez(
        tmp_path / "p.npz",
        x=x,
        **{
            f"{k}_{i}_{j}": a
            for k in ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis")
            for i, layer in enumerate(params[k])
            for j, a in enumerate(layer)
        },
        log_gain=params["log_gain"],
        log_inv_gain=params["log_inv_gain"],
        log_z_scale=params["log_z_scale"],
    )
    script = f"""
import hashlib, numpy as np
from codec.levels import conv
from codec.training import conv_model, recipes
p = np.load({str(tmp_path / "p.npz")!r})
cfg = {SMALL.to_dict()!r}
parts = ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis")
params = {{"config": cfg,
          **{{k: [(p[f"{{k}}_{{i}}_0"], p[f"{{k}}_{{i}}_1"]) for i in range(3)] for k in parts}},
          "log_gain": p["log_gain"], "log_inv_gain": p["log_inv_gain"],
          "log_z_scale": p["log_z_scale"]}}
level = conv.ConvLevel(conv.ConvTransform(params, conv.ladder_tables()), 1)
data = level.encode(p["x"])
print(hashlib.sha256(data + level.decode(data, 4, p["x"].shape[1:]).tobytes()).hexdigest())
"""
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert out.stdout.strip() == here, out.stderr


def test_a_few_training_steps_lower_the_loss(test_images):
    colour = [np.stack([test_images[i]] * 3, -1) for i in range(20)]
    logs = []
    conv_model.train(
        colour, cfg=SMALL, steps=41, batch_size=4, crop=32, learning_rate=2e-3, log=logs.append
    )
    first, last = (float(line.split("loss ")[1].split(",")[0]) for line in (logs[0], logs[-1]))
    assert last < first


def test_macs_per_pixel_of_the_default_architecture_are_within_published_low_complexity():
    specs = conv.layer_specs(3, 32, 64, 32, 24)
    layers = {
        k: [
            {"kind": kind, "kernel": np.zeros((k_, k_, c_in, conv.up_channels(kind, c_out)))}
            for kind, k_, c_in, c_out, _ in v
        ]
        for k, v in specs.items()
    }
    encode = convnet.macs_per_pixel(layers["analysis"], 1) + convnet.macs_per_pixel(
        layers["hyper_analysis"], 1 / 64
    )
    decode = convnet.macs_per_pixel(layers["synthesis"], 1 / 64) + convnet.macs_per_pixel(
        layers["hyper_synthesis"], 1 / 1024
    )
    assert 500 < encode < 20_000 and 500 < decode < 20_000


def test_a_model_file_of_conv_levels_codes_through_the_api_and_the_command_line(
    trained, tmp_path, test_images
):
    import codec
    from codec.levels import modelfile

    from .test_cli import run

    model, _, colour = trained
    conv_model.export_model(model, tmp_path / "c.aecm", name="small-conv", meta={})
    loaded = codec.load_model(tmp_path / "c.aecm")
    assert [level.kind for level in loaded.levels] == ["conv", "conv"]
    assert loaded.default_quality == 6 and loaded.fields_for(1)["quality"] == 1
    image = np.concatenate([colour[0], colour[1]], axis=1)[:27, :50]
    blob = codec.compress(image, model=loaded, quality=2)
    assert codec.decompress(blob, model=loaded).shape == image.shape
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "x.png")
    assert run("-q", "--model", "c.aecm", "x.png", cwd=tmp_path).returncode == 0
    (tmp_path / "x.png").unlink()
    r = run("-d", "-q", "--model", "c.aecm", "x.png.aec", cwd=tmp_path)
    assert r.returncode == 0 and np.asarray(Image.open(tmp_path / "x.png")).shape == image.shape
    body = modelfile.loads((tmp_path / "c.aecm").read_bytes())
    body.pop("fingerprint")
    body["conv"]["nets"]["synthesis"] = body["conv"]["nets"]["synthesis"][:2]
    body["fingerprint"] = modelfile.fingerprint(body)
    import msgpack

    (tmp_path / "bad.aecm").write_bytes(modelfile.MAGIC + msgpack.packb(body, use_bin_type=True))
    with pytest.raises(codec.FormatError, match="conv synthesis is not 3 layers"):
        codec.load_model(tmp_path / "bad.aecm")


def test_large_images_are_coded_as_independent_tiles_that_decode_alone(trained, monkeypatch):
    """Beyond one tile an image is coded tile by tile (bounded memory): each tile's stream is the
    stream of that tile coded alone, and damage to the framing is an error, not a wrong image."""
    import bitstream

    _, transform, colour = trained
    monkeypatch.setattr(conv, "TILE", 64)
    # 3 x 2 tiles, the last ones partial
    image = np.resize(np.concatenate(colour[:6], axis=1), (150, 100, 3))
    level = conv.ConvLevel(transform, 1)
    data = level.encode(image[None], min_bytes=4000)
    assert len(data) >= 4000
    assert np.array_equal(level.decode(data, 1, image.shape)[0], _tile_by_tile(level, image, 64))
    first = int.from_bytes(data[:4], "little")
    alone = level.decode(data[4 : 4 + first], 1, (64, 64, 3))[0]
    assert np.array_equal(
        alone, level.decode(level.encode(image[None, :64, :64]), 1, (64, 64, 3))[0]
    )
    assert level.coded_pixels(1, image.shape) == 3 * (64 * 64 * 2 + 64 * 64 * 2 + 32 * 64 * 2)
    for damaged, error in (
        (data[:-4], bitstream.TruncatedError),
        (data + b"\0\0\0\0", bitstream.FormatError),
        ((10**6).to_bytes(4, "little") + data[4:], bitstream.TruncatedError),
    ):
        with pytest.raises(error):
            level.decode(damaged, 1, image.shape)


def _tile_by_tile(level, image, size):
    out = np.empty_like(image)
    for y0, y1, x0, x1 in conv.tiles(*image.shape[:2], size):
        tile = image[None, y0:y1, x0:x1]
        out[y0:y1, x0:x1] = level.decode(level.encode(tile), 1, tile.shape[1:])[0]
    return out


def test_the_learning_rate_warms_up_alike_whatever_the_total_then_decays_to_a_twentieth():
    assert (
        [conv_model.learning_rate_at(s, 10_000, 1.0) for s in (0, 250)]
        == [conv_model.learning_rate_at(s, 90_000, 1.0) for s in (0, 250)]
        == [0.0, 0.5]
    )
    assert conv_model.learning_rate_at(500, 10_000, 1.0) == 1.0
    assert conv_model.learning_rate_at(10_000, 10_000, 1.0) == pytest.approx(0.05)


def test_a_stored_model_is_fine_tuned_from_the_weights_it_holds(trained):
    model, _, _ = trained
    params = conv_model.export(model)
    again = conv_model.export(conv_model.from_params(params))
    for name in ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis"):
        for (k1, b1), (k2, b2) in zip(params[name], again[name], strict=True):
            assert np.array_equal(k1, k2) and np.array_equal(b1, b2)
    assert np.array_equal(params["log_gain"], again["log_gain"])


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_a_widened_synthesis_starts_as_the_same_codec_and_trains_from_there(
    trained, tmp_path, capsys
):
    from codec import cli

    model, transform, colour = trained
    params = conv_model.export(model)
    wide = conv_model.widen_synthesis(params, 2 * SMALL.n)
    assert wide["synthesis"][1][0].shape[2] == 2 * SMALL.n
    same = conv.ConvTransform(wide, conv.ladder_tables())
    image = colour[0][None]
    for index in (0, len(SMALL.lambdas) - 1):
        narrow_level, wide_level = conv.ConvLevel(transform, index), conv.ConvLevel(same, index)
        data = narrow_level.encode(image)
        assert wide_level.encode(image) == data
        assert np.array_equal(
            wide_level.decode(data, 1, image.shape[1:]),
            narrow_level.decode(data, 1, image.shape[1:]),
        )
    with pytest.raises(ValueError, match="cannot be narrowed"):
        conv_model.widen_synthesis(wide, SMALL.n)
    _photo_folder(tmp_path, colour, 4)
    (tmp_path / "narrow.aecm").write_bytes(conv_model.model_file(params, name="narrow", meta={}))
    argv = [
        "train",
        "--kind",
        "conv",
        "--init",
        str(tmp_path / "narrow.aecm"),
        "--synthesis-width",
        str(2 * SMALL.n),
        "--data",
        str(tmp_path),
        "--steps",
        "2",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "w.aecm"),
    ]
    # 2 steps may leave the ladder out of order: refused, but trained
    assert cli.main(argv) in (
        0,
        1,
    )
    assert "fine-tuning " + str(tmp_path / "narrow.aecm") in capsys.readouterr().err
    assert np.load(tmp_path / "w" / "conv-params.npz")["synthesis_1_0"].shape[2] == 2 * SMALL.n


def test_grey_crops_of_colour_photos_are_the_luma_in_every_channel(trained):
    _, _, colour = trained
    crops = conv_model.random_crops(colour, 16, 64, np.random.default_rng(1), grey_fraction=0.5)
    grey = (crops[..., 0] == crops[..., 1]).all((1, 2)) & (crops[..., 1] == crops[..., 2]).all(
        (1, 2)
    )
    assert 15 < grey.sum() < 50  # about half, and the other half still colour


# The ladder: levels of any kind, kept by measurement.


def test_the_ladder_keeps_levels_that_cost_more_and_give_more_and_refuses_one_out_of_order():
    from codec.training import ladder

    rows = [
        {"bytes_per_image": b, "psnr": p}
        for b, p in ((100, 30), (50, 31), (200, 35), (150, 29), (300, 34))
    ]
    # 50 B 31 dB dominates the others below 200 B; 300 B gains nothing
    assert ladder.pareto(rows) == [
        1,
        2,
    ]
    ladder.check_monotone([rows[i] for i in (1, 2)], ["a", "b"])
    with pytest.raises(
        ladder.LadderError,
        match="q2 gives 100.0 bytes at 30.00 dB, q1 below it 50.0 bytes at 31.00",
    ):
        ladder.check_monotone([rows[1], rows[0], rows[2], rows[3]], ["q1", "q2", "q3", "q4"])
    assert (
        ladder.default_level([rows[1], rows[2]]) == 2
        and ladder.default_level([rows[1]], psnr=40) == 1
    )


def test_the_rate_change_is_the_mean_byte_ratio_at_equal_psnr_over_the_shared_range():
    from codec.training import ladder

    anchor = [{"bytes_per_image": b, "psnr": p} for b, p in ((100, 30), (200, 33), (400, 36))]
    half = [{**r, "bytes_per_image": r["bytes_per_image"] / 2} for r in anchor]
    assert ladder.rate_change(anchor, half) == pytest.approx(-0.5)
    assert ladder.rate_change(half, anchor) == pytest.approx(1.0)
    # halfway: log-linear
    shifted = [{"bytes_per_image": b, "psnr": p} for b, p in ((150, 31.5), (300, 34.5))]
    assert ladder.rate_change(anchor, shifted) == pytest.approx(
        np.sqrt(2) * 150 / 200 - 1, abs=0.07
    )
    # no shared range
    assert ladder.rate_change(anchor, [{"bytes_per_image": 10, "psnr": 50}]) == 0.0


def test_a_model_file_orders_its_levels_by_its_ladder(trained, tmp_path):
    import msgpack

    import codec
    from codec.levels import modelfile

    model, _, _ = trained
    data = conv_model.export_model(model, tmp_path / "c.aecm", name="c", meta={})
    body = msgpack.unpackb(data[4:], raw=False)
    for ladder, ok in (
        ([["conv", 1]], True),
        ([["conv", 1], ["conv", 0]], True),
        ([["conv", 2]], False),
        ([["conv", 0], ["conv", 0]], False),
        ([["tile", 0]], False),
        ([], False),
    ):
        body.pop("fingerprint")
        body["ladder"] = ladder
        body["fingerprint"] = modelfile.fingerprint(body)
        (tmp_path / "l.aecm").write_bytes(modelfile.MAGIC + msgpack.packb(body, use_bin_type=True))
        if ok:
            loaded = codec.load_model(tmp_path / "l.aecm")
            assert [lv.index for lv in loaded.levels] == [i for _, i in ladder]
        else:
            with pytest.raises(codec.FormatError, match="ladder"):
                codec.load_model(tmp_path / "l.aecm")


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_training_one_kind_refuses_a_ladder_out_of_order_and_keeps_what_it_trained(
    tmp_path, capsys, monkeypatch, trained
):

    from codec import cli
    from codec.training import ladder

    _, _, colour = trained
    _photo_folder(tmp_path, colour, 4)
    inverted = [{"bytes_per_image": 100 - i, "psnr": 30 + i} for i in range(6)]
    monkeypatch.setattr(ladder, "measure", lambda levels, images: inverted[: len(levels)])
    status = cli.main(
        [
            "train",
            "--kind",
            "conv",
            "--from-scratch",
            "--data",
            str(tmp_path),
            "--steps",
            "2",
            "--workdir",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "m.aecm"),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert status != 0 and "not monotone" in err and err.startswith("aecodec: error: ")
    assert not (tmp_path / "m.aecm").exists() and (tmp_path / "w" / "conv-params.npz").is_file()


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_auto_training_on_photos_keeps_the_front_of_convolutional_and_wavelet_levels(
    tmp_path, trained
):

    import codec
    from codec import cli

    _, _, colour = trained
    _photo_folder(tmp_path, colour, 5)
    status = cli.main(
        [
            "train",
            "--from-scratch",
            "--data",
            str(tmp_path),
            "--steps",
            "3",
            "--lambdas",
            "0.001,0.1",
            "--workdir",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "m.aecm"),
            "-q",
        ]
    )
    assert status == 0
    model = codec.load_model(tmp_path / "m.aecm")
    kinds = [lv.kind for lv in model.levels]
    # three steps from random weights: the wavelet levels, counted on the same photos, win
    assert set(kinds) <= {"conv", "wavelet"} and "wavelet" in kinds and len(kinds) >= 8
    # counted on the four images trained on (one of the five held out)
    assert model.meta["wavelet"]["images"] == 4 and model.part("conv") is not None
    rows = model.meta["val"]
    assert all(
        b["bytes_per_image"] > a["bytes_per_image"] and b["psnr"] > a["psnr"]
        for a, b in itertools.pairwise(rows)
    )


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_auto_training_on_small_aligned_images_measures_every_kind_and_keeps_a_monotone_ladder(
    tmp_path, test_images
):
    import codec
    from codec import cli

    np.save(tmp_path / "items.npy", test_images[:300])
    argv = [
        "train",
        "--from-scratch",
        "--data",
        str(tmp_path / "items.npy"),
        "--steps",
        "4",
        "--hidden",
        "8",
        "--clusters",
        "2",
        "--context-groups",
        "2",
        "--context-hidden",
        "8",
        "--lambdas",
        "1,10",
        "--pixel-steps",
        "30",
        "--conv-steps",
        "2",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "m.aecm"),
        "-q",
    ]
    assert cli.main(argv) == 0
    model = codec.load_model(tmp_path / "m.aecm")
    # the scale's measurements: each level's, on the held-out images
    assert [r["level"] for r in model.scale_rows] == list(range(1, len(model.levels) + 1))
    rows = model.meta["val_ladder"]
    assert len(rows) == len(model.levels) >= 1 and [r["kind"] for r in rows] == [
        lv.kind for lv in model.levels
    ]
    assert all(
        b["bytes_per_image"] > a["bytes_per_image"] and b["psnr"] > a["psnr"]
        for a, b in itertools.pairwise(rows)
    )
    assert (tmp_path / "w" / "tile.aecm").is_file() and (
        tmp_path / "w" / "conv-params.npz"
    ).is_file()
    x = test_images[:10]
    assert codec.decompress(codec.compress(x, model=model), model=model).shape == x.shape


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_training_validates_on_the_images_val_names(tmp_path, test_images):
    import codec
    from codec import cli
    from codec.training import ladder

    np.save(tmp_path / "items.npy", test_images[:200])
    np.save(tmp_path / "val.npy", test_images[200:230])
    argv = [
        "train",
        "--from-scratch",
        "--data",
        str(tmp_path / "items.npy"),
        "--val",
        str(tmp_path / "val.npy"),
        "--steps",
        "4",
        "--hidden",
        "8",
        "--clusters",
        "2",
        "--context-groups",
        "2",
        "--context-hidden",
        "8",
        "--lambdas",
        "1,10",
        "--pixel-steps",
        "30",
        "--conv-steps",
        "2",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "m.aecm"),
        "-q",
    ]
    assert cli.main(argv) == 0
    model = codec.load_model(tmp_path / "m.aecm")
    again = ladder.measure(model.levels, list(test_images[200:230]))
    assert [(r["bytes_per_image"], r["psnr"]) for r in model.meta["val_ladder"]] == [
        (r["bytes_per_image"], r["psnr"]) for r in again
    ]
    (tmp_path / "empty").mkdir()
    assert cli.main([*argv[:4], "--val", str(tmp_path / "empty"), *argv[6:]]) != 0


# The bundled photo model, chosen by the input.


def test_the_bundled_model_that_suits_the_input_is_chosen_and_found_again_by_the_file(
    test_images, tmp_path
):
    from PIL import Image

    import codec
    from bitstream import container
    from codec import api

    from .test_cli import run

    fmnist, photo = codec.load_model(api.DEFAULT_MODEL), codec.load_model(api.PHOTO_MODEL)
    colour = np.stack([test_images[0], test_images[1], test_images[2]], -1)
    rng = np.random.default_rng(0)
    smooth = (np.cumsum(rng.normal(0, 4, (96, 128, 3)), axis=1) + 128).clip(0, 255)
    for images, model in (
        (test_images[:3], fmnist),
        (test_images[0], fmnist),
        (test_images[:2, :27], fmnist),  # other sizes of the same items: measured, not by shape
        (smooth.astype(np.uint8), photo),
        ([test_images[0], colour], photo),  # a list of several sizes: by shape
    ):
        blob = codec.compress(images)
        assert container.unpack(blob).header["model"]["fingerprint"] == model.fingerprint[:16]
        # no model named: the file's is found among the bundled ones
        restored = codec.decompress(blob)
        assert (
            [np.shape(a) for a in restored] == [np.shape(a) for a in images]
            if isinstance(images, list)
            else restored.shape == images.shape
        )
    Image.fromarray(colour).save(tmp_path / "c.png")
    assert run("-q", "c.png", cwd=tmp_path).returncode == 0
    info = run("info", "--json", "c.png.aec", cwd=tmp_path)
    chosen = api.model_named_by(container.unpack(codec.compress(colour)).header)
    assert f'"{chosen.name}"'.encode() in info.stdout
    (tmp_path / "c.png").unlink()
    assert run("-d", "-q", "c.png.aec", cwd=tmp_path).returncode == 0
    assert np.asarray(Image.open(tmp_path / "c.png")).shape == colour.shape


def test_the_photo_model_codes_a_photo_like_image_exactly_as_pinned(test_images):
    """The integer path end to end with the bundled photo model: the same file and pixels on every
    machine, thread count and batch size (digests pinned when the model was bundled)."""
    import hashlib

    import codec
    from codec import api

    photo = codec.load_model(api.PHOTO_MODEL)
    # 28x56x3
    image = np.stack(
        [np.concatenate([test_images[i], test_images[i + 1]], axis=1) for i in (0, 2, 4)], -1
    )
    level = photo.levels[5]  # the convolutional level 6, its default before the quality scale
    stream = level.encode(image[None])
    restored = level.decode(stream, 1, image.shape)[0]
    digest = hashlib.sha256(stream + restored.tobytes()).hexdigest()[:16]
    both = level.decode(level.encode(np.stack([image, image])), 2, image.shape)
    assert np.array_equal(both[0], restored) and np.array_equal(both[1], restored)
    assert digest == PINNED_PHOTO_DIGEST


# codec/pretrained/photo.aecm (synthesis 64 wide), its level 6: the stream (532 bytes) and the
# pixels. The same stream as the 557-byte file pinned before (8ed315c504edae36, container format
# 6, as in formats 4 and 5); the file's header now names a model grown with wavelet levels.
PINNED_PHOTO_DIGEST = "5dec22625022ad48"


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_training_fine_tunes_the_bundled_photo_model_unless_asked_not_to(tmp_path, capsys, trained):

    import codec
    from codec import api, cli

    _, _, colour = trained
    _photo_folder(tmp_path, colour, 4)
    argv = [
        "train",
        "--data",
        str(tmp_path),
        "--steps",
        "2",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "m.aecm"),
    ]
    assert cli.main(argv) == 0
    assert "fine-tuning the bundled photo model" in capsys.readouterr().err
    tuned, bundled = codec.load_model(tmp_path / "m.aecm"), codec.load_model(api.PHOTO_MODEL)
    mine, theirs = dict(tuned.part("conv").config), dict(bundled.part("conv").config)
    # the same architecture; under auto, three rate points above the trained levels
    lambdas = mine.pop("lambdas")
    assert lambdas[: len(theirs["lambdas"])] == theirs.pop("lambdas") and mine == theirs
    assert len(lambdas) == len(bundled.part("conv").config["lambdas"]) + recipes.CONV_RATES_ABOVE
    # two steps at a small learning rate move the weights a little (or not at all, where that did
    # better), not to random ones
    a, b = (
        tuned.part("conv").nets["analysis"][0]["kernel"],
        bundled.part("conv").nets["analysis"][0]["kernel"],
    )
    assert np.abs(a - b).max() < 0.1 * np.abs(b).max()
    trained_weights = np.load(tmp_path / "w" / "conv-params.npz")["analysis_0_0"]
    assert np.abs(trained_weights - b).max() > 0  # it did train


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_fine_tuning_returns_the_start_weights_where_training_only_made_them_worse(trained):
    model, _, colour = trained
    start = conv_model.export(model)
    logs = []
    ruined = conv_model.train(
        colour[:12],
        cfg=SMALL,
        steps=4,
        batch_size=4,
        crop=32,
        learning_rate=10.0,
        init=conv_model.from_params(start),
        val=colour[12:],
        log=logs.append,
    )
    back = conv_model.export(ruined)
    for name in ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis"):
        for (k1, b1), (k2, b2) in zip(start[name], back[name], strict=True):
            assert np.array_equal(k1, k2) and np.array_equal(b1, b2)
    assert any("keeping the weights of step 0" in line for line in logs)


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_training_keeps_the_bundled_levels_where_fine_tuning_codes_the_validation_images_larger(
    tmp_path, capsys, trained
):
    import codec
    from codec import api, cli

    _, _, colour = trained
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    _photo_folder(tmp_path / "train", colour, 3)
    _photo_folder(tmp_path / "val", colour[9:], 2)
    argv = [
        "train",
        "--kind",
        "conv",
        "--data",
        str(tmp_path / "train"),
        "--val",
        str(tmp_path / "val"),
        "--steps",
        "3",
        "--learning-rate",
        "10",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "m.aecm"),
    ]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert (
        "keeping the start model's convolutional levels" in err
        or "keeping the weights of step 0" in err
    )
    tuned, bundled = codec.load_model(tmp_path / "m.aecm"), codec.load_model(api.PHOTO_MODEL)
    for name, layers in bundled.part("conv").nets.items():
        for a, b in zip(layers, tuned.part("conv").nets[name], strict=True):
            assert np.array_equal(a["kernel"], b["kernel"]) and np.array_equal(a["bias"], b["bias"])


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGB", "RGBA"])
def test_every_8_bit_mode_round_trips_through_the_photo_model(tmp_path, mode):
    """The default choice for a photo: whatever compresses restores, with a PSNR floor on a
    photo."""
    from PIL import Image
    from skimage import data as samples

    from .test_cli import run

    rgb = samples.astronaut()[:96, 200:296]
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)  # opaque alpha
    im = (
        Image.fromarray(rgba, "RGBA") if mode in ("LA", "RGBA") else Image.fromarray(rgb)
    ).convert(mode)
    # an adaptive palette, as image editors save one (convert("P") dithers to the web palette)
    if mode == "P":
        im = Image.fromarray(rgb).quantize(256, dither=Image.Dither.NONE)
    im.save(tmp_path / "in.png")
    original = np.asarray(Image.open(tmp_path / "in.png").convert({"P": "RGB"}.get(mode, mode)))
    assert run("-q", "in.png", cwd=tmp_path).returncode == 0
    assert b"aecodec-photo" in run("info", "in.png.aec", cwd=tmp_path).stdout
    (tmp_path / "in.png").rename(tmp_path / "kept.png")
    assert run("-d", "-q", "in.png.aec", cwd=tmp_path).returncode == 0
    restored = np.asarray(Image.open(tmp_path / "in.png"))
    assert restored.shape == original.shape
    mse = np.mean((restored.astype(float) - original) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_a_time_budget_fits_the_convolutional_steps_on_photos(tmp_path, capsys, trained):

    from codec import cli

    _, _, colour = trained
    _photo_folder(tmp_path, colour, 3)
    argv = [
        "train",
        "--data",
        str(tmp_path),
        "--minutes",
        "0.25",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "m.aecm"),
    ]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    # the budget governs the run, not --conv-steps' 3000: fitted after the first steps, or (on a
    # machine too busy to finish those in 15 s, compiling included) spent before them
    assert (
        "to fit 0.25 minutes; reproduce this run with --steps" in err
        or "the 0.25 minutes are spent" in err
    )


@pytest.mark.slow  # 4-7 s: the fast subset stays under 4 minutes
def test_minutes_under_auto_are_the_whole_budget_half_for_each_kind(monkeypatch, trained):
    from codec import cli
    from codec.commands import train
    from codec.training import recipes

    def options(*extra):
        words = ["train", "--data", "d", "--out", "m.aecm", "--workdir", "w", *extra]
        args = cli.build_parser().parse_args(words)
        args.command_line = " ".join(["aecodec", *words])
        return train.options_of(args)

    assert recipes.tile_minutes(options("--minutes", "60")) == {"minutes": 30.0}
    assert recipes.tile_minutes(options("--minutes", "60", "--conv-steps", "100")) == {
        "minutes": 60.0
    }
    assert recipes.tile_minutes(options("--kind", "tile", "--minutes", "60")) == {"minutes": 60.0}
    assert recipes.tile_minutes(options("--steps", "5")) == {}
    seen = {}
    monkeypatch.setattr(conv_model, "train", lambda images, **kw: seen.update(kw) or trained[0])
    monkeypatch.setattr(
        recipes,
        "no_worse_than_start",
        lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("stop here")),
    )
    # stopped once the convolutional levels are trained
    with pytest.raises(RuntimeError, match="stop here"):
        recipes.with_conv_levels(options("--minutes", "60"), b"", trained[2][:2], trained[2][2:3])
    assert seen["minutes"] == 30.0 and seen["steps"] is None and len(seen["val"]) == 1


def _photo_folder(folder, colour, count: int) -> None:
    """``count`` small colour images (garments side by side, one per channel) as PNG files in
    ``folder``."""
    from PIL import Image

    for i in range(count):
        Image.fromarray(np.concatenate(colour[i : i + 3], axis=1)).save(folder / f"p{i}.png")


def test_a_grey_plane_codes_exactly_as_its_colour_replica_with_a_third_of_the_first_layer(trained):
    _, transform, colour = trained
    grey = np.concatenate([colour[0][..., 0], colour[1][..., 1]], axis=1)  # 28x56
    level = conv.ConvLevel(transform, 1)
    replica = conv.ConvLevel(transform, 1).encode(np.repeat(grey[None, ..., None], 3, axis=3))
    assert level.encode(grey[None]) == replica
    y_plane, z_plane = transform.analysis(np.pad(grey, ((0, 4), (0, 8)))[None, ..., None])
    y_rgb, z_rgb = transform.analysis(
        np.repeat(np.pad(grey, ((0, 4), (0, 8)))[None, ..., None], 3, axis=3)
    )
    assert np.array_equal(y_plane, y_rgb) and np.array_equal(z_plane, z_rgb)


def _resumable_run(colour, workdir, log=lambda s: None, **kw):
    return conv_model.export(
        conv_model.train(
            colour[:12],
            cfg=SMALL,
            steps=120,
            batch_size=2,
            crop=32,
            learning_rate=1e-3,
            val=colour[12:],
            workdir=workdir,
            log=log,
            **kw,
        )
    )


def _same_params(a: dict, b: dict) -> bool:
    parts = ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis")
    same_nets = all(
        np.array_equal(k1, k2) and np.array_equal(b1, b2)
        for name in parts
        for (k1, b1), (k2, b2) in zip(a[name], b[name], strict=True)
    )
    gains = ("log_gain", "log_inv_gain", "log_z_scale")
    return same_nets and all(np.array_equal(a[k], b[k]) for k in gains)


@pytest.mark.slow  # three short training runs: about 20 s on 2 cores
def test_a_resumed_training_run_ends_with_the_weights_of_an_uninterrupted_one(
    tmp_path, test_images
):
    colour = [np.stack([test_images[i]] * 3, -1) for i in range(16)]
    whole = _resumable_run(colour, tmp_path / "whole")
    logs = []
    stopped = _resumable_run(colour, tmp_path / "cut", stop_at=50)  # a session cut short
    assert not _same_params(stopped, whole)
    resumed = _resumable_run(colour, tmp_path / "cut", log=logs.append)
    assert any(line.startswith("resuming from") and "after step 50" in line for line in logs)
    assert _same_params(resumed, whole)


def test_only_grey_images_of_the_tile_size_train_the_tile_kind_beside_the_others():
    assert recipes.small_aligned(np.zeros((5, 28, 28), np.uint8))
    assert not recipes.small_aligned(np.zeros((5, 64, 64), np.uint8))  # tile levels never fit
    assert not recipes.small_aligned(np.zeros((5, 28, 28, 3), np.uint8))
    assert not recipes.small_aligned([np.zeros((28, 28), np.uint8)])  # sizes may differ


@pytest.mark.slow  # 4-7 s: the fast subset stays under 4 minutes
def test_a_conv_checkpoint_of_other_images_is_refused_before_training(tmp_path, test_images):
    from codec.errors import CheckpointMismatchError

    colour = [np.stack([test_images[i]] * 3, -1) for i in range(16)]
    conv_model.train(
        colour[:12], cfg=SMALL, steps=2, batch_size=2, crop=32, workdir=tmp_path, log=lambda s: 0
    )
    assert (tmp_path / "conv-checkpoint.msgpack").is_file()
    with pytest.raises(CheckpointMismatchError, match="trained on other images"):
        conv_model.train(
            colour[4:], cfg=SMALL, steps=2, batch_size=2, crop=32, workdir=tmp_path, log=print
        )


@pytest.mark.slow  # three short training runs in a process of two devices: about 30 s
def test_a_data_parallel_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    script = f"""
import numpy as np, jax
from codec.io import data
from tests.test_conv import _resumable_run, _same_params
assert len(jax.devices()) == 2
items = data.fashion_mnist("test")[:16]
colour = [np.stack([a] * 3, -1) for a in items]
whole = _resumable_run(colour, {str(tmp_path / "whole")!r}, log=print)
_resumable_run(colour, {str(tmp_path / "cut")!r}, stop_at=50)
print("same:", _same_params(_resumable_run(colour, {str(tmp_path / "cut")!r}), whole))
"""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert "training data-parallel on 2 cpu devices" in out.stdout, out.stderr[-2000:]
    assert "same: True" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
