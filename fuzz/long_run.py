"""A long, seeded mutation campaign against ``codec.decompress``, with a count of what happened.

    python fuzz/long_run.py --cases 100000 [--seed 0]

The same mutations as tests/test_fuzz.py (raw truncations, bit flips, insertions and
overwrites; header and chunk fields replaced behind repaired checksums; empty and short
payloads, raised image counts, deeply nested fields and inconsistent metadata, checksums
repaired; each decoded file is also restored as the CLI restores it), drawn from a
seeded numpy generator instead of Hypothesis, so that a run of 10^5 cases takes minutes
and reports how many cases ended in each outcome. Anything but an AecodecError or a
successful decode is printed and counted as a finding; the exit status is 1 if any.
"""

from __future__ import annotations

import argparse
import collections
import io
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import codec  # noqa: E402
from codec import sources  # noqa: E402
from tests.test_fuzz import join, split  # noqa: E402


def meta_kind(blob: bytes):
    return codec.api.container.read_header(blob)["meta"].get("kind")

VALUES = [None, True, False, 0, -1, 1, 2, 8, 9, 255, 256, 2**31, 2**63 - 1, -(2**63), 1.5, float("nan"), "", "x" * 9,
          b"", b"\0" * 7, b"\0" * 8, b"\0" * 9, [], [1], [0, 0], [28, 28], [5, 3], [28, 28, 3], [28, 28, 5], [1, 2, 3],
          [2**40, 1], {}, {"a": 1}, {"kind": "folder"}, [[1]]]


META = [{"kind": "idx", "name": "x-idx3-ubyte", "count": 99}, {"kind": "folder", "name": "f", "count": 5, "files": ["a.png"] * 5},
        {"kind": "folder", "count": 2, "files": ["../a.png", "b.png"]}, {"kind": "image", "format": "PDF"},
        {"kind": "npz", "key": "../x"}, {"kind": "npy", "count": "5"}, {"kind": 7}, {"count": -3}, {"kind": "image", "count": 5}]


def nested(depth: int, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def mutate(valid: bytes, rng: np.random.Generator) -> bytes:
    kind = rng.integers(8)
    if kind >= 6:
        return mutate_bounds(valid, rng, kind)
    if kind < 4:
        blob = bytearray(valid)
        pos = int(rng.integers(len(blob)))
        if kind == 0:
            return bytes(blob[:pos])
        if kind == 1:
            blob[pos] ^= 1 << int(rng.integers(8))
        elif kind == 2:
            blob[pos:pos] = rng.bytes(int(rng.integers(1, 9)))
        else:
            blob[pos : pos + 4] = rng.bytes(4)
        return bytes(blob)
    header, chunks = split(valid)  # positional arrays: [model, quality, image_shape, batched, meta], [n, data, crc]
    if kind == 4:
        pos = int(rng.integers(len(header)))
        action = rng.integers(3)
        if action == 0:
            header[pos] = VALUES[int(rng.integers(len(VALUES)))]
        elif action == 1:
            del header[pos]
        else:
            header.insert(pos, VALUES[int(rng.integers(len(VALUES)))])
        return join(header, chunks)
    i = int(rng.integers(len(chunks)))
    field = [0, 1, 2, None][int(rng.integers(4))]
    if field == 0:
        chunks[i][0] = [0, -1, 1, 2, 4, 6, 7, 100, 2**20, 2**63 - 1, "5", None][int(rng.integers(12))]
    elif field == 1:
        raw = bytearray(chunks[i][1])
        raw[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
        chunks[i][1] = bytes(raw)
    elif field == 2:
        chunks[i][2] = VALUES[int(rng.integers(len(VALUES)))]
    else:
        chunks[i] = VALUES[int(rng.integers(len(VALUES)))]
    return join(header, chunks, fix_crc=field != 2)


def mutate_bounds(valid: bytes, rng: np.random.Generator, kind: int) -> bytes:
    """The review's attacks behind repaired checksums: short payloads, raised counts, nesting, bad meta."""
    header, chunks = split(valid)
    i = int(rng.integers(len(chunks)))
    if kind == 6:
        action = rng.integers(3)
        if action == 0:
            chunks[i][1] = chunks[i][1][: int(rng.integers(len(chunks[i][1]) + 1))]
        elif action == 1:
            chunks[i][0] += int(rng.integers(1, 100_000))
        else:
            chunks[i][0], chunks[i][1] = int(rng.integers(1, 2**20)), b""
    elif rng.integers(2):
        header[int(rng.integers(5))] = nested(int(rng.integers(2, 500)), VALUES[int(rng.integers(len(VALUES)))])
    elif rng.integers(2):
        chunks[i][int(rng.integers(3))] = nested(int(rng.integers(1, 500)), 1)
    else:
        header[4] = META[int(rng.integers(len(META)))]
    return join(header, chunks)


def restore(blob: bytes) -> None:
    """Decode and restore as the CLI does (to memory): meta checks, counts, formats."""
    reader = codec.api.ArchiveReader(io.BytesIO(blob))
    sink = sources.Sink(reader.header, sources.restore_kind(reader.header, None), io.BytesIO())
    for batch in reader:
        sink.write(batch)
    sink.finish()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    images = codec.data.fashion_mnist("test")[:5]
    # tile-transform and pixel-level files (the Fashion-MNIST model), and convolutional ones (the
    # photo model, which codec.compress picks for other sizes and colour)
    seeds = [codec.compress(images, quality=3), codec.compress(images[0], quality=8), codec.compress(images[:2, :5, :3]),
             codec.compress(np.stack(list(images[:3]), -1))]
    rng = np.random.default_rng(args.seed)
    outcomes: collections.Counter = collections.Counter()
    findings = 0
    t0 = time.time()
    for case in range(args.cases):
        blob = mutate(seeds[case % len(seeds)], rng)
        try:
            out = codec.decompress(blob)
            assert isinstance(out, np.ndarray) and out.dtype == np.uint8
            if meta_kind(blob) != "folder":  # folders restore to disk, covered by the tests
                restore(blob)
            outcomes["decoded"] += 1
        except codec.AecodecError as e:
            outcomes[type(e).__name__] += 1
        except Exception:  # noqa: BLE001 - that is the finding
            findings += 1
            print(f"FINDING at case {case}:\n{traceback.format_exc()}", file=sys.stderr)
    print(f"{args.cases} cases in {time.time() - t0:.0f} s, seed {args.seed}: {dict(outcomes)}; findings: {findings}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
