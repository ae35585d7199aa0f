"""Baseline codecs, measured on the same images in the same process as aecodec.

Each ``*_points`` function returns a list of rows: {"codec", "setting", "bytes_per_image",
"payload_bytes_per_image", "psnr", "mean_psnr", ...}; sizes are whole files. Those of lossy
codecs take ``on_restored(row, restored)``, called with each row and its decoded images (the
report adds SSIM and keeps samples).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import time

import numpy as np

import bitstream


def psnr_stats(original: np.ndarray, restored: np.ndarray) -> tuple[float, float]:
    """(dataset PSNR = 10·log10(255² / mean MSE), mean of per-image PSNR capped at 100 dB)."""
    err = (original.astype(np.float64) - restored.astype(np.float64)) ** 2
    per_image = err.reshape(len(err), -1).mean(axis=1)
    dataset = 10 * np.log10(255.0**2 / max(per_image.mean(), 1e-12))
    mean = float(np.mean(10 * np.log10(255.0**2 / np.maximum(per_image, 255.0**2 / 1e10))))
    return float(dataset), mean


def row(
    codec: str,
    setting,
    total_bytes: float,
    n: int,
    original,
    restored,
    *,
    payload=None,
    enc_s=None,
    dec_s=None,
) -> dict:
    dataset_psnr, mean_psnr = psnr_stats(original, restored)
    pixels = original[0].size
    return {
        "codec": codec,
        "setting": setting,
        "bytes_per_image": total_bytes / n,
        "payload_bytes_per_image": (payload if payload is not None else total_bytes) / n,
        "bits_per_pixel": 8 * total_bytes / n / pixels,
        "psnr": dataset_psnr,
        "mean_psnr": mean_psnr,
        "encode_images_per_s": n / enc_s if enc_s else None,
        "decode_images_per_s": n / dec_s if dec_s else None,
    }


def _pillow_roundtrip(
    images: np.ndarray, fmt: str, **save_kw
) -> tuple[int, np.ndarray, float, float]:
    from PIL import Image

    blobs = []
    t0 = time.perf_counter()
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt, **save_kw)
        blobs.append(buf.getvalue())
    enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    restored = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("L")) for b in blobs])
    dec = time.perf_counter() - t0
    return sum(map(len, blobs)), restored, enc, dec


def _ignore(row, restored):
    pass


def _pillow_points(
    name: str, fmt: str, images: np.ndarray, qualities, on_restored, **save_kw
) -> list[dict]:
    rows = []
    for q in qualities:
        size, restored, enc, dec = _pillow_roundtrip(images, fmt, quality=q, **save_kw)
        rows.append(row(name, q, size, len(images), images, restored, enc_s=enc, dec_s=dec))
        on_restored(rows[-1], restored)
    return rows


def jpeg_points(
    images: np.ndarray,
    qualities=(5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
    *,
    on_restored=_ignore,
) -> list[dict]:
    return _pillow_points("jpeg", "JPEG", images, qualities, on_restored, optimize=True)


def webp_points(
    images: np.ndarray,
    qualities=(0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100),
    *,
    on_restored=_ignore,
) -> list[dict]:
    return _pillow_points("webp", "WEBP", images, qualities, on_restored, method=6)


def png_point(images: np.ndarray) -> dict:
    size, restored, enc, dec = _pillow_roundtrip(images, "PNG", optimize=True)
    return row("png", "optimize", size, len(images), images, restored, enc_s=enc, dec_s=dec)


def lossless_points(images: np.ndarray) -> list[dict]:
    """gzip -9, bz2 -9, xz -9e and zstd -19 (when installed) on the raw bytes: whole dataset and per
    image."""
    raw = images.tobytes()
    compressors = {
        "gzip-9": lambda b: gzip.compress(b, 9, mtime=0),
        "bz2-9": lambda b: bz2.compress(b, 9),
        # xz -9e with the dictionary sized to the input (at least 1 MiB) instead of 64 MiB: the
        # same output for inputs no larger than it, without allocating 64 MiB per call (60 ms).
        "xz-9e": lambda b: lzma.compress(
            b,
            filters=[
                {
                    "id": lzma.FILTER_LZMA2,
                    "preset": 9 | lzma.PRESET_EXTREME,
                    "dict_size": max(1 << 20, 1 << (len(b) - 1).bit_length()),
                }
            ],
        ),
    }
    try:
        import zstandard

        compressors["zstd-19"] = zstandard.ZstdCompressor(level=19).compress
    except ImportError:
        pass
    rows = []
    for name, fn in compressors.items():
        t0 = time.perf_counter()
        size = len(fn(raw))
        rows.append(
            row(
                name,
                "whole dataset",
                size,
                len(images),
                images,
                images,
                enc_s=time.perf_counter() - t0,
            )
        )
        per_image = sum(len(fn(img.tobytes())) for img in images)
        rows.append(row(name, "per image", per_image, len(images), images, images))
    return rows


def image_lossless_points(images: np.ndarray) -> list[dict]:
    """JPEG XL lossless (effort 7) and JPEG-LS, one file per image (imagecodecs), each checked
    exact."""
    import imagecodecs as ic

    rows = []
    for name, encode, decode in (
        (
            "jpegxl-lossless",
            lambda a: ic.jpegxl_encode(a, lossless=True, effort=7),
            ic.jpegxl_decode,
        ),
        ("jpeg-ls", ic.jpegls_encode, ic.jpegls_decode),
    ):
        t0 = time.perf_counter()
        blobs = [encode(np.ascontiguousarray(a)) for a in images]
        enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        restored = np.stack([decode(b) for b in blobs]).reshape(images.shape)
        dec = time.perf_counter() - t0
        if not np.array_equal(restored, images):
            raise AssertionError(f"{name} did not restore the images exactly")
        rows.append(
            row(
                name,
                "lossless",
                sum(map(len, blobs)),
                len(images),
                images,
                restored,
                enc_s=enc,
                dec_s=dec,
            )
        )
    return rows


class PCACoder:
    """PCA fitted on the train split, uniform quantizer, one integer table per coefficient.

    The fair classical transform coder: each coefficient gets its own histogram (fitted on
    the train split's quantized coefficients, lightly smoothed, escape for the rest) and all
    images share one stream coded with the same constriction ANS coder as aecodec.
    The basis and tables are side information, not counted per image (like our model).
    """

    def __init__(self, train: np.ndarray):
        x = train.reshape(len(train), -1).astype(np.float64)
        self.mean = x.mean(axis=0)
        cov = np.cov(x - self.mean, rowvar=False)
        eigval, eigvec = np.linalg.eigh(cov)
        self.basis = eigvec[:, ::-1]  # (784, 784), columns by decreasing variance
        self.train_coefficients = (x - self.mean) @ self.basis
        self._tables_by_step = {}

    def _tables(self, k: int, step: float):
        """Per-coefficient tables for the first k coefficients (those of k' > k start the same)."""
        if step not in self._tables_by_step:
            q = np.round(self.train_coefficients / step).astype(np.int64)
            offsets = np.clip(np.abs(q).max(axis=0), 1, 4095).astype(np.int32)
            freqs = []
            for j, kj in enumerate(offsets.tolist()):
                hist = (
                    np.bincount(np.clip(q[:, j], -kj, kj) + kj, minlength=2 * kj + 1).astype(
                        np.float64
                    )
                    + 1e-3
                )
                freqs.append(bitstream.integer_frequencies(np.append(hist, 1e-3)))
            self._tables_by_step[step] = (offsets, freqs)
        offsets, freqs = self._tables_by_step[step]
        return offsets[:k], freqs[:k]

    def point(self, images: np.ndarray, k: int, step: float, *, on_restored=_ignore) -> dict:
        offsets, freqs = self._tables(k, step)
        x = images.reshape(len(images), -1).astype(np.float64)
        t0 = time.perf_counter()
        q = np.round((x - self.mean) @ self.basis[:, :k] / step).astype(np.int64)
        tables = bitstream.Tables(-offsets, freqs)
        index = np.broadcast_to(np.arange(k), q.shape)
        encoder = bitstream.Encoder(tables)
        encoder.add(q, index)
        stream = encoder.finish()
        enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        decoded = bitstream.Decoder(stream, tables).read(index)
        restored = np.clip(
            np.round(decoded * step @ self.basis[:, :k].T + self.mean), 0, 255
        ).astype(np.uint8)
        dec = time.perf_counter() - t0
        restored = restored.reshape(images.shape)
        header = 64  # a minimal container: shape, k, step, length, checksum
        r = row(
            "pca-ans",
            f"k={k} step={step:.3g}",
            len(stream) + header,
            len(images),
            images,
            restored,
            payload=len(stream),
            enc_s=enc,
            dec_s=dec,
        )
        on_restored(r, restored)
        return r

    def naive_point(self, images: np.ndarray, k: int, *, on_restored=_ignore) -> dict:
        """Coefficients stored as float32, as the seed tutorials do."""
        x = images.reshape(len(images), -1).astype(np.float64)
        c = ((x - self.mean) @ self.basis[:, :k]).astype(np.float32)
        restored = np.clip(
            np.round(c.astype(np.float64) @ self.basis[:, :k].T + self.mean), 0, 255
        ).astype(np.uint8)
        r = row(
            "pca-float32", f"k={k}", c.nbytes, len(images), images, restored.reshape(images.shape)
        )
        on_restored(r, restored.reshape(images.shape))
        return r


def pca_points(
    train: np.ndarray, test: np.ndarray, *, ks=(64, 128, 256, 784), steps=None
) -> list[dict]:
    coder = PCACoder(train)
    steps = steps if steps is not None else np.geomspace(4.0, 160.0, 12)
    return [coder.point(test, k, float(s)) for k in ks for s in steps]


def pareto(rows: list[dict]) -> list[dict]:
    """The rows not beaten by another (fewer bytes and higher PSNR), by increasing size."""
    out, best = [], -np.inf
    for r in sorted(rows, key=lambda r: r["bytes_per_image"]):
        if r["psnr"] > best:
            out.append(r)
            best = r["psnr"]
    return out


def bytes_at_psnr(rows: list[dict], psnr: float) -> float | None:
    """Bytes/image at ``psnr``, interpolated linearly in log(bytes) along the Pareto curve."""
    curve = pareto(rows)
    ps = np.array([r["psnr"] for r in curve])
    bs = np.log(np.array([r["bytes_per_image"] for r in curve]))
    if len(curve) < 2 or psnr < ps.min() or psnr > ps.max():
        return None
    return float(np.exp(np.interp(psnr, ps, bs)))


def psnr_overlap(anchor: list[dict], test: list[dict]) -> tuple[float, float]:
    """The PSNR range (low, high) that both Pareto curves cover: where a BD-rate is measured."""
    a, t = [[r["psnr"] for r in pareto(rows)] for rows in (anchor, test)]
    return max(min(a), min(t)), min(max(a), max(t))


def bd_rate(anchor: list[dict], test: list[dict]) -> float:
    """Bjøntegaard-delta rate (%) of ``test`` against ``anchor`` over their overlapping PSNR
    range."""
    import bjontegaard

    a, t = pareto(anchor), pareto(test)
    return float(
        bjontegaard.bd_rate(
            [r["bytes_per_image"] for r in a],
            [r["psnr"] for r in a],
            [r["bytes_per_image"] for r in t],
            [r["psnr"] for r in t],
            method="akima",
            require_matching_points=False,
            min_overlap=0.0,
        )
    )
