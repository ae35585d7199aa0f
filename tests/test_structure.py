"""scripts/check_structure.py: the import-graph and size check CI runs, held to a tiny tree."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_structure.py"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _check(root: Path) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout.splitlines()


def _clean_tree() -> dict[str, str]:
    return {
        "bitstream/__init__.py": "",
        "bitstream/coder.py": "import numpy\n",
        "codec/__init__.py": "import importlib\n",
        "codec/errors.py": "",
        "codec/io/__init__.py": "",
        "codec/io/files.py": "from codec import errors\nimport bitstream.coder\n",
        "codec/levels/__init__.py": "",
        "codec/levels/pixel.py": "from codec.io import files\nfrom . import kernels\n",
        "codec/levels/kernels.py": "import numpy as np\n",
        "codec/training/__init__.py": "",
        "codec/training/fit.py": "import jax\nfrom codec.levels import pixel\n",
        "codec/api.py": "from codec.levels import pixel\n",
        "codec/cli.py": "def main():\n    from codec import api\n",
        "codec/__main__.py": "from codec import cli\n",
    }


def test_a_tree_that_keeps_the_rules_passes(tmp_path):
    _write(tmp_path, _clean_tree())
    status, lines = _check(tmp_path)
    assert status == 0, lines
    assert lines[-1].startswith("check_structure: 14 modules") and lines[-1].endswith(": ok")


def test_circles_upward_imports_jax_in_coding_and_long_code_are_each_reported(tmp_path):
    files = _clean_tree()
    long_body = "".join(f"    x{i} = {i}\n" for i in range(60))
    files |= {
        # a circle in the levels, closed through a relative import
        "codec/levels/kernels.py": "from codec.levels.pixel import predict\n",
        # an upward import hidden in a function: the io layer reaching the face
        "codec/io/files.py": "def load():\n    from codec.api import compress\n",
        # coding reaching JAX through a training module (also an upward import)
        "codec/levels/conv.py": "import codec.training.fit\n",
        # bitstream importing codec
        "bitstream/coder.py": "from codec import errors\n",
        "codec/api.py": f"def compress():\n{long_body}" + "\n" * 600,
    }
    _write(tmp_path, files)
    status, lines = _check(tmp_path)
    assert status == 1
    assert "circle: codec.levels.kernels <-> codec.levels.pixel" in lines
    assert "upward: codec/io/files.py:2: codec.io.files (io) imports codec.api (face)" in lines, (
        lines
    )
    bitstream_up = "bitstream.coder (bitstream) imports codec.errors (base)"
    assert f"upward: bitstream/coder.py:1: {bitstream_up}" in lines
    assert "jax in coding: codec.levels.conv -> codec.training.fit -> jax" in lines
    assert "long function: codec/api.py:1: compress 61 lines (limit 60)" in lines
    assert any(line.startswith("long module: codec/api.py: ") for line in lines), lines
    assert lines[-1].endswith(": FAILED")


def test_a_new_folder_outside_the_layer_table_is_reported(tmp_path):
    _write(tmp_path, _clean_tree() | {"codec/extra/__init__.py": "", "codec/extra/x.py": ""})
    status, lines = _check(tmp_path)
    assert status == 1
    assert "unplaced: codec.extra: in no layer of scripts/check_structure.py" in lines
