"""A bounded walk over msgpack bytes, before any object is built.

msgpack's own limits cap the length of each string, array and map, not their product: 63 MB
of nested one-byte empty arrays pass every per-container limit and still build 63 million
Python lists (4.8 GB). ``check_structure`` walks the encoded bytes with an explicit stack,
counting values and depth, and refuses past the caps in time linear in the values it saw,
allocating nothing but the stack. Strings, binaries and extensions are skipped by length.
"""

from __future__ import annotations

import msgpack

from bitstream.errors import FormatError, LimitError, TruncatedError

# For each leading byte of a fixed-size value: the bytes that follow it.
_FIXED = {
    0xC0: 0,
    0xC2: 0,
    0xC3: 0,
    0xCA: 4,
    0xCB: 8,
    0xCC: 1,
    0xCD: 2,
    0xCE: 4,
    0xCF: 8,
    0xD0: 1,
    0xD1: 2,
    0xD2: 4,
    0xD3: 8,
    0xD4: 2,
    0xD5: 3,
    0xD6: 5,
    0xD7: 9,
    0xD8: 17,
}
# Leading byte -> width of its big-endian length field, for variable-size values ...
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin, str
_EXT = {0xC7: 1, 0xC8: 2, 0xC9: 4}  # ext: length field, then a type byte
_CONTAINERS = {
    0xDC: (2, 1),
    0xDD: (4, 1),
    0xDE: (2, 2),
    0xDF: (4, 2),
}  # (length width, children per entry)


def check_structure(raw, *, what: str, max_values: int, max_depth: int, start: int = 0) -> int:
    """Walk the one msgpack value at ``raw[start:]``; returns the offset just after it.

    Raises:
        LimitError: more than ``max_values`` values.
        FormatError: nesting deeper than ``max_depth``, or a byte that starts no msgpack value
            (0xC1).
        TruncatedError: the bytes end inside the value.
    """
    view = memoryview(raw)
    end = len(view)
    pos, values = start, 0
    pending = [1]  # values still to read at each open level

    def need(k: int) -> None:
        if pos + k > end:
            raise TruncatedError(f"{what} ends inside a msgpack value")

    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        pending[-1] -= 1
        values += 1
        if values > max_values:
            raise LimitError(f"{what} holds more than {max_values} msgpack values")
        need(1)
        b = view[pos]
        pos += 1
        children = 0
        if b <= 0x7F or b >= 0xE0:
            continue
        if b <= 0x8F:
            children = 2 * (b & 0x0F)
        elif b <= 0x9F:
            children = b & 0x0F
        elif b <= 0xBF:
            pos += b & 0x1F
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _SIZED or b in _EXT:
            width = _SIZED.get(b) or _EXT[b]
            need(width)
            pos += width + int.from_bytes(view[pos : pos + width], "big") + (b in _EXT)
        elif b in _CONTAINERS:
            width, per_entry = _CONTAINERS[b]
            need(width)
            children = per_entry * int.from_bytes(view[pos : pos + width], "big")
            pos += width
        else:
            raise FormatError(f"{what} holds the byte 0x{b:02x}, which starts no msgpack value")
        if pos > end:
            raise TruncatedError(f"{what} ends inside a msgpack value")
        if children:
            if values + children > max_values:
                raise LimitError(f"{what} holds more than {max_values} msgpack values")
            if len(pending) > max_depth:  # the containers open, this one included
                raise FormatError(f"{what} is nested deeper than {max_depth} levels")
            pending.append(children)
    return pos


def unpack_map(
    raw, *, what: str, noun: str, start: int, max_values: int, max_depth: int, **limits
) -> dict:
    """The msgpack map of ``raw[start:]`` (a file's body after its magic): its structure walked
    first (``check_structure``), then parsed strictly within msgpack's own ``limits``
    (``max_bin_len``, ``max_str_len``, ...). ``noun`` names the kind of file in the messages.

    Raises:
        TruncatedError: the bytes stop inside a value. LimitError: past the caps.
        FormatError: anything else (bytes after the end, bad UTF-8, not a map).
    """
    try:
        end = check_structure(
            raw, what=what, max_values=max_values, max_depth=max_depth, start=start
        )
    except TruncatedError:
        raise TruncatedError(f"{what}: {noun} is truncated") from None
    if end != len(raw):
        raise FormatError(f"{what}: {noun} has bytes after its end")
    try:
        body = msgpack.unpackb(raw[start:], raw=False, strict_map_key=True, **limits)
    except msgpack.OutOfData:
        raise TruncatedError(f"{what}: {noun} is truncated") from None
    except (msgpack.UnpackException, ValueError) as e:
        if "incomplete input" in str(e):  # how unpackb reports data that stops early
            raise TruncatedError(f"{what}: {noun} is truncated") from None
        raise FormatError(f"{what}: {noun} is damaged: {e}") from None
    if not isinstance(body, dict):
        raise FormatError(f"{what}: {noun} is damaged (not a map)")
    return body
