"""The examples in the README and the public docstrings run as written and say what they show."""

import doctest
import gzip
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
import codec.api
import codec.archive
from codec.io import idx

from .test_cli import AECODEC

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
FAMILY = ROOT / "docs" / "family.md"


def test_docstring_examples_run():
    for module in (codec, codec.api, codec.archive):
        result = doctest.testmod(module, raise_on_error=False)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def blocks(language: str, after: str, path: Path = README) -> list[str]:
    """The ``language`` code blocks of the section ``after`` of a Markdown file (the README's)."""
    text = path.read_text()
    section = text[text.index(after) :]
    end = section.find("\n## ", 1)
    section = section if end == -1 else section[:end]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_python_api_example_runs_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    # in order, one namespace: the second uses the first's images
    for code in blocks("python", "## Python API"):
        exec(compile(code, "README.md", "exec"), namespace)
    assert np.load(tmp_path / "restored.npy").shape == (100, 28, 28)
    assert (tmp_path / "shirts.zarr").is_dir()


def example_folder(folder: Path, images: np.ndarray) -> None:
    """The files the README's command-line examples work on, made from Fashion-MNIST ``images``."""
    Image.fromarray(images[0]).save(folder / "shirt.png")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx.idx_bytes(images[:200])))
    (folder / "photos" / "more").mkdir(parents=True)
    Image.fromarray(np.stack([images[1], images[2], images[3]], -1)).save(folder / "photos/a.png")
    Image.fromarray(images[4][:20, :17]).save(folder / "photos" / "more" / "b.jpg")
    np.save(folder / "data.npy", images[:50])


def command_lines() -> list[str]:
    """The README's command-line examples, their comments left out."""
    lines = (
        line.split("#", 1)[0].strip() for line in blocks("sh", "## Command line")[0].splitlines()
    )
    return [line for line in lines if line]


@pytest.mark.slow  # about 7 s: fourteen processes
def test_the_command_line_examples_run_verbatim(tmp_path, test_images):
    example_folder(tmp_path, test_images)
    env = dict(os.environ, PATH=f"{Path(AECODEC).parent}:{os.environ['PATH']}")
    commands = command_lines()
    for command in commands:
        r = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, timeout=300
        )
        assert r.returncode == 0, (command, r.stderr.decode())
    assert len(commands) >= 9 and (tmp_path / "shirt.npy").exists()
    assert (tmp_path / "out.png").exists()


def test_the_long_running_examples_at_least_parse(tmp_path):
    """train and the report are run for real in test_train and test_bench; here, their options
    exist. The report is a module of the repository (``python -m benchmarks.report``), run from
    its root; the family's commands are in docs/family.md."""
    lines = (
        blocks("sh", "## Command line")[1].splitlines()
        + blocks("sh", "# The autoencoder family", FAMILY)[0].splitlines()
    )
    for line in lines:
        command = line.split("#", 1)[0].strip()
        if command:
            words = shlex.split(command)
            if words[:3] == ["python", "-m", "benchmarks.report"]:
                run, cwd, usage = [sys.executable, *words[1:3]], ROOT, b"usage:"
            else:
                run, cwd, usage = [AECODEC, *words[1:]], tmp_path, b"usage: aecodec"
            r = subprocess.run([*run, "--help"], cwd=cwd, capture_output=True, timeout=120)
            assert r.returncode == 0 and usage in r.stdout, command
            for option in (w for w in words if w.startswith("--")):
                assert option.encode() in r.stdout, (command, option)
