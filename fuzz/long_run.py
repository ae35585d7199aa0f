"""A long, seeded mutation campaign against every kind of file aecodec reads, with a count of what
happened.

    python fuzz/long_run.py --cases 100000 [--seed 0]

Kinds: containers of every level kind and form (tile, pixel, convolutional grey, colour and
tiled, lossless with the model's tree and with an own tree, 16-bit, near-lossless, archives with
an index and of mixed sizes), zarr chunks through the numcodecs codec, zarr codec configs, and
model files (``.aecm``, ``.aecf``) mutated behind a repaired fingerprint and then used. The
container mutations are tests/test_fuzz.py's (truncations, bit flips, insertions, overwrites;
header and chunk fields replaced behind repaired checksums; short payloads, raised image counts,
deep nesting, inconsistent metadata; each decoded file is also restored as the CLI restores it),
drawn from a seeded numpy generator. After the mutations, the review's crafted bombs run once
each (``benchmarks.budget``: headers stretched and streams cut to the floor, costly own trees).
A finding is anything but an AecodecError or a successful decode, or a case that spends more
CPU than the budget per input byte (docs/guarantees.md); the exit status is 1 if any."""

from __future__ import annotations

import argparse
import collections
import io
import resource
import sys
import time
import traceback
from pathlib import Path

import msgpack
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import codec  # noqa: E402
import codec.numcodecs  # noqa: E402
from bitstream import container  # noqa: E402
from bitstream.header import FINGERPRINT_BYTES  # noqa: E402
from codec.io import sinks  # noqa: E402
from tests.test_fuzz import join, split  # noqa: E402


def meta_kind(blob: bytes):
    return codec.api.container.read_header(blob)["meta"].get("kind")


VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    8,
    9,
    255,
    256,
    2**31,
    2**63 - 1,
    -(2**63),
    1.5,
    float("nan"),
    "",
    "x" * 9,
    b"",
    b"\0" * 7,
    b"\0" * 8,
    b"\0" * 9,
    [],
    [1],
    [0, 0],
    [28, 28],
    [5, 3],
    [28, 28, 3],
    [28, 28, 5],
    [1, 2, 3],
    [2**40, 1],
    {},
    {"a": 1},
    {"kind": "folder"},
    [[1]],
]


META = [
    {"kind": "idx", "name": "x-idx3-ubyte", "count": 99},
    {"kind": "folder", "name": "f", "count": 5, "files": ["a.png"] * 5},
    {"kind": "folder", "count": 2, "files": ["../a.png", "b.png"]},
    {"kind": "image", "format": "PDF"},
    {"kind": "npz", "key": "../x"},
    {"kind": "npy", "count": "5"},
    {"kind": 7},
    {"count": -3},
    {"kind": "image", "count": 5},
]


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
    # positional arrays: [model, quality, image_shape, batched, meta], [n, data, crc]
    header, chunks = split(valid)
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
        chunks[i][0] = [0, -1, 1, 2, 4, 6, 7, 100, 2**20, 2**63 - 1, "5", None][
            int(rng.integers(12))
        ]
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
    """The review's attacks behind repaired checksums: short payloads, raised counts, nesting, bad
    meta."""
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
        header[int(rng.integers(5))] = nested(
            int(rng.integers(2, 500)), VALUES[int(rng.integers(len(VALUES)))]
        )
    elif rng.integers(2):
        chunks[i][int(rng.integers(3))] = nested(int(rng.integers(1, 500)), 1)
    else:
        header[4] = META[int(rng.integers(len(META)))]
    return join(header, chunks)


def restore(blob: bytes) -> None:
    """Decode and restore as the CLI does (to memory): meta checks, counts, formats."""
    reader = codec.api.ArchiveReader(io.BytesIO(blob))
    sink = sinks.Sink(reader.header, sinks.restore_kind(reader.header, None), io.BytesIO())
    for batch in reader:
        sink.write(batch)
    sink.finish()


# Every kind of file aecodec reads, each with its own mutations and its own reader. Containers:
# one seed per level kind and form; model files and zarr configs: mutated behind a repaired
# fingerprint (a raw flip only ever reaches the fingerprint check).
BUDGET_MS_PER_BYTE = 1.0  # docs/guarantees.md: decoding costs at most this much CPU per input byte,
FIXED_SECONDS = 0.5  # beyond a fixed cost per file (a first use of a model, tables, small chunks)


def container_seeds() -> dict:
    images = codec.data.fashion_mnist("test")[:5]
    many = codec.data.fashion_mnist("test")[:1100]
    # (64, 70, 3): an own tree
    photo = np.load(Path(__file__).parents[1] / "tests/data/format6-photo-lossless.npy")
    deep = (np.arange(48 * 40).reshape(48, 40) * 3 % 4096).astype(np.uint16)
    return {
        "tile": codec.compress(images, quality=3),
        "pixel": codec.compress(images[0], quality=8),
        "conv": codec.compress(images[:2, :5, :3]),
        "conv-colour": codec.compress(np.stack(list(images[:3]), -1)),
        "conv-tiled": codec.compress(np.tile(images[0], (40, 1))[:1100, :20]),
        "lossless": codec.compress(images, lossless=True),
        "lossless-own-tree": codec.compress(photo, lossless=True),
        "lossless-16-bit": codec.compress(deep, lossless=True),
        "near-lossless": codec.compress(images, max_error=2),
        "archive-indexed": codec.compress(many, quality=1),
        "archive-mixed": codec.compress([images[0], photo[:20, :30], images[1, :9]]),
    }


# values per byte of the file, 2 bytes each at 16 bits
MAX_OUTPUT_PER_BYTE = 2 * container.MAX_PIXELS_PER_BYTE


def decode_container(blob: bytes) -> None:
    out = codec.decompress(blob)
    restored = sum(a.nbytes for a in out) if isinstance(out, list) else out.nbytes
    if restored > MAX_OUTPUT_PER_BYTE * len(blob):
        raise AssertionError(
            f"{len(blob)} bytes restored to {restored}: more than the floor allows"
        )
    if meta_kind(blob) != "folder":  # folders restore to disk, covered by the tests
        restore(blob)


def mutate_tree(value, rng: np.random.Generator, depth: int = 0):
    """``value`` (a model body: maps, lists, arrays as maps) with one field replaced, deleted or
    added."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = list(value)[int(rng.integers(len(value)))]
        out = dict(value)
        action = rng.integers(4)
        if action == 0 or not isinstance(value[key], (dict, list)):
            out[key] = (
                VALUES[int(rng.integers(len(VALUES)))] if action != 3 else _scaled(value[key], rng)
            )
        elif action == 1:
            del out[key]
        else:
            out[key] = mutate_tree(value[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        out = list(value)
        i = int(rng.integers(len(out)))
        out[i] = (
            mutate_tree(out[i], rng, depth + 1)
            if rng.integers(2)
            else VALUES[int(rng.integers(len(VALUES)))]
        )
        return out
    return _scaled(value, rng)


def _scaled(value, rng):
    """A number made extreme, bytes of an array made huge values, or a random replacement."""
    if isinstance(value, bool) or not isinstance(value, (int, float, bytes)):
        return VALUES[int(rng.integers(len(VALUES)))]
    if isinstance(value, bytes):
        raw = bytearray(value)
        if raw:
            pos = int(rng.integers(len(raw)))
            raw[pos : pos + 4] = [b"\xff\xff\x7f\x7f", b"\0\0\xc0\x7f", rng.bytes(4)][
                int(rng.integers(3))
            ]
        return bytes(raw)
    return [value * 1000, -value, 0, 2**31, 2**15 - 1, 1e38][int(rng.integers(6))]


def model_bytes(body: dict, magic: bytes) -> bytes:
    from codec.levels import modelfile

    body = {k: v for k, v in body.items() if k != "fingerprint"}
    return magic + msgpack.packb(
        {**body, "fingerprint": modelfile.fingerprint(body)}, use_bin_type=True
    )


def model_case(raw: bytes, blob: bytes, rng: np.random.Generator):
    """A mutated .aecm, then a file of its lossless coder's decoded with it (the header names
    it)."""
    from codec.levels import modelfile

    body = mutate_tree(msgpack.unpackb(raw[4:], raw=False, strict_map_key=False), rng)
    mutated = model_bytes(body if isinstance(body, dict) else {"body": body}, raw[:4])

    def run():
        model = codec.api.Model(modelfile.loads(mutated, what="fuzz"), source="fuzz")
        header, chunks = split(blob)
        header[0] = bytes.fromhex(model.fingerprint)[:FINGERPRINT_BYTES]
        codec.decompress(join(header, chunks), model=model)

    return mutated, run


def family_case(raw: bytes, rng: np.random.Generator):
    from codec import family

    body = mutate_tree(msgpack.unpackb(raw[4:], raw=False, strict_map_key=False), rng)
    mutated = model_bytes(body if isinstance(body, dict) else {"body": body}, raw[:4])

    def run():
        model, meta = family.loads(mutated, what="fuzz")
        family.sample(model, 2, shape=family.image_shape(model, meta))

    return mutated, run


def zarr_config_case(rng: np.random.Generator):
    import numcodecs

    config = mutate_tree({"id": "aecodec", "model": "fmnist", "quality": 4}, rng)
    config = {**(config if isinstance(config, dict) else {"model": config}), "id": "aecodec"}
    raw = msgpack.packb(config, use_bin_type=True)

    def run():
        compressor = numcodecs.get_codec(dict(config))
        compressor.decode(compressor.encode(np.zeros((2, 28, 28), np.uint8)))

    return raw, run


def crafted(seeds: dict) -> list[tuple[str, bytes]]:
    """The review's bombs, made for every seed: headers stretched and streams cut to the floor, and
    own trees as costly as a reader accepts (12 levels) and deeper (refused)."""
    from benchmarks.budget import cut, own_tree_chain, stretched

    bombs = []
    for kind, blob in seeds.items():
        if kind not in ("archive-mixed",):
            bombs += [(f"{kind} stretched", stretched(blob)), (f"{kind} cut", cut(blob))]
    return bombs + [
        ("own tree 12 levels", own_tree_chain(12)),
        ("own tree 255 levels", own_tree_chain(255)),
    ]


def check_case(
    name: str, blob: bytes, run, outcomes, fixed: float = FIXED_SECONDS
) -> tuple[int, float, str]:
    """Run one case: (findings, share of its budget spent, what it was)."""
    started = time.process_time()
    finding = 0
    try:
        run()
        outcomes["decoded"] += 1
    except codec.AecodecError as e:
        outcomes[type(e).__name__] += 1
    except Exception as e:  # noqa: BLE001 - anything else is the finding
        if name.startswith("zarr-config") and isinstance(
            e, (ValueError, TypeError, FileNotFoundError)
        ):
            outcomes[f"config {type(e).__name__}"] += (
                1  # numcodecs' errors for configs, a model file not found
            )
        else:
            finding = 1
            print(f"FINDING at {name}:\n{traceback.format_exc()}", file=sys.stderr)
    spent = time.process_time() - started
    allowed = fixed + BUDGET_MS_PER_BYTE * len(blob) / 1000
    if spent > allowed:
        finding = 1
        print(
            f"FINDING at {name}: {spent:.2f} s of CPU for {len(blob)} bytes, over budget",
            file=sys.stderr,
        )
    return finding, spent / allowed, f"{name}: {spent:.2f} s for {len(blob)} bytes"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    seeds = container_seeds()
    pretrained = Path(codec.__file__).parent / "pretrained"
    aecm, aecf = (
        (pretrained / "deep.aecm").read_bytes(),
        (pretrained / "fmnist-vae.aecf").read_bytes(),
    )
    deep_file = seeds["lossless-16-bit"]
    kinds = [*seeds, "zarr-chunk", "aecm", "aecf", "zarr-config"]
    # model files and configs cost a model's construction each: one case in 50 of those kinds
    weights = np.array([1.0] * (len(seeds) + 1) + [0.05] * 3)
    weights /= weights.sum()
    zarr_codec = codec.numcodecs.AecodecCodec("fmnist", quality=3)
    rng = np.random.default_rng(args.seed)
    outcomes: collections.Counter = collections.Counter()
    per_kind: collections.Counter = collections.Counter()
    findings, worst = 0, (0.0, "")
    t0 = time.time()
    for case in range(args.cases):
        kind = kinds[int(rng.choice(len(kinds), p=weights))]
        per_kind[kind] += 1
        if kind in seeds:
            blob = mutate(seeds[kind], rng)
            run = lambda b=blob: decode_container(b)  # noqa: E731
        elif kind == "zarr-chunk":
            blob = mutate(seeds["tile"], rng)
            run = lambda b=blob: zarr_codec.decode(b)  # noqa: E731
        elif kind == "aecm":
            blob, run = model_case(aecm, deep_file, rng)
        elif kind == "aecf":
            blob, run = family_case(aecf, rng)
        else:
            blob, run = zarr_config_case(rng)
        fixed = FIXED_SECONDS * (4 if kind in ("aecm", "aecf", "zarr-config") else 1)
        found, share, what = check_case(f"{kind} case {case}", blob, run, outcomes, fixed)
        findings += found
        worst = max(worst, (share, what))
    bombs = crafted(seeds)
    for name, blob in bombs:
        found, share, what = check_case(name, blob, lambda b=blob: decode_container(b), outcomes)
        findings += found
        worst = max(worst, (share, what))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.cases} cases and {len(bombs)} crafted bombs in {time.time() - t0:.0f} s, seed "
        f"{args.seed}: {dict(sorted(outcomes.items()))}"
    )
    print(
        f"cases per kind: {', '.join(f'{k} {per_kind[k]}' for k in kinds)}; peak memory {peak:.0f} "
        f"MB; slowest against its budget: {worst[1]} "
        f"({worst[0]:.2f} of the budget); findings: {findings}"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
