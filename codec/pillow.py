"""aecodec files in Pillow: ``import codec.pillow`` (or ``import codec`` once Pillow is loaded)
registers the format, so ``Image.open("x.aec")`` reads one and ``im.save("x.aec", quality=5)``
writes one, in every Pillow-based tool.

- Opening decodes the whole file (its checksums are checked first) with the bundled model it
  names, or with ``codec.pillow.MODEL`` (a path or a loaded model) for a model of your own. Grey,
  grey + alpha, colour and colour + alpha come as L, LA, RGB and RGBA; 16-bit grey as I;16 (Pillow
  has no 16-bit colour mode: such files are refused with a ``DataError`` naming
  ``codec.decompress``). An archive of several images is a multi-frame image: ``im.n_frames``,
  ``im.seek(k)``.
- Saving takes the options of ``codec.compress``: ``quality``, ``lossless``, ``max_error``,
  ``effort``, ``model``; an image of mode L, LA, RGB, RGBA, I;16 or 1 (as L), others converted to
  RGB or RGBA first.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile

import bitstream
from codec.errors import DataError

FORMAT = "AEC"
MODEL = None  # the model ``Image.open`` decodes with (None: the bundled model a file names)
_MODES = {(1, "uint8"): "L", (2, "uint8"): "LA", (3, "uint8"): "RGB", (4, "uint8"): "RGBA"}
_SAVED = {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "I;16": "I;16", "1": "L"}
_OPTIONS = ("quality", "lossless", "max_error", "effort", "model")


def _accept(prefix: bytes) -> bool:
    """Whether a file starts as an aecodec container does (formats 2 to 7)."""
    return prefix[:3] == bitstream.MAGIC and (
        (prefix[3] & 0x7F) in bitstream.container.READ_VERSIONS or prefix[3:5] == b"\x00\x02"
    )


def _mode(image: np.ndarray) -> str:
    channels = image.shape[2] if image.ndim == 3 else 1
    if image.dtype == np.uint16 and channels == 1:
        return "I;16"
    if (channels, str(image.dtype)) not in _MODES:
        raise DataError(
            f"an aecodec image of {channels} channels of {image.dtype} has no Pillow mode "
            "(decode it with codec.decompress)"
        )
    return _MODES[channels, str(image.dtype)]


class AecImageFile(ImageFile.ImageFile):
    """An aecodec file as Pillow sees it: one frame per image."""

    format = FORMAT
    format_description = "aecodec (learned compression)"

    def _open(self) -> None:
        from codec import api

        reader = api.ArchiveReader(io.BytesIO(self.fp.read()), model=MODEL)
        decoded = api.joined(list(reader), reader.header)  # as codec.decompress gives it
        self._frames = list(decoded) if reader.header["batched"] else [decoded]
        self._frame = 0
        self._show(0)

    def _show(self, frame: int) -> None:
        image = self._frames[frame]
        self._mode = _mode(image)
        self._size = (image.shape[1], image.shape[0])
        self.tile = []

    @property
    def n_frames(self) -> int:
        return len(self._frames)

    @property
    def is_animated(self) -> bool:
        return len(self._frames) > 1

    def seek(self, frame: int) -> None:
        if not self._seek_check(frame):
            return
        self._frame = frame
        self._show(frame)
        self._im = None

    def tell(self) -> int:
        return self._frame

    def load(self):
        if self._im is None:
            self._im = Image.fromarray(self._frames[self._frame]).im  # its mode: ``_mode``
        return Image.Image.load(self)


def _save(im: Image.Image, fp, filename) -> None:
    import codec

    mode = _SAVED.get(im.mode) or ("RGBA" if "A" in im.getbands() else "RGB")
    image = np.asarray(im.convert(mode) if mode != im.mode else im)
    if image.dtype == np.uint16 and image.ndim == 3:
        raise DataError("aecodec's Pillow plugin saves 16-bit grey (I;16), not 16-bit colour")
    options = {k: v for k, v in im.encoderinfo.items() if k in _OPTIONS}
    fp.write(codec.compress(image, **options))


Image.register_open(FORMAT, AecImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".aec")
Image.register_mime(FORMAT, "image/x-aecodec")
