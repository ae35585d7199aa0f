"""The autoencoder family (issue 17), measured on Fashion-MNIST, baselines in the same run.

    python -m benchmarks.family [--only PART ...] [--steps 4000] [--pictures benchmarks/results]

Parts (all by default):

- ``linear``: the linear kind (784-8): largest principal angle between its decoder's span and PCA's
  top 8.
- ``map``: kNN (k = 5) accuracy on the test split's 2-D embedding, the vote fitted on the train
  split's: PCA's 2-D projection and the bundled map model (``codec/pretrained/fmnist-map.aecf``);
  its picture.
- ``denoising``: Gaussian sigma 0.1-0.5 on [0, 1] pixels (not clipped), 300 test images: PSNR noisy,
  after the bundled blind denoiser (one convolutional model for every sigma), and after BM3D (PyPI
  ``bm3d``, told the true sigma) on the same images; a picture at sigma 0.3.
- ``one-class``: per class, a variational autoencoder with the discretized logistic decoder trained
  on that class of the train split, every test image scored, AUROC of the class against the other
  nine (anomalies score higher): the complexity-corrected score (code length minus JPEG XL
  lossless's, the default) and the code length alone, beside PCA reconstruction error (16
  components).
- ``leave-one-out``: the same model trained on nine classes, the tenth the anomaly.
- ``ood``: the bundled scorer (trained on all of the train split) on the test split against images
  that are not garments: rendered digits and letters (simpler than garments: the failure Nalisnick
  et al. describe), constant images, uniform noise, photo crops (scikit-image) and inverted
  garments; AUROC by the code length alone and corrected, and the share flagged at the 99th
  percentile.
- ``vae``: the bundled VAE's test ELBO and importance-weighted bound (k = 100) in nats and bits per
  pixel; samples and an interpolation, as pictures.
"""

from __future__ import annotations

import argparse
import glob
import math
import time
from pathlib import Path

import numpy as np

from codec import family
from codec.io import data, idx

RESULTS = Path(__file__).parent / "results"


def labels(split: str) -> np.ndarray:
    name = "train-labels" if split == "train" else "t10k-labels"
    return idx.read_idx(next(p for p in glob.glob(f"{data.DEBIAN_DIR}/*") if name in p))


def auroc(anomalies: np.ndarray, normal: np.ndarray) -> float:
    """P(an anomaly scores above a normal image), ties counted half (Mann-Whitney U over both
    counts)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([anomalies, normal]))  # ties: their average rank
    return float(
        (ranks[: len(anomalies)].sum() - len(anomalies) * (len(anomalies) + 1) / 2)
        / (len(anomalies) * len(normal))
    )


def pca_errors(train: np.ndarray, test: np.ndarray, k: int = 16) -> np.ndarray:
    x, y = family.pixels(train).astype(np.float64), family.pixels(test).astype(np.float64)
    mean = x.mean(0)
    basis = np.linalg.svd(x - mean, full_matrices=False)[2][:k]
    centred = y - mean
    return ((centred - centred @ basis.T @ basis) ** 2).sum(1)


SCORER = family.FamilyConfig(kind="variational", widths=(784, 256, 32), decoder="logistic")


def _scorer(images, steps: int):
    return family.train(images, SCORER, steps=steps, log=lambda s: None)


def one_class(steps: int, **_) -> None:
    train, test, y_train, y_test = (
        data.fashion_mnist("train"),
        data.fashion_mnist("test"),
        labels("train"),
        labels("test"),
    )
    generic = family.generic_bits(test)
    rows = []
    for c in range(10):
        model = _scorer(train[y_train == c], steps)
        bits = family.code_length_bits(model, test)
        row = [
            auroc(s[y_test != c], s[y_test == c])
            for s in (bits - generic, bits, pca_errors(train[y_train == c], test))
        ]
        rows.append(row)
        print(
            f"  class {c}: corrected {row[0]:.3f}, code length alone {row[1]:.3f}, PCA error "
            f"{row[2]:.3f}",
            flush=True,
        )
    mean = np.mean(rows, axis=0)
    print(
        f"one-class AUROC, mean of 10 classes ({'-'.join(map(str, SCORER.widths))} logistic VAE, "
        f"{steps} steps): "
        f"code length minus JPEG XL's {mean[0]:.3f}, code length alone {mean[1]:.3f}, PCA "
        "reconstruction error "
        f"{mean[2]:.3f} (target >= 0.90; Deep SVDD 0.848, GEOM 0.935 published)"
    )


def leave_one_out(steps: int, **_) -> None:
    train, test, y_train, y_test = (
        data.fashion_mnist("train"),
        data.fashion_mnist("test"),
        labels("train"),
        labels("test"),
    )
    generic = family.generic_bits(test)
    rows = []
    for c in range(10):
        model = _scorer(train[y_train != c], steps)
        bits = family.code_length_bits(model, test)
        row = [
            auroc(s[y_test == c], s[y_test != c])
            for s in (bits - generic, bits, pca_errors(train[y_train != c], test))
        ]
        rows.append(row)
        print(
            f"  class {c} left out: corrected {row[0]:.3f}, code length alone {row[1]:.3f}, PCA "
            f"error {row[2]:.3f}",
            flush=True,
        )
    mean = np.mean(rows, axis=0)
    print(
        f"leave-one-class-out AUROC, mean of 10: corrected {mean[0]:.3f}, code length alone "
        f"{mean[1]:.3f}, "
        f"PCA reconstruction error {mean[2]:.3f}"
    )


def _rendered_characters(n: int, rng) -> np.ndarray:
    """White digits and letters on black, 28x28, of random size and place (Pillow's own font)."""
    from PIL import Image, ImageDraw, ImageFont

    out = []
    for _ in range(n):
        size = int(rng.integers(16, 26))
        font = ImageFont.load_default(size=size)
        image = Image.new("L", (28, 28))
        text = "0123456789ABCDEFGHKMNPRSTXYZ"[rng.integers(0, 28)]
        ImageDraw.Draw(image).text(
            (int(rng.integers(4, 12)), int(rng.integers(-2, 6))), text, fill=255, font=font
        )
        out.append(np.asarray(image))
    return np.stack(out)


def _photo_crops(n: int, rng) -> np.ndarray:
    """28x28 grey thumbnails of random 112x112 crops of scikit-image's bundled photos."""
    from PIL import Image
    from skimage import data as sk

    photos = []
    for name in (
        "camera",
        "coins",
        "moon",
        "page",
        "text",
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "brick",
        "grass",
    ):
        image = getattr(sk, name)()
        photos.append(image if image.ndim == 2 else data.luma(image[..., :3]))
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - 112), rng.integers(0, photo.shape[1] - 112)
        out.append(
            np.asarray(
                Image.fromarray(photo[y : y + 112, x : x + 112]).resize((28, 28), Image.BILINEAR)
            )
        )
    return np.stack(out)


def ood_sets(n: int = 1000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "digits and letters": _rendered_characters(n, rng),
        "constant images": np.repeat(
            rng.integers(0, 256, (n, 1, 1), dtype=np.uint8), 28 * 28, axis=1
        ).reshape(n, 28, 28),
        "uniform noise": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        "photo crops": _photo_crops(n, rng),
        "inverted garments": 255 - data.fashion_mnist("train")[rng.permutation(60000)[:n]],
    }


def ood(pictures: Path, **_) -> None:
    model, body = family.load(family.bundled_path("score"))
    quantiles = body["meta"]["score_quantiles"]
    limit = family.threshold(quantiles, 99)
    test = data.fashion_mnist("test")
    bits, generic = family.code_length_bits(model, test), family.generic_bits(test)
    normal = bits - generic
    print(
        f"out-of-distribution images against the test split, bundled scorer ({body['name']}), "
        "threshold at the "
        f"99th percentile of its training images: {limit:.1f} bits; test split flagged "
        f"{np.mean(normal > limit):.1%}"
    )
    for name, images in ood_sets().items():
        b, g = family.code_length_bits(model, images), family.generic_bits(images)
        print(
            f"  {name}: {b.mean() / 784:.2f} bits/pixel (JPEG XL {g.mean() / 784:.2f}, test split "
            f"{bits.mean() / 784:.2f}); "
            f"AUROC by code length alone {auroc(b, bits):.3f}, corrected "
            f"{auroc(b - g, normal):.3f}; "
            f"flagged {np.mean(b - g > limit):.1%}",
            flush=True,
        )


def linear_angle(steps: int, **_) -> None:
    train = data.fashion_mnist("train")[:20000]
    model = family.train(
        train,
        family.FamilyConfig(kind="linear", widths=(784, 8)),
        steps=steps * 2,
        learning_rate=3e-3,
        log=lambda s: None,
    )
    x = family.pixels(train).astype(np.float64)
    pca = np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:8].T
    learned = np.linalg.qr(np.asarray(model.decoder[0].kernel[...], np.float64).T)[0]
    cosines = np.linalg.svd(pca.T @ learned, compute_uv=False)
    print(
        f"linear autoencoder 784-8, {steps * 2} steps: largest principal angle to PCA's subspace "
        f"{np.degrees(np.arccos(np.clip(cosines.min(), -1, 1))):.2f} degrees (target < 5)"
    )


def knn_accuracy(train_points, train_labels, test_points, test_labels, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote (Euclidean, ties to the nearest) fitted on the
    training points."""
    right = 0
    for start in range(0, len(test_points), 500):
        q = test_points[start : start + 500]
        d = ((q[:, None, :] - train_points[None]) ** 2).sum(-1)
        nearest = np.argpartition(d, k, axis=1)[:, :k]
        order = np.take_along_axis(d, nearest, 1).argsort(1)
        votes = train_labels[np.take_along_axis(nearest, order, 1)]
        counts = np.stack([(votes == c).sum(1) for c in range(10)], 1)
        best = counts.max(1, keepdims=True)
        # the nearest of the tied
        first = np.argmax((counts[np.arange(len(q))[:, None], votes] == best), axis=1)
        right += int((votes[np.arange(len(q)), first] == test_labels[start : start + 500]).sum())
    return right / len(test_points)


def two_d_map(pictures: Path, **_) -> None:
    train, test, y_train, y_test = (
        data.fashion_mnist("train"),
        data.fashion_mnist("test"),
        labels("train"),
        labels("test"),
    )
    x = family.pixels(train).astype(np.float64)
    mean = x.mean(0)
    basis = np.linalg.svd(x - mean, full_matrices=False)[2][:2]
    pca = knn_accuracy(
        (x - mean) @ basis.T, y_train, (family.pixels(test) - mean) @ basis.T, y_test
    )
    model, body = family.load(family.bundled_path("embed"))
    points = family.embed(model, test)
    ours = knn_accuracy(family.embed(model, train), y_train, points, y_test)
    print(
        "2-D map, kNN (k = 5) accuracy on the test split's embedding (fitted on the train "
        f"split's): PCA {pca:.3f}; "
        f"bundled map model {'-'.join(map(str, model.cfg.widths))} "
        f"({body['meta'].get('command', '?')}): {ours:.3f} "
        f"(target >= 0.76; parametric UMAP 0.761, autoencoder 0.734 published)"
    )
    _save_map(pictures / "family_map.png", points, y_test)


def _save_map(path: Path, points, classes) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name.split("/")[0] for name in data.CLASS_NAMES]  # "T-shirt/top": short labels
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    for c, name in enumerate(names):
        ax.scatter(*points[classes == c].T, s=1, alpha=0.5, color=plt.cm.tab10(c), label=name)
    ax.legend(markerscale=8, fontsize=7, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("Fashion-MNIST test split, the bundled 2-D map")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def psnr(a, b) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def denoising(pictures: Path, count: int = 300, **_) -> None:
    """The bundled blind denoiser and BM3D (told the true sigma) on the same noisy test images, per
    sigma."""
    import bm3d
    import jax.numpy as jnp

    model, body = family.load(family.bundled_path("denoise"))
    clean = family.pixels(data.fashion_mnist("test")[:count]).astype(np.float64)
    print(
        f"denoising, {count} test images; the bundled denoiser: {body['meta'].get('command', '?')}"
    )
    rows = []
    for sigma in (0.1, 0.2, 0.3, 0.5):
        # on [0, 1] pixels, not clipped
        noisy = clean + sigma * np.random.default_rng(1).normal(size=clean.shape)
        ours = np.asarray(model.decode(model.encode(jnp.asarray(noisy, jnp.float32))), np.float64)
        started = time.perf_counter()
        theirs = np.clip(
            np.stack([bm3d.bm3d(a.reshape(28, 28), sigma_psd=sigma).ravel() for a in noisy]), 0, 1
        )
        spent = time.perf_counter() - started
        print(
            f"  sigma {sigma}: noisy {psnr(noisy, clean):.2f} dB, denoiser {psnr(ours, clean):.2f} "
            "dB "
            f"({psnr(ours, clean) - psnr(noisy, clean):+.2f} dB), BM3D {psnr(theirs, clean):.2f} "
            "dB "
            f"({spent / count * 1000:.0f} ms/image)",
            flush=True,
        )
        if sigma == 0.3:
            rows = [clean[:10], np.clip(noisy[:10], 0, 1), ours[:10], theirs[:10]]
    picture = family.grid(
        np.concatenate([np.clip(np.round(r * 255), 0, 255).astype(np.uint8) for r in rows]).reshape(
            -1, 28, 28
        ),
        10,
    )
    _save_png(pictures / "family_denoising.png", picture)


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).resize((array.shape[1] * 2, array.shape[0] * 2), Image.NEAREST).save(
        path
    )


def vae(pictures: Path, **_) -> None:
    model, body = family.load(family.bundled_path("sample"))
    test = data.fashion_mnist("test")
    elbo, iwae = family.bounds_nats(model, test, samples=100)
    per_pixel = 784 * math.log(2)
    print(
        f"VAE {'-'.join(map(str, model.cfg.widths))} ({model.cfg.decoder} decoder), test split, "
        "-log p(x) bounds: "
        f"ELBO {elbo.mean():.1f} nats ({elbo.mean() / per_pixel:.3f} bits/pixel), "
        "importance-weighted (k = 100) "
        f"{iwae.mean():.1f} nats ({iwae.mean() / per_pixel:.3f} bits/pixel)"
    )
    _save_png(pictures / "family_samples.png", family.grid(family.sample(model, 64, seed=0), 16))
    pairs = [(0, 1), (2, 3), (5, 7), (8, 9)]
    lines = [family.interpolate(model, test[a], test[b], steps=10) for a, b in pairs]
    _save_png(pictures / "family_interpolation.png", family.grid(np.concatenate(lines), 10))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps",
        type=int,
        default=4000,
        help="training steps of each one-class and leave-one-out model",
    )
    parser.add_argument("--pictures", type=Path, default=RESULTS, help="where the pictures go")
    parts = {
        "linear": linear_angle,
        "map": two_d_map,
        "denoising": denoising,
        "vae": vae,
        "ood": ood,
        "one-class": one_class,
        "leave-one-out": leave_one_out,
    }
    parser.add_argument(
        "--only", choices=tuple(parts), action="append", help="run only these parts (repeatable)"
    )
    args = parser.parse_args(argv)
    args.pictures.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        if not args.only or name in args.only:
            part(steps=args.steps, pictures=args.pictures)


if __name__ == "__main__":
    main()
