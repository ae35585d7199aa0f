"""Which levels a model keeps, low to high quality: chosen by measurement on held-out images.

A model may hold levels of several kinds (the tile transform, the pixel coder, the convolutional
autoencoder). Each is measured on the validation images (bytes per image as coded, PSNR over all
pixels); the ladder is the Pareto front: each level more bytes *and* a higher PSNR than the one
below. A ladder given by hand (one kind trained alone) that is not monotone is refused.
"""

from __future__ import annotations

import numpy as np

from codec.errors import AecodecError


class LadderError(AecodecError, ValueError):
    """A model's quality levels are not monotone on the validation images."""


def measure(levels, images: list[np.ndarray]) -> list[dict]:
    """{"bytes_per_image", "psnr"} of each level on images (each (H, W[, C]) uint8): images of
    one size coded together as an archive codes them, others each alone."""
    groups = (
        [np.stack(images)] if len({a.shape for a in images}) == 1 else [a[None] for a in images]
    )
    rows = []
    for level in levels:
        size, squared, values = 0, 0.0, 0
        for batch in groups:
            data = level.encode(batch)
            restored = level.decode(data, len(batch), batch.shape[1:])
            size += len(data)
            squared += float(np.sum((restored.astype(np.float64) - batch) ** 2))
            values += batch.size
        rows.append(
            {
                "bytes_per_image": size / len(images),
                "psnr": 10 * float(np.log10(255.0**2 / max(squared / values, 1e-12))),
            }
        )
    return rows


def pareto(rows: list[dict]) -> list[int]:
    """Indices of the levels on the front, low to high: bytes and PSNR both strictly rising."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["bytes_per_image"], -rows[i]["psnr"]))
    kept: list[int] = []
    for i in order:
        if not kept or (
            rows[i]["psnr"] > rows[kept[-1]]["psnr"]
            and rows[i]["bytes_per_image"] > rows[kept[-1]]["bytes_per_image"]
        ):
            kept.append(i)
    return kept


def check_monotone(rows: list[dict], names: list[str]) -> None:
    """Refuse a ladder in which a level is not larger and better than the one below it.

    Raises:
        LadderError: naming the first pair out of order, with its measurements.
    """
    for i in range(1, len(rows)):
        a, b, name_a, name_b = rows[i - 1], rows[i], names[i - 1], names[i]
        if not (b["bytes_per_image"] > a["bytes_per_image"] and b["psnr"] > a["psnr"]):
            raise LadderError(
                f"the levels are not monotone on the validation images: {name_b} gives "
                f"{b['bytes_per_image']:.1f} bytes at {b['psnr']:.2f} dB, {name_a} below it "
                f"{a['bytes_per_image']:.1f} bytes at {a['psnr']:.2f} dB "
                "(train longer, or choose other lambdas)"
            )


def default_level(rows: list[dict], psnr: float = 32.0) -> int:
    """1-based quality of the first level at or above ``psnr`` on the validation images (else the
    top)."""
    return next((i + 1 for i, r in enumerate(rows) if r["psnr"] >= psnr), len(rows))


def rate_change(anchor: list[dict], rows: list[dict]) -> float:
    """Mean relative change in bytes of ``rows`` against ``anchor`` at equal PSNR (negative:
    smaller), a Bjøntegaard-style delta with log-bytes interpolated linearly in PSNR on each
    curve's Pareto front, over the PSNR range both cover; 0.0 where they do not overlap."""

    def curve(r):
        front = [r[i] for i in pareto(r)]
        return np.array([p["psnr"] for p in front]), np.log([p["bytes_per_image"] for p in front])

    (pa, ba), (pr, br) = curve(anchor), curve(rows)
    diffs = [b - np.interp(p, pa, ba) for p, b in zip(pr, br, strict=True) if pa[0] <= p <= pa[-1]]
    diffs += [np.interp(p, pr, br) - b for p, b in zip(pa, ba, strict=True) if pr[0] <= p <= pr[-1]]
    return float(np.expm1(np.mean(diffs))) if diffs else 0.0
