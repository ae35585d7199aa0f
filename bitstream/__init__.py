"""Container format and entropy-coder I/O for aecodec.

Depends on numpy, msgpack and constriction only (never JAX, never ``codec``), so a
file can be inspected and its integrity checked without the neural network stack.
"""

from bitstream.coder import CODER_NAME, CODER_VERSION, PRECISION, Decoder, Encoder, Tables, ideal_bits, integer_frequencies
from bitstream.container import (
    FORMAT_VERSION,
    MAGIC,
    Archive,
    pack,
    read_header,
    unpack,
    verify,
)
from bitstream.errors import (
    AecodecError,
    ChecksumError,
    FormatError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)

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
