"""The classic autoencoders' configuration and networks: one config, dense or convolutional maps.

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

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from codec.family.losses import bernoulli_nll, gaussian_nll, logistic_nll

KINDS = ("plain", "linear", "denoising", "sparse", "contractive", "variational")
DECODERS = ("bernoulli", "gaussian", "logistic")


@dataclasses.dataclass(frozen=True)
class FamilyConfig:
    kind: str = "plain"
    widths: tuple[int, ...] = (784, 128, 32, 2)  # input, hidden..., code
    noise: float = 0.0  # denoising: Gaussian σ on [0, 1] pixels
    mask: float = 0.0  # denoising: share of input pixels set to 0
    # denoising: each image's σ drawn uniformly from [0, noise] (one model for unknown noise)
    blind: bool = False
    l1: float = 0.0  # sparse: weight of the mean absolute activation of the code
    rho: float = 0.05  # sparse: target mean activation of each code unit ...
    beta: float = 0.0  # ... and the weight of its KL divergence
    contraction: float = 0.0  # contractive: weight of ||d code / d x||_F^2
    # variational: "bernoulli", "gaussian" or "logistic" (discretized, 256 levels)
    decoder: str = "bernoulli"
    # "dense" layers of ``widths``, or "conv": stages of ``widths[1:]`` channels, each halving the
    # size
    arch: str = "dense"
    image_shape: tuple[int, ...] = ()  # (H, W[, C]) of the images: the conv architecture's input
    # any kind: weight of a neighbour-graph (UMAP) term that keeps neighbours close in the code
    neighbours: float = 0.0

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
                f"shape (H, W[, C]) of widths[0] values (got {self.image_shape} for "
                f"{self.widths[0]})"
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
                "noise, l1, beta, contraction and neighbours are >= 0; mask in [0, 1); "
                "rho in (0, 1)"
            )


class DenseAE(nnx.Module):
    """Encoder widths[0] -> ... -> widths[-1] (twice that for the variational mean and
    log-variance), decoder back; GELU between layers (none for ``linear``), a sigmoid code for
    ``sparse``."""

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
        # each stage to the channels of the one before; the last keeps its own
        targets = [
            *back[1:-1],
            back[-2],
        ]
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


def pixels(images) -> np.ndarray:
    """uint8 images (N, ...) as float32 rows in [0, 1]."""
    a = np.asarray(images)
    return (a.reshape(len(a), -1) / 255.0).astype(np.float32)
