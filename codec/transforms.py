"""The architecture config and the transforms as pure functions of a parameter dict.

One definition serves training (the Flax modules in ``models.py`` call these) and coding
(``api.py`` calls them on the loaded parameters without importing Flax, which keeps the
command line's start-up short). Parameters are keyed by their '/'-joined module paths.

    g_a(x) = (x - m) W_a + f_a(x),   g_s(ŷ) = ŷ W_s + m + f_s(ŷ),   f(x) = gelu(x K1 + b1) K2 + b2

The latent is coded in groups of elements (``group_bounds``); the prior of group g > 0 is
refined by a context network c_g of the groups before it (``context``).
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
    # the predictive levels above them (codec/pixel.py), quantizer steps in grey levels, high to low:
    # near 29.1, 31.6, 34.1, 36.6 and 38.6 dB on Fashion-MNIST (python -m benchmarks.pixel_sweep);
    # the two coders are even near 26.7 dB, and above it the pixel coder needs fewer bytes
    pixel_steps: tuple[int, ...] = (44, 33, 24, 18, 14)
    context_groups: int = 8  # at most this many latent groups, coded in turn, each conditioned on those before; 1 = no context
    context_hidden: int = 128  # width of each group's context network

    def __post_init__(self):
        """The ranges every model file must respect (a trainer refuses them before training, a loader on load)."""
        if not (len(self.tile) == 2 and 1 <= self.tile[0] <= 256 and 1 <= self.tile[1] <= 256
                and 1 <= self.hidden <= 4096 and 1 <= self.clusters <= 255 and 1 <= len(self.lambdas) <= 64
                and 1 <= self.context_groups <= 64 and 1 <= self.context_hidden <= 4096
                and all(0 < v < 1e6 for v in self.lambdas) and all(a < b for a, b in itertools.pairwise(self.lambdas))
                and len(self.pixel_steps) <= 64 and all(type(s) is int and 1 <= s <= 255 for s in self.pixel_steps)
                and all(a > b for a, b in itertools.pairwise(self.pixel_steps))):
            raise ValueError("architecture config is out of range: tile sides 1-256, hidden and context_hidden "
                             "1-4096, clusters 1-255, 1-64 qualities, context_groups 1-64, "
                             "lambdas increasing from above 0 to below 1e6, "
                             "at most 64 pixel steps, whole numbers decreasing from at most 255 to at least 1")

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
        return {"tile": list(self.tile), "hidden": self.hidden, "clusters": self.clusters, "lambdas": list(self.lambdas),
                "pixel_steps": list(self.pixel_steps),
                "context_groups": self.context_groups, "context_hidden": self.context_hidden}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return cls(
            tile=tuple(int(v) for v in d["tile"]),
            hidden=int(d["hidden"]),
            clusters=int(d["clusters"]),
            lambdas=tuple(float(v) for v in d["lambdas"]),
            context_groups=int(d.get("context_groups", 1)),  # files from before context modelling have none
            context_hidden=int(d.get("context_hidden", 1)),
            pixel_steps=tuple(int(v) for v in d.get("pixel_steps", ())),  # files from before the pixel levels have none
        )

    @property
    def bounds(self) -> tuple[int, ...]:
        return group_bounds(self.pixels, self.context_groups)


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
    shapes = {"pixel_mean": (p,), "analysis_linear": (p, p), "synthesis_linear": (p, p),
              "log_gain": (q, p), "log_inv_gain": (q, p), "mean": (m, q, p), "log_scale": (m, q, p),
              "cluster_logits": (q, m)}
    for branch in ("analysis_branch", "synthesis_branch"):
        shapes |= {f"{branch}/inner/kernel": (p, h), f"{branch}/inner/bias": (h,),
                   f"{branch}/outer/kernel": (h, p), f"{branch}/outer/bias": (p,)}
    for g in range(1, len(cfg.bounds) - 1):
        before, size, ch = cfg.bounds[g], cfg.bounds[g + 1] - cfg.bounds[g], cfg.context_hidden
        shapes |= {f"context{g}/inner/kernel": (before, ch), f"context{g}/inner/bias": (ch,),
                   f"context{g}/quality": (q, ch), f"context{g}/cluster": (m, ch),
                   f"context{g}/outer/kernel": (ch, 2 * size), f"context{g}/outer/bias": (2 * size,)}
    return shapes


def context(params: dict, g: int, latents, quality_index, cluster):
    """c_g: the decoder's latents of the groups before g (N, bounds[g]), after the inverse gain
    -> (mean shift (N, n) before the gain, scale shift (N, n) in rungs of the scale ladder)."""
    name = f"context{g}"
    out = branch(params, name, latents, params[f"{name}/quality"][quality_index], params[f"{name}/cluster"][cluster])
    n = out.shape[-1] // 2
    return out[..., :n], out[..., n:]


def branch(params: dict, name: str, x, *extra):
    """gelu(x K1 + b1 + extra...) K2 + b2: ``extra`` terms are added to the hidden units' input, in order."""
    import jax

    pre = x @ params[f"{name}/inner/kernel"] + params[f"{name}/inner/bias"]
    for term in extra:
        pre = pre + term
    inner = jax.nn.gelu(pre)
    return inner @ params[f"{name}/outer/kernel"] + params[f"{name}/outer/bias"]


def analysis(params: dict, x):
    """g_a: tiles (N, P) in [0, 1] -> latents (N, P), before the quality's gain."""
    return (x - params["pixel_mean"]) @ params["analysis_linear"] + branch(params, "analysis_branch", x)


def synthesis(params: dict, y):
    """g_s: latents (N, P), after the inverse gain -> tiles (N, P) in [0, 1] (unclipped)."""
    return y @ params["synthesis_linear"] + params["pixel_mean"] + branch(params, "synthesis_branch", y)
