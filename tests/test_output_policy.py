"""One output policy for every command that writes (``codec/io/fileio.py``): one test per finding of
the review "Never lose a file, never run unbounded — again". Each failed on the code before it.

The policy: an existing file is kept unless -f; an input of the same run is never written, even
with -f; a regular file appears whole or not at all; a character device or FIFO is written into,
never replaced; a command's outputs (a picture and the array beside it) all appear or none do.
"""

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import msgpack
import numpy as np
import pytest
from PIL import Image

import codec
from codec import cli, family
from codec.io import data, fileio, idx, sinks
from codec.levels.tile_config import ModelConfig
from codec.training import checkpoints
from codec.training import tile as train

from .test_cli import AECODEC, run

MINE = b"years of work"


@pytest.fixture
def items(tmp_path, test_images) -> Path:
    np.save(tmp_path / "items.npy", test_images[:20])
    return tmp_path / "items.npy"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fifo_reader(path: Path) -> tuple[threading.Thread, list]:
    """A thread reading the FIFO ``path`` to its end (a daemon: if no writer comes, it waits)."""
    got = []

    def read():
        with open(path, "rb") as f:
            got.append(f.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, got


def null_twin(tmp_path: Path) -> Path:
    """A character device like /dev/null (1, 3) of this test's own: were the policy broken, only it
    would be replaced, never the machine's /dev/null."""
    twin = tmp_path / "null"
    try:
        os.mknod(twin, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root (CAP_MKNOD)")
    return twin


# 1. embed, denoise, sample and score: --out and the file beside it.

FAMILY_COMMANDS = {  # command line, the file written beside --out
    "embed": (["embed", "{items}"], ".npy"),
    "denoise": (["denoise", "{items}"], ".npy"),
    "sample": (["sample", "--n", "4"], ".npy"),
    "score": (["score", "{items}"], ".csv"),
}


def family_argv(command: str, items: Path, out: Path, *more) -> list[str]:
    words, _ = FAMILY_COMMANDS[command]
    return [w.format(items=items) for w in words] + ["--out", str(out), *more]


@pytest.mark.parametrize("command", sorted(FAMILY_COMMANDS))
def test_family_commands_refuse_to_overwrite_an_existing_output_without_force(
    tmp_path, items, command, capsys
):
    out = tmp_path / "thesis.tex"  # --out takes any name: this one holds years of work
    out.write_bytes(MINE)
    assert cli.main(family_argv(command, items, out)) == 1
    assert "thesis.tex already exists (use -f to overwrite)" in capsys.readouterr().err
    assert out.read_bytes() == MINE
    assert not out.with_suffix(FAMILY_COMMANDS[command][1]).exists()  # nor the file beside it


def test_embed_refuses_to_overwrite_existing_output_without_force_and_replaces_both_with_it(
    tmp_path, items
):
    (tmp_path / "map.png").write_bytes(MINE)
    (tmp_path / "map.npy").write_bytes(MINE)
    assert cli.main(family_argv("embed", items, tmp_path / "map.png")) == 1
    assert (tmp_path / "map.png").read_bytes() == MINE
    assert (tmp_path / "map.npy").read_bytes() == MINE
    assert cli.main(family_argv("embed", items, tmp_path / "map.png", "-f")) == 0
    assert np.load(tmp_path / "map.npy").shape == (20, 2)
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_side_file_that_exists_stops_the_command_before_the_picture_is_written(tmp_path, capsys):
    (tmp_path / "s.npy").write_bytes(MINE)
    assert cli.main(["sample", "--n", "4", "--out", str(tmp_path / "s.png")]) == 1
    assert "s.npy already exists" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy"]
    assert (tmp_path / "s.npy").read_bytes() == MINE


@pytest.mark.parametrize("force", [[], ["-f"]])
def test_embed_refuses_to_write_its_array_over_its_input_even_with_force(
    tmp_path, items, force, capsys
):
    before = digest(items)
    out = tmp_path / "items.png"  # its array would go beside it: items.npy, the input
    assert cli.main(family_argv("embed", items, out, *force)) == 2
    assert f"output {items} is the input {items}" in capsys.readouterr().err
    assert digest(items) == before and not (tmp_path / "items.png").exists()


# 2. train --out: every kind, never over its training data, never over a file without -f.


@pytest.mark.parametrize("kind", ["plain", "lossless", "tile", "conv"])
def test_train_refuses_its_training_data_as_output(tmp_path, items, kind, capsys):
    before = digest(items)
    argv = [
        "train",
        "--kind",
        kind,
        "--data",
        str(items),
        "--out",
        str(items),
        "--workdir",
        str(tmp_path / "w"),
        "--steps",
        "1",
        "-q",
    ]
    assert cli.main(argv) == 2
    assert f"output {items} is the input {items}" in capsys.readouterr().err
    assert digest(items) == before and not (tmp_path / "w").exists()  # refused before any work


def test_train_refuses_its_training_data_as_output_even_with_force(tmp_path, items):
    before = digest(items)
    argv = [
        "train",
        "--kind",
        "plain",
        "--data",
        str(items),
        "--out",
        str(items),
        "--steps",
        "1",
        "-f",
        "-q",
    ]
    assert cli.main(argv) == 2 and digest(items) == before


def test_train_refuses_its_init_model_as_output_even_with_force(tmp_path, items, tiny_model_path):
    init = tmp_path / "base.aecm"  # the old README recipe: --init MODEL --out MODEL
    shutil.copy(tiny_model_path, init)
    before = digest(init)
    for force in ([], ["-f"]):
        argv = [
            "train",
            "--kind",
            "lossless",
            "--data",
            str(items),
            "--init",
            str(init),
            "--out",
            str(init),
            "--leaves",
            "4",
            "-q",
            *force,
        ]
        assert cli.main(argv) == 2 and digest(init) == before


def test_train_refuses_an_existing_model_without_force_and_replaces_it_with_force(
    tmp_path, items, capsys
):
    out = tmp_path / "model.aecf"
    out.write_bytes(MINE)
    argv = [
        "train",
        "--kind",
        "plain",
        "--data",
        str(items),
        "--widths",
        "784,8,2",
        "--steps",
        "2",
        "--out",
        str(out),
        "-q",
    ]
    assert cli.main(argv) == 1 and out.read_bytes() == MINE
    assert "model.aecf already exists (use -f to overwrite)" in capsys.readouterr().err
    assert cli.main([*argv, "-f"]) == 0
    assert family.load(out)[0].cfg.widths == (784, 8, 2)


# 3. bench --out DIR: the report's files.


def test_the_report_refuses_an_existing_report_without_force(tmp_path):
    (tmp_path / "report.md").write_bytes(MINE)
    argv = ["--out", str(tmp_path), "--limit", "20", "--single-limit", "5", "-q"]
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", *argv],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1  # at once: not after the benchmark has run
    assert "report.md already exists (use -f to overwrite)" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    assert (tmp_path / "report.md").read_bytes() == MINE


# 4. Character devices and FIFOs are written into, never renamed over.


@pytest.mark.parametrize("force", [[], ["-f"]])
def test_writing_to_fifo_writes_into_it(tmp_path, test_images, force):
    np.save(tmp_path / "x.npy", test_images[:5])
    pipe = tmp_path / "pipe.aec"
    os.mkfifo(pipe)
    reader, got = fifo_reader(pipe)
    r = run("-q", "--lossless", *force, "-o", "pipe.aec", "x.npy", cwd=tmp_path)
    reader.join(timeout=60)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)  # still the FIFO, not a file put in its place
    assert np.array_equal(codec.decompress(got[0]), test_images[:5])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.aec", "x.npy"]  # no temporary file


def test_sample_writes_its_picture_into_a_fifo_and_nothing_beside_it(tmp_path):
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    reader, got = fifo_reader(pipe)
    assert cli.main(["sample", "--n", "4", "--out", str(pipe)]) == 0
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode) and got[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.png"]  # no pipe.npy left beside it


def test_dev_null_stays_a_device_with_force(tmp_path, test_images):
    twin = null_twin(tmp_path)
    np.save(tmp_path / "x.npy", test_images[:5])
    r = run("-f", "-q", "-o", twin.name, "x.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(os.lstat(twin).st_mode) and os.stat(twin).st_rdev == os.makedev(1, 3)
    assert cli.main(["sample", "--n", "4", "--out", str(twin)]) == 0  # no -f: nothing is replaced
    assert stat.S_ISCHR(os.lstat(twin).st_mode)
    assert not twin.with_suffix(".npy").exists()  # nothing written beside a device
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# 5. --workdir: a checkpoint of another configuration is refused at once.


@pytest.fixture
def tiny_workdir(tiny_model_path, tmp_path) -> Path:
    """A copy of the tiny model's workdir (conftest: hidden=8, one epoch on 1,200 images)."""
    workdir = tmp_path / "w"
    workdir.mkdir()
    shutil.copy(tiny_model_path.parent / checkpoints.CHECKPOINT, workdir)
    return workdir


def test_workdir_of_another_configuration_is_refused(tiny_workdir, tmp_path, items, capsys):
    before = digest(tiny_workdir / checkpoints.CHECKPOINT)
    argv = [
        "train",
        "--kind",
        "tile",
        "--data",
        str(items),
        "--workdir",
        str(tiny_workdir),
        "--hidden",
        "16",
        "--out",
        str(tmp_path / "m.aecm"),
        "-q",
    ]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert f"{tiny_workdir}: its checkpoint was trained with hidden 8, not 16" in err
    assert (
        digest(tiny_workdir / checkpoints.CHECKPOINT) == before
        and not (tmp_path / "m.aecm").exists()
    )


TINY = {  # conftest's tiny model, as it was trained
    "model_config": ModelConfig(
        hidden=8,
        clusters=2,
        lambdas=(1.0, 10.0),
        context_groups=3,
        context_hidden=8,
        pixel_steps=(30,),
    ),
    "train_config": train.TrainConfig(epochs=1, batch_size=64, val_size=200, warmup_steps=2),
}


def test_a_workdir_resumes_its_own_configuration_and_refuses_other_images(tiny_workdir):
    logged = []
    images = data.fashion_mnist("train")[:1200]
    train.train_and_evaluate(images, tiny_workdir, progress=False, log=logged.append, **TINY)
    assert any(line.startswith("resuming from") for line in logged)
    with pytest.raises(codec.CheckpointMismatchError, match="trained on other images"):
        train.train_and_evaluate(
            images[::-1], tiny_workdir, progress=False, log=logged.append, **TINY
        )


def test_a_checkpoint_that_records_no_settings_is_refused(tmp_path):
    (tmp_path / checkpoints.CHECKPOINT).write_bytes(msgpack.packb({"epoch": 1, "leaves": []}))
    settings = checkpoints.run_settings(ModelConfig(), train.TrainConfig())
    with pytest.raises(codec.CheckpointMismatchError, match="records no settings"):
        checkpoints.check_workdir(tmp_path, settings)


@pytest.mark.parametrize("decompressing", [False, True])
def test_output_equal_to_the_input_is_refused_even_with_force_and_rm(
    tmp_path, images, decompressing
):
    np.save(tmp_path / "a.npy", images)
    name = "a.npy"
    if decompressing:
        assert run("-q", "a.npy", cwd=tmp_path).returncode == 0
        name = "a.npy.aec"
    before = (tmp_path / name).read_bytes()
    args = ["-d"] if decompressing else []
    r = run(*args, "-f", "--rm", "-o", name, name, cwd=tmp_path)
    assert r.returncode == 2 and b"is the input" in r.stderr
    assert (tmp_path / name).read_bytes() == before


def test_two_writers_finishing_together_never_both_succeed(tmp_path):
    for trial in range(40):
        path = tmp_path / f"out{trial}"
        barrier, outcomes = threading.Barrier(2), []

        def write(payload, barrier=barrier, outcomes=outcomes, path=path):
            try:
                with fileio.atomic_output(path) as f:
                    f.write(payload)
                    barrier.wait()  # both complete, then both try to take the name
                outcomes.append(payload)
            except FileExistsError:
                outcomes.append("refused")

        threads = [threading.Thread(target=write, args=(bytes([k]) * 10,)) for k in (1, 2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        winner = [o for o in outcomes if o != "refused"]
        assert sorted(map(str, outcomes)).count("refused") == 1 and path.read_bytes() == winner[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_full_disk_says_no_space_left_on_device(tmp_path, images):
    with open("/dev/full", "wb") as f, pytest.raises(OSError) as info:
        sinks.save_images(f, images, "npy")
    assert info.value.errno == 28
    (tmp_path / "a.npy.aec").write_bytes(
        codec.compress(images, meta={"kind": "npy", "name": "a.npy"})
    )
    with open("/dev/full", "wb") as full:
        r = subprocess.run(
            [AECODEC, "-d", "-c", "a.npy.aec"], cwd=tmp_path, stdout=full, stderr=subprocess.PIPE
        )
    assert r.returncode == 1 and b"No space left on device" in r.stderr


def test_dash_o_dash_writes_standard_output(tmp_path, images):
    np.save(tmp_path / "a.npy", images)
    r = run("-q", "-o", "-", "a.npy", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout[:3] == b"AEC" and not (tmp_path / "-").exists()


def test_a_short_write_to_standard_output_is_an_error_not_a_truncated_success():
    # takes at most 10 bytes a call, then nothing: a reader that went away
    class Short(io.RawIOBase):
        def __init__(self):
            self.taken = 0

        def writable(self):
            return True

        def write(self, b):
            n = 0 if self.taken >= 30 else min(10, len(b))
            self.taken += n
            return n

    with pytest.raises(BrokenPipeError):
        sinks.write_all(Short(), b"x" * 100)


def test_compress_file_refuses_to_write_over_its_input(tmp_path, images):
    np.save(tmp_path / "x.npy", images)
    with pytest.raises(codec.InputError, match="is the input"):
        codec.compress_file(tmp_path / "x.npy", tmp_path / "x.npy", force=True)
    assert np.load(tmp_path / "x.npy").shape == images.shape


def test_info_into_a_closed_pipe_prints_no_traceback(tmp_path, images):
    (tmp_path / "a.aec").write_bytes(codec.compress(images))
    r = subprocess.run(
        f"'{AECODEC}' info a.aec a.aec a.aec | true", shell=True, cwd=tmp_path, capture_output=True
    )
    assert b"Traceback" not in r.stderr


def test_the_output_suffix_decides_the_restored_format_in_the_cli_and_the_api(tmp_path, images):
    (tmp_path / "t10k-idx3-ubyte.gz").write_bytes(gzip.compress(idx.idx_bytes(images)))
    assert run("-q", "t10k-idx3-ubyte.gz", cwd=tmp_path).returncode == 0
    assert run("-d", "-q", "-o", "t10k.npy", "t10k-idx3-ubyte.gz.aec", cwd=tmp_path).returncode == 0
    assert np.load(tmp_path / "t10k.npy").shape == images.shape
    codec.decompress_file(tmp_path / "t10k-idx3-ubyte.gz.aec", tmp_path / "api.npy")
    assert np.load(tmp_path / "api.npy").shape == images.shape
    r = run("-d", "-q", "-o", "t10k.weird", "t10k-idx3-ubyte.gz.aec", cwd=tmp_path)
    assert (
        r.returncode == 1
        and b"unknown output format" in r.stderr
        and not (tmp_path / "t10k.weird").exists()
    )
    with pytest.raises(codec.DataError, match="unknown output format"):
        codec.decompress_file(tmp_path / "t10k-idx3-ubyte.gz.aec", tmp_path / "t10k.weird")


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


def test_dash_c_with_several_inputs_is_refused(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:2])
    np.save(tmp_path / "b.npy", test_images[2:4])
    r = run("-c", "a.npy", "b.npy", cwd=tmp_path)
    assert r.returncode == 2 and b"-c writes one archive" in r.stderr and r.stdout == b""
