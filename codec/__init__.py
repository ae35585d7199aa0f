"""aecodec: learned lossy compression for image datasets.

>>> import numpy as np, codec
>>> images = np.zeros((3, 28, 28), np.uint8)
>>> data = codec.compress(images, quality=4)
>>> codec.decompress(data).shape
(3, 28, 28)
"""

import importlib

from codec.errors import (
    AecodecError,
    CheckpointMismatchError,
    ChecksumError,
    DataError,
    FormatError,
    InputError,
    LimitError,
    ModelMismatchError,
    OutputIsInputError,
    TruncatedError,
    UnsupportedVersionError,
)

# The API and the data module load numpy, msgpack and constriction: imported on first use, so
# that `aecodec` installs its signal handlers before any slow import (and starts faster).
_LAZY = {"data": "codec.data", "open": "codec.archive", "Archive": "codec.archive", **{name: "codec.api" for name in
         ("Model", "compress", "compress_file", "decompress", "decompress_file", "load_model",
          "embed", "denoise", "sample", "anomaly_scores")}}


def __getattr__(name: str):
    if name == "QUALITIES":  # the bundled model's levels, low to high quality: read from it, not written here
        return importlib.import_module("codec.api").load_model().qualities
    if name not in _LAZY:
        raise AttributeError(f"module 'codec' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    return module if name == "data" else getattr(module, name)


__all__ = [
    "AecodecError",
    "anomaly_scores",
    "denoise",
    "embed",
    "sample",
    "Archive",
    "CheckpointMismatchError",
    "ChecksumError",
    "DataError",
    "FormatError",
    "InputError",
    "LimitError",
    "Model",
    "ModelMismatchError",
    "OutputIsInputError",
    "QUALITIES",
    "TruncatedError",
    "UnsupportedVersionError",
    "compress",
    "compress_file",
    "data",
    "decompress",
    "decompress_file",
    "load_model",
    "open",
]
