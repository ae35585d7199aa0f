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

from bitstream.errors import FormatError
from codec.levels import modelfile

MODES = ("checkerboard", "channels")
FIELD = "conv_context"  # the model file's field (format 6): {"mode": str, "nets": [3 layers]}
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


def to_dict(context: dict) -> dict:
    """The stored form of ``{"mode", "layers": [(kernel, bias)]}`` (float32 arrays)."""
    return {
        "mode": context["mode"],
        "nets": [
            {
                "kernel": modelfile.encode_array(np.asarray(k, np.float32)),
                "bias": modelfile.encode_array(np.asarray(b, np.float32)),
            }
            for k, b in context["layers"]
        ],
    }


def from_dict(stored, source: str) -> dict | None:
    """``{"mode", "layers"}`` of a stored context (None: none); shapes are checked by
    ``conv.ConvTransform``.

    Raises:
        FormatError: a field missing, mistyped, of an unknown mode or not finite.
    """
    if stored is None:
        return None
    try:
        mode, nets = stored["mode"], stored["nets"]
        if mode not in MODES:
            raise FormatError(f"{source}: conv context mode {mode!r:.40} is not one of {MODES}")
        if not isinstance(nets, list) or len(nets) != 3:
            raise FormatError(f"{source}: conv context is not 3 layers")
        what = f"{source}: conv context"
        layers = [
            (
                modelfile.decode_array(layer["kernel"], what=what),
                modelfile.decode_array(layer["bias"], what=what),
            )
            for layer in nets
        ]
    except (KeyError, TypeError) as e:
        raise FormatError(f"{source}: conv context is malformed ({e})") from None
    if any(not np.isfinite(a).all() for layer in layers for a in layer):
        raise FormatError(f"{source}: conv context holds values that are not finite")
    return {"mode": mode, "layers": layers}
