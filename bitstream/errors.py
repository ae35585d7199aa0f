"""The exception hierarchy of aecodec.

It lives in ``bitstream`` (the lowest floor) so that the container code can raise it
without importing ``codec``; ``codec`` re-exports every name here and adds its own.
Each class also subclasses the builtin a caller would naturally catch.
"""


class AecodecError(Exception):
    """Root of every error aecodec raises on purpose."""


class FormatError(AecodecError, ValueError):
    """Bytes that are not a valid aecodec file (container or model)."""


class TruncatedError(FormatError, EOFError):
    """The data ends before the structure it announces."""


class ChecksumError(FormatError):
    """A checksum does not match: the bytes were damaged after writing."""


class UnsupportedVersionError(FormatError):
    """The file was written by a newer (or unknown) format version."""


class LimitError(FormatError):
    """A size claimed by the data exceeds what aecodec accepts (a bomb or damage)."""
