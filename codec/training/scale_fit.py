"""Measure a model's candidate levels for the quality scale (``codec.levels.scale``) and store them.

Every level of the model and every bound of its lossless coder in BOUNDS is coded on validation
images (bytes per image as coded, PSNR over all pixels: ``ladder.measure``); the rows go to the
model file's ``meta["scale"]`` with what they were measured on, and the model's earlier
fingerprint to ``meta["same_model_as"]``: its files still decode, since no level changed.
``aecodec train`` calls ``with_scale`` on every model it writes; for a bundled model::

    python -m codec.training.scale_fit MODEL --data DIR [--out OUT]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from codec.io.data import fashion_mnist
from codec.io.sources import open_source
from codec.levels import modelfile, pixel, scale
from codec.levels.model import Model, fits
from codec.training import ladder

BOUNDS = tuple(range(1, 13))  # the lossless coder's bounds measured (max error 1-12)


def rows_of(model: Model, images: list[np.ndarray]) -> list[dict]:
    """The scale's candidate rows of ``model`` on ``images`` (each (H, W[, C]) uint8): each level
    that codes them as it would any image (a tile level only at its own size), then each bound."""
    shapes = {a.shape for a in images}
    levels = [(n, lv) for n, lv in enumerate(model.levels, 1) if all(fits(lv, s) for s in shapes)]
    rows = [
        {"level": n, **r}
        for (n, _), r in zip(levels, ladder.measure([lv for _, lv in levels], images), strict=True)
    ]
    if model.part("lossless") is not None:
        bounded = [model.level_of({"quality": 0, "max_error": k, "depth": 8}) for k in BOUNDS]
        rows += [
            {"max_error": k, **r}
            for k, r in zip(BOUNDS, ladder.measure(bounded, images), strict=True)
        ]
    return rows


def with_scale(model_file: bytes, images: list[np.ndarray], *, data: str, command="") -> bytes:
    """``model_file`` with its scale rows measured on ``images`` (``data`` says what they are,
    ``command`` what measured them)."""
    model = Model(modelfile.loads(model_file), source="model")
    meta = dict(model.meta)
    meta["scale"] = {"data": data, "command": command, "rows": rows_of(model, images)}
    meta["same_model_as"] = [*meta.get("same_model_as", []), model.fingerprint]
    return modelfile.amended(model_file, meta=meta)


def with_level_rows(model_file: bytes, rows: list[dict], *, data: str) -> bytes:
    """``model_file`` with scale rows already measured: ``rows[i]`` of its level i + 1 (what
    training measured its ladder with), the same file otherwise (a new model: no lineage)."""
    meta = dict(modelfile.loads(model_file)["meta"])
    kept = [{"bytes_per_image": r["bytes_per_image"], "psnr": r["psnr"]} for r in rows]
    meta["scale"] = {"data": data, "rows": [{"level": n, **r} for n, r in enumerate(kept, 1)]}
    return modelfile.amended(model_file, meta=meta)


def with_pixel_steps(model_file: bytes, images: np.ndarray, steps: tuple[int, ...]) -> bytes:
    """``model_file`` with pixel levels at finer ``steps`` after its own (appended, so every
    level keeps its number and the model's files still decode), their tables counted on
    ``images`` (N, H, W) uint8 (``pixel.fit_tables``)."""
    body = modelfile.loads(model_file)
    config = dict(body["config"])
    if steps and min(config["pixel_steps"]) <= max(steps):
        raise ValueError(f"pixel steps {steps} are not finer than {config['pixel_steps']}")
    config["pixel_steps"] = [*config["pixel_steps"], *steps]
    stored = [*body["pixel"], *pixel.stored_tables([pixel.fit_tables(images, s) for s in steps])]
    meta = {**body["meta"], "same_model_as": [*body["meta"].get("same_model_as", [])]}
    meta["same_model_as"].append(body["fingerprint"])
    return modelfile.amended(model_file, config=config, pixel=stored, meta=meta)


def describe(model_file: bytes) -> str:
    """The scale as the model now serves it on its own images: quality -> level and PSNR."""
    model = Model(modelfile.loads(model_file), source="model")
    lines = []
    for q in scale.QUALITIES[: scale.NEAR_LOSSLESS - 1]:
        fields = model.fields_for(q, None)
        row = next(
            r
            for r in model.scale_rows
            if r.get("level", 0) == fields["quality"]
            and r.get("max_error", 0) == fields["max_error"]
        )
        name = f"level {row['level']}" if "level" in row else f"max error {row['max_error']}"
        lines.append(
            f"  quality {q:2d} ({scale.describe(q)}): {name}, "
            f"{row['bytes_per_image']:.1f} B, {row['psnr']:.2f} dB"
        )
    return "\n".join(lines)


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
    parser.add_argument("--out", type=Path, help="where to write it (default: in place)")
    args = parser.parse_args(argv)
    raw = args.model.read_bytes()
    if args.fashion_mnist:
        train = fashion_mnist("train")
        steps = tuple(int(v) for v in args.pixel_steps.split(",") if v)
        raw = with_pixel_steps(raw, train[:55000], steps) if steps else raw
        images, data = list(train[55000:57000]), "Fashion-MNIST train split, items 55000-56999"
    else:
        source = open_source(args.data, recursive=Path(args.data).is_dir())
        images = [a for batch in source.batches() for a in batch]
        data = f"{Path(args.data).name} ({len(images)} images)"
    command = "python -m codec.training.scale_fit " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    raw = with_scale(raw, images, data=data, command=command)
    modelfile.save(args.out or args.model, raw, force=True)
    print(describe(raw), file=sys.stderr)


if __name__ == "__main__":
    main()
