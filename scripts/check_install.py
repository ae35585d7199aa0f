"""Build the wheel and the sdist, install each in a fresh virtual environment, and run the README's
command-line examples with it, as a colleague handed the package would (issue 31).

    .venv/bin/python scripts/check_install.py [--out DIR]

1. ``python -m build`` makes ``aecodec-*.whl`` (the compiled loops inside) and ``aecodec-*.tar.gz``
   in DIR (default: a temporary folder).
2. The wheel, in a fresh venv (``pip install aecodec-*.whl``, dependencies from the package index):
   every README command-line example must succeed, from a folder outside the checkout.
3. The sdist, in another fresh venv, with no C compiler (``CC=false``: the build of the compiled
   loops fails and is skipped with a warning): every example that codes lossy must succeed, and the
   lossless and near-lossless ones must fail with ``aecodec: error: ...`` naming the missing
   compiled loops.

It prints each step's time and each example's outcome; exit status 1 if anything is not as above.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec.io import data  # noqa: E402
from tests.test_docs import command_lines, example_folder  # noqa: E402

NEEDS_LOOPS = ("--lossless", "--max-error")  # lossless and near-lossless: the compiled loops' work
MISSING = "compiled loops"  # what BuildError's message names


def run(command: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, **kw)


def step(title: str, command: list[str], **kw) -> subprocess.CompletedProcess:
    t = time.perf_counter()
    r = run(command, **kw)
    print(f"{title}: {'ok' if r.returncode == 0 else 'FAILED'} ({time.perf_counter() - t:.0f} s)")
    if r.returncode:
        print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
        raise SystemExit(1)
    return r


def venv(folder: Path, package: Path, env: dict | None = None) -> Path:
    """A fresh venv in ``folder`` with ``package`` installed; its bin folder."""
    step(f"venv {folder.name}", [sys.executable, "-m", "venv", str(folder)])
    # --no-cache-dir: a wheel pip built from this sdist before (with a compiler) is not reused
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
    step(
        f"pip install {package.name}", [*pip, "--disable-pip-version-check", str(package)], env=env
    )
    return folder / "bin"


def examples(bin_dir: Path, folder: Path, *, loops: bool) -> bool:
    """Run the README's examples with ``bin_dir``'s aecodec in ``folder``; True if each did what
    it should: succeed, or (``loops`` False, a lossless example) fail naming the missing loops."""
    example_folder(folder, data.fashion_mnist("test"))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    good = True
    for command in command_lines():
        r = run(["bash", "-c", command], cwd=folder, env=env, timeout=300)
        refused = not loops and any(option in command for option in NEEDS_LOOPS)
        if refused:
            ok = r.returncode == 1 and "aecodec: error:" in r.stderr and MISSING in r.stderr
        else:
            ok = r.returncode == 0
        said = r.stderr.strip().splitlines()[-1][:110] if refused or not ok else ""
        print(f"  {'ok  ' if ok else 'FAIL'} {command}" + (f"\n         -> {said}" if said else ""))
        good &= ok
    return good


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, help="where the wheel and sdist go (default: temporary)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dist = (args.out or tmp / "dist").resolve()
        step("python -m build", [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
        wheel, sdist = next(dist.glob("aecodec-*.whl")), next(dist.glob("aecodec-*.tar.gz"))
        print(f"built {wheel.name} ({wheel.stat().st_size:,} bytes), {sdist.name}")
        good = examples(venv(tmp / "wheel", wheel), mkdir(tmp / "w"), loops=True)
        no_compiler = dict(os.environ, CC="false")  # setuptools compiles with $CC: it fails
        bin_dir = venv(tmp / "sdist", sdist, env=no_compiler)
        probe = [str(bin_dir / "python"), "-c", "import codec.levels._kernels"]
        built = run(probe, cwd=tmp).returncode == 0  # not the checkout's codec: run outside it
        print(f"sdist without a compiler: compiled loops {'BUILT' if built else 'absent'}")
        good &= not built and examples(bin_dir, mkdir(tmp / "s"), loops=False)
    print("all as expected" if good else "NOT as expected")
    raise SystemExit(0 if good else 1)


def mkdir(path: Path) -> Path:
    path.mkdir()
    return path


if __name__ == "__main__":
    main()
