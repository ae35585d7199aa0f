"""aecodec as a numcodecs codec: zarr arrays of images, compressed chunk by chunk with a learned
codec (numcodecs finds it without an import).

    >>> import numcodecs, numpy as np
    >>> c = numcodecs.get_codec({"id": "aecodec", "model": "fmnist", "quality": 4})
    >>> z = zarr.create_array(store, shape=(60000, 28, 28), chunks=(1000, 28, 28),
    ...                       dtype="uint8", zarr_format=2, compressors=c)  # doctest: +SKIP

numcodecs finds the codec through the ``numcodecs.codecs`` entry point (``pyproject.toml``). Its
config fully decides what a chunk decodes to, as numcodecs asks: ``model`` (a bundled model's name,
``fmnist`` or ``photo``, or a model file's path), ``fingerprint`` (that model's SHA-256, recorded
when the codec is made: a config never silently decodes with another model) and ``quality``.
``encode`` takes a chunk of uint8 images (N, H, W[, C]) (or one image) and returns an aecodec file;
``decode`` restores it as ``codec.decompress`` does. Zarr format 2 arrays take it as their
compressor (zarr gives it each chunk as an array of the chunk's shape); zarr format 3 arrays take
it as their serializer, ``codec.zarr3.Aecodec`` (zarr's ``numcodecs.aecodec``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ensure_ndarray_like, ndarray_copy

from codec import api
from codec.errors import FormatError, InputError, ModelMismatchError

BUNDLED = {"fmnist": api.DEFAULT_MODEL, "photo": api.PHOTO_MODEL}
FIELDS = ("model", "quality", "fingerprint")  # a config's, besides its id


def _model_path(model: str) -> Path:
    return BUNDLED.get(model, Path(model))


def _check_config(model, fingerprint) -> None:
    """A config's model and fingerprint are of the types ``get_config`` writes (InputError naming
    the field): a config comes from a zarr array's metadata, which anyone can edit."""
    if type(model) is not str or not model:
        raise InputError(
            f"aecodec codec config: model {model!r:.40} is not a bundled model's name "
            f"({', '.join(BUNDLED)}) or a model file's path"
        )
    hexadecimal = type(fingerprint) is str and re.fullmatch("[0-9a-f]{64}", fingerprint)
    if fingerprint is not None and not hexadecimal:
        raise InputError(
            f"aecodec codec config: fingerprint {fingerprint!r:.40} is not 64 hexadecimal digits"
        )


class AecodecCodec(Codec):
    """Learned lossy compression of image chunks (see the module's doc).

    Raises:
        InputError: a config field of the wrong type or value, or an unknown one (``from_config``).
        OSError: the model file cannot be read; FormatError: it is not a valid model (or not a
            regular file, or too large); ModelMismatchError: its fingerprint is not the config's.
    """

    codec_id = "aecodec"

    def __init__(
        self, model: str = "fmnist", quality: int | None = None, fingerprint: str | None = None
    ):
        _check_config(model, fingerprint)
        loaded = api.load_model(_model_path(model))
        if fingerprint is not None and fingerprint != loaded.fingerprint:
            raise ModelMismatchError(
                f"codec config names model {model!r} with fingerprint {fingerprint[:16]}..., "
                f"but that model is {loaded.fingerprint[:16]}..."
            )
        self.model, self.fingerprint = str(model), loaded.fingerprint
        # None: the model's default, recorded as a number
        self.quality = loaded.check_quality(quality)
        self._loaded = loaded

    @classmethod
    def from_config(cls, config: dict) -> AecodecCodec:
        """The codec a config describes (``numcodecs.get_codec`` passes it without its id)."""
        unknown = sorted(set(config) - {"id", *FIELDS}, key=str)
        if unknown:
            raise InputError(
                f"aecodec codec config: unknown field {str(unknown[0])!r:.40} "
                f"(it has {', '.join(FIELDS)})"
            )
        return cls(**{k: v for k, v in config.items() if k != "id"})

    def get_config(self) -> dict:
        return {
            "id": self.codec_id,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "quality": self.quality,
        }

    def encode(self, buf) -> bytes:
        images = np.asarray(buf)
        if images.dtype != np.uint8:
            raise InputError(f"aecodec codes uint8 images, not {images.dtype}")
        if images.ndim not in (2, 3, 4):
            raise InputError(
                f"aecodec codes a chunk of images (N, H, W[, C]), not shape {images.shape}"
            )
        return api.compress(
            images if images.ndim > 2 else images[None], quality=self.quality, model=self._loaded
        )

    def decode(self, buf, out=None):
        """The chunk's images; with ``out`` (zarr-python 2 passes the chunk's array; zarr 3 reshapes
        what it gets itself), copied into it, refused (FormatError) unless they fill it exactly."""
        data = ensure_contiguous_ndarray(buf).tobytes()
        images = api.decompress(data, model=self._loaded)
        if out is None:
            return images
        target = ensure_ndarray_like(out)
        if target.dtype != images.dtype or target.size != images.size:
            raise FormatError(
                f"aecodec chunk holds images {images.shape} {images.dtype}, which do "
                f"not fill the chunk {target.shape} {target.dtype} (a chunk of "
                "another array?)"
            )
        return ndarray_copy(images, out)

    def __repr__(self) -> str:
        return f"AecodecCodec(model={self.model!r}, quality={self.quality})"
