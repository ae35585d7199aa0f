"""aecodec: learned compression for image datasets, lossy and lossless (8 and 16 bits).

>>> import numpy as np, codec
>>> images = np.zeros((3, 28, 28), np.uint8)
>>> data = codec.compress(images, quality=4)
>>> codec.decompress(data).shape
(3, 28, 28)
"""

import importlib
import sys

# Everything loads on first use, the error classes too: the API and the data module load numpy,
# msgpack and constriction, and the `aecodec` program (codec.__main__) can install its signal
# handlers only once this package is imported: what it imports is a start a Ctrl-C would interrupt
# with a traceback.
_ERRORS = (
    "AecodecError",
    "BuildError",
    "CheckpointMismatchError",
    "ChecksumError",
    "ClusterError",
    "DataError",
    "FormatError",
    "InputError",
    "LimitError",
    "ModelMismatchError",
    "OutputIsInputError",
    "TruncatedError",
    "UnsupportedVersionError",
    "UsageError",
)
_API = (
    "Model",
    "compress",
    "decompress",
    "load_model",
    "embed",
    "denoise",
    "sample",
    "anomaly_scores",
)
_LAZY = {
    "data": "codec.io.data",
    "open": "codec.archive",
    "Archive": "codec.archive",
    "compress_file": "codec.files",
    "decompress_file": "codec.files",
    **{name: "codec.api" for name in _API},
    **{name: "codec.errors" for name in _ERRORS},
}


def __getattr__(name: str):
    # the one quality scale every model serves (codec.levels.scale)
    if name == "QUALITIES":
        return importlib.import_module("codec.levels.scale").QUALITIES
    if name not in _LAZY:
        raise AttributeError(f"module 'codec' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    return module if name == "data" else getattr(module, name)


__all__ = sorted([*_LAZY, "QUALITIES"])

# Where Pillow is loaded already (a notebook), aecodec files open in it at once (codec/pillow.py);
# otherwise ``import codec.pillow`` registers them. The command line loads Pillow later, if at all.
if "PIL.Image" in sys.modules:
    importlib.import_module("codec.pillow")
