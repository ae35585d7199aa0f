"""An image's own context tree (``codec.levels.image_tree``), measured on the held-out photos and
16-bit images of ``benchmarks.lossless``: what it saves, what it costs to grow, and how well the
estimate that chooses it without coding twice (``image_tree.adaptive_bits``) foresees the stream.

    python -m benchmarks.own_tree          # about 2 minutes on 2 cores

Rows: ``searched N``: the own tree's splits chosen with the N predictors that code the sample best
(``lossless.SEARCHED_PREDICTORS``, the default, marked); ``grown on``: twice the default sample
(``image_tree.GROW_SAMPLES``); ``model's tree``: no own tree. Then, per
image, the estimated and the actual bytes of the pixels with the model's tree and with the own tree
(each forced), and whether the estimate chose the smaller. Results:
benchmarks/results/own_tree.txt.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def cases() -> list:
    """(name, image, model, depth) of the held-out photos and 16-bit images."""
    import codec
    from benchmarks.lossless import DEEP_TEST, dicom_images
    from benchmarks.photos import skimage_photos, wallpapers
    from codec import api

    photo, deep = codec.load_model(api.PHOTO_MODEL), codec.load_model(api.DEEP_MODEL)
    held = {**skimage_photos()[1], **wallpapers()[1]}
    dicom = dicom_images()
    return [(k, v, photo, None) for k, v in held.items()] + [
        (k, dicom[k][0], deep, dicom[k][1]) for k in DEEP_TEST
    ]


def _total(all_cases) -> tuple[int, float]:
    import codec

    size, seconds = 0, 0.0
    for _, a, model, depth in all_cases:
        t0 = time.perf_counter()
        size += len(codec.compress(a, lossless=True, model=model, depth=depth))
        seconds += time.perf_counter() - t0
    return size, seconds


def variants(all_cases, out: list) -> None:
    from codec.levels import image_tree, lossless

    default, samples = lossless.SEARCHED_PREDICTORS, image_tree.GROW_SAMPLES
    rows = []
    for searched in (2, 3, 5):
        lossless.SEARCHED_PREDICTORS = searched
        rows.append((f"searched {searched}" + (" (default)" if searched == default else ""),))
        rows[-1] += _total(all_cases)
    lossless.SEARCHED_PREDICTORS = default
    image_tree.GROW_SAMPLES = 2 * samples
    rows.append((f"grown on {2 * samples} samples", *_total(all_cases)))
    image_tree.GROW_SAMPLES = samples
    saved = lossless.LosslessCoder.own_tree
    lossless.LosslessCoder.own_tree = lambda *a: (None, None)
    rows.append(("model's tree only", *_total(all_cases)))
    lossless.LosslessCoder.own_tree = saved
    base = rows[[i for i, r in enumerate(rows) if "default" in r[0]][0]]
    out.append(f"{len(all_cases)} held-out images (11 photos, 3 16-bit), encoded one at a time:")
    for name, size, seconds in rows:
        out.append(
            f"  {name:24s} {size:9d} bytes ({100 * (size / base[1] - 1):+.2f}%), "
            f"encode {seconds:.2f} s ({100 * (seconds / base[2] - 1):+.0f}%)"
        )


def estimates(all_cases, out: list) -> None:
    """Per image: (estimated, actual) bytes of the pixels with each tree, forced."""
    import codec
    from codec.levels import image_tree, lossless

    chosen, sizes = {}, {}
    grow = lossless.LosslessCoder.own_tree

    def spy(self, coded, chunk):  # the estimates of both trees, and the own tree
        from codec.levels import raster

        columns, scale = image_tree.sample(coded.size)  # one image: the whole of it
        picked = np.arange(coded.size) if columns is None else columns
        props, tokens, model_counts = raster.sample(coded, chunk, picked, self.tree)
        tree = image_tree.grow(props, tokens, self.t, lossless.SEARCHED_PREDICTORS, scale)
        own = self._bits(tree, raster.counts(coded, chunk, tree))
        own += image_tree.bits_of(tree, self.depth)
        chosen["estimates"] = (self._bits(self.tree, model_counts) / 8, own / 8)
        return (tree if chosen["force"] == "own" else None), None

    lossless.LosslessCoder.own_tree = spy
    out.append(
        "the estimate against the stream (bytes of the whole file; estimates of the pixels):"
    )
    right = 0
    try:
        for name, a, model, depth in all_cases:
            for force in ("model", "own"):
                chosen["force"] = force
                sizes[force] = len(codec.compress(a, lossless=True, model=model, depth=depth))
            est = chosen["estimates"]
            ok = (est[1] < est[0]) == (sizes["own"] < sizes["model"])
            right += ok
            out.append(
                f"  {name:22s} model's tree: {est[0]:9.0f} estimated, {sizes['model']:8d} coded; "
                f"own tree: {est[1]:9.0f} estimated, {sizes['own']:8d} coded; "
                f"estimate chose the smaller: {ok}"
            )
    finally:
        lossless.LosslessCoder.own_tree = grow
    out.append(f"  the estimate chose the smaller stream on {right} of {len(all_cases)} images")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS / "own_tree.txt")
    args = parser.parse_args(argv)
    import codec

    all_cases = cases()
    codec.compress(all_cases[0][1][:64, :64], lossless=True, model=all_cases[0][2])  # warm up
    out: list = []
    variants(all_cases, out)
    estimates(all_cases, out)
    print("\n".join(out))
    if args.results:
        args.results.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
