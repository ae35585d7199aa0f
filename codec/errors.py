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


class OutputIsInputError(InputError):
    """An output names a file the same run reads: refused even with -f, since writing it would
    destroy what the output is made from."""


class CheckpointMismatchError(AecodecError, ValueError):
    """A training folder (``--workdir``) holds a checkpoint of another configuration: resuming it
    would train something other than what was asked."""


class UsageError(AecodecError):
    """A request that does not fit: an option the kind does not take, data it needs missing, a file
    that is not what the option asks for (the command line's exit status 2)."""


class ClusterError(AecodecError, ConnectionError):
    """The Dask scheduler at an address cannot be reached, or what answers there is not one."""


class BuildError(AecodecError, ImportError):
    """The compiled loops (``codec/levels/_kernels.pyx``) are missing or stale: the user's to fix
    by building them, not a bug (the command line reports it as one line)."""


# Bad usage: the command line asks for something aecodec will not do (exit status 2, not 1).
USAGE_ERRORS = (UsageError, OutputIsInputError)

__all__ = [
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
    "USAGE_ERRORS",
    "UnsupportedVersionError",
    "UsageError",
]
