"""Convolutional levels: a rate-distortion autoencoder with a mean-scale hyperprior, coded exactly.

    encode: images (edge-padded to a multiple of 32) -> g_a -> y; h_a(y) -> z, rounded: z^ coded
            against one zero-mean table per channel; h_s(z^) -> the mean and scale of every element
            of y; the level's gain scales y, its mean and its scale; round(y g - mu g) coded against
            the table of the scale's rung -> one ANS stream.
    decode: z^ -> h_s -> means and tables -> y^ = (s + mu g) / g -> g_s -> pixels, cropped back.

The four networks run as integer networks (``convnet.py``) and every step between them is integer
arithmetic, so a file decodes to the same pixels everywhere. Colour is coded jointly: a model has
1 or 3 input channels; images with another channel count are coded channel by channel. One model
serves all its levels, each a per-channel gain of the latent (variable rate, Ballé et al. style).
The float twin used to train it is ``conv_model.py``; ``from_params`` turns its parameters into
this integer form.
"""

from __future__ import annotations

import math

import numpy as np

import bitstream
from bitstream.container import MAX_CHUNK_PIXELS
from bitstream.errors import FormatError
from bitstream.header import MAX_IMAGE_PIXELS
from codec.levels import conv_context, conv_file, convnet, refine, registry, tiled
from codec.levels.convnet import ACT_BITS
from codec.levels.entropy import LADDER, RUNG, SCALE_LADDER, SCALE_MIN, integer_table
from codec.levels.planes import from_planes, to_planes
from codec.levels.tile_config import MAX_MULTIPLY_ADDS_PER_PIXEL

GAIN_BITS = 12  # fractional bits of the per-level gains and inverse gains
_BITS = ACT_BITS + GAIN_BITS  # of y x gain: a symbol is that over 2^_BITS, rounded half up
INDEX_BITS = 16  # fractional bits of the scale-to-table computation
ALIGN = 32  # g_a divides by 8 and h_a by 4 more: images are padded to a multiple of this
TILE = 1024  # larger images are coded as independent tiles of this size: memory stays bounded
MAX_CODED_PIXELS = 1 << 30  # per chunk, padding and replicated grey channels included: tile by tile
# The decoding cost (multiply-adds per pixel) that the container's floor of 1,024 coded pixels per
# byte is sized for: the bundled photo model's synthesis (13,995), which decodes a file at the
# floor in about 0.75 ms of CPU per byte here (benchmarks.budget). A model may cost up to 20,000.
FLOOR_MACS_PER_PIXEL = 14_000


def layer_specs(
    channels: int, n: int, m: int, h: int, z: int, ns: int | None = None
) -> dict[str, list[tuple]]:
    """(kind, kernel size, in, out, relu) of every layer of the four networks: shared by the float
    training twin and the integer coder. ``ns`` (default ``n``) is the synthesis's width: the
    decoder can afford more than the encoder (a decode may take 0.5 s, an encode no longer than
    AVIF's).
    MACs per pixel, analysis about 2.6k at n=32, m=64; synthesis 4.3k at ns=32, 13.2k at ns=64."""
    ns = ns or n
    return {
        "analysis": [
            ("down", 5, channels, n, True),
            ("down", 3, n, n, True),
            ("down", 3, n, m, False),
        ],
        "synthesis": [
            ("up", 3, m, ns, True),
            ("up", 3, ns, ns, True),
            ("up", 3, ns, channels, False),
        ],
        "hyper_analysis": [
            ("same", 3, m, h, True),
            ("down", 3, h, h, True),
            ("down", 3, h, z, False),
        ],
        "hyper_synthesis": [
            ("up", 3, z, h, True),
            ("up", 3, h, h, True),
            ("same", 3, h, 2 * m, False),
        ],
    }


def up_channels(kind: str, c_out: int) -> int:
    """An ``up`` layer's convolution makes 4x the channels that depth-to-space then spreads out."""
    return 4 * c_out if kind == "up" else c_out


def _integer_net(name: str, spec: list[tuple], stored: list) -> list[dict]:
    """The integer layers of a network of ``spec`` from its stored float (kernel, bias) pairs
    (ValueError naming the layer: a shape that does not fit, weights out of range)."""
    if len(stored) != len(spec):
        raise ValueError(f"{name}: {len(stored)} layers, not {len(spec)}")
    layers = []
    for i, ((kind, k, c_in, c_out, relu), (kernel, bias)) in enumerate(
        zip(spec, stored, strict=True)
    ):
        w, b = convnet.quantize_weights(kernel, bias, what=f"{name}[{i}]")
        if w.shape != (k, k, c_in, up_channels(kind, c_out)) or b.shape != (w.shape[3],):
            raise ValueError(f"{name}[{i}]: kernel shape {w.shape} does not match the architecture")
        convnet.check_layer(w, b, what=f"{name}[{i}]")
        layers.append({"kind": kind, "kernel": w, "bias": b, "relu": relu})
    return layers


def _fixed_gain(log_gain: np.ndarray, what: str) -> np.ndarray:
    """exp(log_gain) with GAIN_BITS fractional bits, from 1 to 2^20, checked before the cast to
    integers (a float beyond int64 casts to what the CPU makes of it; ``not`` also refuses NaN)."""
    with np.errstate(over="ignore"):
        gain = np.round(np.exp(np.asarray(log_gain, np.float64)) * (1 << GAIN_BITS))
    if not (gain.min(initial=1) >= 1 and gain.max(initial=1) <= 1 << 20):
        raise ValueError(f"{what}: gains out of the fixed-point range")
    return gain.astype(np.int64)


class ConvTransform:
    """The integer networks, gains and frozen tables of a model's convolutional levels.

    ``params``: {"config": {channels, n, m, h, z, lambdas}, network name: [(kernel, bias) float],
    "log_gain", "log_inv_gain" (levels, m), "log_z_scale" (z,)}, and ``tables``: the ladder of
    integer tables (``entropy.SCALE_LADDER``) as (lows, freqs).
    """

    def __init__(self, params: dict, tables: tuple[np.ndarray, list[np.ndarray]]):
        cfg = params["config"]
        self.config = cfg
        self.channels = cfg["channels"]
        self.m = cfg["m"]
        specs = layer_specs(cfg["channels"], cfg["n"], cfg["m"], cfg["h"], cfg["z"], cfg.get("ns"))
        self.nets = {name: _integer_net(name, spec, params[name]) for name, spec in specs.items()}
        # the context model (``conv_context``): None, or its mode and network
        self.context = params.get("context")
        if self.context is not None:
            spec = conv_context.layer_specs(cfg["m"], cfg["h"])
            self.nets["context"] = _integer_net("context", spec, self.context["layers"])
        first = self.nets["analysis"][0]  # for a grey plane coded as R = G = B (see ``analysis``)
        self.grey_analysis = [
            {**first, "kernel": first["kernel"].sum(axis=2, keepdims=True)},
            *self.nets["analysis"][1:],
        ]
        self.gain = _fixed_gain(params["log_gain"], "log_gain")  # (levels, m)
        self.inv_gain = _fixed_gain(params["log_inv_gain"], "log_inv_gain")
        # ln g in ACT_BITS (within -9..6 once the gains are in range: the cast is exact)
        self.log_gain = np.round(params["log_gain"] * (1 << ACT_BITS)).astype(np.int64)
        self.ladder = LADDER
        self.rung = round(RUNG * (1 << INDEX_BITS))
        self.log_min = round(math.log(SCALE_MIN) * (1 << ACT_BITS))
        z_scale = np.exp(params["log_z_scale"])
        self.z_index = np.clip(
            np.round(np.log(np.maximum(z_scale, 1e-9) / SCALE_MIN) / RUNG), 0, LADDER - 1
        ).astype(np.int64)
        self.tables = bitstream.Tables(tables[0], tables[1])
        if len(tables[1]) != LADDER:
            raise ValueError(
                f"{len(tables[1])} tables, not one per rung of the {LADDER}-rung ladder"
            )
        if (
            self.gain.shape != (len(cfg["lambdas"]), self.m)
            or self.inv_gain.shape != self.gain.shape
        ):
            raise ValueError("gains do not match the levels and latent channels")
        if self.z_index.shape != (cfg["z"],):
            raise ValueError("hyper-latent scales do not match its channels")
        cost = max(self.macs_per_pixel())
        if cost > MAX_MULTIPLY_ADDS_PER_PIXEL:
            raise ValueError(
                f"coding would cost {cost:.0f} multiply-adds per pixel, more than the "
                f"{MAX_MULTIPLY_ADDS_PER_PIXEL} a model may"
            )

    def macs_per_pixel(self) -> tuple[float, float]:
        """Multiply-adds per pixel (encode, decode); the hyperprior runs at 1/64 of the pixels."""
        nets = self.nets
        encode = convnet.macs_per_pixel(nets["analysis"], 1) + convnet.macs_per_pixel(
            nets["hyper_analysis"], 1 / 64
        )
        decode = convnet.macs_per_pixel(nets["synthesis"], 1 / 64) + convnet.macs_per_pixel(
            nets["hyper_synthesis"], 1 / 1024
        )
        if "context" in nets:  # both sides run it, at the latent's resolution
            context = convnet.macs_per_pixel(nets["context"], 1 / 64)
            encode, decode = encode + context, decode + context
        return encode + convnet.macs_per_pixel(nets["hyper_synthesis"], 1 / 1024), decode

    def analysis(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(y (N, H/8, W/8, m), integer z^ (N, H/32, W/32, z)) of padded uint8 images (N, H, W, C).

        C may also be 1 for a model of 3 channels: the plane is coded as R = G = B, through a first
        layer whose kernel is the sum of the colour kernel over its input channels, which gives the
        same integers a third of the work (every partial sum stays within the same bound)."""
        layers = (
            self.grey_analysis if x.shape[3] == 1 and self.channels != 1 else self.nets["analysis"]
        )
        y = convnet.run(layers, x.astype(np.int64))
        z = convnet.run(self.nets["hyper_analysis"], y)
        return y, (z + (1 << (ACT_BITS - 1))) >> ACT_BITS  # rounded half up, to whole units

    def hyper(self, z_hat: np.ndarray) -> np.ndarray:
        """The hyperprior's output (means, then log-scales, in ACT_BITS) from z^."""
        return convnet.run(self.nets["hyper_synthesis"], z_hat << ACT_BITS)

    def prior(self, hyper: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean * gain in ACT_BITS + GAIN_BITS, table index) of every latent element, from the
        hyperprior's output (or, in pass 2, that plus the context network's)."""
        mean, log_scale = hyper[..., : self.m], hyper[..., self.m :]
        mean_g = mean * self.gain[level]
        # rung = (ln scale + ln gain - ln SCALE_MIN) / RUNG, rounded: integers throughout
        numerator = (log_scale + self.log_gain[level] - self.log_min) << (INDEX_BITS - ACT_BITS)
        index = np.clip((numerator + self.rung // 2) // self.rung, 0, self.ladder - 1)
        return mean_g, index

    def dequantized(self, s: np.ndarray, mean_g: np.ndarray, level: int) -> np.ndarray:
        """y^ in ACT_BITS from the symbols and their means x gain."""
        inv = self.inv_gain[level]
        return (((s << _BITS) + mean_g) * inv + (1 << (2 * GAIN_BITS - 1))) >> (2 * GAIN_BITS)

    def first_half(self, shape) -> np.ndarray | bool:
        """Which latent elements pass 1 codes (``conv_context``); True (all) without a context."""
        if self.context is None:
            return True
        return np.broadcast_to(conv_context.first_half(self.context["mode"], shape), shape)

    def in_context(self, hyper, s, mean_g, index, level: int):
        """(mean x gain, table index) of every element once pass 1's symbols ``s`` are known:
        pass 1's as they were, pass 2's from the hyperprior's output plus the context network's
        reading of the decoded first half. Without a context, unchanged."""
        if self.context is None:
            return mean_g, index
        first = self.first_half(s.shape)
        y_hat = self.dequantized(s, mean_g, level)
        shift = convnet.run(self.nets["context"], conv_context.network_input(y_hat, first, hyper))
        mean_2, index_2 = self.prior(hyper + shift, level)
        return np.where(first, mean_g, mean_2), np.where(first, index, index_2)

    def synthesis(self, y_hat: np.ndarray, shape) -> np.ndarray:
        """uint8 images (N, H, W, C) cropped to ``shape`` (H, W) from the decoded latent."""
        x = convnet.run(self.nets["synthesis"], y_hat)
        # x/256 in ACT_BITS: the pixels
        return np.clip(x[:, : shape[0], : shape[1]], 0, 255).astype(np.uint8)


class ConvLevel:
    """One quality level of the convolutional kind: the transform at the level's gain (a
    ``registry.Level``)."""

    kind = "conv"
    chunk_images = None  # the container's default
    max_chunk_values = MAX_CHUNK_PIXELS

    def __init__(self, transform: ConvTransform, index: int):
        self.transform, self.index = transform, index

    def coded_pixels(self, n: int, shape) -> int:
        """Pixels coded, padding included (the work of decoding them)."""
        channels = shape[2] if len(shape) == 3 else 1
        # coded jointly, or channel by channel
        groups = 1 if channels == self.transform.channels else channels
        area = sum(
            _padded(y1 - y0) * _padded(x1 - x0) for y0, y1, x0, x1 in tiles(shape[0], shape[1])
        )
        return n * groups * area * self.transform.channels

    max_coded_pixels = MAX_CODED_PIXELS

    @property
    def work_per_pixel(self) -> float:
        """What the floor of bytes per coded pixel counts each one as: 1 up to the synthesis cost
        the floor is sized for, proportionally more above, so any model decodes within one
        budget."""
        return max(1.0, self.transform.macs_per_pixel()[1] / FLOOR_MACS_PER_PIXEL)

    max_image_values = (
        MAX_IMAGE_PIXELS  # the container's limit: 100-megapixel colour photos and more
    )

    def _inputs(self, images: np.ndarray) -> np.ndarray:
        """(N', Hp, Wp, C) uint8, edge-padded: colour jointly (C the model's), or each channel on
        its own as a plane (C = 1, which ``analysis`` codes as R = G = B)."""
        shape = images.shape[1:]
        channels = shape[2] if len(shape) == 3 else 1
        if channels == self.transform.channels:
            x = images if images.ndim == 4 else images[..., None]
        else:
            x = to_planes(images)[..., None]
        h, w = x.shape[1:3]
        return np.pad(x, ((0, 0), (0, _padded(h) - h), (0, _padded(w) - w), (0, 0)), mode="edge")

    def _outputs(self, x: np.ndarray, n: int, shape) -> np.ndarray:
        channels = shape[2] if len(shape) == 3 else 1
        if channels == self.transform.channels:
            return x if len(shape) == 3 else x[..., 0]
        planes = (
            x[..., 0] if self.transform.channels == 1 else np.round(x.mean(axis=3)).astype(np.uint8)
        )
        return from_planes(planes, n, shape)

    def symbols(self, images: np.ndarray):
        """(z^ and its table indices, y symbols and theirs) of uint8 images (N, H, W[, C])."""
        _, y, z_hat, _, mean_g, index = self._analysed(images)
        z_index = np.broadcast_to(self.transform.z_index, z_hat.shape)
        return (z_hat, z_index), (self._rounded(y, mean_g), index)

    def _rounded(self, y: np.ndarray, mean_g: np.ndarray) -> np.ndarray:
        """The symbols: y x gain less the mean's, in whole quantizer steps, rounded half up."""
        return (y * self.transform.gain[self.index] - mean_g + (1 << (_BITS - 1))) >> _BITS

    def _analysed(self, images: np.ndarray):
        """(the padded inputs, y, z^, the hyperprior's output, mean x gain, table indices) of
        uint8 images; with a context model, pass 2's means and tables from pass 1's symbols."""
        t = self.transform
        x = self._inputs(images)
        y, z_hat = t.analysis(x)
        hyper = t.hyper(z_hat)
        mean_g, index = t.prior(hyper, self.index)
        if t.context is not None:  # pass 1's symbols, rounded as without a context, then pass 2's
            mean_g, index = t.in_context(hyper, self._rounded(y, mean_g), mean_g, index, self.index)
        return x, y, z_hat, hyper, mean_g, index

    effort = 0  # the encoder's effort (``with_effort``): 0, the analysis's latents as they come

    def with_effort(self, effort: int) -> ConvLevel:
        """This level with each image's latents refined at ``effort`` (``refine.EFFORT_STEPS``):
        the same decoder and format, files never larger."""
        level = ConvLevel(self.transform, self.index)
        level.effort = effort
        return level

    def encode(self, images: np.ndarray, *, min_bytes: int = 0) -> bytes:
        """One stream for images within one tile; beyond, every tile of every image is its own
        stream (``tiled.encode``)."""
        grid = tiles(images.shape[1], images.shape[2])
        if len(grid) == 1:
            return self._encode_whole(images, min_bytes)
        return tiled.encode(images, grid, min_bytes, self._encode_whole)

    def _encode_whole(self, images: np.ndarray, min_bytes: int) -> bytes:
        if self.effort:
            return self._encode_refined(images, min_bytes)
        (z_hat, z_index), (s, index) = self.symbols(images)
        return self._stream(z_hat, s, index, min_bytes)

    def _stream(self, z_hat, s, index, min_bytes: int) -> bytes:
        encoder = bitstream.Encoder(self.transform.tables)
        encoder.add(z_hat, np.broadcast_to(self.transform.z_index, z_hat.shape))
        first = self.transform.first_half(s.shape)
        if first is True:
            encoder.add(s, index)
        else:  # pass 1, then pass 2: the decoder's order
            encoder.add(s[first], index[first])
            encoder.add(s[~first], index[~first])
        return encoder.finish(min_bytes=min_bytes)

    def _encode_refined(self, images: np.ndarray, min_bytes: int) -> bytes:
        """The plain stream, or one of refined symbols where it is no larger and its exact
        rate-distortion cost lower (``refine``)."""
        t, level = self.transform, self.index
        x, y, z_hat, hyper, mean_g, index = self._analysed(images)
        inv = t.inv_gain[level]
        start = (y * t.gain[level] - mean_g) / float(1 << _BITS)  # before rounding
        plain = self._rounded(y, mean_g)
        mask = np.zeros(x.shape[:3] + (1,), np.float32)
        mask[:, : images.shape[1], : images.shape[2]] = 1
        context = {
            "layers": refine.float_layers(t.nets["synthesis"]),
            "x": np.broadcast_to(x, x.shape[:3] + (t.channels,)).astype(np.float32),
            "mask": mask,
            "sigma": refine.prior_scales(index),
            "to_latent": (
                (inv / float(1 << GAIN_BITS)).astype(np.float32),
                (mean_g * inv / float(1 << (2 * GAIN_BITS + ACT_BITS))).astype(np.float32),
            ),
            "lam": float(t.config["lambdas"][level]),
        }
        s = refine.refined_symbols(plain, start, context, refine.EFFORT_STEPS[self.effort])
        s, refined_index = self._in_context(hyper, s, mean_g, index)
        streams = [
            self._stream(z_hat, plain, index, min_bytes),
            self._stream(z_hat, s, refined_index, min_bytes),
        ]
        costs = [self._exact_cost(images, data) for data in streams]
        better = len(streams[1]) <= len(streams[0]) and costs[1] < costs[0]
        return streams[1] if better else streams[0]

    def _in_context(self, hyper, s, mean_g, index):
        """Refined symbols and their tables once pass 1's are refined (a context model's pass 2
        moves with them): pass 2's symbols keep their refined values, measured from the new
        means. Without a context, as they are."""
        t = self.transform
        first = t.first_half(s.shape)
        if first is True:
            return s, index
        wanted = (s << _BITS) + mean_g  # y x gain as refined, in _BITS
        new_mean, new_index = t.in_context(hyper, s, mean_g, index, self.index)
        again = (wanted - new_mean + (1 << (_BITS - 1))) >> _BITS
        return np.where(first, s, again), new_index

    def _exact_cost(self, images: np.ndarray, data: bytes) -> float:
        """λ · MSE + bits per pixel of ``data`` as the decoder decodes it."""
        back = self._decode_whole(data, len(images), images.shape[1:], True)
        squared = float(np.sum((back.astype(np.float64) - images) ** 2))
        pixels = images.shape[0] * images.shape[1] * images.shape[2]
        lam = float(self.transform.config["lambdas"][self.index])
        return lam * squared / images.size + 8 * len(data) / pixels

    def decode(
        self, data: bytes, n: int, shape, *, version: int = bitstream.FORMAT_VERSION
    ) -> np.ndarray:
        framed = version >= 3
        grid = tiles(shape[0], shape[1])
        if len(grid) == 1:
            return self._decode_whole(data, n, shape, framed)
        return tiled.decode(data, n, shape, grid, lambda d, s: self._decode_whole(d, 1, s, framed))

    def _decode_whole(self, data: bytes, n: int, shape, framed: bool) -> np.ndarray:
        t = self.transform
        channels = shape[2] if len(shape) == 3 else 1
        count = n * (1 if channels == t.channels else channels)
        hp, wp = _padded(shape[0]), _padded(shape[1])
        decoder = bitstream.Decoder(data, t.tables, framed=framed)
        z_shape = (count, hp // ALIGN, wp // ALIGN, t.config["z"])
        z_hat = decoder.read(np.broadcast_to(t.z_index, z_shape)).astype(np.int64)
        hyper = t.hyper(z_hat)
        mean_g, index = t.prior(hyper, self.index)
        first = t.first_half(index.shape)
        if first is True:
            s = decoder.read(index).astype(np.int64)
        else:
            s = np.zeros(index.shape, np.int64)
            s[first] = decoder.read(index[first])
            mean_g, index = t.in_context(hyper, s, mean_g, index, self.index)
            s[~first] = decoder.read(index[~first])
        decoder.finish()
        y_hat = t.dequantized(s, mean_g, self.index)
        return self._outputs(t.synthesis(y_hat, shape[:2]), n, shape)

    def ideal_bits(self, images: np.ndarray) -> float:
        """Exactly what the integer tables assign to the symbols, before the coder's few bytes."""
        total, seen = 0.0, tiled.SameTiles()
        for y0, y1, x0, x1 in tiles(images.shape[1], images.shape[2]):
            tile = images[:, y0:y1, x0:x1]
            total += seen.result(tile, "bits", self._ideal_bits, tile)
        return total

    def _ideal_bits(self, images: np.ndarray) -> float:
        (z_hat, z_index), (s, index) = self.symbols(images)
        return bitstream.ideal_bits(z_hat, z_index, self.transform.tables) + bitstream.ideal_bits(
            s, index, self.transform.tables
        )


def tiles(h: int, w: int, size: int | None = None) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the tiles (``TILE`` wide) of an h x w image, row-major: one for an
    image within a tile."""
    return tiled.grid(h, w, size or TILE)


def _padded(size: int) -> int:
    return -(-size // ALIGN) * ALIGN


def ladder_tables() -> tuple[np.ndarray, list[np.ndarray]]:
    """The integer tables of the scale ladder, made once at export and stored in the model (the
    floats behind them are never recomputed at coding time)."""
    lows, freqs = zip(*(integer_table(float(scale)) for scale in SCALE_LADDER), strict=True)
    return np.array(lows, np.int64), list(freqs)


def read_section(body: dict, source: str) -> registry.Section | None:
    """The convolutional transform and its levels, low to high, or None (the model has none)."""
    stored = conv_file.from_body(body, source=source)
    if stored is None:
        return None
    try:
        transform = ConvTransform(*stored)
    except ValueError as e:
        raise FormatError(f"{source}: conv levels: {e}") from None
    levels = tuple(ConvLevel(transform, i) for i in range(len(transform.config["lambdas"])))
    return registry.Section(transform, levels)


registry.register(
    registry.Kind(
        "conv",
        fields=(
            registry.Field("conv", since=4, required=True, nullable_since=4, stored_type=dict),
            registry.Field(conv_context.FIELD, since=conv_context.FORMAT, stored_type=dict),
        ),
        read=read_section,
    )
)
