"""The work a file may demand of its decoder, per input byte, for every level kind.

    python -m benchmarks.budget [--out DIR] [--only KIND,...]

For each kind (tile, pixel, convolutional grey and colour, lossless with the model's tree and
with an image's own tree, near-lossless, 16-bit) it makes the two worst files an attacker can
write with valid checksums, each exactly as dense as the reader allows:

- *blank*: images that code to almost nothing, padded by the encoder up to the floor (for the
  convolutional levels, flat tiles of different values: a repeated tile is decoded once);
- *stretched*: a real file whose header (or chunk) claims more images or larger ones, so the
  decoder runs on past the real data (the review's "changed header shape" bombs).

Each file is decoded in a fresh process (``decode-one``); the CPU seconds and the peak memory of
that process, less those of decoding a tiny file of the same kind (imports and the model), are
divided by the file's size. The budget docs/guarantees.md promises is checked for every row and
printed.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import codec
from bitstream import container
from codec import checks
from tests.test_fuzz import join, split

# The documented budget (docs/guarantees.md): decoding any file costs at most this much CPU time
# and memory per byte of the file, beyond what decoding a tiny file of the same kind costs.
BUDGET_MS_PER_BYTE = 1.0
BUDGET_KB_PER_BYTE = 16.0
BUDGET_FIXED_MB = (
    768  # one 1024 x 1024 tile of the convolutional levels' work, whatever the file's size
)


def _photo(name: str, size: int | None = None) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    return image if size is None else image[:size, :size]


def _fashion(n: int) -> np.ndarray:
    return codec.data.fashion_mnist("test")[:n]


def _flat_tiles(shape) -> np.ndarray:
    """An image of flat 1024 x 1024 tiles, each of its own value: it codes to almost nothing, and no
    tile repeats another (the convolutional levels decode a repeated tile once)."""
    rows, cols = np.indices(shape[:2]) // 1024
    flat = ((rows * 7 + cols) * 37 % 256).astype(np.uint8)
    return flat if len(shape) == 2 else np.repeat(flat[..., None], shape[2], axis=2)


def _cases() -> dict:
    """kind -> (compress kwargs, real images, blank images, tiny images)."""
    deep = (np.linspace(0, 4000, 2 * 512 * 512).reshape(2, 512, 512) % 4096).astype(np.uint16)
    return {
        "tile": ({"quality": 1}, _fashion(512), np.zeros((4096, 28, 28), np.uint8), _fashion(1)),
        "pixel": ({"quality": 8}, _fashion(512), np.zeros((4096, 28, 28), np.uint8), _fashion(1)),
        "conv-grey": (
            {"quality": 1},
            _photo("camera"),
            _flat_tiles((2048, 2048)),
            np.zeros((32, 32), np.uint8),
        ),
        "conv-colour": (
            {"quality": 1},
            _photo("astronaut"),
            _flat_tiles((2048, 2048, 3)),
            np.zeros((32, 32, 3), np.uint8),
        ),
        "lossless": (
            {"lossless": True},
            _fashion(512),
            np.zeros((4096, 28, 28), np.uint8),
            _fashion(1),
        ),
        "lossless-own-tree": (
            {"lossless": True},
            _photo("coffee"),
            np.zeros((2048, 2048, 3), np.uint8),
            np.zeros((32, 32, 3), np.uint8),
        ),
        "near-lossless": (
            {"max_error": 2},
            _photo("camera"),
            np.zeros((2048, 2048), np.uint8),
            np.zeros((32, 32), np.uint8),
        ),
        "lossless-16-bit": (
            {"lossless": True},
            deep,
            np.zeros((2048, 2048), np.uint16),
            deep[0, :32, :32],
        ),
    }


def stretched(blob: bytes) -> bytes:
    """``blob`` with its first chunk claiming as much work as the floor allows: more images in a
    batched file, a larger image in a single-image file (checksums repaired)."""
    header, chunks = split(blob)
    data = chunks[0][1]
    level = codec.api.ArchiveReader(io.BytesIO(blob)).level
    shape = list(header[2])
    allowed = min(len(data) * container.MAX_PIXELS_PER_BYTE, level.max_coded_pixels)
    if header[3]:  # batched: raise the chunk's image count
        chunks[0][0] = max(1, allowed // checks.floor_pixels(level, 1, shape))
        return join(header, chunks[:1])
    scale = 1.0
    while (
        checks.floor_pixels(
            level, 1, [int(shape[0] * scale * 1.05), int(shape[1] * scale * 1.05), *shape[2:]]
        )
        <= allowed
    ):
        scale *= 1.05
    header[2] = [int(shape[0] * scale), int(shape[1] * scale), *shape[2:]]
    return join(header, chunks)


def cut(blob: bytes) -> bytes:
    """``blob`` with its first chunk's stream cut to the fewest bytes the floor allows for what it
    claims (checksums repaired): the decoder runs out of data and decodes to the end regardless."""
    header, chunks = split(blob)
    level = codec.api.ArchiveReader(io.BytesIO(blob)).level
    n, data = chunks[0][0], chunks[0][1]
    keep = -(-checks.floor_pixels(level, n, list(header[2])) // container.MAX_PIXELS_PER_BYTE)
    chunks[0][1] = data[: max(keep, 8)]
    return join(header, chunks[:1] if header[3] else chunks)


def decode_one(path: str) -> dict:
    """Decode ``path`` in this process; CPU seconds and peak memory (MB) of the whole process."""
    outcome = "decoded"
    try:
        codec.decompress(Path(path).read_bytes())
    except codec.AecodecError as e:
        outcome = type(e).__name__
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": usage.ru_utime + usage.ru_stime, "mb": peak_mb(), "outcome": outcome}


def peak_mb() -> float:
    """This process's peak resident memory since it began (VmHWM: unlike ru_maxrss, not carried over
    from the large parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(blob: bytes, folder: Path) -> dict:
    path = folder / "case.aec"
    path.write_bytes(blob)
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.budget", "decode-one", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "wall": time.monotonic() - started}


def kb_allowed(blob: bytes) -> float:
    return BUDGET_KB_PER_BYTE * len(blob) / 1024


def chain_tree(levels: int, predictor: int, feature: int):
    """A context tree that is one chain ``levels`` deep (breadth first: inner nodes 0, 2, 4, ...,
    a leaf beside each), every leaf predicting with ``predictor``, every split on ``feature``."""
    from codec.levels import context_tree

    count = 2 * levels + 1
    left, right = np.arange(count), np.arange(count)
    inner = np.zeros(count, bool)
    inner[0 : 2 * levels : 2] = True
    left[inner], right[inner] = np.flatnonzero(inner) + 1, np.flatnonzero(inner) + 2
    leaf = np.where(inner, -1, np.cumsum(~inner) - 1)
    return context_tree.Tree(
        np.full(count, feature),
        np.full(count, -1),
        left,
        right,
        leaf,
        np.full(levels + 1, predictor, np.int8),
    )


def coded_with_own_tree(images: np.ndarray, tree) -> bytes:
    """``images`` coded losslessly with ``tree`` as their own, whatever the encoder would choose."""
    from codec.levels import lossless

    saved = lossless.LosslessCoder.own_tree
    lossless.LosslessCoder.own_tree = lambda self, *a: (tree, None)
    try:
        return codec.compress(images, lossless=True)
    finally:
        lossless.LosslessCoder.own_tree = saved


def own_tree_chain(levels: int, images: np.ndarray | None = None) -> bytes:
    """Blank images (a 2048 x 2048 colour one unless given) coded with an own tree as costly as the
    reader accepts: a chain ``levels`` deep whose every leaf predicts with JPEG XL's weighted
    predictor (every pixel computes it: the chain splits on its error), padded to the floor."""
    from codec.levels import context_tree

    tree = chain_tree(levels, context_tree.WP, len(context_tree.PROPERTIES))
    images = np.zeros((2048, 2048, 3), np.uint8) if images is None else images
    return coded_with_own_tree(images, tree)


def measure_kind(kind: str, case, folder: Path) -> list[dict]:
    kwargs, real, blank, tiny = case
    base = _measure(codec.compress(tiny, **kwargs), folder)
    rows = []
    files = [
        ("blank", codec.compress(blank, **kwargs)),
        ("stretched", stretched(codec.compress(real, **kwargs))),
        ("cut", cut(codec.compress(real, **kwargs))),
    ]
    if kind == "lossless-own-tree":
        from codec.levels.image_tree import MAX_LEVELS

        files.append((f"chain-{MAX_LEVELS}", own_tree_chain(MAX_LEVELS)))
        # format 7: a chunk of many small images may carry its own tree too
        many = np.zeros((4096, 32, 32, 3), np.uint8)
        files.append((f"chain-{MAX_LEVELS}-4096-images", own_tree_chain(MAX_LEVELS, many)))
    for name, blob in files:
        m = _measure(blob, folder)
        ms = 1000 * max(0.0, m["cpu"] - base["cpu"]) / len(blob)
        kb = 1024 * max(0.0, m["mb"] - base["mb"]) / len(blob)
        rows.append(
            {
                "kind": kind,
                "file": name,
                "bytes": len(blob),
                "cpu_s": round(m["cpu"] - base["cpu"], 2),
                "peak_mb": round(m["mb"] - base["mb"]),
                "ms_per_byte": round(ms, 3),
                "kb_per_byte": round(kb, 2),
                "outcome": m["outcome"],
                "within": ms <= BUDGET_MS_PER_BYTE
                and m["mb"] - base["mb"] <= BUDGET_FIXED_MB + kb_allowed(blob),
            }
        )
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["decode-one"]:
        print(json.dumps(decode_one(argv[1])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated kinds (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    cases = _cases()
    kinds = [k for k in args.only.split(",") if k] or list(cases)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for row in measure_kind(kind, cases[kind], Path(tmp)):
                rows.append(row)
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    worst_ms = max(r["ms_per_byte"] for r in rows)
    worst_kb = max(r["kb_per_byte"] for r in rows)
    print(
        f"budget: {BUDGET_MS_PER_BYTE} ms of CPU per input byte; {BUDGET_FIXED_MB} MB + "
        f"{BUDGET_KB_PER_BYTE} KB "
        f"per input byte of memory; worst {worst_ms} ms per byte, {worst_kb} KB per byte; "
        f"every kind within: {all(r['within'] for r in rows)}"
    )
    if not args.only:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "budget.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
