"""Command-line numbers: memory on whole datasets, archive throughput, start-up time.

    python -m benchmarks.cli [--out benchmarks/results/cli.json]

Runs the installed ``aecodec`` console script in subprocesses, as a user would:
- peak RSS of ``aecodec -c`` on Fashion-MNIST's 10k test and 60k train IDX files
  (the second should stay within 1.3x the first: memory must not grow with the dataset);
- archive throughput (images/s, wall time of the whole command);
- wall time of a one-image compress and decompress of a 28x28 PNG, cold and warm. aecodec
  keeps no cache of its own (coding does not use JAX, so there is no compilation cache to
  fill); "cold" drops the operating system's page cache before each run, so Python, numpy
  and the model file are read from disk, where that is permitted (root on Linux), and says
  when it is not; "warm" runs again with the files in memory.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from codec.io import data, idx

AECODEC = shutil.which("aecodec", path=str(Path(sys.executable).parent)) or shutil.which("aecodec")


def timed(args: list[str], *, env: dict) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB) of one run of ``aecodec args``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [AECODEC, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"aecodec {' '.join(args)} failed: {proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss // 1024


def idx_count(path: Path) -> int:
    """The image count in an IDX file's header (raw or .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return idx.read_idx_header(f, name=str(path))[1][0]


def drop_page_cache() -> bool:
    """Empty the OS page cache (Linux, root only); False where that is not permitted."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cli.json"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="aecodec-bench-"))
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"))
    result = {"datasets": {}}
    try:
        for name, split in (("10k test", "test"), ("60k train", "train")):
            src = data.DEBIAN_DIR / data.FASHION_MNIST[(split, "images")][0]
            # not by loading the images: a child's peak RSS would include this process's
            n = idx_count(src)
            seconds, rss = timed(["-c", "-q", str(src)], env=env)
            result["datasets"][name] = {
                "images": n,
                "seconds": seconds,
                "images_per_s": n / seconds,
                "peak_rss_mib": rss,
            }
            print(
                f"compress {name} IDX ({n} images): {seconds:.1f} s, {n / seconds:.0f} images/s, "
                f"peak RSS {rss} MiB",
                flush=True,
            )
        ratio = (
            result["datasets"]["60k train"]["peak_rss_mib"]
            / result["datasets"]["10k test"]["peak_rss_mib"]
        )
        result["rss_ratio_60k_over_10k"] = ratio
        print(f"peak RSS 60k / 10k = {ratio:.2f} (goal <= 1.3)")

        from PIL import Image

        png = work / "one.png"
        Image.fromarray(data.fashion_mnist("test")[0]).save(png)
        packed = work / "one.png.aec"
        for mode in ("cold", "warm"):
            comp, decomp = [], []
            dropped = True
            for _ in range(args.repeats):
                dropped &= mode == "warm" or drop_page_cache()
                comp.append(timed(["-f", "-q", str(png)], env=env)[0])
                dropped &= mode == "warm" or drop_page_cache()
                decomp.append(
                    timed(["-d", "-f", "-q", "-o", str(work / "back.png"), str(packed)], env=env)[0]
                )
            label = mode if dropped else "cold (page cache NOT dropped: not permitted here)"
            result[f"single_image_{mode}"] = {
                "compress_s": statistics.median(comp),
                "decompress_s": statistics.median(decomp),
                "page_cache_dropped": mode == "cold" and dropped,
            }
            print(
                f"one 28x28 PNG, {label}: compress {statistics.median(comp):.2f} s, "
                f"decompress {statistics.median(decomp):.2f} s (median of {args.repeats})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
