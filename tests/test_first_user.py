"""What a first real user hit: one test per finding of the user trial (each failed before its fix)."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec import cli, data, sources

from .test_cli import run

CODEC = Path(codec.__file__).parent


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2))


@pytest.fixture
def mosaic(test_images):
    """A 168x168 grey picture of garments and a colour one of three different mosaics."""
    tiles = [test_images[36 * k : 36 * (k + 1)].reshape(6, 6, 28, 28).transpose(0, 2, 1, 3).reshape(168, 168)
             for k in range(3)]
    return tiles[0], np.stack(tiles, -1)


# 1. A quality level is one object; the model, not the caller, knows its levels and its default.

def test_the_api_holds_no_coding_algorithm_and_no_level_arithmetic():
    api = (CODEC / "api.py").read_text()
    assert "Encoder(" not in api and "Decoder(" not in api and "to_tiles" not in api
    offenders = [p.name for p in CODEC.glob("*.py") if p.name != "model.py" and "quality - 1" in p.read_text()]
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
    assert codec.decompress(codec.compress(test_images[:5], model=tiny), model=tiny).shape == (5, 28, 28)


def test_coding_never_imports_jax_or_training_code(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:20])
    code = ("import sys, numpy as np, codec; x = np.load(sys.argv[1]); "
            "[codec.decompress(codec.compress(x, quality=q)) for q in (1, 8)]; "
            "print(sorted(m for m in ('jax', 'flax', 'optax', 'codec.train', 'codec.models') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.npy")], capture_output=True, text=True, timeout=120)
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
    blob = codec.compress(rgb, quality=8)
    restored = codec.decompress(blob)
    assert restored.shape == rgb.shape and np.abs(restored.astype(int) - rgb).max() <= 7
    planes = codec.compress(rgb, quality=8, grey_stack=True)  # the rare stack of 168 grey images of width 3
    assert codec.decompress(planes).shape == rgb.shape and len(blob) < len(planes) / 1.5
    np.save(tmp_path / "rgb.npy", rgb)
    assert run("-q", "--quality", "8", "rgb.npy", cwd=tmp_path).returncode == 0
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
    r = run("-r", "--quality", "8", "photos", cwd=tmp_path)
    assert r.returncode == 0 and b"skipped 1 file(s) that are not images: notes.txt" in r.stderr
    photos.rename(tmp_path / "original")
    assert run("-d", "-q", "photos.aec", cwd=tmp_path).returncode == 0
    for name in ("a.png", "day/b.png", "day/two/c.tif"):
        before, after = np.asarray(Image.open(tmp_path / "original" / name)), np.asarray(Image.open(photos / name))
        assert after.shape == before.shape and np.abs(after.astype(int) - before).max() <= 7
    listing = codec.decompress((tmp_path / "photos.aec").read_bytes())
    assert [a.shape for a in listing] == [(100, 77), (64, 90, 3), (47, 55)]


# Training on your own images.

def test_training_on_a_folder_of_colour_photos_of_any_sizes(tmp_path, mosaic):
    grey, rgb = mosaic
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.roll(rgb, 11 * i, axis=(0, 1))[: 90 + 7 * i, : 120 - 5 * i]).save(folder / f"p{i}.png")
    Image.fromarray(grey[:50, :60]).save(folder / "g.png")
    argv = ["train", "--data", str(folder), "--steps", "4", "--hidden", "8", "--clusters", "2", "--context-groups", "2",
            "--context-hidden", "8", "--lambdas", "1,10", "--pixel-steps", "30", "--workdir", str(tmp_path / "w"),
            "--out", str(tmp_path / "mine.aecm"), "-q"]
    assert cli.main(argv) == 0
    model = codec.load_model(tmp_path / "mine.aecm")
    assert model.meta["steps"] == 4 and model.qualities == (1, 2, 3)
    assert codec.decompress(codec.compress(rgb, model=model), model=model).shape == rgb.shape


@pytest.mark.parametrize("data_arg, message", [("missing", "missing: no such file or folder"),
                                               ("one", "at least 2 images")])
def test_training_refuses_bad_data_with_one_line(tmp_path, test_images, capsys, data_arg, message):
    (tmp_path / "one").mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "one" / "a.png")
    status = cli.main(["train", "--data", str(tmp_path / data_arg), "--workdir", str(tmp_path / "w"),
                       "--out", str(tmp_path / "m.aecm")])
    err = capsys.readouterr().err
    assert status in (1, 2) and message in err and "Traceback" not in err and err.startswith("aecodec: error: ")


def test_a_time_budget_sets_the_steps_and_says_how_to_repeat_them(tmp_path, test_images):
    from codec import train
    from codec.models import ModelConfig

    logs = []
    cfg = train.TrainConfig(minutes=0.05, batch_size=16, warmup_steps=1)
    _, summary = train.train_and_evaluate(test_images[:100], tmp_path, train_config=cfg, progress=False,
                                          model_config=ModelConfig(hidden=8, clusters=2, lambdas=(1.0,), context_groups=1,
                                                                   pixel_steps=()), log=logs.append)
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
    shifted = np.roll(test_images[:64], 7, axis=2)  # off the model's grid: its transform levels lose
    pick = codec.api.pick_quality(shifted, target_psnr=18)
    results = [codec.api.measure(codec.load_model(), shifted, q) for q in codec.load_model().qualities]
    meeting = [r for r in results if r["psnr"] >= 18]
    assert pick["met"] and pick["bytes_per_image"] == min(r["bytes_per_image"] for r in meeting)


# Silent losses in image files.

def test_an_animated_gif_is_refused_not_cut_to_its_first_frame(tmp_path, test_images):
    frames = [Image.fromarray(test_images[i]) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    r = run("anim.gif", cwd=tmp_path)
    assert r.returncode == 1 and b"has 3 frames" in r.stderr and not (tmp_path / "anim.gif.aec").exists()


def test_an_opaque_palette_image_comes_back_as_the_colours_it_shows(tmp_path, mosaic):
    _, rgb = mosaic
    Image.fromarray(rgb).quantize(64).save(tmp_path / "pal.png")
    shown = np.asarray(Image.open(tmp_path / "pal.png").convert("RGB"))
    assert run("-q", "--quality", "8", "-o", "pal.aec", "pal.png", cwd=tmp_path).returncode == 0
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
    assert r.returncode == 1 and r.stderr.decode().startswith("aecodec: error: nowhere: No such file or directory")
    (tmp_path / "text.txt").write_text("hello")
    r = run("text.txt", cwd=tmp_path)
    assert r.returncode == 1 and b"not an image, an array or a dataset" in r.stderr and b"0x" not in r.stderr


def test_info_reads_standard_input_and_version_is_there(tmp_path, test_images):
    blob = codec.compress(test_images[:3])
    r = run("info", "-", cwd=tmp_path, stdin=blob)
    assert r.returncode == 0 and b"3 of 28x28" in r.stdout and f"{len(blob)} bytes".encode() in r.stdout
    r = run("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(b"aecodec ")


# aecodec bench takes its options, and writes where it is told.

def test_bench_takes_its_options_and_help(tmp_path):
    for args in (["bench", "-h"], ["bench", "--help"]):
        r = run(*args, cwd=tmp_path)
        assert r.returncode == 0 and b"--limit" in r.stdout and b"--out" in r.stdout and b"--update-readme" in r.stdout
    r = run("bench", "--limit", "x", cwd=tmp_path)
    assert r.returncode == 2 and b"invalid int value" in r.stderr


# Progress: none for one image, rather than a bar stuck at 0/1.

def test_no_progress_bar_for_a_single_image():
    class Args:
        quiet = False

    with cli._progress(Args(), 1, "x") as bar:
        assert bar.disable


def test_an_idx_of_colour_images_is_read_as_colour(tmp_path, mosaic):
    _, rgb = mosaic
    stack = np.stack([rgb[:28, :28], rgb[28:56, :28]])  # (2, 28, 28, 3)
    (tmp_path / "c-idx4-ubyte.gz").write_bytes(gzip.compress(data.idx_bytes(stack)))
    source = sources.open_source(str(tmp_path / "c-idx4-ubyte.gz"))
    assert source.image_shape == (28, 28, 3) and source.count == 2
