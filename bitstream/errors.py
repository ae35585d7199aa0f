"""The exception hierarchy of aecodec.

It lives in ``bitstream`` (the lowest floor) so that the container code can raise it
without importing ``codec``; ``codec`` re-exports every name here and adds its own.
Each class also subclasses the builtin a caller would naturally catch.
"""

import reprlib


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


_SHOW = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother, _SHOW.maxlist, _SHOW.maxdict = 2, 40, 40, 4, 4


def show(value) -> str:
    """A short repr of an untrusted value for a message: bounded length and depth, never
    recursive."""
    return _SHOW.repr(value)
