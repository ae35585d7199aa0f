"""Convolutional networks in exact fixed-point arithmetic (numpy only): the coding side of the
convolutional level kind (``conv.py``), after Ballé, Johnston & Minnen, "Integer networks for data
compression with latent-variable models" (ICLR 2019).

A trained float network becomes integers once, at export: weights with ``WEIGHT_BITS`` fractional
bits, activations with ``ACT_BITS``. A convolution is an im2col matrix product computed in float64,
which is exact because every operand is an integer and every partial sum is bounded below 2^53:
|activation| <= ACT_LIMIT (clipped), |weight| <= WEIGHT_LIMIT (checked at load) and at most
``MAX_TERMS`` terms, so |sum| <= 2^20 * 2^15 * 2^13 = 2^48. Rescaling, rounding and ReLU are
integer operations. The same file therefore decodes to the same pixels on every machine, BLAS
library, thread count and batch size.

Layers: ``down`` (k x k convolution, stride 2, zero padding (k-1)/2), ``same`` (stride 1) and
``up`` (a stride-1 convolution to 4C channels, then depth-to-space: channel (dy*2 + dx)*C + c
moves to pixel (2y + dy, 2x + dx)). The float twins in ``conv_model.py`` compute the same.
"""

from __future__ import annotations

import numpy as np

ACT_BITS = (
    8  # fractional bits of activations: the network's input is the pixel value itself (x/256)
)
WEIGHT_BITS = 10  # fractional bits of weights
ACT_LIMIT = (1 << 20) - 1  # activations are clipped to +-4096 (in real units)
WEIGHT_LIMIT = (1 << 15) - 1  # weights within +-32 (real units)
BIAS_LIMIT = 1 << 40  # biases within +-2^22 (real units; ACT_BITS + WEIGHT_BITS fractional bits)
MAX_TERMS = 1 << 13  # k*k*C_in of any layer
ROWS_PER_BLOCK = 1 << 14  # im2col rows per product: bounds the memory of a layer to tens of MB


def quantize_weights(kernel: np.ndarray, bias: np.ndarray, *, what: str = "layer"):
    """(kernel (k, k, C_in, C_out) int64 with WEIGHT_BITS, bias (C_out,) int64 with ACT_BITS +
    WEIGHT_BITS).

    Raises:
        ValueError: a weight beyond WEIGHT_LIMIT or a bias beyond BIAS_LIMIT (or not finite),
        naming ``what``.
    """
    w = np.round(np.asarray(kernel, np.float64) * (1 << WEIGHT_BITS))
    b = np.round(np.asarray(bias, np.float64) * (1 << (ACT_BITS + WEIGHT_BITS)))
    # Checked as floats, before the cast: one beyond int64 casts to what the CPU makes of it (x86:
    # -2^63, whose absolute value passes any bound; ARM: 2^63 - 1), and pixels would differ by
    # machine. ``not <=`` also refuses NaN.
    if not np.abs(w).max(initial=0) <= WEIGHT_LIMIT:
        limit = WEIGHT_LIMIT / (1 << WEIGHT_BITS)
        raise ValueError(f"{what}: kernel weights beyond +-{limit:.0f}, the fixed-point range")
    if not np.abs(b).max(initial=0) <= BIAS_LIMIT:
        limit = BIAS_LIMIT >> (ACT_BITS + WEIGHT_BITS)
        raise ValueError(f"{what}: biases beyond +-{limit}, the fixed-point range")
    return w.astype(np.int64), b.astype(np.int64)


def check_layer(kernel: np.ndarray, bias: np.ndarray, *, what: str) -> None:
    """Refuse integer weights that would break the exactness bound (ValueError naming the layer)."""
    k1, k2, c_in, _ = kernel.shape
    if k1 != k2 or k1 % 2 == 0 or k1 * k2 * c_in > MAX_TERMS:
        raise ValueError(
            f"{what}: a {k1}x{k2}x{c_in} kernel is not odd, square and within {MAX_TERMS} terms"
        )
    if np.abs(kernel).max(initial=0) > WEIGHT_LIMIT or np.abs(bias).max(initial=0) > BIAS_LIMIT:
        raise ValueError(f"{what}: weights out of the fixed-point range")


def conv(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, *, stride: int = 1, relu: bool = True
) -> np.ndarray:
    """One integer layer: (N, H, W, C_in) int64 activations -> (N, ceil(H/stride),
    ceil(W/stride), C_out) int64.

    out = clip(relu?(round_half_up((x * kernel + bias) / 2^WEIGHT_BITS))), exact everywhere.
    """
    k = kernel.shape[0]
    p = (k - 1) // 2
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))).astype(np.float64)
    # rows in (dy, dx, c) order, as the patches
    w = kernel.reshape(-1, kernel.shape[3]).astype(np.float64)
    out_h, out_w = -(-x.shape[1] // stride), -(-x.shape[2] // stride)
    # output rows per product: bounded memory
    rows = max(1, ROWS_PER_BLOCK // max(1, x.shape[0] * out_w))
    blocks = []
    for r0 in range(0, out_h, rows):
        r1 = min(out_h, r0 + rows)
        band = padded[:, r0 * stride : (r1 - 1) * stride + k]
        windows = np.lib.stride_tricks.sliding_window_view(band, (k, k), axis=(1, 2))[
            :, ::stride, ::stride
        ]
        # (N * rows * W', k*k*C)
        cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * x.shape[3])
        # exact: integers, sums < 2^53
        blocks.append((cols @ w).reshape(x.shape[0], r1 - r0, out_w, -1))
    acc = np.concatenate(blocks, axis=1).astype(np.int64) + bias
    out = (acc + (1 << (WEIGHT_BITS - 1))) >> WEIGHT_BITS
    if relu:
        np.maximum(out, 0, out=out)
    np.clip(out, -ACT_LIMIT, ACT_LIMIT, out=out)
    return out


def depth_to_space(x: np.ndarray) -> np.ndarray:
    """(N, H, W, 4C) -> (N, 2H, 2W, C): channel (dy*2 + dx)*C + c to pixel (2y + dy, 2x + dx)."""
    n, h, w, c4 = x.shape
    c = c4 // 4
    return x.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c)


def run(layers: list[dict], x: np.ndarray) -> np.ndarray:
    """A stack of integer layers, each {"kind": "down"|"same"|"up", "kernel", "bias", "relu"}."""
    for layer in layers:
        stride = 2 if layer["kind"] == "down" else 1
        x = conv(
            x,
            layer["kernel"],
            layer["bias"],
            stride=stride,
            relu=layer["relu"] and layer["kind"] != "up",
        )
        if layer["kind"] == "up":
            x = depth_to_space(x)
            if layer["relu"]:
                np.maximum(x, 0, out=x)
    return x


def macs_per_pixel(layers: list[dict], scale: float) -> float:
    """Multiply-adds per input pixel of a stack whose first layer runs at ``scale`` of the image's
    pixels."""
    total = 0.0
    for layer in layers:
        k, _, c_in, c_out = layer["kernel"].shape
        if layer["kind"] == "down":
            scale /= 4
        total += scale * k * k * c_in * c_out
        if layer["kind"] == "up":
            scale *= 4
    return total
