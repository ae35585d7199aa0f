"""Measure a model's candidate levels for the quality scale (``codec.levels.scale``) and store them.

Every level of the model and every bound of its lossless coder in BOUNDS is coded on validation
images (bytes per image as coded, PSNR over all pixels: ``ladder.measure``); the rows go to the
model file's ``meta["scale"]`` with what they were measured on, and the model's earlier
fingerprint to ``meta["same_model_as"]``: its files still decode, since no level changed.
``aecodec train`` stores what it measured its ladder with (``with_level_rows``); a bundled model
is measured anew by ``python -m codec.training.measure_scale`` (its command is recorded).
"""

from __future__ import annotations

import numpy as np

from codec.levels import conv_file, modelfile, pixel, scale
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
    body = modelfile.loads(model_file)
    meta = modelfile.grown_meta(body)
    model = Model(body, source="model")
    meta["scale"] = {"data": data, "command": command, "rows": rows_of(model, images)}
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
    meta = modelfile.grown_meta(body)
    return modelfile.amended(model_file, config=config, pixel=stored, meta=meta)


def with_conv_rates(model_file: bytes, below: int, above: int) -> bytes:
    """``model_file`` with ``below`` convolutional levels under its lowest and ``above`` over its
    highest (``extended_rates``). They are appended to the ladder, so every level keeps its
    number and the model's files still decode. Measured on the validation photos: the two below
    reach 26.3 and 27.5 dB where the lowest stopped at 28.8; above, the transform saturates
    (+0.8 dB for the first step, +0.5 the next)."""
    body = modelfile.loads(model_file)
    params, tables = conv_file.from_body(body)
    levels = len(params["config"]["lambdas"])
    grown = extended_rates(params, below, above)
    old = body.get("ladder") or [["conv", i] for i in range(levels)]
    ladder = [[kind, i + below if kind == "conv" else i] for kind, i in old]
    ladder += [["conv", i] for i in range(below)]
    ladder += [["conv", below + levels + i] for i in range(above)]
    meta = modelfile.grown_meta(body)
    return modelfile.amended(
        model_file, **conv_file.sections(grown, tables), ladder=ladder, meta=meta
    )


def extended_rates(params: dict, below: int, above: int) -> dict:
    """Convolutional parameters (``conv_file.from_body``'s form) with ``below`` levels under the
    lowest and ``above`` over the highest, each one more step of the gains' own progression (a
    level is a per-channel gain of one latent: a coarser or finer quantizer of the same transform,
    no training), low to high."""
    grown = dict(params)
    for key in ("log_gain", "log_inv_gain"):
        g = params[key]
        low, high = g[0] - g[1], g[-1] - g[-2]  # the progression at each end
        lower = [g[0] + k * low for k in range(below, 0, -1)]
        upper = [g[-1] + k * high for k in range(1, above + 1)]
        # new rows within the fixed-point range of a gain (conv._fixed_gain: 1/4096 to 256)
        grown[key] = np.vstack(
            [
                *np.clip(lower, -8.3, 5.5).reshape(-1, g.shape[1]),
                g,
                *np.clip(upper, -8.3, 5.5).reshape(-1, g.shape[1]),
            ]
        )
    lambdas = params["config"]["lambdas"]
    grown["config"] = {
        **params["config"],
        "lambdas": [
            *(lambdas[0] / 2**k for k in range(below, 0, -1)),
            *lambdas,
            *(lambdas[-1] * 2**k for k in range(1, above + 1)),
        ],
    }
    return grown


def describe(model_file: bytes) -> str:
    """The scale as the model now serves it on its own images: quality -> level and PSNR."""
    model = Model(modelfile.loads(model_file), source="model")
    lines = []
    for q in scale.QUALITIES[: scale.NEAR_LOSSLESS - 1]:
        row = model.measured(q)
        name = f"level {row['level']}" if "level" in row else f"max error {row['max_error']}"
        lines.append(
            f"  quality {q:2d} ({scale.describe(q)}): {name}, "
            f"{row['bytes_per_image']:.1f} B, {row['psnr']:.2f} dB"
        )
    return "\n".join(lines)
