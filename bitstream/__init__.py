"""Container format and entropy-coder I/O for aecodec.

Depends on numpy, msgpack and constriction only (never JAX, never ``codec``), so a
file can be inspected and its integrity checked without the neural network stack.
"""

import importlib

from bitstream.errors import (
    AecodecError,
    ChecksumError,
    FormatError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)

# numpy, msgpack and constriction load on first use: ``import bitstream.errors`` stays cheap.
_LAZY = {
    **{
        name: "bitstream.coder"
        for name in (
            "CODER_NAME",
            "CODER_VERSION",
            "PRECISION",
            "Decoder",
            "Encoder",
            "Tables",
            "ideal_bits",
            "integer_frequencies",
        )
    },
    **{
        name: "bitstream.container"
        for name in (
            "FORMAT_VERSION",
            "MAGIC",
            "Archive",
            "pack",
            "read_header",
            "unpack",
            "verify",
        )
    },
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'bitstream' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "AecodecError",
    "Archive",
    "CODER_NAME",
    "CODER_VERSION",
    "ChecksumError",
    "FORMAT_VERSION",
    "FormatError",
    "LimitError",
    "MAGIC",
    "TruncatedError",
    "UnsupportedVersionError",
    "Decoder",
    "Encoder",
    "PRECISION",
    "Tables",
    "ideal_bits",
    "integer_frequencies",
    "pack",
    "read_header",
    "unpack",
    "verify",
]
