"""What a first real user hit: one test per finding of the user trial (each failed before its
fix)."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec import cli
from codec.commands import files as file_commands
from codec.io import data, sources

from .test_cli import FMNIST, run

CODEC = Path(codec.__file__).parent


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2))


@pytest.fixture
def mosaic(test_images):
    """A 168x168 grey picture of garments and a colour one of three different mosaics."""
    tiles = [
        test_images[36 * k : 36 * (k + 1)]
        .reshape(6, 6, 28, 28)
        .transpose(0, 2, 1, 3)
        .reshape(168, 168)
        for k in range(3)
    ]
    return tiles[0], np.stack(tiles, -1)


# 1. A quality level is one object; the model, not the caller, knows its levels and its default.


def test_the_api_holds_no_coding_algorithm_and_no_level_arithmetic():
    api = (CODEC / "api.py").read_text()
    assert "Encoder(" not in api and "Decoder(" not in api and "to_tiles" not in api
    offenders = [
        p.name
        for p in CODEC.glob("*.py")
        if p.name != "model.py" and "quality - 1" in p.read_text()
    ]
    assert offenders == []


def test_each_level_is_an_object_with_one_narrative(bundled, test_images):
    kinds = [bundled.level(q).kind for q in bundled.qualities]
    assert kinds == ["tile"] * 3 + ["pixel"] * 5
    for q in (1, 8):
        level = bundled.level(q)
        stream = level.encode(test_images[:3], min_bytes=0)
        assert level.decode(stream, 3, [28, 28]).shape == (3, 28, 28)
        assert level.ideal_bits(test_images[:3]) > 0 and level.coded_pixels(3, [28, 28]) == 3 * 784


def test_a_model_with_fewer_levels_uses_its_own_default(tiny_model_path, tmp_path, test_images):
    tiny = codec.load_model(tiny_model_path)
    assert tiny.qualities == (1, 2, 3) and tiny.default_quality == 3  # its first pixel level
    np.save(tmp_path / "a.npy", test_images[:5])
    assert run("-q", "--model", str(tiny_model_path), "a.npy", cwd=tmp_path).returncode == 0
    info = json.loads(run("info", "--json", "a.npy.aec", cwd=tmp_path).stdout)
    assert info["quality"] == 3
    assert codec.decompress(codec.compress(test_images[:5], model=tiny), model=tiny).shape == (
        5,
        28,
        28,
    )


def test_coding_never_imports_jax_or_training_code(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:20])
    code = (
        "import sys, numpy as np, codec; x = np.load(sys.argv[1]); "
        "[codec.decompress(codec.compress(x, quality=q)) for q in (1, 8)]; "
        "print(sorted(m for m in ('jax', 'flax', 'optax', 'codec.training.tile', 'codec.training.tile_net') if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_the_api_and_the_command_line_read_and_write_files_the_same_way(tmp_path, test_images):
    Image.fromarray(test_images[0]).save(tmp_path / "shirt.png")
    codec.compress_file(tmp_path / "shirt.png", tmp_path / "shirt.png.aec")
    (tmp_path / "shirt.png").rename(tmp_path / "original.png")
    assert run("-d", "-q", "shirt.png.aec", cwd=tmp_path).returncode == 0
    assert Image.open(tmp_path / "shirt.png").format == "PNG"


# 2. Colour arrays are one colour image.


def test_a_colour_array_is_one_colour_image_in_the_api_and_the_command_line(tmp_path, mosaic):
    _, rgb = mosaic
    fmnist = (
        codec.load_model()
    )  # its pixel level 8 bounds the error (the photo model: test_conv.py)
    blob = codec.compress(rgb, quality=8, model=fmnist)
    restored = codec.decompress(blob)
    assert restored.shape == rgb.shape and np.abs(restored.astype(int) - rgb).max() <= 7
    planes = codec.compress(
        rgb, quality=8, grey_stack=True, model=fmnist
    )  # the rare stack of 168 grey images of width 3
    assert codec.decompress(planes).shape == rgb.shape and len(blob) < len(planes) / 1.5
    np.save(tmp_path / "rgb.npy", rgb)
    assert run("-q", "--quality", "8", "--model", FMNIST, "rgb.npy", cwd=tmp_path).returncode == 0
    assert json.loads(run("info", "--json", "rgb.npy.aec", cwd=tmp_path).stdout)["batched"] is False


# 3. Folders: recursive, reported, any sizes and channel counts.


def test_a_folder_of_mixed_sizes_and_colours_round_trips_with_its_tree(tmp_path, mosaic):
    grey, rgb = mosaic
    photos = tmp_path / "photos"
    (photos / "day" / "two").mkdir(parents=True)
    Image.fromarray(grey[:100, :77]).save(photos / "a.png")
    Image.fromarray(rgb[:64, :90]).save(photos / "day" / "b.png")
    Image.fromarray(grey[3:50, 5:60]).save(photos / "day" / "two" / "c.tif")
    (photos / "notes.txt").write_text("not an image")
    r = run("-r", "--quality", "8", "--model", FMNIST, "photos", cwd=tmp_path)
    assert r.returncode == 0 and b"skipped 1 file(s) that are not images: notes.txt" in r.stderr
    photos.rename(tmp_path / "original")
    assert run("-d", "-q", "photos.aec", cwd=tmp_path).returncode == 0
    for name in ("a.png", "day/b.png", "day/two/c.tif"):
        before, after = (
            np.asarray(Image.open(tmp_path / "original" / name)),
            np.asarray(Image.open(photos / name)),
        )
        assert after.shape == before.shape and np.abs(after.astype(int) - before).max() <= 7
    listing = codec.decompress((tmp_path / "photos.aec").read_bytes())
    assert [a.shape for a in listing] == [(100, 77), (64, 90, 3), (47, 55)]


# Training on your own images.


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_training_on_a_folder_of_colour_photos_of_any_sizes(tmp_path, mosaic):
    grey, rgb = mosaic
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.roll(rgb, 11 * i, axis=(0, 1))[: 90 + 7 * i, : 120 - 5 * i]).save(
            folder / f"p{i}.png"
        )
    Image.fromarray(grey[:50, :60]).save(folder / "g.png")
    argv = [
        "train",
        "--kind",
        "tile",
        "--data",
        str(folder),
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
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "mine.aecm"),
        "-q",
    ]
    status = cli.main(argv)
    # Four steps make a ladder that is not monotone (the untrained transform costs more than the pixel
    # level): refused, the trained model kept in --workdir, nothing written to --out.
    assert status == 1 and not (tmp_path / "mine.aecm").exists()
    model = codec.load_model(tmp_path / "w" / "tile.aecm")
    assert model.meta["steps"] == 4 and model.qualities == (1, 2, 3)
    assert codec.decompress(codec.compress(rgb, model=model), model=model).shape == rgb.shape


@pytest.mark.parametrize(
    "data_arg, message",
    [("missing", "missing: no such file or folder"), ("one", "at least 2 images")],
)
def test_training_refuses_bad_data_with_one_line(tmp_path, test_images, capsys, data_arg, message):
    (tmp_path / "one").mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "one" / "a.png")
    status = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / data_arg),
            "--workdir",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "m.aecm"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        status in (1, 2)
        and message in err
        and "Traceback" not in err
        and err.startswith("aecodec: error: ")
    )


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_a_time_budget_sets_the_steps_and_says_how_to_repeat_them(tmp_path, test_images):
    from codec.training import tile as train
    from codec.training.tile_net import ModelConfig

    logs = []
    cfg = train.TrainConfig(minutes=0.05, batch_size=16, warmup_steps=1)
    _, summary = train.train_and_evaluate(
        test_images[:100],
        tmp_path,
        train_config=cfg,
        progress=False,
        model_config=ModelConfig(
            hidden=8, clusters=2, lambdas=(1.0,), context_groups=1, pixel_steps=()
        ),
        log=logs.append,
    )
    assert summary["steps"] >= 1 and f"--steps {summary['steps']}" in logs[0]


# Targets are met by measurement, or the user is told.


def test_targets_that_cannot_be_met_are_said(tmp_path, mosaic):
    grey, _ = mosaic
    Image.fromarray(grey).save(tmp_path / "g.png")
    r = run("--target-size", "10", "g.png", cwd=tmp_path)
    assert r.returncode == 0 and b"more than the 10 asked" in r.stderr
    r = run("-f", "--target-psnr", "60", "g.png", cwd=tmp_path)
    assert r.returncode == 0 and b"no quality of the model meets 60.0 dB" in r.stderr


def test_a_target_is_chosen_by_measurement_not_by_the_order_of_the_levels(test_images):
    shifted = np.roll(
        test_images[:64], 7, axis=2
    )  # off the model's grid: its transform levels lose
    pick = codec.api.pick_quality(shifted, target_psnr=18)
    results = [
        codec.api.measure(codec.load_model(), shifted, q) for q in codec.load_model().qualities
    ]
    meeting = [r for r in results if r["psnr"] >= 18]
    assert pick["met"] and pick["bytes_per_image"] == min(r["bytes_per_image"] for r in meeting)


# Silent losses in image files.


def test_an_animated_gif_is_refused_not_cut_to_its_first_frame(tmp_path, test_images):
    frames = [Image.fromarray(test_images[i]) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    r = run("anim.gif", cwd=tmp_path)
    assert (
        r.returncode == 1
        and b"has 3 frames" in r.stderr
        and not (tmp_path / "anim.gif.aec").exists()
    )


def test_an_opaque_palette_image_comes_back_as_the_colours_it_shows(tmp_path, mosaic):
    _, rgb = mosaic
    Image.fromarray(rgb).quantize(64).save(tmp_path / "pal.png")
    shown = np.asarray(Image.open(tmp_path / "pal.png").convert("RGB"))
    assert (
        run(
            "-q", "--quality", "8", "--model", FMNIST, "-o", "pal.aec", "pal.png", cwd=tmp_path
        ).returncode
        == 0
    )
    assert run("-d", "-q", "-o", "back.png", "pal.aec", cwd=tmp_path).returncode == 0
    back = Image.open(tmp_path / "back.png")
    assert back.mode == "RGB" and np.abs(np.asarray(back).astype(int) - shown).max() <= 7


def test_a_jpeg_is_restored_as_png_unless_a_jpeg_is_named(tmp_path, mosaic):
    _, rgb = mosaic
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=90)
    assert run("-q", "photo.jpg", cwd=tmp_path).returncode == 0
    r = run("-d", "photo.jpg.aec", cwd=tmp_path)
    assert r.returncode == 0 and b"restored as photo.png" in r.stderr
    assert Image.open(tmp_path / "photo.png").format == "PNG"
    assert run("-d", "-q", "-o", "again.jpg", "photo.jpg.aec", cwd=tmp_path).returncode == 0
    assert Image.open(tmp_path / "again.jpg").format == "JPEG"


# Errors that blame the right thing.


def test_errors_name_the_model_or_the_output_folder_they_are_about(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:3])
    r = run("--model", "missing.aecm", "a.npy", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.decode().startswith("aecodec: error: missing.aecm: ")
    r = run("-o", "nowhere/a.aec", "a.npy", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.decode().startswith(
        "aecodec: error: nowhere: No such file or directory"
    )
    (tmp_path / "text.txt").write_text("hello")
    r = run("text.txt", cwd=tmp_path)
    assert (
        r.returncode == 1
        and b"not an image, an array or a dataset" in r.stderr
        and b"0x" not in r.stderr
    )


def test_info_reads_standard_input_and_version_is_there(tmp_path, test_images):
    blob = codec.compress(test_images[:3])
    r = run("info", "-", cwd=tmp_path, stdin=blob)
    assert (
        r.returncode == 0
        and b"3 of 28x28" in r.stdout
        and f"{len(blob)} bytes".encode() in r.stdout
    )
    r = run("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(b"aecodec ")


# The report (python -m benchmarks.report, no longer an aecodec command) takes its options.


def test_the_report_takes_its_options_and_help():
    def report(*args):
        return subprocess.run(
            [sys.executable, "-m", "benchmarks.report", *args],
            cwd=Path(__file__).parents[1],
            capture_output=True,
            timeout=300,
        )

    for args in (["-h"], ["--help"]):
        r = report(*args)
        assert (
            r.returncode == 0
            and b"--limit" in r.stdout
            and b"--out" in r.stdout
            and b"--update-readme" in r.stdout
        )
    r = report("--limit", "x")
    assert r.returncode == 2 and b"invalid" in r.stderr
    r = report("--limit", "-9990")
    assert r.returncode == 2 and b"not a positive number" in r.stderr


# Progress: none for one image, rather than a bar stuck at 0/1.


def test_no_progress_bar_for_a_single_image():
    class Args:
        quiet = False

    with file_commands.progress(Args(), 1, "x") as bar:
        assert bar.disable


def test_an_idx_of_colour_images_is_read_as_colour(tmp_path, mosaic):
    _, rgb = mosaic
    stack = np.stack([rgb[:28, :28], rgb[28:56, :28]])  # (2, 28, 28, 3)
    (tmp_path / "c-idx4-ubyte.gz").write_bytes(gzip.compress(data.idx_bytes(stack)))
    source = sources.open_source(str(tmp_path / "c-idx4-ubyte.gz"))
    assert source.image_shape == (28, 28, 3) and source.count == 2


# A second pass over the user trial's fixes.


def test_a_jpeg_restored_as_png_never_replaces_an_existing_png_even_with_force(tmp_path, mosaic):
    _, rgb = mosaic
    Image.fromarray(rgb).save(tmp_path / "photo.jpg")
    assert run("-q", "photo.jpg", cwd=tmp_path).returncode == 0
    (tmp_path / "photo.png").write_bytes(b"the user's own photo.png")
    r = run("-d", "-f", "photo.jpg.aec", cwd=tmp_path)
    assert r.returncode == 1 and b"photo.png already exists" in r.stderr
    assert (tmp_path / "photo.png").read_bytes() == b"the user's own photo.png"


def test_two_archives_restoring_to_one_name_in_one_command_do_not_overwrite_each_other(
    tmp_path, mosaic
):
    grey, rgb = mosaic
    Image.fromarray(rgb).save(tmp_path / "photo.jpg")
    Image.fromarray(grey).save(tmp_path / "photo.png")
    assert run("-q", "--rm", "photo.jpg", "photo.png", cwd=tmp_path).returncode == 0
    r = run("-d", "-f", "--rm", "-q", "photo.jpg.aec", "photo.png.aec", cwd=tmp_path)
    assert r.returncode == 1 and b"written by this command already" in r.stderr
    assert (
        tmp_path / "photo.png.aec"
    ).exists()  # the second archive kept: nothing of it was restored


def test_a_gif_whose_transparency_is_unused_restores_as_a_gif(tmp_path, test_images):
    im = Image.fromarray((test_images[0] // 64).astype(np.uint8), "P")  # indices 0-3 only
    im.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    im.save(tmp_path / "logo.gif", transparency=200)  # an index no pixel uses
    (tmp_path / "g").mkdir()
    (tmp_path / "logo.gif").rename(tmp_path / "g" / "logo.gif")
    assert run("-r", "-q", "--rm", "g", cwd=tmp_path).returncode == 0
    r = run("-d", "-q", "g.aec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "g" / "logo.gif").format == "GIF"


def test_a_list_of_several_sizes_restores_to_an_npz_or_says_how(tmp_path, mosaic):
    grey, rgb = mosaic
    (tmp_path / "list.aec").write_bytes(codec.compress([grey[:30, :40], rgb]))
    with pytest.raises(codec.DataError, match="several sizes"):
        codec.decompress_file(tmp_path / "list.aec", tmp_path / "o.npy")
    r = run("-d", "-q", "-o", "o.png", "list.aec", cwd=tmp_path)
    assert r.returncode == 1 and b"several sizes" in r.stderr
    codec.decompress_file(tmp_path / "list.aec", tmp_path / "o.npz")
    with np.load(tmp_path / "o.npz") as z:
        assert [z[k].shape for k in sorted(z.files)] == [(30, 40), (168, 168, 3)]


def test_errors_inside_a_folder_name_the_file(tmp_path, test_images):
    (tmp_path / "f").mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "f" / "a.png")
    frames = [Image.fromarray(test_images[i]) for i in range(2)]
    frames[0].save(tmp_path / "f" / "b.gif", save_all=True, append_images=frames[1:])
    r = run("-r", "f", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.decode().strip() == (
        "aecodec: error: f: b.gif: GIF image has 2 frames; aecodec stores one image per file (extract the frames first)"
    )


def test_the_api_refuses_to_restore_a_folder_archive_into_its_own_folder(
    tmp_path, test_images, monkeypatch
):
    (tmp_path / "f").mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "f" / "a.png")
    assert run("-r", "-q", "f", cwd=tmp_path).returncode == 0
    monkeypatch.chdir(tmp_path)
    with pytest.raises(codec.InputError, match="refusing to restore"):
        codec.decompress_file("f.aec", ".")


@pytest.mark.parametrize("header", [b"\0\0\x08\x03\0\0\0\0\0\0\0\x1c\0\0\0\x1c"])
def test_an_idx_of_no_images_is_a_clear_error(tmp_path, header):
    (tmp_path / "empty-idx3-ubyte").write_bytes(header)
    r = run("empty-idx3-ubyte", cwd=tmp_path)
    assert (
        r.returncode == 1 and b"holds no images" in r.stderr and b"internal error" not in r.stderr
    )


def test_a_missing_input_and_doubled_names(tmp_path):
    r = run("nope.png", cwd=tmp_path)
    assert (
        r.returncode == 1
        and r.stderr.decode().strip() == "aecodec: error: nope.png: No such file or directory"
    )
    with pytest.raises(FileNotFoundError):
        codec.compress_file(tmp_path / "nope.png", tmp_path / "x.aec")


def test_dash_c_with_several_inputs_is_refused(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:2])
    np.save(tmp_path / "b.npy", test_images[2:4])
    r = run("-c", "a.npy", "b.npy", cwd=tmp_path)
    assert r.returncode == 2 and b"-c writes one archive" in r.stderr and r.stdout == b""


def test_archiving_dot_needs_a_name(tmp_path, test_images):
    Image.fromarray(test_images[0]).save(tmp_path / "a.png")
    r = run("-r", ".", cwd=tmp_path)
    assert r.returncode == 2 and b"name the archive" in r.stderr
    assert run("-r", "-q", "-o", "../all.aec", ".", cwd=tmp_path).returncode == 0


def test_a_suffixless_name_with_idx_in_it_keeps_the_original_format(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:3])
    assert run("-q", "a.npy", cwd=tmp_path).returncode == 0
    assert run("-d", "-q", "-o", "rapidx", "a.npy.aec", cwd=tmp_path).returncode == 0
    assert np.load(tmp_path / "rapidx").shape == (3, 28, 28)


def test_a_fortran_order_array_reads_the_same_from_a_file_and_a_pipe(tmp_path, test_images):
    np.save(tmp_path / "f.npy", np.asfortranarray(test_images[:4]))
    a = run("-c", "--quality", "8", "f.npy", cwd=tmp_path).stdout
    b = run("-c", "--quality", "8", cwd=tmp_path, stdin=(tmp_path / "f.npy").read_bytes()).stdout
    assert np.array_equal(codec.decompress(a), codec.decompress(b))


def test_info_lists_the_sizes_of_a_mixed_archive(tmp_path, mosaic):
    grey, rgb = mosaic
    (tmp_path / "m").mkdir()
    Image.fromarray(grey[:30, :40]).save(tmp_path / "m" / "a.png")
    Image.fromarray(rgb[:20, :10]).save(tmp_path / "m" / "b.png")
    assert run("-r", "-q", "m", cwd=tmp_path).returncode == 0
    r = run("info", "m.aec", cwd=tmp_path)
    assert b"2 of 30x40, 20x10x3 uint8" in r.stdout


def test_a_name_that_is_not_utf8_is_refused_in_a_folder_and_replaced_in_meta(tmp_path, test_images):
    folder = tmp_path / "u"
    folder.mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "x.png")
    bad = os.fsdecode(b"bad\xff.png")
    (tmp_path / "x.png").rename(folder / bad)
    r = run("-r", "u", cwd=tmp_path)
    assert r.returncode == 1 and b"not valid UTF-8" in r.stderr
    assert run("-q", str(folder / bad), cwd=tmp_path).returncode == 0


def test_train_checks_its_output_folder_before_training(tmp_path, capsys):
    status = cli.main(
        ["train", "--out", str(tmp_path / "nodir" / "m.aecm"), "--workdir", str(tmp_path / "w")]
    )
    assert status == 1 and "nodir: No such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_quality_options_exclude_each_other(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:3])
    r = run("--quality", "2", "--target-psnr", "30", "a.npy", cwd=tmp_path)
    assert r.returncode == 2 and b"not allowed with argument" in r.stderr


def test_user_meta_cannot_turn_an_array_into_a_list():
    x = np.zeros((2, 28, 28), np.uint8)
    assert isinstance(codec.decompress(codec.compress(x, meta={"list": True})), np.ndarray)


@pytest.mark.parametrize("bad", [np.zeros(5, bool), np.zeros((1, 1, 1, 1, 1), bool)])
def test_bool_arrays_get_the_same_checks(bad):
    with pytest.raises(codec.InputError, match="dimensions"):
        codec.compress(bad)


def test_training_data_follows_the_colour_array_rule(tmp_path, capsys, mosaic):
    _, rgb = mosaic
    np.save(tmp_path / "rgb.npy", rgb)  # one colour image: nothing to hold out
    status = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / "rgb.npy"),
            "--workdir",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "m.aecm"),
        ]
    )
    assert status == 2 and "at least 2 images" in capsys.readouterr().err
