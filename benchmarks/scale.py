"""Datasets past one machine (issue 15): Dask workers, random access, and a million images in flat
memory.

    python -m benchmarks.scale [--quality 4] [--million 1000000]

1. Parallel compression: the Fashion-MNIST train split (60,000 images) compressed by one process
   and on a local Dask cluster of 1 and 2 worker processes: the archives compared byte for byte,
   throughput and speed-up; then what N workers would do, from the measured time of every chunk
   (Amdahl: the driver's own time measured as the one-worker run minus its chunks' coding time).
2. Random access: one image read from the 60,000-image archive (``codec.open(path)[i]``, a fresh
   open each time, medians over random positions) against decoding the whole archive.
3. A million images: Fashion-MNIST's train split moved (up to 3 px) and mirrored, generated
   1,000 at a time and streamed into an archive and into a zarr array (``codec.numcodecs``), each
   run in its own process so that its peak resident memory is its own: the 60,000-image run
   against the million.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import codec
from codec import api
from codec.io import data


def moved(train: np.ndarray, block: int, size: int = 1000) -> np.ndarray:
    """Block ``block`` of ``size`` images of the endless stream: the train split, each pass moved
    and mirrored."""
    start = block * size % len(train)
    x = train[start : start + size]
    rng = np.random.default_rng(block)
    dy, dx = rng.integers(-3, 4, size=2)
    x = np.roll(x, (int(dy), int(dx)), axis=(1, 2))
    return x[:, :, ::-1] if rng.integers(2) else x


def chunk_times(x: np.ndarray, quality: int) -> list[float]:
    """Seconds to code each chunk of ``x`` in this process, as the archive cuts them."""
    level = api.load_model().level(quality)
    out = []
    for i in range(0, len(x), api.CHUNK_IMAGES):
        t = time.perf_counter()
        level.encode(x[i : i + api.CHUNK_IMAGES])
        out.append(time.perf_counter() - t)
    return out


def parallel(x: np.ndarray, quality: int) -> dict:
    from codec.parallel import DaskPool

    t = time.perf_counter()
    one = codec.compress(x, quality=quality)
    res = {"one_process_s": time.perf_counter() - t, "chunks": -(-len(x) // api.CHUNK_IMAGES)}
    res["chunk_s"] = chunk_times(x, quality)
    for workers in (1, 2):
        with DaskPool(workers) as pool:
            codec.compress(x[:2000], quality=quality, pool=pool)  # workers start, load the model
            t = time.perf_counter()
            blob = codec.compress(x, quality=quality, pool=pool)
            res[f"dask_{workers}_s"] = time.perf_counter() - t
            res[f"dask_{workers}_identical"] = blob == one
    return res


def random_access(x: np.ndarray, quality: int, folder: Path) -> dict:
    path = folder / "train.aec"
    path.write_bytes(codec.compress(x, quality=quality))
    whole = []
    for _ in range(3):
        t = time.perf_counter()
        codec.decompress(path.read_bytes())
        whole.append(time.perf_counter() - t)
    one = []
    for i in np.random.default_rng(0).integers(0, len(x), 21):
        t = time.perf_counter()
        with codec.open(path) as images:
            images[int(i)]
        one.append(time.perf_counter() - t)
    return {
        "whole_s": statistics.median(whole),
        "one_s": statistics.median(one),
        "one_max_s": max(one),
        "archive_bytes": path.stat().st_size,
    }


def child(n: int, quality: int, folder: Path) -> dict:
    """Stream ``n`` generated images into an archive, then into a zarr array; this process's peak
    memory."""
    import zarr

    from codec.numcodecs import AecodecCodec

    train = data.fashion_mnist("train")
    blocks = -(-n // 1000)
    t = time.perf_counter()
    with (
        open(folder / f"{n}.aec", "wb") as f,
        api.ArchiveWriter(f, (28, 28), quality=quality) as writer,
    ):
        for b in range(blocks):
            writer.write(moved(train, b)[: n - 1000 * b])
    archive_s = time.perf_counter() - t
    t = time.perf_counter()
    z = zarr.create_array(
        folder / f"{n}.zarr",
        shape=(n, 28, 28),
        chunks=(1000, 28, 28),
        dtype="uint8",
        zarr_format=2,
        compressors=AecodecCodec("fmnist", quality=quality),
    )
    for b in range(blocks):
        z[1000 * b : min(n, 1000 * (b + 1))] = moved(train, b)[: n - 1000 * b]
    zarr_s = time.perf_counter() - t
    check = moved(train, blocks - 1)[: n - 1000 * (blocks - 1)]
    with codec.open(folder / f"{n}.aec") as images:
        same = bool(np.array_equal(images[n - len(check) :], z[n - len(check) :]))
    return {
        "n": n,
        "archive_s": archive_s,
        "zarr_s": zarr_s,
        "archive_bytes": (folder / f"{n}.aec").stat().st_size,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "archive_equals_zarr": same,
    }


def run_child(n: int, quality: int, folder: Path) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scale",
            "--child",
            str(n),
            "--quality",
            str(quality),
            "--folder",
            str(folder),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def report(par: dict, ra: dict, runs: list[dict], n: int) -> None:
    chunk_total = sum(par["chunk_s"])
    print(
        f"parallel compression, {n} images, quality {par['quality']}, {par['chunks']} chunks of "
        f"{api.CHUNK_IMAGES}:"
    )
    print(
        f"  one process {par['one_process_s']:.2f} s ({n / par['one_process_s']:.0f} images/s); "
        "coding the chunks "
        f"alone {chunk_total:.2f} s (median chunk {statistics.median(par['chunk_s']) * 1000:.1f} "
        "ms)"
    )
    for w in (1, 2):
        print(
            f"  Dask, {w} worker(s): {par[f'dask_{w}_s']:.2f} s ({n / par[f'dask_{w}_s']:.0f} "
            "images/s), "
            f"byte-identical to one process: {par[f'dask_{w}_identical']}"
        )
    print(
        f"  speed-up of 2 workers over 1: {par['dask_1_s'] / par['dask_2_s']:.2f}x (this machine "
        "has 2 cores)"
    )
    # what the driver does that workers do not share
    serial = max(0.0, par["dask_1_s"] - chunk_total)
    print(
        f"  the driver's own time (1-worker run minus the chunks' coding): {serial:.2f} s; "
        "predicted for 2 workers "
        f"{serial + chunk_total / 2:.2f} s (measured {par['dask_2_s']:.2f} s)"
    )
    for workers in (4, 8, 16, 64):
        t = serial + chunk_total / workers
        print(
            f"  predicted, {workers} workers (e.g. {workers // 2} machines like this one): {t:.2f} "
            f"s, {n / t:.0f} images/s"
        )
    print(
        f"random access, {n}-image archive ({ra['archive_bytes']} bytes): decoding all of it "
        f"{ra['whole_s']:.3f} s; "
        f"one image (open + read) median {ra['one_s'] * 1000:.1f} ms (worst of 21: "
        f"{ra['one_max_s'] * 1000:.1f} ms): "
        f"{ra['whole_s'] / ra['one_s']:.0f}x faster (target >= 100x)"
    )
    small, big = runs
    for r in runs:
        print(
            f"streamed {r['n']} moved/mirrored images: archive {r['archive_s']:.1f} s "
            f"({r['archive_s'] / r['n'] * 1e6:.1f} us/image, {r['archive_bytes'] / r['n']:.1f} "
            "B/image), zarr array "
            f"{r['zarr_s']:.1f} s ({r['zarr_s'] / r['n'] * 1e6:.1f} us/image); peak RSS "
            f"{r['peak_rss_mb']:.0f} MB; "
            f"archive and zarr decode alike: {r['archive_equals_zarr']}"
        )
    ratio = big["peak_rss_mb"] / small["peak_rss_mb"]
    per = (big["archive_s"] / big["n"]) / (small["archive_s"] / small["n"])
    per_z = (big["zarr_s"] / big["n"]) / (small["zarr_s"] / small["n"])
    print(
        f"  peak RSS {big['n']} vs {small['n']}: {ratio:.2f}x (target <= 1.3x); time per image "
        f"{per:.2f}x archive, "
        f"{per_z:.2f}x zarr (target within 20%)"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=4)
    parser.add_argument(
        "--million", type=int, default=1_000_000, help="images in the large streamed run"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.quality, args.folder)))
        return
    x = data.fashion_mnist("train")
    with tempfile.TemporaryDirectory(prefix="aecodec-scale-") as tmp:
        folder = Path(tmp)
        par = {**parallel(x, args.quality), "quality": args.quality}
        ra = random_access(x, args.quality, folder)
        runs = [
            run_child(len(x), args.quality, folder),
            run_child(args.million, args.quality, folder),
        ]
    report(par, ra, runs, len(x))


if __name__ == "__main__":
    main()
