"""Predictive pixel coding: the codec's high-quality levels (numpy only, integer arithmetic).

Measured on Fashion-MNIST (``python -m benchmarks.pixel_sweep``): above about 27 dB, coding
each pixel's prediction residual against learned context tables takes far fewer bytes than
coding the transform's latent (a third fewer near 38 dB). The global transform captures
shape, which is cheap; at high quality the bytes go into texture, which a causal
neighbourhood predicts far better.

Each pixel is predicted from its already decoded neighbours (a left, b above, c above-left,
d above-right, and three beyond them) by CALIC's gradient-adjusted predictor (``predict.py``, shared
with the lossless coder, whose near-lossless mode is this method with a context tree for the
tables); the residual is quantized
with the level's step (reconstruction in the loop, so errors never accumulate) and coded
with the table of its context: the local activity |d-b|+|b-c|+|c-a| and the predicted
value, each bucketed, and how large the residuals at a and b were (0, 1, 2 or more steps).
The tables are counted on the training data by ``aecodec train``.

Pixels are coded in ``predict.schedule``'s order: an anti-diagonal at a time, each step
vectorized over all its pixels and all images.
"""

from __future__ import annotations

import numpy as np

from bitstream.coder import PRECISION, Decoder, Encoder, Tables, ideal_bits, integer_frequencies
from bitstream.container import FORMAT_VERSION
from bitstream.errors import FormatError
from codec.levels import modelfile, predict, registry
from codec.levels.planes import from_planes, to_planes
from codec.levels.tile import config_of

# lower bounds of the activity buckets
ACTIVITY = np.array([0, 2, 4, 7, 11, 16, 23, 32, 45, 64, 90, 128])
LEVEL = np.array([0, 4, 8, 12, 30, 48, 70, 128])  # lower bounds of the predicted-value buckets
FEEDBACK = 3  # classes of |symbol at a| + |symbol at b|: 0, 1, 2 or more
CONTEXTS = len(ACTIVITY) * len(LEVEL) * FEEDBACK
# The bucket searches as lookups (activity is at most 3 * 255), already scaled to context indices;
# int16 contexts let the coder's stable argsort run as a radix sort.
_BY_ACTIVITY = (
    (np.searchsorted(ACTIVITY, np.arange(3 * 255 + 1), "right") - 1) * len(LEVEL) * FEEDBACK
).astype(np.int16)
_BY_LEVEL = ((np.searchsorted(LEVEL, np.arange(256), "right") - 1) * FEEDBACK).astype(np.int16)


def symbol_range(step: int) -> int:
    """K: a step's residual symbols lie in -K..K (the tables cover exactly that)."""
    return 255 // step + 1


def _contexts(r: np.ndarray, m: np.ndarray, here: np.ndarray, offsets: np.ndarray):
    """Prediction (``predict.calic``) and context index for the pixels at ``here`` of the padded
    planes r (n, L), given the magnitudes m (n, L) of the symbols decoded so far."""
    a, b, c, d, aa, bb, bd = predict.neighbours(r, here, offsets)
    pred = predict.gradient_adjusted(a, b, c, d, aa, bb, bd, 255)
    activity = np.abs(d - b) + np.abs(b - c) + np.abs(c - a)
    context = _BY_ACTIVITY[activity] + _BY_LEVEL[pred]
    context += np.minimum(m[:, here + offsets[0]] + m[:, here + offsets[1]], FEEDBACK - 1).astype(
        np.int16
    )
    return pred, context


def _record(
    r: np.ndarray, m: np.ndarray, here: np.ndarray, pred: np.ndarray, symbols: np.ndarray, step: int
) -> None:
    """Store the decoded pixels and their symbols' magnitudes."""
    r[:, here] = predict.dequantized(pred, symbols, step, 255)
    m[:, here] = np.minimum(np.abs(symbols), FEEDBACK - 1)


def quantize(planes: np.ndarray, step: int):
    """Code uint8 planes (n, H, W) in coding order: ([(symbols, contexts) per step, each (n, k)],
    the reconstruction (n, H, W), which is exactly what the decoder will produce)."""
    n, h, w = planes.shape
    x, r, m = predict.padded(planes), predict.zeros(n, h, w), predict.zeros(n, h, w)
    offsets = predict.offsets(w)
    parts = []
    for here in predict.schedule(h, w):
        pred, context = _contexts(r, m, here, offsets)
        symbols = predict.quantized(x[:, here] - pred, step)
        _record(r, m, here, pred, symbols, step)
        parts.append((symbols, context))
    return parts, predict.crop(r, h, w).astype(np.uint8)


def reconstruct(shape: tuple[int, int, int], step: int, read) -> np.ndarray:
    """The decoder: planes (n, H, W) from ``read(contexts (n, k)) -> symbols (n, k)``, step by
    step."""
    n, h, w = shape
    r, m, offsets = predict.zeros(n, h, w), predict.zeros(n, h, w), predict.offsets(w)
    for here in predict.schedule(h, w):
        pred, context = _contexts(r, m, here, offsets)
        _record(r, m, here, pred, read(context).astype(np.int32), step)
    return predict.crop(r, h, w).astype(np.uint8)


def encode(
    planes: np.ndarray, step: int, tables: Tables, *, min_bytes: int = 0
) -> tuple[bytes, np.ndarray]:
    """One ANS stream of uint8 planes (n, H, W) at ``step`` (padded to ``min_bytes``), and the
    reconstruction it decodes to."""
    parts, restored = quantize(planes, step)
    encoder = Encoder(tables)
    for symbols, contexts in parts:
        encoder.add(symbols, contexts)
    return encoder.finish(min_bytes=min_bytes), restored


def decode(
    data: bytes, shape: tuple[int, int, int], step: int, tables: Tables, *, framed: bool = True
) -> np.ndarray:
    """Planes (n, H, W) from ``encode``'s stream (FormatError if it is damaged or has data left)."""
    decoder = Decoder(data, tables, framed=framed)
    planes = reconstruct(shape, step, decoder.read)
    decoder.finish()
    return planes


def count(planes: np.ndarray, step: int) -> np.ndarray:
    """(CONTEXTS, 2K+1) counts of each context's residual symbols over uint8 planes (n, H, W)."""
    k = symbol_range(step)
    counts = np.zeros(CONTEXTS * (2 * k + 1), np.int64)
    for symbols, context in quantize(planes, step)[0]:
        counts += np.bincount(
            (context.astype(np.int64) * (2 * k + 1) + symbols + k).ravel(), minlength=counts.size
        )
    return counts.reshape(CONTEXTS, 2 * k + 1)


def fit_tables(planes, step: int, *, batch_pixels: int = 1 << 23) -> np.ndarray:
    """Integer tables (CONTEXTS, 2K+2) for ``step``, counted on uint8 training planes (n, H, W), or
    on a list of 2-D planes of any sizes: each row codes -K..K then an escape (never needed:
    residuals stay within -K..K). Half a count is added to every symbol (the Krichevsky-Trofimov
    estimate), so none is impossible. Counted ``batch_pixels`` at a time (about 20 bytes each)."""
    if not isinstance(planes, np.ndarray):
        counts = sum(fit_counts(p[None], step, batch_pixels) for p in planes)
    else:
        counts = fit_counts(planes, step, batch_pixels)
    return np.stack([integer_frequencies(np.append(row + 0.5, 0.5)) for row in counts])


def fit_counts(planes: np.ndarray, step: int, batch_pixels: int) -> np.ndarray:
    batch = max(1, batch_pixels // (planes.shape[1] * planes.shape[2]))
    return sum(count(planes[start : start + batch], step) for start in range(0, len(planes), batch))


def tables(rows: np.ndarray, step: int) -> Tables:
    """The coder's view of one step's tables."""
    return Tables(np.full(len(rows), -symbol_range(step)), list(rows))


def check_tables(rows: np.ndarray, step: int, *, what: str) -> None:
    """Refuse stored tables that are not exactly what ``fit_tables`` makes the shape of
    (FormatError)."""
    if (
        rows.dtype != np.uint32
        or rows.shape != (CONTEXTS, 2 * symbol_range(step) + 2)
        or (rows == 0).any()
        or (rows.sum(1, dtype=np.int64) != 1 << PRECISION).any()
    ):
        raise FormatError(f"{what}: not valid integer tables for step {step}")


class PixelLevel(registry.WholeChunkLevel):
    """One quality level of the pixel coder: a quantizer step and its context tables (a
    ``registry.Level``)."""

    kind = "pixel"

    def __init__(self, step: int, tables: Tables):
        self.step, self.tables = step, tables

    def coded_pixels(self, n: int, shape) -> int:
        return n * int(np.prod(shape))

    def encode(self, images: np.ndarray, *, min_bytes: int = 0) -> bytes:
        """One ANS stream of uint8 images (N, H, W[, C]), each channel a plane."""
        return encode(to_planes(images), self.step, self.tables, min_bytes=min_bytes)[0]

    def decode(self, data: bytes, n: int, shape, *, version: int = FORMAT_VERSION) -> np.ndarray:
        channels = shape[2] if len(shape) == 3 else 1
        planes = decode(
            data, (n * channels, shape[0], shape[1]), self.step, self.tables, framed=version >= 3
        )
        return from_planes(planes, n, shape)

    def ideal_bits(self, images: np.ndarray) -> float:
        """Exactly what the integer tables assign, before the coder's few bytes."""
        planes = to_planes(images)
        total = 0.0
        for start in range(0, len(planes), 1024):
            for symbols, contexts in quantize(planes[start : start + 1024], self.step)[0]:
                total += ideal_bits(symbols, contexts, self.tables)
        return total


# Integer operations per pixel, each way, counted from _contexts (and the predictor), _record and
# the quantizer: the gradients 17, the predictor's blends and edge switches 22, rounding and
# clipping it 4, activity 8, the two bucket lookups 2, the feedback class 3 and the context index 4,
# quantizing or dequantizing 6, clipping 2, the symbol's magnitude 2.
OPS_PER_PIXEL = 70


# The pixel kind's section of the model file ("pixel"): one table set per step of the stored
# config (the tile levels' architecture, which holds the steps; files before format 3 have none).


def stored_tables(rows: list) -> list:
    return [modelfile.encode_array(np.asarray(t, np.uint32)) for t in rows]


def read_section(body: dict, source: str) -> registry.Section | None:
    """The pixel levels, low to high quality, or None (no config: none)."""
    stored = body.get("pixel", [])
    if body["config"] is None:
        if stored:
            raise FormatError(f"{source}: tile or pixel parameters without their config")
        return None
    steps = config_of(body, source).pixel_steps
    if not isinstance(stored, list) or len(stored) != len(steps):
        raise FormatError(f"{source}: one table set per pixel step expected")
    try:
        rows = [modelfile.decode_array(raw, what=f"pixel[{k}]") for k, raw in enumerate(stored)]
    except (KeyError, TypeError) as e:
        raise FormatError(f"{source}: pixel tables are malformed ({e})") from None
    for k, (t, step) in enumerate(zip(rows, steps, strict=True)):
        check_tables(t, step, what=f"{source}: pixel[{k}]")
    levels = tuple(PixelLevel(step, tables(r, step)) for r, step in zip(rows, steps, strict=True))
    return registry.Section(tuple(rows), levels)


registry.register(
    registry.Kind(
        "pixel",
        fields=(registry.Field("pixel", since=3, required=True, empty=[], store=stored_tables),),
        read=read_section,
    )
)
