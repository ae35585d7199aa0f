"""The convolutional levels' context model: the latent coded in two passes, the second predicted
from the first (numpy only; the float twin in ``conv_model.py`` computes the same).

    pass 1: one half of the latent's elements, coded against the hyperprior's mean and scale as in
            a model without a context;
    pass 2: an integer network reads the decoded first half (the other half zero) beside the
            hyperprior's output and adds to that output (means and log-scales); the second half is
            coded against the result.

Two ways to split, chosen by held-out measurement (``benchmarks/context.py``):

- ``checkerboard``: latent positions with y + x even first, for every channel (He et al.,
  "Checkerboard context model for efficient learned image compression", CVPR 2021): spatial
  neighbours predict each other.
- ``channels``: the first m/2 channels first, at every position (Minnen & Singh, "Channel-wise
  autoregressive entropy models for learned image compression", ICIP 2020, with two slices):
  channels predict each other.

The decoder sees only what it has decoded, so it runs the same network on the same integers.
The network's last layer starts at zero when a context is added to a trained model: fine-tuning
starts exactly where the model without it stands.
"""

from __future__ import annotations

import numpy as np

MODES = ("checkerboard", "channels")
# the model file's field (format 6; ``conv_file``): {"mode": str, "nets": [3 layers]}
FIELD = "conv_context"
FORMAT = 6


def layer_specs(m: int, h: int) -> list[tuple]:
    """(kind, kernel size, in, out, relu) of the context network: the decoded first half (m
    channels) and the hyperprior's output (2m) in, additions to that output (2m) out. At the
    latent's resolution (1/64 of the pixels): 944 multiply-adds per pixel at m=64, h=32."""
    return [("same", 3, 3 * m, h, True), ("same", 1, h, h, True), ("same", 1, h, 2 * m, False)]


def first_half(mode: str, shape) -> np.ndarray:
    """Which elements of a latent of ``shape`` (N, H, W, m) pass 1 codes: a boolean array
    broadcastable to it."""
    _, h, w, m = shape
    if mode == "checkerboard":
        rows, cols = np.indices((h, w))
        return ((rows + cols) % 2 == 0)[None, :, :, None]
    return (np.arange(m) < m // 2)[None, None, None, :]


def network_input(y_hat, first, hyper, xp=np):
    """What the context network reads: the first half of the decoded latent (the rest zero) and
    the hyperprior's output, channels concatenated (``xp``: numpy, or jax.numpy for the twin)."""
    return xp.concatenate([xp.where(first, y_hat, 0), hyper], axis=3)
