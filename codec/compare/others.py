"""The image codecs people use, through Pillow, at the bytes aecodec spends: WebP (method 6, its
slowest and best), AVIF (Pillow's own, at its defaults: speed 6, 4:2:0 colour) and JPEG XL
(pillow-jxl-plugin, effort 7), each at a quality setting from 1 to 99 (100 turns AVIF and JPEG XL
lossless or refuses, which no level of aecodec's matches)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

# key: (the page's name, Pillow's format, its save options)
CODECS = {
    "webp": ("WebP", "WEBP", {"method": 6}),
    "avif": ("AVIF", "AVIF", {}),
    "jxl": ("JPEG XL", "JXL", {}),
}
SETTINGS = range(1, 100)
CURVE = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 95, 99)  # the settings drawn as a curve


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of ``b`` against ``a`` (uint8, every sample), 99 where they are equal."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * math.log10(255.0**2 / mse) if mse else 99.0


class Other:
    """One codec on one image: each setting coded once (cached), the file's size and what it
    decodes to."""

    def __init__(self, key: str, image: np.ndarray) -> None:
        if key == "jxl":
            import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow)
        self.name, self.format, self.options = CODECS[key]
        self.image = image
        self.mode = "RGB" if image.ndim == 3 else "L"
        self._coded: dict[int, tuple[int, np.ndarray]] = {}

    def at(self, setting: int) -> tuple[int, np.ndarray]:
        """(bytes, the decoded image) at quality ``setting``."""
        if setting not in self._coded:
            buf = io.BytesIO()
            im = Image.fromarray(self.image)
            im.save(buf, format=self.format, quality=setting, **self.options)
            with Image.open(io.BytesIO(buf.getvalue())) as back:
                self._coded[setting] = (buf.tell(), np.asarray(back.convert(self.mode)))
        return self._coded[setting]

    def point(self, setting: int) -> dict:
        size, back = self.at(setting)
        return {"setting": setting, "bytes": size, "psnr": psnr(self.image, back)}

    def matched(self, target: int) -> int:
        """The setting whose file is nearest ``target`` bytes (in ratio), by bisection: a file
        grows with the setting (nearly always; a step back costs only the match's accuracy)."""
        lo, hi = SETTINGS[0], SETTINGS[-1]
        if self.at(lo)[0] >= target:
            return lo
        if self.at(hi)[0] <= target:
            return hi
        while hi - lo > 1:  # size(lo) < target < size(hi)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.at(mid)[0] <= target else (lo, mid)
        return min((lo, hi), key=lambda s: abs(math.log(self.at(s)[0] / target)))
