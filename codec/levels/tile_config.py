"""The tile kind's architecture config and the shapes of its parameters (plain Python: coding and
training both import it).

The transforms themselves are two definitions of one thing: float functions of a parameter dict
under JAX for training (``codec.training.tile_net``), and an exact integer network for coding
(``integer.py``). Parameters are keyed by their '/'-joined module paths (``param_shapes``).

    g_a(x) = (x - m) W_a + f_a(x),   g_s(ŷ) = ŷ W_s + m + f_s(ŷ),   f(x) = gelu(x K1 + b1) K2 + b2

The latent is coded in groups of elements (``group_bounds``); the prior of group g > 0 is
refined by a context network c_g of the groups before it.
"""

from __future__ import annotations

import dataclasses
import itertools


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of a codec model; stored in every model file."""

    tile: tuple[int, int] = (28, 28)  # native size: the transforms see one tile at a time
    hidden: int = 128  # width of the nonlinear branches f_a, f_s
    clusters: int = 16  # M: Gaussian priors the encoder chooses from per tile
    # λ per transform level, low to high: near 21.1, 24.0 and 26.7 dB on Fashion-MNIST (test split)
    lambdas: tuple[float, ...] = (0.24, 0.8, 2.0)
    # the predictive levels above them (codec/levels/pixel.py), quantizer steps in grey levels,
    # high to low: near 29.1, 31.6, 34.1, 36.6 and 38.6 dB on Fashion-MNIST (python -m
    # benchmarks.pixel_sweep); the two coders are even near 26.7 dB, and above it the pixel coder
    # needs fewer bytes
    pixel_steps: tuple[int, ...] = (44, 33, 24, 18, 14)
    # at most this many latent groups, coded in turn, each conditioned on those before; 1 = none
    context_groups: int = 8
    context_hidden: int = 128  # width of each group's context network

    def __post_init__(self):
        """The ranges every model file must respect (a trainer refuses them before training, a
        loader on load); one message per check, naming the field."""

        def need(ok: bool, field: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"architecture config {field} is out of range: {rule}")

        need(
            len(self.tile) == 2 and all(_whole(v, 1, 256) for v in self.tile),
            "tile",
            "two sides of 1-256 pixels",
        )
        need(
            self.pixels >= MIN_TILE_PIXELS,
            "tile",
            f"at least {MIN_TILE_PIXELS} pixels (the work per pixel "
            "of coding grows as tiles shrink)",
        )
        need(_whole(self.hidden, 1, 4096), "hidden", "a whole number 1-4096")
        need(_whole(self.clusters, 1, 255), "clusters", "a whole number 1-255")
        need(1 <= len(self.lambdas) <= 64, "lambdas", "1-64 qualities")
        need(
            all(type(v) in (int, float) and 0 < v < 1e6 for v in self.lambdas),
            "lambdas",
            "numbers from above 0 to below 1e6",
        )
        need(all(a < b for a, b in itertools.pairwise(self.lambdas)), "lambdas", "increasing")
        need(_whole(self.context_groups, 1, 64), "context_groups", "context_groups 1-64")
        need(_whole(self.context_hidden, 1, 4096), "context_hidden", "context_hidden 1-4096")
        need(len(self.pixel_steps) <= 64, "pixel_steps", "at most 64 pixel steps")
        need(
            all(_whole(s, 1, 255) for s in self.pixel_steps),
            "pixel_steps",
            "whole numbers from 1 to 255",
        )
        need(
            all(a > b for a, b in itertools.pairwise(self.pixel_steps)), "pixel_steps", "decreasing"
        )
        need(
            multiply_adds_per_pixel(self) <= MAX_MULTIPLY_ADDS_PER_PIXEL,
            "hidden/context_hidden",
            f"coding would cost {multiply_adds_per_pixel(self):.0f} multiply-adds per pixel, "
            f"more than the {MAX_MULTIPLY_ADDS_PER_PIXEL} a model may",
        )

    @property
    def qualities(self) -> int:
        """The transform's levels (the ones with a λ); the pixel levels come after them."""
        return len(self.lambdas)

    @property
    def levels(self) -> int:
        """All quality levels: the transform's, then the pixel coder's."""
        return len(self.lambdas) + len(self.pixel_steps)

    @property
    def pixels(self) -> int:
        return self.tile[0] * self.tile[1]

    def to_dict(self) -> dict:
        return {
            "tile": list(self.tile),
            "hidden": self.hidden,
            "clusters": self.clusters,
            "lambdas": list(self.lambdas),
            "pixel_steps": list(self.pixel_steps),
            "context_groups": self.context_groups,
            "context_hidden": self.context_hidden,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """The config stored in a model file, every field's type checked (never coerced).

        Raises:
            ValueError: a missing, unknown, mistyped or out-of-range field.
        """
        if not isinstance(d, dict):
            raise ValueError(f"architecture config is a {type(d).__name__}, not a map")
        known = {
            "tile",
            "hidden",
            "clusters",
            "lambdas",
            "context_groups",
            "context_hidden",
            "pixel_steps",
        }
        if set(d) - known or not {"tile", "hidden", "clusters", "lambdas"} <= set(d):
            raise ValueError(
                f"architecture config has fields {sorted(map(str, d))}, expected {sorted(known)}"
            )
        for name in ("tile", "lambdas", "pixel_steps"):
            if not isinstance(d.get(name, []), list) or len(d.get(name, [])) > 64:
                raise ValueError(f"architecture config {name} is not a short list")
        for name in ("hidden", "clusters", "context_groups", "context_hidden"):
            if type(d.get(name, 1)) is not int:
                raise ValueError(f"architecture config {name} is not a whole number")
        if not all(type(v) is int for v in (*d["tile"], *d.get("pixel_steps", ()))):
            raise ValueError(
                "architecture config tile or pixel_steps holds something other than whole numbers"
            )
        if not all(type(v) in (int, float) for v in d["lambdas"]):
            raise ValueError("architecture config lambdas holds something other than numbers")
        return cls(
            tile=tuple(d["tile"]),
            hidden=d["hidden"],
            clusters=d["clusters"],
            lambdas=tuple(float(v) for v in d["lambdas"]),
            # files from before context modelling have none
            context_groups=d.get("context_groups", 1),
            context_hidden=d.get("context_hidden", 1),
            # files from before the pixel levels have none
            pixel_steps=tuple(d.get("pixel_steps", ())),
        )

    @property
    def bounds(self) -> tuple[int, ...]:
        return group_bounds(self.pixels, self.context_groups)


MIN_TILE_PIXELS = 64
# Bounds what a model file can make a decoder do per pixel (the bundled model: about 2,500; the
# best published low-complexity learned decoders: 2,000-20,000).
MAX_MULTIPLY_ADDS_PER_PIXEL = 20_000


def _whole(v, lo: int, hi: int) -> bool:
    return type(v) is int and lo <= v <= hi


def multiply_adds_per_pixel(cfg: ModelConfig) -> float:
    """Multiply-adds per pixel of the costlier direction: the linear transform, its branch, the
    cluster costs (encoding) or the context networks (decoding, and encoding too)."""
    p, h, m = cfg.pixels, cfg.hidden, cfg.clusters
    contexts = sum(
        lo * cfg.context_hidden + cfg.context_hidden * 2 * (hi - lo)
        for lo, hi in itertools.pairwise(cfg.bounds)
        if lo > 0
    )
    return (p * p + 2 * p * h + m * p + contexts) / p


def group_bounds(elements: int, groups: int) -> tuple[int, ...]:
    """Where the latent's coding groups start and end: sizes 16, 16, 32, 32, 64, 64, 128, ...,
    the last group taking the rest. Latent elements come roughly in order of decreasing variance
    (the transform starts as the PCA basis), so the few large ones are coded first and give the
    context for the many small ones."""
    bounds = [0]
    while len(bounds) < groups and bounds[-1] + (size := 16 << (len(bounds) - 1) // 2) < elements:
        bounds.append(bounds[-1] + size)
    return (*bounds, elements)


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape, by path: what a model file must hold."""
    p, h, q, m = cfg.pixels, cfg.hidden, cfg.qualities, cfg.clusters
    shapes = {
        "pixel_mean": (p,),
        "analysis_linear": (p, p),
        "synthesis_linear": (p, p),
        "log_gain": (q, p),
        "log_inv_gain": (q, p),
        "mean": (m, q, p),
        "log_scale": (m, q, p),
        "cluster_logits": (q, m),
    }
    for branch in ("analysis_branch", "synthesis_branch"):
        shapes |= {
            f"{branch}/inner/kernel": (p, h),
            f"{branch}/inner/bias": (h,),
            f"{branch}/outer/kernel": (h, p),
            f"{branch}/outer/bias": (p,),
        }
    for g in range(1, len(cfg.bounds) - 1):
        before, size, ch = cfg.bounds[g], cfg.bounds[g + 1] - cfg.bounds[g], cfg.context_hidden
        shapes |= {
            f"context{g}/inner/kernel": (before, ch),
            f"context{g}/inner/bias": (ch,),
            f"context{g}/quality": (q, ch),
            f"context{g}/cluster": (m, ch),
            f"context{g}/outer/kernel": (ch, 2 * size),
            f"context{g}/outer/bias": (2 * size,),
        }
    return shapes
