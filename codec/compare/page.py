"""The comparison page: ``page.html`` (style and script) with the measurements and the pictures
put inside it as JSON, the pictures as lossless WebP data URLs (exact pixels, about a quarter
smaller than PNG; every current browser shows them), so the page needs nothing but itself."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from codec.compare.others import CODECS

TEMPLATE = Path(__file__).with_name("page.html")
NAMES = {"original": "original", "aecodec": "aecodec", **{k: v[0] for k, v in CODECS.items()}}


def page(results: list[dict]) -> bytes:
    """The page for ``results`` (``codec.compare.measure``'s), as UTF-8 bytes."""
    data = {"names": NAMES, "images": [_image(r) for r in results]}
    # "</" inside a <script> element would end it: JSON may write it as "<\/"
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return TEMPLATE.read_text(encoding="utf-8").replace("__DATA__", text).encode("utf-8")


def _image(r: dict) -> dict:
    h, w = r["original"].shape[:2]
    return {
        "name": r["name"],
        "model": r["model"],
        "note": r["note"],
        "width": w,
        "height": h,
        "colour": r["original"].ndim == 3,
        "original": picture(r["original"]),
        "curves": r["curves"],
        "levels": [
            {
                "quality": level["quality"],
                "panels": {
                    key: {
                        **{k: v for k, v in p.items() if k != "picture"},
                        "picture": picture(p["picture"]),
                    }
                    for key, p in level["panels"].items()
                },
            }  # fmt: skip
            for level in r["levels"]
        ],
    }


def picture(a: np.ndarray) -> str:
    """``a`` (uint8 grey or RGB) as a data URL of a lossless WebP file."""
    buf = io.BytesIO()
    Image.fromarray(a).convert("RGB").save(buf, format="WEBP", lossless=True, quality=80)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
