"""One output policy for every command that writes (``codec/io/fileio.py``): one test per finding of
the review "Never lose a file, never run unbounded — again". Each failed on the code before it.

The policy: an existing file is kept unless -f; an input of the same run is never written, even
with -f; a regular file appears whole or not at all; a character device or FIFO is written into,
never replaced; a command's outputs (a picture and the array beside it) all appear or none do.
"""

import hashlib
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

import codec
from codec import cli, family
from codec.io import data
from codec.training import checkpoints
from codec.training import tile as train
from codec.training.tile_net import ModelConfig

from .test_cli import run

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
