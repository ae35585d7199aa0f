"""aecodec: learned lossy compression for image datasets.

>>> import numpy as np, codec
>>> images = np.zeros((3, 28, 28), np.uint8)
>>> data = codec.compress(images, quality=4)
>>> codec.decompress(data).shape
(3, 28, 28)
"""

from codec import data
from codec.api import Model, compress, compress_file, decompress, decompress_file, load_model
from codec.errors import (
    AecodecError,
    ChecksumError,
    DataError,
    FormatError,
    InputError,
    LimitError,
    ModelMismatchError,
    TruncatedError,
    UnsupportedVersionError,
)

QUALITIES = (1, 2, 3, 4, 5, 6, 7, 8)  # the bundled model's levels, low to high quality

__all__ = [
    "AecodecError",
    "ChecksumError",
    "DataError",
    "FormatError",
    "InputError",
    "LimitError",
    "Model",
    "ModelMismatchError",
    "QUALITIES",
    "TruncatedError",
    "UnsupportedVersionError",
    "compress",
    "compress_file",
    "data",
    "decompress",
    "decompress_file",
    "load_model",
]
