"""Measure a model's scale anew and store it: ``scale_fit`` as a command (bundled models).

    python -m codec.training.measure_scale MODEL --data DIR [--out OUT]
    python -m codec.training.measure_scale MODEL --fashion-mnist [--pixel-steps 11,9,7]
    python -m codec.training.measure_scale MODEL --data DIR --conv-rates 2,2

Prints which level each quality names. A module of its own: ``python -m`` of a module that the
package imports (``scale_fit``, imported by the recipes) runs it twice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codec.io.data import fashion_mnist
from codec.io.sources import open_source
from codec.levels import modelfile
from codec.training.scale_fit import describe, with_conv_rates, with_pixel_steps, with_scale
from codec.training.wavelet_fit import wavelet_added


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", help="validation images (a folder or array file)")
    parser.add_argument(
        "--fashion-mnist",
        action="store_true",
        help="instead of --data: Fashion-MNIST's train split, items 55000-56999 to measure on "
        "and (with --pixel-steps) items 0-54999 to count the new pixel tables on",
    )
    parser.add_argument("--pixel-steps", default="", help="finer pixel steps to add, e.g. 11,9,7")
    parser.add_argument(
        "--conv-rates", default="", help="BELOW,ABOVE convolutional levels to add at each end"
    )
    parser.add_argument(
        "--wavelet-data", type=Path, help="images to count wavelet levels' tables on (a folder)"
    )
    parser.add_argument("--out", type=Path, help="where to write it (default: in place)")
    args = parser.parse_args(argv)
    raw = args.model.read_bytes()
    if args.conv_rates:
        below, above = (int(v) for v in args.conv_rates.split(","))
        raw = with_conv_rates(raw, below, above)
    if args.wavelet_data:
        raw = wavelet_added(
            raw, _images(args.wavelet_data), log=lambda m: print(m, file=sys.stderr)
        )
    if args.fashion_mnist:
        train = fashion_mnist("train")
        steps = tuple(int(v) for v in args.pixel_steps.split(",") if v)
        raw = with_pixel_steps(raw, train[:55000], steps) if steps else raw
        images, data = list(train[55000:57000]), "Fashion-MNIST train split, items 55000-56999"
    else:
        images = _images(args.data)
        data = f"{Path(args.data).name} ({len(images)} images)"
    command = "python -m codec.training.measure_scale " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    raw = with_scale(raw, images, data=data, command=command)
    modelfile.save(args.out or args.model, raw, force=True)
    print(describe(raw), file=sys.stderr)


def _images(path) -> list:
    """Every image of a folder (or array file), as uint8 arrays."""
    source = open_source(str(path), recursive=Path(path).is_dir())
    return [a for batch in source.batches() for a in batch]


if __name__ == "__main__":
    main()
