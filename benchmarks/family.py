"""The autoencoder family (issue 17), measured so far: one-class anomaly detection and the linear kind.

    python -m benchmarks.family [--steps 1500] [--only linear|denoising|map|one-class ...]

- One-class protocol on Fashion-MNIST: a variational autoencoder (Gaussian decoder, 784-256-16)
  trained on one class of the train split, every test image scored, AUROC of that class against the
  other nine (anomalies score higher); the code length alone and minus PNG's bits (Serrà et al.'s
  complexity correction), beside a PCA reconstruction-error baseline (16 components) in the same run.
- The linear kind (784-8): largest principal angle between its decoder's span and PCA's top 8.
- The 2-D map: kNN (k = 5) accuracy on the test split's embedding, the vote fitted on the train
  split's, for PCA's 2-D projection and the plain and variational autoencoders 784-512-128-2.
- Denoising, Gaussian sigma 0.1-0.5 on [0, 1] pixels (not clipped), 300 test images: PSNR noisy, after
  a denoising autoencoder 784-1024-1024 trained at that sigma, and after BM3D (PyPI ``bm3d``) on the same images.
(Still to come: the VAE's ELBO and importance-weighted bound, the leave-one-class-out protocol.)
"""

from __future__ import annotations

import argparse
import glob

import numpy as np

from codec import data, family


def labels(split: str) -> np.ndarray:
    name = "train-labels" if split == "train" else "t10k-labels"
    return data.read_idx(next(p for p in glob.glob(f"{data.DEBIAN_DIR}/*") if name in p))


def auroc(anomalies: np.ndarray, normal: np.ndarray) -> float:
    """P(an anomaly scores above a normal image) (Mann-Whitney; the scores are continuous: no ties)."""
    scores = np.concatenate([anomalies, normal])
    ranks = scores.argsort(kind="stable").argsort() + 1.0
    return float((ranks[: len(anomalies)].sum() - len(anomalies) * (len(anomalies) + 1) / 2) / (len(anomalies) * len(normal)))


def pca_errors(train: np.ndarray, test: np.ndarray, k: int = 16) -> np.ndarray:
    x, y = family.pixels(train).astype(np.float64), family.pixels(test).astype(np.float64)
    mean = x.mean(0)
    basis = np.linalg.svd(x - mean, full_matrices=False)[2][:k]
    centred = y - mean
    return ((centred - centred @ basis.T @ basis) ** 2).sum(1)


def one_class(steps: int) -> None:
    train, test, y_train, y_test = data.fashion_mnist("train"), data.fashion_mnist("test"), labels("train"), labels("test")
    rows = []
    for c in range(10):
        cfg = family.FamilyConfig(kind="variational", widths=(784, 256, 16), decoder="gaussian")
        model = family.train(train[y_train == c], cfg, steps=steps, log=lambda s: None)
        bits = family.code_length_bits(model, test)
        corrected = bits - family.generic_bits(test)
        pca = pca_errors(train[y_train == c], test)
        row = [auroc(s[y_test != c], s[y_test == c]) for s in (bits, corrected, pca)]
        rows.append(row)
        print(f"  class {c}: VAE code length {row[0]:.3f}, minus PNG bits {row[1]:.3f}, PCA error {row[2]:.3f}", flush=True)
    mean = np.mean(rows, axis=0)
    print(f"one-class AUROC, mean of 10 classes: VAE code length {mean[0]:.3f}, minus PNG bits {mean[1]:.3f}, "
          f"PCA reconstruction error {mean[2]:.3f} (target >= 0.90; Deep SVDD 0.848, GEOM 0.935 published)")


def linear_angle(steps: int) -> None:
    train = data.fashion_mnist("train")[:20000]
    model = family.train(train, family.FamilyConfig(kind="linear", widths=(784, 8)), steps=steps * 4,
                         learning_rate=3e-3, log=lambda s: None)
    x = family.pixels(train).astype(np.float64)
    pca = np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:8].T
    learned = np.linalg.qr(np.asarray(model.decoder[0].kernel[...], np.float64).T)[0]
    cosines = np.linalg.svd(pca.T @ learned, compute_uv=False)
    print(f"linear autoencoder 784-8, {steps * 4} steps: largest principal angle to PCA's subspace "
          f"{np.degrees(np.arccos(np.clip(cosines.min(), -1, 1))):.2f} degrees (target < 5)")


def knn_accuracy(train_points, train_labels, test_points, test_labels, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote (Euclidean, ties to the nearest) fitted on the training points."""
    right = 0
    for start in range(0, len(test_points), 500):
        q = test_points[start : start + 500]
        d = ((q[:, None, :] - train_points[None]) ** 2).sum(-1)
        nearest = np.argpartition(d, k, axis=1)[:, :k]
        order = np.take_along_axis(d, nearest, 1).argsort(1)
        votes = train_labels[np.take_along_axis(nearest, order, 1)]
        counts = np.stack([(votes == c).sum(1) for c in range(10)], 1)
        best = counts.max(1, keepdims=True)
        first = np.argmax((counts[np.arange(len(q))[:, None], votes] == best), axis=1)  # the nearest of the tied
        right += int((votes[np.arange(len(q)), first] == test_labels[start : start + 500]).sum())
    return right / len(test_points)


def two_d_map(steps: int) -> None:
    train, test, y_train, y_test = data.fashion_mnist("train"), data.fashion_mnist("test"), labels("train"), labels("test")
    x = family.pixels(train).astype(np.float64)
    mean = x.mean(0)
    basis = np.linalg.svd(x - mean, full_matrices=False)[2][:2]
    pca = knn_accuracy((x - mean) @ basis.T, y_train, (family.pixels(test) - mean) @ basis.T, y_test)
    print(f"2-D map, kNN (k = 5) accuracy on the test split's embedding (fitted on the train split's): PCA {pca:.3f}")
    for kind in ("plain", "variational"):
        cfg = family.FamilyConfig(kind=kind, widths=(784, 512, 128, 2))
        model = family.train(train, cfg, steps=steps * 8, batch_size=256, log=lambda s: None)
        acc = knn_accuracy(family.embed(model, train), y_train, family.embed(model, test), y_test)
        print(f"  {kind} autoencoder 784-512-128-2, {steps * 8} steps: {acc:.3f} (target >= 0.76; parametric UMAP 0.761, "
              f"autoencoder 0.734 published)", flush=True)


def psnr(a, b) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def denoising(steps: int, count: int = 300) -> None:
    """Per sigma: a denoising autoencoder trained at that sigma, and BM3D, on the same noisy test images."""
    import bm3d
    import jax.numpy as jnp

    train, clean = data.fashion_mnist("train"), family.pixels(data.fashion_mnist("test")[:count]).astype(np.float64)
    for sigma in (0.1, 0.2, 0.3, 0.5):
        noisy = clean + sigma * np.random.default_rng(1).normal(size=clean.shape)  # on [0, 1] pixels, not clipped
        model = family.train(train, family.FamilyConfig(kind="denoising", widths=(784, 1024, 1024), noise=sigma),
                             steps=steps * 4, batch_size=256, log=lambda s: None)
        ours = np.asarray(model.decode(model.encode(jnp.asarray(noisy, jnp.float32))), np.float64)
        theirs = np.stack([bm3d.bm3d(a.reshape(28, 28), sigma_psd=sigma).ravel() for a in noisy])
        print(f"denoising, sigma {sigma}, {count} test images: noisy {psnr(noisy, clean):.2f} dB, denoising autoencoder "
              f"{psnr(ours, clean):.2f} dB ({psnr(ours, clean) - psnr(noisy, clean):+.2f} dB), BM3D "
              f"{psnr(np.clip(theirs, 0, 1), clean):.2f} dB", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parts = {"linear": linear_angle, "denoising": denoising, "map": two_d_map, "one-class": one_class}
    parser.add_argument("--only", choices=tuple(parts), action="append", help="run only these parts (repeatable)")
    args = parser.parse_args(argv)
    for name, part in parts.items():
        if not args.only or name in args.only:
            part(args.steps)


if __name__ == "__main__":
    main()
