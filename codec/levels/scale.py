"""One quality scale for every model: which of a model's levels serves quality 1 to 15.

A user asks for a quality and expects it to mean the same on every model and every input. The
scale is a fixed table of PSNR targets (``TARGET_DB``): quality Q codes with the model's level
whose PSNR on the model's validation images is nearest 21 + 2Q dB (a band of about +-1 dB), so
quality 6 is about 33 dB on Fashion-MNIST's model and on the photo model alike. Quality 1 is the
model's smallest level (a preview; how low it goes depends on the model), 2 to 13 aim at 25 to
47 dB, two dB a step, 14 is near-lossless (every value within 1 of the original) and 15 lossless.

Only levels on the Pareto front are chosen (each more bytes and a higher PSNR than the one
below), so a higher quality never names a level with fewer bytes or a lower PSNR on those
images; two qualities name the same level where a model has nothing between them (below its
smallest level, above its finest, or levels further apart than two dB). A model's levels are
best placed near the targets (the photo model's wavelet steps were chosen so).

The measurements are stored in the model file (``meta["scale"]``, written by ``aecodec train``
and by ``codec.training.measure_scale``): one row per candidate, a level of the model
(``{"level": n}``) or a bound of its lossless coder (``{"max_error": K}``), with its bytes per
image and PSNR. A level can say that it codes only some shapes as measured (``fits``: the tile
transform its own size); for other shapes the plan is made without it. A model file without the
rows (made before the scale) maps the qualities onto its levels in order.
"""

from __future__ import annotations

import math

import numpy as np

from codec.errors import FormatError, InputError

QUALITIES = tuple(range(1, 16))
NEAR_LOSSLESS = 14  # every value within 1 of the original
LOSSLESS = 15
DEFAULT = 6  # about 33 dB: the photo model's default level before the scale was 32.3
# Quality -> the PSNR (dB) its level is nearest on the model's validation images: two dB apart,
# from 25 (below, previews) to 47 (beyond 46 dB differences stop being visible).
TARGET_DB = {q: 21.0 + 2.0 * q for q in range(2, NEAR_LOSSLESS)}
MAX_ROWS = 256


def describe(quality: int) -> str:
    """What ``quality`` promises, in words (help texts and ``aecodec info``)."""
    if quality == LOSSLESS:
        return "lossless"
    if quality == NEAR_LOSSLESS:
        return "near-lossless (max error 1)"
    if quality == 1:
        return "the smallest level"
    return f"about {TARGET_DB[quality]:g} dB"


def check_quality(quality) -> int:
    """``quality`` as an int if it is on the scale (InputError otherwise)."""
    if (
        isinstance(quality, bool)
        or not isinstance(quality, (int, np.integer))
        or int(quality) not in QUALITIES
    ):
        raise InputError(
            f"quality {quality!r} is not on the scale {QUALITIES[0]}-{QUALITIES[-1]} "
            f"(1: the smallest, 13: about {TARGET_DB[13]:g} dB, 14: near-lossless, 15: lossless)"
        )
    return int(quality)


def read_rows(meta: dict, levels: int, source: str) -> list[dict] | None:
    """The stored measurements (``meta["scale"]["rows"]``), checked, or None if there are none.

    Raises:
        FormatError: rows that are not a list of candidates with finite sizes and PSNRs.
    """
    stored = meta.get("scale")
    if stored is None:
        return None
    rows = stored.get("rows") if isinstance(stored, dict) else None
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_ROWS:
        raise FormatError(f"{source}: meta.scale.rows is not a list of 1 to {MAX_ROWS} rows")
    return [_checked_row(r, levels, source) for r in rows]


def _checked_row(row, levels: int, source: str) -> dict:
    def number(key):
        value = row.get(key) if isinstance(row, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FormatError(f"{source}: meta.scale row without a number {key}")
        return value

    size, psnr = float(number("bytes_per_image")), float(number("psnr"))
    if not (math.isfinite(size) and size > 0 and math.isfinite(psnr)):
        raise FormatError(f"{source}: meta.scale row with an impossible size or PSNR")
    if "level" in row:
        level = number("level")
        if type(level) is not int or not 1 <= level <= levels:
            raise FormatError(f"{source}: meta.scale row names no level of the model")
        return {"level": level, "bytes_per_image": size, "psnr": psnr}
    bound = number("max_error")
    if type(bound) is not int or not 1 <= bound <= 255:
        raise FormatError(f"{source}: meta.scale row with an impossible max_error")
    return {"max_error": bound, "bytes_per_image": size, "psnr": psnr}


def front(rows: list[dict]) -> list[dict]:
    """The rows on the Pareto front, low to high: bytes and PSNR both strictly rising."""
    kept: list[dict] = []
    for r in sorted(rows, key=lambda r: (r["bytes_per_image"], -r["psnr"])):
        if not kept or (
            r["psnr"] > kept[-1]["psnr"] and r["bytes_per_image"] > kept[-1]["bytes_per_image"]
        ):
            kept.append(r)
    return kept


def pick(rows: list[dict], quality: int) -> dict:
    """The row that serves ``quality`` (1-13) among candidate ``rows`` (at least one): quality 1
    the lowest of their Pareto front, the others the front's row nearest the quality's target
    (the cheaper of two as near)."""
    curve = front(rows)
    if quality == 1:
        return curve[0]
    return min(curve, key=lambda r: abs(r["psnr"] - TARGET_DB[quality]))


def by_rank(levels: int, quality: int) -> dict:
    """For a model file without measurements: qualities 1-13 spread over its levels in order."""
    return {"level": 1 + round((quality - 1) * (levels - 1) / (NEAR_LOSSLESS - 2))}


def header_fields(row: dict) -> dict:
    """The container header's fields naming a row's level: quality N for the model's level N,
    quality 0 and the bound for its lossless coder."""
    if "level" in row:
        return {"quality": row["level"], "max_error": 0}
    return {"quality": 0, "max_error": row["max_error"]}
