"""A Ctrl-C ends aecodec with at most one line and exit status 130, never a traceback: in the
program's first milliseconds, and with a local Dask cluster whose worker processes share the
terminal (a terminal sends Ctrl-C to its whole foreground process group). A reader that leaves
early (SIGPIPE's case) is a quiet exit too."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

import codec
from codec import signals
from codec.io import fileio

from .test_cli import AECODEC, with_default_signal

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def aecodec(tmp_path_factory) -> Path:
    """The console script as pip writes it from pyproject.toml's entry point (an installed one can
    predate a change of entry point until the package is installed again)."""
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["aecodec"]
    module, function = entry.split(":")
    path = tmp_path_factory.mktemp("bin") / "aecodec"
    path.write_text(
        f"#!{sys.executable}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
        f"from {module} import {function}\nif __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({function}())\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory, test_images) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.npy"
    np.save(path, test_images[:3])
    return path


# A Ctrl-C the moment a given module starts to load (deterministic, unlike a timer): the launcher
# runs the console script in its own process, SIGINT as at a terminal.
INTERRUPT_AT_IMPORT = """
import os, runpy, signal, sys

signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, whatever the runner
target = sys.argv[1]
if target in sys.modules:
    sys.exit(f"{target} is loaded before the program starts: no interrupt at its import to test")


class Interrupter:
    def find_spec(self, name, path=None, module=None):
        if name == target:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, Interrupter())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("module", ["codec.signals", "codec.cli", "argparse", "json", "numpy"])
def test_a_ctrl_c_while_the_program_loads_exits_130_without_a_traceback(aecodec, small, module):
    program = [str(aecodec), "-q", "-c", "-f", str(small)]
    r = subprocess.run(
        [sys.executable, "-c", INTERRUPT_AT_IMPORT, module, *program],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 130 and b"Traceback" not in r.stderr, r.stderr.decode()
    assert r.stdout == b""  # stopped before the archive was written


def spawn_and_interrupt(command: list[str], delay: float) -> tuple[int, str]:
    """(exit status, stderr) of ``command`` sent SIGINT ``delay`` seconds after it starts; SIGINT at
    its default disposition, whatever the runner ignores; no Python between spawn and exec."""
    with tempfile.TemporaryFile() as err:
        pid = os.posix_spawn(
            command[0],
            command,
            dict(os.environ),
            setsigdef=[signal.SIGINT],
            file_actions=[
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            ],
        )
        time.sleep(delay)
        os.kill(pid, signal.SIGINT)
        _, status = os.waitpid(pid, 0)
        err.seek(0)
        return os.waitstatus_to_exitcode(status), err.read().decode(errors="replace")


def through_aecodec(stderr: str) -> bool:
    """Whether a traceback passes through aecodec's code (a frame in codec/ or bitstream/). A signal
    during the interpreter's own start (``site``, the environment's .pth files, finding the entry
    module) comes before any of it: Python reports that one, as it would for any program."""
    frames = [line for line in stderr.splitlines() if line.lstrip().startswith("File ")]
    ours = (f"{os.sep}codec{os.sep}", f"{os.sep}bitstream{os.sep}")
    return any(folder in line for line in frames for folder in ours)


def test_an_early_ctrl_c_is_exit_130_and_never_a_traceback_from_aecodec(aecodec, small):
    outcomes = []
    for delay_ms in (0, 5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 120, 200, 300):
        program = [str(aecodec), "-q", "-c", "-f", str(small)]
        status, stderr = spawn_and_interrupt(program, delay_ms / 1000)
        assert not through_aecodec(stderr), f"SIGINT at {delay_ms} ms:\n{stderr}"
        # Python's own start failed (init_sys_streams, init_import_site, ...): it exits with 1
        in_python_start = "Fatal Python error: init_" in stderr
        assert status in (130, -signal.SIGINT, 0) or in_python_start, (
            f"{delay_ms} ms: {status}\n{stderr}"
        )
        outcomes.append(status)
    assert 130 in outcomes  # some signals landed while aecodec ran, not only before or after it


def spawned_workers(pid: int) -> list[int]:
    """The processes ``pid`` started with multiprocessing's spawn (Dask's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):  # not a process, or gone meanwhile
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("when", ["while coding", "while the cluster starts"])
def test_ctrl_c_with_workers_is_one_line_exit_130_and_leaves_no_file(tmp_path, aecodec, when):
    src = codec.data.DEBIAN_DIR / "train-images-idx3-ubyte.gz"
    out = tmp_path / "train.aec"
    program = [str(aecodec), "-q", "--workers", "2", "-o", str(out), str(src)]
    command = with_default_signal(signal.SIGINT, *program)
    # its own process group, which a terminal's Ctrl-C goes to
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True)
    if when == "while coding":
        deadline = time.time() + 120
        while time.time() < deadline and not any(p.suffix == ".part" for p in tmp_path.iterdir()):
            time.sleep(0.05)
        time.sleep(0.3)  # chunks out on the workers
    else:  # the first worker process has just been started: it is still loading Python and Dask
        deadline = time.time() + 120
        while time.time() < deadline and not spawned_workers(proc.pid):
            time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the workers get it too
    _, err = proc.communicate(timeout=120)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 130 and len(lines) == 1, err.decode()
    assert lines[0].startswith("aecodec: error: ") and lines[0].endswith("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_a_reader_that_leaves_early_ends_aecodec_quietly_as_sigpipe_would(tmp_path, aecodec):
    command = [str(aecodec), "sample", "--n", "1", "--out", str(tmp_path / "s.png")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `aecodec ... | true`: gone before aecodec prints its line of JSON
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 128 + signal.SIGPIPE and err == b""


DROPPED_WHERE_PYTHON_IGNORES = r"""
import os, signal, sys, weakref
# as a shell starts a command: SIGINT neither ignored nor blocked, whatever the test runner's
# state (it failed in whole-suite runs only, the child exiting 3: the signal never landed)
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
signal.signal(signal.SIGINT, signal.default_int_handler)
from codec import signals
signals.install()
class Thing: pass
def callback(_):  # Python ignores (prints) an exception raised in a weakref callback
    os.kill(os.getpid(), signal.SIGINT)
    total = 0
    for i in range(100):
        total += i
thing = Thing()
ref = weakref.ref(thing, callback)
try:
    del thing
    for i in range(10 ** 8):
        pass
    sys.exit(3)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_a_signal_handled_inside_a_callback_python_ignores_still_interrupts():
    """The handler runs wherever the main thread is: inside a weakref callback (an import's module
    lock) its exception was printed as "Exception ignored" and the program went on."""
    r = subprocess.run(
        [sys.executable, "-c", DROPPED_WHERE_PYTHON_IGNORES],
        capture_output=True,
        timeout=120,
        cwd=Path(__file__).parents[1],
    )
    assert r.returncode == 130 and b"Exception ignored" not in r.stderr, r.stderr.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_termination_signals_leave_no_partial_output_and_exit_128_plus_n(tmp_path, signum):
    # A copy: with --rm, a run that finishes before the signal lands removes its input, and this
    # must never be the system's dataset (under nohup, SIGHUP is ignored and the run does finish).
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    src = tmp_path / "in" / "train-images-idx3-ubyte.gz"
    shutil.copyfile(codec.data.DEBIAN_DIR / "train-images-idx3-ubyte.gz", src)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        with_default_signal(signum, AECODEC, "-q", "--rm", "-o", str(out / "train.aec"), str(src)),
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".part") for p in out.iterdir()):
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert list(out.iterdir()) == [] and src.exists()


def test_a_signal_inside_the_final_steps_lands_after_them(tmp_path):
    signals.install()
    try:
        src = tmp_path / "in.bin"
        src.write_bytes(b"input")

        def remove_input_after_a_signal():
            # arrives between "output in place" and "input removed"
            os.kill(os.getpid(), signal.SIGTERM)
            src.unlink()

        with pytest.raises(signals.Interrupted) as info:
            with fileio.atomic_output(tmp_path / "out.bin", then=remove_input_after_a_signal) as f:
                f.write(b"output")
        assert info.value.exit_status == 128 + signal.SIGTERM
        assert (tmp_path / "out.bin").read_bytes() == b"output" and not src.exists()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for s in (signal.SIGHUP, signal.SIGQUIT):
            signal.signal(s, signal.SIG_DFL)


def test_the_command_line_loads_no_numerical_library_before_its_signal_handlers():
    code = (
        "import sys, codec.cli; "
        "print(sorted(m for m in ('numpy', 'msgpack', 'constriction') if m in sys.modules))"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "[]"
    )


def test_an_ignored_hangup_stays_ignored_as_under_nohup(tmp_path):
    src = codec.data.DEBIAN_DIR / "t10k-images-idx3-ubyte.gz"
    command = f"trap '' HUP; exec '{AECODEC}' -q -o '{tmp_path / 't.aec'}' '{src}'"
    proc = subprocess.Popen(["sh", "-c", command])
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".part") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=300) == 0 and codec.decompress(
        (tmp_path / "t.aec").read_bytes()
    ).shape == (10000, 28, 28)


def test_running_the_cli_in_process_gives_back_the_callers_signal_handlers():
    from codec import cli

    before = {s: signal.getsignal(s) for s in signals.SIGNALS}
    assert cli.main(["info", "/nonexistent.aec"]) == 1
    assert {s: signal.getsignal(s) for s in signals.SIGNALS} == before
