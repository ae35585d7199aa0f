"""aecodec as a zarr format 3 codec: ``numcodecs.aecodec``, an array-to-bytes codec for arrays of
uint8 images, registered with zarr through its ``zarr.codecs`` entry point (``pyproject.toml``), so
zarr and Dask find it without an import.

    >>> from codec.zarr3 import Aecodec
    >>> z = zarr.create_array(store, shape=(60000, 28, 28), chunks=(1000, 28, 28), dtype="uint8",
    ...                       serializer=Aecodec(model="fmnist", quality=4),
    ...                       compressors=None)  # doctest: +SKIP

``compressors=None``: zarr's default compressor would only zstd the aecodec files again.

It is the numcodecs codec (``codec/numcodecs.py``) under zarr's own numcodecs adapter, so a chunk
is the same aecodec file in both formats, and the array's metadata records the config: the model
(a bundled model's name or a model file's path), its fingerprint (a config never silently decodes
with another model: ``ModelMismatchError``) and the quality.
"""

from __future__ import annotations

from zarr.codecs.numcodecs._codecs import _NumcodecsArrayBytesCodec


class Aecodec(_NumcodecsArrayBytesCodec, codec_name="aecodec"):
    """The zarr 3 codec ``numcodecs.aecodec``: ``Aecodec(model="fmnist", quality=4)``; its
    metadata is the numcodecs codec's whole config, the model's fingerprint and the quality's
    number included (what it was asked for is checked as ``AecodecCodec`` checks it)."""

    def __init__(self, **codec_config) -> None:
        super().__init__(**codec_config)
        object.__setattr__(self, "codec_config", self._codec.get_config())
