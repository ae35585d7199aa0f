"""aecodec as a numcodecs codec: zarr arrays of images, compressed chunk by chunk with a learned codec.

    >>> import numcodecs, numpy as np
    >>> c = numcodecs.get_codec({"id": "aecodec", "model": "fmnist", "quality": 4})   # no import needed
    >>> z = zarr.create_array(store, shape=(60000, 28, 28), chunks=(1000, 28, 28), dtype="uint8",
    ...                       zarr_format=2, compressors=c)                            # doctest: +SKIP

numcodecs finds the codec through the ``numcodecs.codecs`` entry point (``pyproject.toml``). Its
config fully decides what a chunk decodes to, as numcodecs asks: ``model`` (a bundled model's name,
``fmnist`` or ``photo``, or a model file's path), ``fingerprint`` (that model's SHA-256, recorded
when the codec is made: a config never silently decodes with another model) and ``quality``.
``encode`` takes a chunk of uint8 images (N, H, W[, C]) (or one image) and returns an aecodec file;
``decode`` restores it as ``codec.decompress`` does. Zarr format 2 arrays take it as their
compressor (zarr gives it each chunk as an array of the chunk's shape); zarr format 3 has no
place for codecs outside its specification, so use ``zarr_format=2``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from codec import api
from codec.errors import InputError, ModelMismatchError

BUNDLED = {"fmnist": api.DEFAULT_MODEL, "photo": api.PHOTO_MODEL}


def _model_path(model: str) -> Path:
    return BUNDLED.get(model, Path(model))


class AecodecCodec(Codec):
    """Learned lossy compression of image chunks (see the module's doc)."""

    codec_id = "aecodec"

    def __init__(self, model: str = "fmnist", quality: int | None = None, fingerprint: str | None = None):
        loaded = api.load_model(_model_path(model))
        if fingerprint is not None and fingerprint != loaded.fingerprint:
            raise ModelMismatchError(f"codec config names model {model!r} with fingerprint {fingerprint[:16]}..., "
                                     f"but that model is {loaded.fingerprint[:16]}...")
        self.model, self.fingerprint = str(model), loaded.fingerprint
        self.quality = loaded.check_quality(quality)  # None: the model's default, recorded as a number
        self._loaded = loaded

    def get_config(self) -> dict:
        return {"id": self.codec_id, "model": self.model, "fingerprint": self.fingerprint, "quality": self.quality}

    def encode(self, buf) -> bytes:
        images = np.asarray(buf)
        if images.dtype != np.uint8:
            raise InputError(f"aecodec codes uint8 images, not {images.dtype}")
        if images.ndim not in (2, 3, 4):
            raise InputError(f"aecodec codes a chunk of images (N, H, W[, C]), not shape {images.shape}")
        return api.compress(images if images.ndim > 2 else images[None], quality=self.quality, model=self._loaded)

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf).tobytes()
        images = api.decompress(data, model=self._loaded)
        return ndarray_copy(images, out) if out is not None else images

    def __repr__(self) -> str:
        return f"AecodecCodec(model={self.model!r}, quality={self.quality})"
