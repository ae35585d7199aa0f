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
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from codec import engine

KINDS = ("plain", "linear", "denoising", "sparse", "contractive", "variational")


@dataclasses.dataclass(frozen=True)
class FamilyConfig:
    kind: str = "plain"
    widths: tuple[int, ...] = (784, 128, 32, 2)  # input, hidden..., code
    noise: float = 0.0  # denoising: Gaussian σ on [0, 1] pixels
    mask: float = 0.0  # denoising: share of input pixels set to 0
    l1: float = 0.0  # sparse: weight of the mean absolute activation of the code
    rho: float = 0.05  # sparse: target mean activation of each code unit ...
    beta: float = 0.0  # ... and the weight of its KL divergence
    contraction: float = 0.0  # contractive: weight of ||d code / d x||_F^2
    decoder: str = "bernoulli"  # variational: "bernoulli" or "gaussian"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {KINDS}")
        if len(self.widths) < 2 or any(w < 1 for w in self.widths):
            raise ValueError(f"widths {self.widths} should be at least an input and a code width, all positive")
        if self.decoder not in ("bernoulli", "gaussian"):
            raise ValueError(f"decoder {self.decoder!r} is not 'bernoulli' or 'gaussian'")
        if not (self.noise >= 0 and 0 <= self.mask < 1 and self.l1 >= 0 and self.beta >= 0 and 0 < self.rho < 1
                and self.contraction >= 0):
            raise ValueError("noise, l1, beta and contraction are >= 0; mask in [0, 1); rho in (0, 1)")


class DenseAE(nnx.Module):
    """Encoder widths[0] -> ... -> widths[-1] (twice that for the variational mean and log-variance),
    decoder back; GELU between layers (none for ``linear``), a sigmoid code for ``sparse``."""

    def __init__(self, cfg: FamilyConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        w = list(cfg.widths)
        out = [*w[1:-1], 2 * w[-1] if cfg.kind == "variational" else w[-1]]
        self.encoder = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(w[:-1], out, strict=True)])
        back = w[::-1]
        self.decoder = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(back[:-1], back[1:], strict=True)])
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
        """Pixels in [0, 1] (``variational`` with a Bernoulli decoder: their logits)."""
        h = self._through(self.decoder, code)
        if self.cfg.kind == "linear" or (self.cfg.kind == "variational" and self.cfg.decoder == "bernoulli"):
            return h
        return jax.nn.sigmoid(h)


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


def corrupt(x, key, noise: float, mask: float):
    """The denoising kind's input: Gaussian noise of σ ``noise`` and/or a ``mask`` share of pixels zeroed."""
    k1, k2 = jax.random.split(key)
    if noise:
        x = x + noise * jax.random.normal(k1, x.shape)
    if mask:
        x = jnp.where(jax.random.uniform(k2, x.shape) < mask, 0.0, x)
    return x


def loss_fn(model: DenseAE, x, key):
    """(loss, metrics) of one batch of pixels (N, d) in [0, 1], as the kind says."""
    cfg = model.cfg
    if cfg.kind == "variational":
        mean, log_var = model.encode(x)
        code = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
        out = model.decode(code)
        nll = bernoulli_nll(out, x) if cfg.decoder == "bernoulli" else gaussian_nll(out, x, model.log_scale[...])
        kl = gaussian_kl(mean, log_var)
        loss = jnp.mean(nll + kl)
        return loss, {"loss": loss, "nll": jnp.mean(nll), "kl": jnp.mean(kl)}
    source = corrupt(x, key, cfg.noise, cfg.mask) if cfg.kind == "denoising" else x
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


def train(images, cfg: FamilyConfig, *, steps: int = 2000, batch_size: int = 128, learning_rate: float = 1e-3,
          seed: int = 0, log=print) -> DenseAE:
    """Train a model of ``cfg.kind`` on uint8 images with the engine's step (Adam, cosine decay)."""
    x = pixels(images)
    if x.shape[1] != cfg.widths[0]:
        raise ValueError(f"images of {x.shape[1]} pixels do not fit widths starting at {cfg.widths[0]}")
    model = DenseAE(cfg, rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(1, steps), alpha=0.05))
    opt_state = tx.init(state)
    step_fn = engine.make_step(graphdef, tx, loss_fn)
    rng, key = np.random.default_rng(seed), jax.random.key(seed)
    for step in range(steps):
        batch = jnp.asarray(x[rng.integers(0, len(x), batch_size)])
        state, opt_state, metrics = step_fn(state, opt_state, batch, jax.random.fold_in(key, step))
        if step % 500 == 0 or step == steps - 1:
            log(f"step {step}: " + ", ".join(f"{k} {float(v):.4f}" for k, v in jax.device_get(metrics).items()))
    return nnx.merge(graphdef, state)


# Model files: "AECF" and one msgpack map, parsed as strictly as codec models (never pickle).

MAGIC = b"AECF"
FORMAT = 1
MAX_BYTES = 64 << 20


def _flat(model: DenseAE):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(nnx.state(model, nnx.Param))
    return [(jax.tree_util.keystr(p), leaf) for p, leaf in leaves], treedef


def dumps(model: DenseAE, *, name: str, meta: dict | None = None) -> bytes:
    """A family model's file: its kind and widths, every parameter (float32), the name and meta."""
    import msgpack

    from codec import modelfile

    body = {"format": FORMAT, "name": name, "family": {**dataclasses.asdict(model.cfg), "widths": list(model.cfg.widths)},
            "params": {path: modelfile.encode_array(np.asarray(leaf, np.float32)) for path, leaf in _flat(model)[0]},
            "meta": meta or {}}
    body["fingerprint"] = modelfile.fingerprint(body)
    return MAGIC + msgpack.packb(body, use_bin_type=True)


def loads(raw: bytes, *, what: str = "model") -> tuple[DenseAE, dict]:
    """(model, body without params) from a family model file's bytes.

    Raises:
        FormatError (and subclasses): not such a file, damaged, a newer format, shapes that do not
        match the architecture its config describes.
    """
    import msgpack

    from bitstream.walk import check_structure
    from codec import modelfile
    from codec.errors import FormatError, LimitError, TruncatedError

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
    body = msgpack.unpackb(raw[4:], raw=False, strict_map_key=True, max_bin_len=MAX_BYTES, max_str_len=1 << 16,
                           max_array_len=1000, max_map_len=1000)
    if not isinstance(body, dict) or set(body) != {"format", "name", "family", "params", "meta", "fingerprint"}:
        raise FormatError(f"{what}: autoencoder file is missing fields or has unknown ones")
    if body["format"] != FORMAT:
        raise FormatError(f"{what}: autoencoder format {body['format']!r} is not {FORMAT}")
    claimed = body.pop("fingerprint")
    if modelfile.fingerprint(body) != claimed:
        raise FormatError(f"{what}: fingerprint does not match its contents (damaged file)")
    try:
        family = dict(body["family"])
        cfg = FamilyConfig(**{**family, "widths": tuple(family["widths"])})
    except (TypeError, ValueError, KeyError) as e:
        raise FormatError(f"{what}: bad autoencoder config: {e}") from None
    if not all(isinstance(w, int) and w <= 1 << 16 for w in cfg.widths):
        raise FormatError(f"{what}: widths out of range")
    model = DenseAE(cfg, rngs=nnx.Rngs(0))
    flat, treedef = _flat(model)
    if set(body["params"]) != {path for path, _ in flat}:
        raise FormatError(f"{what}: parameters do not match the architecture")
    values = [jnp.asarray(modelfile.decode_array(body["params"][path], what=f"{what}: {path}", shape=leaf.shape))
              for path, leaf in flat]
    nnx.update(model, jax.tree_util.tree_unflatten(treedef, values))
    body.pop("params")
    body["fingerprint"] = claimed
    return model, body


def save(model: DenseAE, path, *, name: str, meta: dict | None = None) -> None:
    from codec.fileio import write_atomic

    write_atomic(Path(path), dumps(model, name=name, meta=meta), force=True)


def load(path) -> tuple[DenseAE, dict]:
    return loads(Path(path).read_bytes(), what=str(path))


# What the models are for: maps, clean images, samples.

def image_shape(model: DenseAE, body: dict | None = None) -> tuple[int, ...]:
    """The shape of the images a model was trained on (recorded in its meta; else square)."""
    recorded = (body or {}).get("meta", {}).get("image_shape")
    if recorded:
        return tuple(recorded)
    side = math.isqrt(model.cfg.widths[0])
    if side * side != model.cfg.widths[0]:
        raise ValueError(f"the model's {model.cfg.widths[0]} inputs are not a square image: its file should record the shape")
    return side, side


def embed(model: DenseAE, images) -> np.ndarray:
    """The code of each image (N, k), float32; the variational kind's mean."""
    out = []
    for part in np.array_split(pixels(images), max(1, len(images) // 4096)):
        code = model.encode(jnp.asarray(part))
        out.append(np.asarray(code[0] if model.cfg.kind == "variational" else code, np.float32))
    return np.concatenate(out)


def _as_uint8(x) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, np.float64) * 255), 0, 255).astype(np.uint8)


def _decoded(model: DenseAE, code) -> np.ndarray:
    out = model.decode(jnp.asarray(code))
    if model.cfg.kind == "variational" and model.cfg.decoder == "bernoulli":
        out = jax.nn.sigmoid(out)  # the decoder's mean image
    return np.asarray(out)


def denoise(model: DenseAE, images) -> np.ndarray:
    """Each image through the model (a denoising one removes the noise it was trained on): uint8, same shape."""
    a = np.asarray(images)
    code = embed(model, a)
    return _as_uint8(_decoded(model, code)).reshape(a.shape)


def sample(model: DenseAE, n: int, *, seed: int = 0, shape=None) -> np.ndarray:
    """``n`` new images (uint8) from the variational kind's prior, N(0, I)."""
    if model.cfg.kind != "variational":
        raise ValueError(f"sampling needs a variational model, not a {model.cfg.kind} one")
    z = np.random.default_rng(seed).normal(size=(n, model.cfg.widths[-1])).astype(np.float32)
    return _as_uint8(_decoded(model, z)).reshape(n, *(shape or image_shape(model)))


def interpolate(model: DenseAE, a: np.ndarray, b: np.ndarray, steps: int = 8) -> np.ndarray:
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

def code_length_bits(model: DenseAE, images) -> np.ndarray:
    """Bits per image under a variational model: its negative ELBO (the code at its mean) over ln 2 (N,)."""
    if model.cfg.kind != "variational":
        raise ValueError(f"anomaly scores need a variational model (a code length), not a {model.cfg.kind} one")
    out = []
    for part in np.array_split(pixels(images), max(1, len(images) // 4096)):
        x = jnp.asarray(part)
        mean, log_var = model.encode(x)
        decoded = model.decode(mean)
        nll = bernoulli_nll(decoded, x) if model.cfg.decoder == "bernoulli" else gaussian_nll(decoded, x, model.log_scale[...])
        out.append(np.asarray((nll + gaussian_kl(mean, log_var)) / math.log(2), np.float64))
    return np.concatenate(out)


def generic_bits(images) -> np.ndarray:
    """Bits per image of a generic lossless coder, PNG at its strongest (Pillow): the image's complexity."""
    import io

    from PIL import Image

    out = []
    for image in np.asarray(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", optimize=True)
        out.append(8.0 * buffer.tell())
    return np.asarray(out)


def anomaly_scores(model: DenseAE, images, *, complexity: bool = False) -> np.ndarray:
    """Higher = more anomalous: the code length under the model, minus (with ``complexity``) a generic
    coder's, so that simple images are not called normal merely for being simple (Serrà et al. 2020,
    "Input complexity and out-of-distribution detection with likelihood-based generative models").

    Measured (one-class Fashion-MNIST, a Gaussian VAE 784-256-16 trained 1,500 steps on one class):
    the code length alone gives AUROC 0.906, 0.986, 0.888, 0.839 for classes 0, 1, 5, 8; minus PNG's
    bits, 0.691, 0.197, 0.317, 0.665. A VAE's continuous density is no discrete code length: its bits
    vary far less between images than PNG's, so the difference ranks by PNG's bits alone. Hence
    ``complexity`` is off by default until the model's side is a real code length (aecodec's own
    lossless pixel coder trained on the data, as the issue suggests)."""
    bits = code_length_bits(model, images)
    return bits - generic_bits(images) if complexity else bits
