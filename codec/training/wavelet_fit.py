"""Counting the wavelet levels' tables on training images, and adding them to a model file.

A level is a base step (pixel units: the luma quantizer step of a band whose synthesis function
has unit norm) turned into integer steps per plane and band (``level_steps``), and class tables
counted on the training images coded at those steps, half a count added to every class (the
Krichevsky-Trofimov estimate) so that none is impossible.
"""

from __future__ import annotations

import numpy as np

from bitstream.coder import integer_frequencies
from codec.errors import UsageError
from codec.levels import modelfile, wavelet
from codec.levels import wavelet_transform as wt
from codec.levels.model import Model

# Chroma steps over the steps that balance each plane's share of the RGB error (Co x sqrt 6, Cg
# x 2 over Y): chosen on the training photos' validation part (benchmarks/wavelet.py)
CHROMA = 1.0
# Base steps (pixel units), coarse to fine: each where the quality scale's targets (25, 27, ...,
# 49 dB: ``scale.TARGET_DB``) fall on the photo model's validation photos, interpolated in log
# step from a first ladder of 18 steps 1.3x apart (110 to 1.2: 28.3 to 50.2 dB there), so that
# each quality finds a level near its target and neighbouring qualities stay about 2 dB apart.
STEPS = (214.0, 142.0, 94.0, 62.0, 40.0, 27.0, 18.4, 12.8, 8.9, 6.1, 4.1, 2.7, 1.7)


def level_steps(base: float, *, chroma: float = CHROMA) -> np.ndarray:
    """Integer steps (``wavelet.STEPS_SHAPE``, sixteenths of a coefficient unit) for a base step:
    the base over each band's synthesis norm, luma, Co and Cg weighted by their share of the RGB
    error (Co and Cg reach R, G and B at half their size) and ``chroma``."""
    norms = wt.synthesis_norms()
    planes = (1.0, np.sqrt(6.0) * chroma, 2.0 * chroma)
    scale = 16 * (1 << wt.FRACTION_BITS) * base
    steps = np.ones(wavelet.STEPS_SHAPE, np.float64) * scale
    for p, weight in enumerate(planes):
        for d in range(1, wt.MAX_DEPTH + 1):
            steps[p, d, 0] = scale * weight / norms[("LL", d)]
            for o in (1, 2, 3):
                steps[p, d, o] = scale * weight / norms[(d, o)]
        steps[p, 0, :] = scale * weight
    return np.clip(np.rint(steps), 1, wavelet.MAX_STEP).astype(np.int32)


def count(images, steps: np.ndarray, level=None) -> tuple[np.ndarray, np.ndarray]:
    """((CONTEXTS, CLASSES) counts of each context's magnitude classes, (SIGN_CONTEXTS, 2) of
    each sign context's signs) over a list of uint8 images (H, W[, 3]) of any sizes (or an array
    of same-shape ones) coded at ``steps``: quantized as ``level`` would, or (None) by the dead
    zone."""
    classes = np.zeros(wavelet.CONTEXTS * wavelet.CLASSES, np.int64)
    signs = np.zeros(wavelet.SIGN_CONTEXTS * 2, np.int64)

    def code(symbols, index):
        index = np.asarray(index).ravel().astype(np.int64)
        flat = np.asarray(symbols).ravel()
        if not index.size:
            return symbols
        if index[0] < wavelet.CONTEXTS:  # a part of classes
            classes[:] += np.bincount(index * wavelet.CLASSES + flat, minlength=classes.size)
        elif index[0] >= wavelet.SIGN_BASE:  # a part of signs
            signs[:] += np.bincount((index - wavelet.SIGN_BASE) * 2 + flat, minlength=signs.size)
        return symbols

    for batch in batches(images):
        if level is None:
            values, per_band, chroma = wavelet.analyse(batch, steps)
            shape = wavelet.planes_shape(batch.shape)
            wavelet.walk(code, shape, chroma, values, wavelet.dead_zone(per_band))
        else:
            level.quantized(batch, code)
    return classes.reshape(wavelet.CONTEXTS, -1), signs.reshape(wavelet.SIGN_CONTEXTS, 2)


def batches(images, pixels: int = 1 << 22):
    """The images as chunks of same-shape images (N, H, W[, C]) of about ``pixels`` values at
    most (one image alone if larger): coded as a chunk, as the container codes them."""
    by_shape: dict = {}
    for image in images:
        by_shape.setdefault(np.shape(image), []).append(image)
    for shape, group in by_shape.items():
        step = max(1, pixels // int(np.prod(shape)))
        for start in range(0, len(group), step):
            yield np.stack(group[start : start + step])


def fit_level(images, base: float, *, chroma: float = CHROMA) -> wavelet.WaveletLevel:
    """One level for ``base``: its steps, and tables counted on ``images`` quantized as the level
    will quantize them (which depends on the tables: counted first on the dead zone's choice)."""
    steps = level_steps(base, chroma=chroma)
    first = wavelet.WaveletLevel(steps, *map(_tables, count(images, steps)))
    return wavelet.WaveletLevel(steps, *map(_tables, count(images, steps, first)))


def _tables(counts: np.ndarray) -> np.ndarray:
    """Integer tables of counts, half a count added to each symbol; escapes never needed."""
    return np.stack([integer_frequencies(np.append(row + 0.5, 0.0)) for row in counts])


def fit(images, bases=STEPS, *, chroma: float = CHROMA, log=print) -> list:
    """Wavelet levels for ``bases`` (any order), low to high quality, counted on ``images``."""
    levels = []
    for base in sorted(bases, reverse=True):
        levels.append(fit_level(images, base, chroma=chroma))
        log(f"wavelet: level of base step {base} counted on {len(images)} images")
    return levels


def wavelet_added(
    base: bytes, images, bases=STEPS, *, chroma: float = CHROMA, log=print, grown: bool = True
) -> bytes:
    """A model file: ``base`` (a model file's bytes) with wavelet levels counted on ``images``
    (uint8 (H, W[, 3]) arrays of any sizes); every other section kept as it was, and a stored
    ladder too, the wavelet levels appended to it. No level of the old model changes, so the new
    one lists the old one's fingerprint in ``meta["same_model_as"]``: every file of the old model
    still decodes (``grown``; a model being trained has no files yet: False).

    Raises:
        UsageError: ``base`` has wavelet levels already (replacing them would change levels its
            files may use).
    """
    body = modelfile.loads(base, what="base model")
    if "wavelet" in body:
        raise UsageError("the model has wavelet levels already")
    levels = fit(images, bases, chroma=chroma, log=log)
    info = {"steps": sorted(float(b) for b in bases)[::-1], "chroma": chroma, "images": len(images)}
    meta = {**(modelfile.grown_meta(body) if grown else body["meta"]), "wavelet": info}
    fields = {"meta": meta, "wavelet": wavelet.to_dict(levels)}
    if "ladder" in body:
        fields["ladder"] = [*body["ladder"], *(["wavelet", i] for i in range(len(levels)))]
    raw = modelfile.amended(base, **fields)
    Model(modelfile.loads(raw))  # it loads
    return raw
