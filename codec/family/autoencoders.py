"""The classic autoencoder family on the codec's training engine: one model, objectives plugged in.

Kinds (``FamilyConfig.kind``), each a loss handed to ``engine.make_step`` (never a loop of its own):

- ``plain``: an undercomplete dense autoencoder (``widths``, e.g. 784-128-32-2), mean squared error;
- ``linear``: the same without nonlinearities; its code spans PCA's subspace (Baldi & Hornik 1989);
- ``denoising``: the input corrupted (Gaussian noise of ``noise`` σ on [0, 1] pixels, and/or a
  ``mask`` share of pixels set to 0), the clean image the target (Vincent et al. 2008);
- ``sparse``: a sigmoid code with an L1 activity penalty (``l1``) and/or the KL divergence of the
  units' mean activation from a target ``rho`` (``beta``; Ng's sparse autoencoder notes);
- ``contractive``: plus ``contraction`` times the squared Frobenius norm of the encoder's Jacobian,
  by JAX autodiff (Rifai et al. 2011);
- ``variational``: a Gaussian encoder (mean and log-variance), the reparameterization trick, a
  Bernoulli decoder (or Gaussian, with a learned scale); the loss is the negative ELBO in nats
  per image (Kingma & Welling 2014).

Pixels are x = uint8 / 255, flattened. The losses are plain functions of arrays, tested against
values computed by hand.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import msgpack
import numpy as np
import optax
from flax import nnx

from bitstream.walk import check_structure
from codec.errors import FormatError, LimitError, TruncatedError
from codec.levels import modelfile
from codec.training import engine

KINDS = ("plain", "linear", "denoising", "sparse", "contractive", "variational")
DECODERS = ("bernoulli", "gaussian", "logistic")


@dataclasses.dataclass(frozen=True)
class FamilyConfig:
    kind: str = "plain"
    widths: tuple[int, ...] = (784, 128, 32, 2)  # input, hidden..., code
    noise: float = 0.0  # denoising: Gaussian σ on [0, 1] pixels
    mask: float = 0.0  # denoising: share of input pixels set to 0
    blind: bool = False  # denoising: each image's σ drawn uniformly from [0, noise] (one model for unknown noise)
    l1: float = 0.0  # sparse: weight of the mean absolute activation of the code
    rho: float = 0.05  # sparse: target mean activation of each code unit ...
    beta: float = 0.0  # ... and the weight of its KL divergence
    contraction: float = 0.0  # contractive: weight of ||d code / d x||_F^2
    decoder: str = (
        "bernoulli"  # variational: "bernoulli", "gaussian" or "logistic" (discretized, 256 levels)
    )
    arch: str = "dense"  # "dense" layers of ``widths``, or "conv": stages of ``widths[1:]`` channels, each halving the size
    image_shape: tuple[int, ...] = ()  # (H, W[, C]) of the images: the conv architecture's input
    neighbours: float = 0.0  # any kind: weight of a neighbour-graph (UMAP) term that keeps neighbours close in the code

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {KINDS}")
        if len(self.widths) < 2 or any(w < 1 for w in self.widths):
            raise ValueError(
                f"widths {self.widths} should be at least an input and a code width, all positive"
            )
        if self.arch not in ("dense", "conv"):
            raise ValueError(f"arch {self.arch!r} is not 'dense' or 'conv'")
        if self.arch == "conv" and (
            self.kind not in ("plain", "denoising")
            or len(self.image_shape) not in (2, 3)
            or math.prod(self.image_shape) != self.widths[0]
        ):
            raise ValueError(
                "the conv architecture is for the plain and denoising kinds, and needs the images' "
                f"shape (H, W[, C]) of widths[0] values (got {self.image_shape} for {self.widths[0]})"
            )
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder {self.decoder!r} is not one of {DECODERS}")
        if not (
            self.noise >= 0
            and 0 <= self.mask < 1
            and self.l1 >= 0
            and self.beta >= 0
            and 0 < self.rho < 1
            and self.contraction >= 0
            and self.neighbours >= 0
        ):
            raise ValueError(
                "noise, l1, beta, contraction and neighbours are >= 0; mask in [0, 1); rho in (0, 1)"
            )


class DenseAE(nnx.Module):
    """Encoder widths[0] -> ... -> widths[-1] (twice that for the variational mean and log-variance),
    decoder back; GELU between layers (none for ``linear``), a sigmoid code for ``sparse``."""

    def __init__(self, cfg: FamilyConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        w = list(cfg.widths)
        out = [*w[1:-1], 2 * w[-1] if cfg.kind == "variational" else w[-1]]
        self.encoder = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(w[:-1], out, strict=True)]
        )
        back = w[::-1]
        if cfg.kind == "variational" and cfg.decoder == "logistic":
            back[-1] *= 2  # each pixel's mean and log-scale
        self.decoder = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(back[:-1], back[1:], strict=True)]
        )
        self.log_scale = nnx.Param(jnp.zeros(()))  # the Gaussian decoder's scale (variational)

    def _act(self, h):
        return h if self.cfg.kind == "linear" else jax.nn.gelu(h)

    def _through(self, layers, h):
        """``layers`` in turn, the activation between them (none after the last)."""
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = self._act(h)
        return h

    def encode(self, x):
        """The code (N, k); for ``variational`` its mean and log-variance."""
        h = self._through(self.encoder, x)
        if self.cfg.kind == "variational":
            k = self.cfg.widths[-1]
            return h[:, :k], h[:, k:]
        return jax.nn.sigmoid(h) if self.cfg.kind == "sparse" else h

    def decode(self, code):
        """Pixels in [0, 1] (``variational``: a Bernoulli decoder's logits; a logistic one's
        means and log-scales, concatenated)."""
        h = self._through(self.decoder, code)
        if self.cfg.kind == "linear" or (
            self.cfg.kind == "variational" and self.cfg.decoder != "gaussian"
        ):
            return h
        return jax.nn.sigmoid(h)

    def multiply_adds(self) -> int:
        """Per image, encoded and decoded: each weight once (abstract models too: shapes only)."""
        return sum(math.prod(layer.kernel.shape) for layer in [*self.encoder, *self.decoder])

    def nll(self, decoded, x):
        """The variational kind's -log p(x | code) per image, in nats (N,)."""
        if self.cfg.decoder == "bernoulli":
            return bernoulli_nll(decoded, x)
        if self.cfg.decoder == "gaussian":
            return gaussian_nll(decoded, x, self.log_scale[...])
        d = x.shape[-1]
        return logistic_nll(decoded[:, :d], decoded[:, d:], x)


class ConvAE(nnx.Module):
    """A convolutional autoencoder: per stage of ``widths[1:]`` channels a 3x3 convolution and a 3x3
    convolution of stride 2 (the size halves, rounded up); the decoder mirrors it, each stage a 3x3
    convolution to 4C channels moved to twice the size (depth to space, as the codec's convolutional
    kind) and cropped, then a 3x3 convolution; a last one back to the image's channels, a sigmoid.
    Rows in and out are flattened images, as the dense kinds take them."""

    def __init__(self, cfg: FamilyConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        shape = tuple(cfg.image_shape)
        self.channels = shape[2] if len(shape) == 3 else 1
        chans = [self.channels, *cfg.widths[1:]]
        conv = functools.partial(nnx.Conv, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.down = nnx.List(
            [
                nnx.List([conv(a, b), conv(b, b, strides=(2, 2))])
                for a, b in zip(chans[:-1], chans[1:], strict=True)
            ]
        )
        back = chans[::-1]
        targets = [
            *back[1:-1],
            back[-2],
        ]  # each stage to the channels of the one before; the last keeps its own
        self.up = nnx.List(
            [
                nnx.List([conv(a, 4 * a), conv(a, b)])
                for a, b in zip(back[:-1], targets, strict=True)
            ]
        )
        self.out = conv(back[-2], self.channels)

    def _sizes(self):
        h, w = self.cfg.image_shape[:2]
        sizes = [(h, w)]
        for _ in self.down:
            h, w = -(-h // 2), -(-w // 2)
            sizes.append((h, w))
        return sizes

    def multiply_adds(self) -> int:
        """Per image, encoded and decoded: each kernel at every position it outputs (abstract
        models too: shapes only)."""
        pixels = [h * w for h, w in self._sizes()]
        n = len(self.down)

        def cost(conv, size: int) -> int:
            return math.prod(conv.kernel.shape) * pixels[size]

        # stage i: a convolution at size i, one of stride 2 out at size i + 1; back up, mirrored
        down = sum(cost(a, i) + cost(b, i + 1) for i, (a, b) in enumerate(self.down))
        up = sum(cost(a, n - j) + cost(b, n - j - 1) for j, (a, b) in enumerate(self.up))
        return down + up + cost(self.out, 0)

    def encode(self, x):
        h, w = self.cfg.image_shape[:2]
        y = x.reshape(len(x), h, w, self.channels)
        for same, stride in self.down:
            y = jax.nn.gelu(stride(jax.nn.gelu(same(y))))
        return y.reshape(len(x), -1)

    def decode(self, code):
        sizes = self._sizes()
        h, w = sizes[-1]
        y = code.reshape(len(code), h, w, -1)
        for (expand, same), (th, tw) in zip(self.up, sizes[-2::-1], strict=True):
            y = jax.nn.gelu(expand(y))
            n, hh, ww, c4 = y.shape
            y = (
                y.reshape(n, hh, ww, 2, 2, c4 // 4)
                .transpose(0, 1, 3, 2, 4, 5)
                .reshape(n, 2 * hh, 2 * ww, c4 // 4)
            )
            y = jax.nn.gelu(same(y[:, :th, :tw]))
        return jax.nn.sigmoid(self.out(y)).reshape(len(code), -1)


Model = DenseAE | ConvAE


def build(cfg: FamilyConfig, seed: int = 0) -> Model:
    """The model a config describes, weights from ``seed``."""
    return (ConvAE if cfg.arch == "conv" else DenseAE)(cfg, rngs=nnx.Rngs(seed))


# The objectives, as functions of arrays (tested by hand).


def mse(x_hat, x):
    """Mean over images of the mean squared error per pixel."""
    return jnp.mean((x_hat - x) ** 2)


def l1_activity(code):
    """Mean over images of the sum of |code|."""
    return jnp.mean(jnp.sum(jnp.abs(code), axis=-1))


def kl_sparsity(code, rho: float):
    """Sum over code units of KL(rho || the unit's mean activation over the batch), activations in (0, 1)."""
    mean = jnp.clip(jnp.mean(code, axis=0), 1e-6, 1 - 1e-6)
    return jnp.sum(rho * jnp.log(rho / mean) + (1 - rho) * jnp.log((1 - rho) / (1 - mean)))


def jacobian_frobenius(encode, x):
    """Mean over images of ||d encode(x_i) / d x_i||_F^2."""
    per_image = jax.vmap(jax.jacrev(lambda xi: encode(xi[None])[0]))(x)  # (N, k, d)
    return jnp.mean(jnp.sum(per_image**2, axis=(1, 2)))


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)) per image, in nats (N,)."""
    return 0.5 * jnp.sum(mean**2 + jnp.exp(log_var) - log_var - 1.0, axis=-1)


def bernoulli_nll(logits, x):
    """-log p(x | logits) per image, in nats, for pixels in [0, 1] (the cross-entropy) (N,)."""
    return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=-1)


def gaussian_nll(mean, x, log_scale):
    """-log N(x; mean, exp(log_scale)^2) per image, in nats (N,)."""
    z = (x - mean) * jnp.exp(-log_scale)
    return jnp.sum(0.5 * z**2 + log_scale + 0.5 * math.log(2 * math.pi), axis=-1)


def logistic_nll(mean, log_scale, x):
    """-log P(x | mean, scale) per image, in nats, for pixels k / 255: the mass of the logistic's bin
    of width 1/255 around each, the end bins open (PixelCNN++'s discretized logistic, one component).
    A real code length of uint8 pixels, unlike the Bernoulli and Gaussian densities (N,)."""
    log_scale = jnp.maximum(log_scale, -7.0)
    inv = jnp.exp(-log_scale)
    centred = x - mean
    plus, minus = inv * (centred + 0.5 / 255), inv * (centred - 0.5 / 255)
    log_cdf_plus = plus - jax.nn.softplus(plus)  # log sigmoid(plus): the bottom bin
    log_survival_minus = -jax.nn.softplus(minus)  # log (1 - sigmoid(minus)): the top bin
    delta = jax.nn.sigmoid(plus) - jax.nn.sigmoid(minus)
    mid = inv * centred  # where delta underflows: the density at the centre times the bin width
    log_mid = mid - log_scale - 2.0 * jax.nn.softplus(mid) - math.log(255.0)
    inner = jnp.where(delta > 1e-5, jnp.log(jnp.maximum(delta, 1e-12)), log_mid)
    log_p = jnp.where(
        x < 0.5 / 255, log_cdf_plus, jnp.where(x > 1 - 0.5 / 255, log_survival_minus, inner)
    )
    return -jnp.sum(log_p, axis=-1)


# UMAP's curve for min_dist 0.1, spread 1: q(d) = 1 / (1 + A d^(2B)) (umap-learn's find_ab_params).
UMAP_A, UMAP_B = 1.577, 0.895


def umap_cross_entropy(code, neighbour, negatives: int = 5, key=None):
    """Mean over pairs of UMAP's fuzzy cross-entropy in the code: -log q for each (code, neighbour)
    pair of the graph, -log(1 - q) for ``negatives`` pairings of each code with others of the batch
    (shifted, not drawn: the batch is already a random sample) (Sainburg et al. 2021, parametric UMAP)."""

    def q(a, b):
        d2 = jnp.sum((a - b) ** 2, axis=-1)
        return 1.0 / (1.0 + UMAP_A * (d2 + 1e-12) ** UMAP_B)

    attract = -jnp.log(jnp.clip(q(code, neighbour), 1e-4, 1.0))
    repel = sum(
        -jnp.log(jnp.clip(1.0 - q(code, jnp.roll(neighbour, s + 1, axis=0)), 1e-4, 1.0))
        for s in range(negatives)
    )
    return jnp.mean(attract + repel)


def neighbour_graph(x: np.ndarray, k: int = 15, dims: int = 50) -> np.ndarray:
    """Each row's ``k`` nearest other rows (N, k), by Euclidean distance in its top ``dims`` principal
    components (exact, in blocks: 60,000 images take ~20 s on two cores)."""
    x = np.asarray(x, np.float32)
    centred = x - x.mean(0)
    basis = np.linalg.svd(centred[:: max(1, len(x) // 10_000)], full_matrices=False)[2][:dims]
    p = centred @ basis.T
    sq = (p**2).sum(1)
    out = np.empty((len(p), k), np.int64)
    for start in range(0, len(p), 2048):
        block = p[start : start + 2048]
        d = sq[start : start + 2048, None] - 2 * block @ p.T + sq[None]
        d[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
        out[start : start + 2048] = np.argpartition(d, k, axis=1)[:, :k]
    return out


def corrupt(x, key, noise: float, mask: float, blind: bool = False):
    """The denoising kind's input: Gaussian noise of σ ``noise`` (``blind``: of a σ drawn per image
    from [0, noise]) and/or a ``mask`` share of pixels zeroed."""
    k1, k2, k3 = jax.random.split(key, 3)
    if noise:
        sigma = noise * jax.random.uniform(k3, (len(x), 1)) if blind else noise
        x = x + sigma * jax.random.normal(k1, x.shape)
    if mask:
        x = jnp.where(jax.random.uniform(k2, x.shape) < mask, 0.0, x)
    return x


def loss_fn(model: Model, batch, key):
    """(loss, metrics) of one batch of pixels (N, d) in [0, 1], as the kind says; with ``neighbours``,
    the batch is (2, N, d): images and one graph neighbour of each."""
    cfg = model.cfg
    if cfg.neighbours:
        x, near = batch
        loss, metrics = _objective(model, x, key)
        code, near_code = model.encode(x), model.encode(near)
        if cfg.kind == "variational":
            code, near_code = code[0], near_code[0]
        penalty = cfg.neighbours * umap_cross_entropy(code, near_code)
        metrics = {**metrics, "neighbours": penalty, "loss": loss + penalty}
        return loss + penalty, metrics
    return _objective(model, batch, key)


def _objective(model: Model, x, key):
    cfg = model.cfg
    if cfg.kind == "variational":
        mean, log_var = model.encode(x)
        code = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
        nll = model.nll(model.decode(code), x)
        kl = gaussian_kl(mean, log_var)
        loss = jnp.mean(nll + kl)
        return loss, {"loss": loss, "nll": jnp.mean(nll), "kl": jnp.mean(kl)}
    source = corrupt(x, key, cfg.noise, cfg.mask, cfg.blind) if cfg.kind == "denoising" else x
    code = model.encode(source)
    loss = mse(model.decode(code), x)
    metrics = {"mse": loss}
    if cfg.kind == "sparse":
        penalty = cfg.l1 * l1_activity(code) + cfg.beta * kl_sparsity(code, cfg.rho)
        loss, metrics["penalty"] = loss + penalty, penalty
    if cfg.kind == "contractive" and cfg.contraction:
        penalty = cfg.contraction * jacobian_frobenius(model.encode, source)
        loss, metrics["penalty"] = loss + penalty, penalty
    metrics["loss"] = loss
    return loss, metrics


def pixels(images) -> np.ndarray:
    """uint8 images (N, ...) as float32 rows in [0, 1]."""
    a = np.asarray(images)
    return (a.reshape(len(a), -1) / 255.0).astype(np.float32)


def train(
    images,
    cfg: FamilyConfig,
    *,
    steps: int = 2000,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    log=print,
) -> Model:
    """Train a model of ``cfg.kind`` on uint8 images with the engine's step (Adam, cosine decay)."""
    x = pixels(images)
    if x.shape[1] != cfg.widths[0]:
        raise ValueError(
            f"images of {x.shape[1]} pixels do not fit widths starting at {cfg.widths[0]}"
        )
    model = build(cfg, seed)
    graphdef, state = nnx.split(model)
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(1, steps), alpha=0.05))
    opt_state = tx.init(state)
    step_fn = engine.make_step(graphdef, tx, loss_fn)
    rng, key = np.random.default_rng(seed), jax.random.key(seed)
    graph = neighbour_graph(x) if cfg.neighbours else None
    for step in range(steps):
        rows = rng.integers(0, len(x), batch_size)
        if graph is None:
            batch = jnp.asarray(x[rows])
        else:
            batch = jnp.asarray(
                np.stack([x[rows], x[graph[rows, rng.integers(0, graph.shape[1], batch_size)]]])
            )
        state, opt_state, metrics = step_fn(state, opt_state, batch, jax.random.fold_in(key, step))
        if step % 500 == 0 or step == steps - 1:
            log(
                f"step {step}: "
                + ", ".join(f"{k} {float(v):.4f}" for k, v in jax.device_get(metrics).items())
            )
    return nnx.merge(graphdef, state)


# Model files: "AECF" and one msgpack map, parsed as strictly as codec models (never pickle).

MAGIC = b"AECF"
FORMAT = 1
MAX_BYTES = 64 << 20
# What a file may ask to be built, all checked before anything is: the bundled models have 3 or 4
# widths, none above 784, and 0.93 million parameters at most.
MAX_WIDTHS = 16  # input, hidden..., code: 15 layers each way
MAX_WIDTH = 1 << 16  # a layer's units or a stage's channels (a 256 x 256 grey image: 65,536 inputs)
MAX_PARAMS = MAX_BYTES // 2  # what a file of float16 weights can hold
# Multiply-adds per input value of encoding and decoding an image: the bundled models need 1,190
# (dense) and 94,000 (convolutional); a file may ask 10x the most.
MAX_MULTIPLY_ADDS_PER_VALUE = 1_000_000


def _flat(model: Model):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(nnx.state(model, nnx.Param))
    return [(jax.tree_util.keystr(p), leaf) for p, leaf in leaves], treedef


def dumps(model: Model, *, name: str, meta: dict | None = None) -> bytes:
    """A family model's file: its kind and widths, every parameter (float16: half the size, and these
    models' uses never need more; ``loads`` computes in float32), the name and meta."""
    body = {
        "format": FORMAT,
        "name": name,
        "family": {
            **dataclasses.asdict(model.cfg),
            "widths": list(model.cfg.widths),
            "image_shape": list(model.cfg.image_shape),
        },
        "params": {
            path: modelfile.encode_array(np.asarray(leaf, np.float16))
            for path, leaf in _flat(model)[0]
        },
        "meta": meta or {},
    }
    body["fingerprint"] = modelfile.fingerprint(body)
    return MAGIC + msgpack.packb(body, use_bin_type=True)


def loads(raw: bytes, *, what: str = "model") -> tuple[Model, dict]:
    """(model, body without params) from a family model file's bytes.

    Raises:
        FormatError (and subclasses): not such a file, damaged, a newer format, shapes that do not
        match the architecture its config describes; LimitError: a config that asks for more layers,
        units or parameters than a model may have (refused before anything is built).
    """
    body = _body(raw, what)
    cfg = _config(body["family"], what)
    _check_meta(body["meta"], cfg, what)
    model = _build_from(cfg, body["params"], what)
    body.pop("params")
    return model, body


def _body(raw: bytes, what: str) -> dict:
    """The file's map, its fields and fingerprint checked."""
    if len(raw) > MAX_BYTES:
        raise LimitError(f"{what}: {len(raw)} bytes is larger than the {MAX_BYTES}-byte limit")
    if raw[:4] != MAGIC:
        raise FormatError(f"{what}: not an aecodec autoencoder file (bad magic)")
    try:
        end = check_structure(raw, what=what, max_values=10_000, max_depth=6, start=4)
    except TruncatedError:
        raise TruncatedError(f"{what}: autoencoder file is truncated") from None
    if end != len(raw):
        raise FormatError(f"{what}: autoencoder file has bytes after its end")
    try:
        body = msgpack.unpackb(
            raw[4:],
            raw=False,
            strict_map_key=True,
            max_bin_len=MAX_BYTES,
            max_str_len=1 << 16,
            max_array_len=4096,
            max_map_len=1000,
        )
    except (ValueError, msgpack.UnpackException) as e:  # a limit passed, bad UTF-8, ...
        raise FormatError(f"{what}: autoencoder file cannot be read: {e}") from None
    if not isinstance(body, dict) or set(body) != {
        "format",
        "name",
        "family",
        "params",
        "meta",
        "fingerprint",
    }:
        raise FormatError(f"{what}: autoencoder file is missing fields or has unknown ones")
    if type(body["format"]) is not int or body["format"] != FORMAT:
        raise FormatError(f"{what}: autoencoder format {body['format']!r:.20} is not {FORMAT}")
    for field in ("family", "params", "meta"):
        if not isinstance(body[field], dict):
            kind = type(body[field]).__name__
            raise FormatError(f"{what}: autoencoder field {field} is a {kind}, not a map")
    claimed = body.pop("fingerprint")
    if modelfile.fingerprint(body) != claimed:
        raise FormatError(f"{what}: fingerprint does not match its contents (damaged file)")
    body["fingerprint"] = claimed
    return body


def _sizes(value, field: str, what: str, *, most: int = MAX_WIDTHS) -> tuple[int, ...]:
    """A stored list of sizes (widths, an image's shape), whole numbers from 1 to MAX_WIDTH."""
    # type(), not isinstance: msgpack's true is a Python bool, which passes for the int 1
    if not isinstance(value, list) or not all(type(v) is int and v >= 1 for v in value):
        raise FormatError(
            f"{what}: {field} {str(value)[:40]} is not a list of whole numbers from 1"
        )
    if len(value) > most:
        raise LimitError(
            f"{what}: {field} has {len(value)} entries, more than the {most} a model may have"
        )
    if max(value, default=1) > MAX_WIDTH:
        raise LimitError(
            f"{what}: {field} holds {max(value)}, more than the {MAX_WIDTH} a model may have"
        )
    return tuple(value)


def _config(family: dict, what: str) -> FamilyConfig:
    """The stored architecture, its sizes checked before anything is built."""
    widths = _sizes(family.get("widths"), "family.widths", what)
    image_shape = _sizes(family.get("image_shape", []), "family.image_shape", what, most=3)
    try:
        return FamilyConfig(**{**family, "widths": widths, "image_shape": image_shape})
    except (TypeError, ValueError) as e:
        raise FormatError(f"{what}: bad autoencoder config: {e}") from None


def _check_meta(meta: dict, cfg: FamilyConfig, what: str) -> None:
    """The recorded image shape (what ``sample`` and ``denoise`` reshape to) fits the model's
    input."""
    if meta.get("image_shape"):
        shape = _sizes(meta["image_shape"], "meta.image_shape", what, most=3)
        if len(shape) < 2 or math.prod(shape) != cfg.widths[0]:
            raise FormatError(
                f"{what}: meta.image_shape {list(shape)} is not (H, W[, C]) of the "
                f"model's {cfg.widths[0]} inputs"
            )


def _build_from(cfg: FamilyConfig, params: dict, what: str) -> Model:
    """The model of ``cfg`` holding the file's ``params``: its shapes derived without allocating
    (``nnx.eval_shape``), its size bounded, every array checked, before any weight is made."""
    model = nnx.eval_shape(lambda: build(cfg))
    flat, treedef = _flat(model)
    total = sum(math.prod(leaf.shape) for _, leaf in flat)
    if total > MAX_PARAMS:
        raise LimitError(
            f"{what}: family.widths ask for {total:,} parameters, more than the "
            f"{MAX_PARAMS:,} a model may have"
        )
    cost = model.multiply_adds() // cfg.widths[0]
    if cost > MAX_MULTIPLY_ADDS_PER_VALUE:
        raise LimitError(
            f"{what}: family.widths ask for {cost:,} multiply-adds per input value, "
            f"more than the {MAX_MULTIPLY_ADDS_PER_VALUE:,} a model may"
        )
    if set(params) != {path for path, _ in flat}:
        raise FormatError(f"{what}: parameters do not match the architecture")
    values = []
    for path, leaf in flat:
        value = modelfile.decode_array(params[path], what=f"{what}: {path}", shape=leaf.shape)
        if value.dtype.kind != "f" or not np.isfinite(value).all():
            raise FormatError(f"{what}: parameter {path} is not finite floating point")
        values.append(jnp.asarray(value, jnp.float32))
    # every parameter is replaced: none stays abstract
    nnx.update(model, jax.tree_util.tree_unflatten(treedef, values))
    return model


def save(model: Model, path, *, name: str, meta: dict | None = None, force: bool = False) -> None:
    """Write ``model`` as an .aecf file (refused where ``path`` exists, unless ``force``)."""
    from codec.io.fileio import write_atomic

    write_atomic(Path(path), dumps(model, name=name, meta=meta), force=force)


def load(path) -> tuple[Model, dict]:
    """``loads`` of a model file, read as ``modelfile.read`` reads (regular files, at most
    MAX_BYTES)."""
    return loads(modelfile.read(path, limit=MAX_BYTES), what=str(path))


# What the models are for: maps, clean images, samples.


def _inputs(model: Model, images) -> np.ndarray:
    """A batch of images as the model's input rows, refused (InputError) where their size is not its."""
    from codec.errors import InputError

    a = np.asarray(images)
    if a.ndim < 2 or a[0].size != model.cfg.widths[0]:
        raise InputError(
            f"images of shape {a.shape[1:]} ({a[0].size if a.ndim else 0} values each); the model "
            f"takes {model.cfg.widths[0]} values per image (a batch (N, H, W[, C]))"
        )
    return pixels(a)


def image_shape(model: Model, body: dict | None = None) -> tuple[int, ...]:
    """The shape of the images a model was trained on (recorded in its meta; else square)."""
    recorded = (body or {}).get("meta", {}).get("image_shape")
    if recorded:
        return tuple(recorded)
    side = math.isqrt(model.cfg.widths[0])
    if side * side != model.cfg.widths[0]:
        raise FormatError(
            f"the model's {model.cfg.widths[0]} inputs are not a square image: its "
            "file should record the shape (meta.image_shape)"
        )
    return side, side


def embed(model: Model, images) -> np.ndarray:
    """The code of each image (N, k), float32; the variational kind's mean."""
    out = []
    for part in np.array_split(_inputs(model, images), max(1, len(images) // 4096)):
        code = model.encode(jnp.asarray(part))
        out.append(np.asarray(code[0] if model.cfg.kind == "variational" else code, np.float32))
    return np.concatenate(out)


def _as_uint8(x) -> np.ndarray:
    # NaN (weights that overflow float32) to 0: its cast is undefined, so pixels differ by machine
    scaled = np.nan_to_num(np.round(np.asarray(x, np.float64) * 255))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _decoded(model: Model, code) -> np.ndarray:
    out = model.decode(jnp.asarray(code))
    if model.cfg.kind == "variational" and model.cfg.decoder == "bernoulli":
        out = jax.nn.sigmoid(out)  # the decoder's mean image
    if model.cfg.kind == "variational" and model.cfg.decoder == "logistic":
        out = out[:, : model.cfg.widths[0]]  # the logistic's means
    return np.asarray(out)


def denoise(model: Model, images) -> np.ndarray:
    """Each image through the model (a denoising one removes the noise it was trained on): uint8, same shape."""
    a = np.asarray(images)
    code = embed(model, a)
    return _as_uint8(_decoded(model, code)).reshape(a.shape)


def sample(model: Model, n: int, *, seed: int = 0, shape=None) -> np.ndarray:
    """``n`` new images (uint8) from the variational kind's prior, N(0, I)."""
    if model.cfg.kind != "variational":
        raise ValueError(f"sampling needs a variational model, not a {model.cfg.kind} one")
    z = np.random.default_rng(seed).normal(size=(n, model.cfg.widths[-1])).astype(np.float32)
    return _as_uint8(_decoded(model, z)).reshape(n, *(shape or image_shape(model)))


def interpolate(model: Model, a: np.ndarray, b: np.ndarray, steps: int = 8) -> np.ndarray:
    """``steps`` images (uint8) decoded along the straight line between the codes of images ``a`` and ``b``."""
    ca, cb = embed(model, np.stack([a, b]))
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return _as_uint8(_decoded(model, (1 - t) * ca + t * cb)).reshape(steps, *a.shape)


def grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """Grey images (N, H, W) tiled into one image, ``columns`` wide (blank where the last row is short)."""
    n, h, w = images.shape[:3]
    rows = -(-n // columns)
    out = np.zeros((rows * h, columns * w), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = image
    return out


# Anomaly scores: code length under the model, corrected for the image's complexity.


def code_length_bits(model: Model, images) -> np.ndarray:
    """Bits per image under a variational model: -log2 p(x | the code's mean) plus the code's KL in bits
    (N,). With the ``logistic`` decoder this is a code length of the uint8 pixels (bits-back coding
    reaches it up to the sampling of the code); with the others only a density's."""
    if model.cfg.kind != "variational":
        raise ValueError(
            f"anomaly scores need a variational model (a code length), not a {model.cfg.kind} one"
        )
    out = []
    for part in np.array_split(_inputs(model, images), max(1, len(images) // 4096)):
        x = jnp.asarray(part)
        mean, log_var = model.encode(x)
        out.append(
            np.asarray(
                (model.nll(model.decode(mean), x) + gaussian_kl(mean, log_var)) / math.log(2),
                np.float64,
            )
        )
    return np.concatenate(out)


def bounds_nats(
    model: Model, images, *, samples: int = 100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(ELBO, importance-weighted bound) of -log p(x) per image, in nats (Burda et al. 2016, k = ``samples``):
    the ELBO averaged over the samples, and -log of the mean importance weight p(x, z) / q(z | x)."""
    if model.cfg.kind != "variational":
        raise ValueError(f"likelihood bounds need a variational model, not a {model.cfg.kind} one")
    x_all = _inputs(model, images)
    key = jax.random.key(seed)

    @jax.jit
    def one(x, key):
        mean, log_var = model.encode(x)
        eps = jax.random.normal(key, (samples, *mean.shape))
        z = mean + jnp.exp(0.5 * log_var) * eps
        log_q = jnp.sum(-0.5 * eps**2 - 0.5 * log_var - 0.5 * math.log(2 * math.pi), axis=-1)
        log_prior = jnp.sum(-0.5 * z**2 - 0.5 * math.log(2 * math.pi), axis=-1)
        log_px = -jax.vmap(lambda zs: model.nll(model.decode(zs), x))(z)
        log_w = log_px + log_prior - log_q  # (samples, N)
        return -jnp.mean(log_w, 0), -(jax.scipy.special.logsumexp(log_w, 0) - math.log(samples))

    elbo, iwae = [], []
    for i, start in enumerate(range(0, len(x_all), 256)):
        e, w = one(jnp.asarray(x_all[start : start + 256]), jax.random.fold_in(key, i))
        elbo.append(np.asarray(e, np.float64))
        iwae.append(np.asarray(w, np.float64))
    return np.concatenate(elbo), np.concatenate(iwae)


def generic_bits(images) -> np.ndarray:
    """Bits per image of a generic lossless coder, the image's complexity: JPEG XL lossless at effort
    7 (Pillow with pillow-jxl-plugin). Serrà et al. found the better the generic coder, the better the
    correction (FLIF, JPEG XL's forerunner, did best; PNG worst)."""
    import io

    import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
    from PIL import Image

    out = []
    for image in np.asarray(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JXL", lossless=True, effort=7)
        out.append(8.0 * buffer.tell())
    return np.asarray(out)


def scores(model: Model, images, *, complexity: bool = True) -> np.ndarray:
    """Higher = more anomalous: the code length under the model minus (``complexity``) a generic lossless
    coder's, so that simple images are not called normal merely for being simple (Serrà et al. 2020,
    "Input complexity and out-of-distribution detection with likelihood-based generative models").

    The model's side must be a code length of the pixels (a variational model with the ``logistic``
    decoder); with a continuous density (Bernoulli, Gaussian) the difference ranks by the generic
    coder's bits alone (measured: one-class AUROC 0.537 against 0.910 uncorrected)."""
    if complexity and model.cfg.decoder != "logistic":
        raise ValueError(
            "a complexity-corrected score needs a code length: a variational model with "
            "--decoder logistic"
        )
    bits = code_length_bits(model, images)
    return bits - generic_bits(images) if complexity else bits


def threshold(quantiles, percentile: float, *, what: str = "score quantiles") -> float:
    """The score at ``percentile`` (0-100) of the training images', from the 1,001 quantiles a
    scorer's file keeps (0, 0.1, ..., 100 percent), interpolated.

    Raises:
        ValueError: ``percentile`` out of range; FormatError (a ValueError) for quantiles that
        ``checked_quantiles`` refuses, naming ``what``.
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile {percentile} is not between 0 and 100")
    q = checked_quantiles(quantiles, what=what)
    return float(np.interp(percentile, np.linspace(0, 100, len(q)), q))


def checked_quantiles(quantiles, *, what: str = "score quantiles") -> np.ndarray:
    """``quantiles`` as float64, refused unless two or more finite numbers in increasing order, as
    ``score_quantiles`` makes them: a NaN threshold flags nothing and is no number to print.

    Raises:
        FormatError: naming ``what`` (a scorer file's, read from its meta).
    """
    from codec.errors import FormatError

    if isinstance(quantiles, np.ndarray):
        numeric = quantiles.dtype.kind in "iuf"
    else:
        number = (int, float, np.integer, np.floating)
        numeric = isinstance(quantiles, (list, tuple)) and all(
            isinstance(v, number) and not isinstance(v, bool) for v in quantiles
        )
    if not numeric or np.ndim(quantiles) != 1 or len(quantiles) < 2:
        raise FormatError(f"{what}: score_quantiles is not a list of two or more numbers")
    q = np.asarray(quantiles, np.float64)
    if not np.isfinite(q).all():
        raise FormatError(f"{what}: score_quantiles holds NaN or infinity (its training diverged?)")
    if np.any(np.diff(q) < 0):
        raise FormatError(f"{what}: score_quantiles is not in increasing order")
    return q


def score_quantiles(model: Model, images, *, limit: int = 10_000) -> list[float]:
    """The 1,001 quantiles of the scores of (up to ``limit`` of) the training images, kept in the
    scorer's file.

    Raises:
        ValueError: a score is NaN or infinite (the training diverged): no scorer is made of it.
    """
    chosen = np.asarray(images)[np.random.default_rng(0).permutation(len(images))[:limit]]
    values = scores(model, chosen)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(
            f"{bad} of the {len(values)} training images score NaN or infinity: the "
            "training diverged (a lower learning rate may help)"
        )
    return [float(v) for v in np.quantile(values, np.linspace(0, 1, 1001))]


# The package's functions (codec.embed, ...): a model given, a file, or the bundled one for the purpose.

BUNDLED = {
    "embed": "fmnist-map",
    "denoise": "fmnist-denoiser",
    "sample": "fmnist-vae",
    "score": "fmnist-vae",
}


def bundled_path(purpose: str) -> Path:
    return Path(__file__).parent.parent / "pretrained" / f"{BUNDLED[purpose]}.aecf"


def resolve(model, purpose: str) -> tuple[Model, dict]:
    """(model, body) from a model, a file's path, or None: the bundled model for ``purpose``."""
    if isinstance(model, (DenseAE, ConvAE)):
        return model, {"meta": {}}
    return load(bundled_path(purpose) if model is None else model)


@dataclasses.dataclass(frozen=True)
class Anomalies:
    """Scores (bits: the model's code length minus JPEG XL's), the threshold at ``percentile`` of the
    model's training images' scores, and a flag per image (score above the threshold)."""

    scores: np.ndarray
    threshold: float
    percentile: float
    flags: np.ndarray


def anomalies(images, model=None, *, percentile: float = 99.0, quantiles=None) -> Anomalies:
    """Each image's anomaly score under a scorer (default: the bundled Fashion-MNIST one), flagged above
    ``percentile`` of the scores of its training images (their ``quantiles``: a scorer file keeps them;
    give them with a model object, from ``score_quantiles``).

    Raises:
        ValueError: not a scorer, ``percentile`` out of range, a score that is NaN or infinite (the
        model's weights); FormatError (a ValueError) for quantiles ``checked_quantiles`` refuses.
    """
    scorer, body = resolve(model, "score")
    given = quantiles is not None
    if not given:
        quantiles = body["meta"].get("score_quantiles")
    if quantiles is None or (isinstance(quantiles, (list, tuple)) and not quantiles):
        raise ValueError(
            "not an anomaly scorer: train one with aecodec train --kind variational "
            "--decoder logistic"
        )
    what = "the quantiles given" if given else str(model or bundled_path("score"))
    limit = threshold(quantiles, percentile, what=what)  # refused before any image is scored
    values = scores(scorer, images)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(
            f"the model scores {bad} of the {len(values)} images NaN or infinity: its "
            "weights hold NaN or infinity"
        )
    return Anomalies(values, limit, percentile, values > limit)
