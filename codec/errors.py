"""Errors raised by ``codec``: the format errors of ``bitstream`` plus the codec's own."""

from bitstream.errors import (
    AecodecError,
    ChecksumError,
    FormatError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)


class ModelMismatchError(AecodecError, ValueError):
    """A compressed file names a model other than the one given to decode it."""


class InputError(AecodecError, ValueError):
    """An array the codec cannot compress: wrong dtype, rank, size, NaN, ..."""


class DataError(AecodecError, OSError):
    """A dataset file is missing, unreadable or malformed."""


class ClusterError(AecodecError, ConnectionError):
    """The Dask scheduler at an address cannot be reached, or what answers there is not one."""



__all__ = [
    "AecodecError",
    "ChecksumError",
    "ClusterError",
    "DataError",
    "FormatError",
    "InputError",
    "LimitError",
    "ModelMismatchError",
    "TruncatedError",
    "UnsupportedVersionError",
]
