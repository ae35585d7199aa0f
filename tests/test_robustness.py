"""No lost data and deterministic output: full disks, interrupts, processes, thread counts."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

import codec
from codec.levels.planes import to_tiles

from .test_cli import AECODEC, with_default_signal

SCRIPT = """
import sys, hashlib, numpy as np, codec
x = codec.data.fashion_mnist("test")[:300]
for quality in (3, 6):  # a transform level (BLAS products) and a pixel level
    blob = codec.compress(x, quality=quality)
    pixels = codec.decompress(blob).tobytes()
    print(hashlib.sha256(blob).hexdigest(), hashlib.sha256(pixels).hexdigest())
"""


def _digests(env_extra: dict) -> str:
    env = dict(os.environ, **env_extra)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout


def test_files_and_pixels_are_identical_across_processes_and_thread_settings():
    default = _digests({})
    single = _digests({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert default == single and len(default.split()) == 4


def test_latents_do_not_depend_on_batch_size(bundled, test_images):
    tiles = to_tiles(test_images, bundled.part("tile").config.tile)
    top = bundled.part("tile").config.qualities  # the transform's highest level
    whole = bundled.level(top).latents(tiles)
    for size in (1, 7, 64):
        parts = [bundled.level(top).latents(tiles[i : i + size]) for i in range(0, 70, size)]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts])[:70], whole[0][:70])
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts])[:70], whole[1][:70])


# Sets the limit in a fresh interpreter that then becomes aecodec: no fork of this (threaded)
# process.
LIMITED = (
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def test_full_disk_leaves_no_partial_output_and_keeps_the_input(tmp_path, test_images):
    src = tmp_path / "many.npy"
    np.save(src, np.concatenate([test_images] * 4))
    r = subprocess.run(
        [sys.executable, "-c", LIMITED, AECODEC, "--rm", str(src)], capture_output=True, timeout=300
    )
    assert r.returncode == 1 and b"aecodec: error: " in r.stderr and b"File too large" in r.stderr
    assert src.exists() and [p.name for p in tmp_path.iterdir()] == ["many.npy"]


def test_interrupt_during_a_long_archive_leaves_no_output(tmp_path):
    src = codec.data.DEBIAN_DIR / "train-images-idx3-ubyte.gz"
    out = tmp_path / "train.aec"
    proc = subprocess.Popen(
        with_default_signal(signal.SIGINT, AECODEC, "-q", "-o", str(out), str(src)),
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".part") for p in tmp_path.iterdir()):
        time.sleep(0.05)  # wait until the output is being written
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and b"interrupted" in err, err
    assert list(tmp_path.iterdir()) == []
