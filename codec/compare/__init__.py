"""A comparison page (``aecodec compare IMAGE... --out page.html``): each image coded by aecodec's
levels and by WebP, AVIF and JPEG XL at the same bytes, shown side by side in one self-contained
HTML file (no network: the pictures, script and style are inside it), with a crop to move and zoom,
the rate-distortion curves and the numbers.

    >>> import codec.compare
    >>> results = codec.compare.measure({"shirt": image}, qualities=(3, 6, 9))  # doctest: +SKIP
    >>> open("page.html", "wb").write(codec.compare.page(results))             # doctest: +SKIP

For each image: every lossy level of the model (qualities 1 to 13) gives the aecodec curve and the
other codecs a ladder of settings theirs; for each quality shown, each other codec is coded at the
setting whose file is nearest aecodec's in bytes (``others.Other.matched``), and the pictures of
those files, decoded, go into the page (as lossless WebP, which every browser shows).
"""

from __future__ import annotations

import numpy as np

from codec import api
from codec.compare import others
from codec.compare.page import page
from codec.errors import InputError
from codec.levels.model import Model

__all__ = ["measure", "page", "SHOWN", "MAX_SIDE"]

SHOWN = (2, 4, 6, 8, 10, 12)  # the qualities shown by default (pictures: the page's bulk)
MAX_SIDE = 1024  # a larger image is cut to its central MAX_SIDE x MAX_SIDE (see ``fitted``)


def fitted(image: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, str]:
    """``image`` as the page compares it: uint8 grey or RGB (an alpha channel left out), cut to its
    central ``max_side`` square where larger; and a note saying what was changed ('' if nothing).

    Raises:
        InputError: not 8 bits per sample.
    """
    if image.dtype != np.uint8:
        raise InputError(f"compare takes 8-bit images, not {image.dtype} (16-bit: lossless only)")
    notes = []
    if image.ndim == 3 and image.shape[2] in (2, 4):
        image = image[..., :-1] if image.shape[2] == 4 else image[..., 0]
        notes.append("its alpha channel left out")
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        top, left = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
        image = image[top : top + max_side, left : left + max_side]
        notes.append(f"its central {image.shape[1]}x{image.shape[0]} of {w}x{h}")
    return np.ascontiguousarray(image), "; ".join(notes)


def measure(images: dict, *, model=None, qualities=SHOWN, max_side: int = MAX_SIDE) -> list[dict]:
    """Each of ``images`` ({name: uint8 array}) measured for the page: {"name", "model", "note",
    "original", "curves": {codec: [points]}, "levels": [{"quality", "panels": {codec: point with
    its "picture"}}]}; a point is {"setting", "bytes", "psnr"}. ``model``: a ``Model``, a model
    file's path, or None: the bundled model that codes the image best (``api.choose_model``);
    ``max_side``: see ``fitted``."""
    out = []
    for name, image in images.items():
        image, note = fitted(image, max_side)
        if model is None:
            chosen = api.choose_model(image[None])
        else:
            chosen = model if isinstance(model, Model) else api.load_model(model)
        out.append(_one(name, image, note, chosen, qualities))
    return out


def _one(name: str, image: np.ndarray, note: str, model, qualities) -> dict:
    ours = {q: _ours(model, image, q) for q in model.named_qualities(image.shape, lossy=True)}
    coders = {key: others.Other(key, image) for key in others.CODECS}
    shown = sorted({_named(model, image.shape, q) for q in qualities})
    curves = {"aecodec": [point for point, _ in ours.values()]}
    for key, coder in coders.items():
        curves[key] = [coder.point(s) for s in others.CURVE]
    levels = []
    for q in shown:
        point, back = ours[q]
        panels = {"aecodec": {**point, "picture": back}}
        for key, coder in coders.items():
            setting = coder.matched(point["bytes"])
            panels[key] = {**coder.point(setting), "picture": coder.at(setting)[1]}
            panels[key]["bound"] = _bound(setting, panels[key]["bytes"] / point["bytes"])
        levels.append({"quality": q, "panels": panels})
    return {"name": name, "model": model.name, "note": note, "original": image,
            "curves": curves, "levels": levels}  # fmt: skip


def _bound(setting: int, ratio: float) -> str:
    """'its smallest file' or 'its largest file' where a codec's bytes stay 10% away from
    aecodec's at its lowest or highest setting (the page says so), else ''."""
    if setting == others.SETTINGS[0] and ratio > 1.1:
        return "its smallest file"
    if setting == others.SETTINGS[-1] and ratio < 1 / 1.1:
        return "its largest file"
    return ""


def _ours(model, image: np.ndarray, quality: int) -> tuple[dict, np.ndarray]:
    blob = api.compress(image, quality=quality, model=model)
    back = api.decompress(blob, model=model)
    return {"setting": quality, "bytes": len(blob), "psnr": others.psnr(image, back)}, back


def _named(model, shape, quality: int) -> int:
    """The lowest quality naming the same level as ``quality`` (the one the curve lists)."""
    if not 1 <= quality <= 13:
        raise InputError(f"compare shows the lossy qualities 1 to 13, not {quality}")
    named = model.named_qualities(shape, lossy=True)
    return max(q for q in named if q <= quality) if quality >= named[0] else named[0]
