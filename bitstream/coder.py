"""ANS coding of integer symbols against frozen integer tables (constriction).

A table t codes the symbols ``lows[t] .. lows[t] + len(freqs[t]) - 2`` directly; its last
entry is an escape, followed by the value itself (clipped to int16, uniform over 2^16).
Frequencies sum to 2^24, constriction's categorical precision: its conversion of these
exactly representable numbers reproduces the integers, so no rounding happens anywhere.

A stream is a sequence of *parts*, each an array of symbols with a same-shaped array of
table indices. The decoder reads the parts in order and may compute a part's table
indices from the parts before it (the latents' tables depend on each image's cluster).
Within a part, all symbols sharing a table are coded in one vectorized call, tables in
ascending order, escapes last; ANS is a stack, so the encoder pushes all in reverse.

A stream is *framed* (container format 3): the parts are followed by an end marker and may be
preceded by padding. An ANS stream that has run out keeps decoding the likeliest symbols
forever, and a run of near-certain symbols codes to almost nothing (a blank image can code to
zero bytes), so neither the stream's length nor its exhaustion shows where it ends:

    [pad flag] [pad count, pad words, when the flag is set]  parts...  [end marker]

The end marker (16 bits) catches a decoder asked for more symbols than were coded (a raised
image count), and the padding lets the encoder meet the container's floor of bytes per pixel,
which bounds the work a short file can demand. Unpadded, the flag costs 1/50,000 of a bit.
"""

from __future__ import annotations

import constriction
import numpy as np

from bitstream.errors import FormatError, TruncatedError

CODER_NAME = "constriction-ans"
CODER_VERSION = "0.5"  # pinned: constriction~=0.5; any bitstream change is a format change
PRECISION = 24
ESCAPE_BITS = 16  # an escaped symbol is sent as this many raw bits
ESCAPE_RANGE = 1 << ESCAPE_BITS
_ESCAPE_OFFSET = ESCAPE_RANGE // 2
END_MARKER = 0xAEC3  # the last symbol of a framed stream; an exhausted stream decodes 0 here
_PAD_FLAG = np.array([(1 << PRECISION) - (1 << 8), 1 << 8], np.uint32)  # padded streams are rare


def _model(freqs: np.ndarray):
    return constriction.stream.model.Categorical(freqs.astype(np.float64), perfect=False)


def _runs(index: np.ndarray, via: np.ndarray | None = None):
    """(order, tables, counts) of a flat index array: ``order`` sorts it by index (stably:
    positions in order within a run), and each run of equal indices, ascending, has its table
    (``via[index]`` given ``via``) and its length. The coder makes one call per run."""
    order = np.argsort(index, kind="stable")  # int16 indices: a radix sort
    counts = np.bincount(index.astype(np.intp, copy=False))
    present = np.flatnonzero(counts)
    tables = present if via is None else via[present]
    return order, tables.tolist(), counts[present].tolist()


class Tables:
    """A set of frozen integer tables: ``lows`` (T,) and ``freqs`` (T arrays of uint32)."""

    def __init__(self, lows: np.ndarray, freqs):
        self.lows = np.asarray(lows, np.int64)
        self.freqs = tuple(freqs)
        # each table's escape symbol
        self.sizes = np.array([len(f) - 1 for f in self.freqs], np.int64)
        self._models = [None] * len(self.freqs)

    def model(self, t: int):
        if self._models[t] is None:
            self._models[t] = _model(self.freqs[t])
        return self._models[t]

    def __len__(self) -> int:
        return len(self.freqs)


class Encoder:
    """Collects parts, then ``finish()`` codes them into one stream."""

    def __init__(self, tables: Tables):
        self.tables = tables
        self._parts = []

    def add(self, symbols: np.ndarray, index: np.ndarray, via: np.ndarray | None = None) -> None:
        """A part: each symbol coded with table ``index`` (or, given ``via``, table ``via[index]``:
        the symbols are then grouped by ``index``, which may be a small int16 code of many
        tables)."""
        symbols = np.clip(
            np.asarray(symbols, np.int64).reshape(-1), -_ESCAPE_OFFSET, _ESCAPE_OFFSET - 1
        )
        index = np.asarray(index).reshape(-1)
        if symbols.shape != index.shape:
            raise ValueError("symbols and table indices differ in size")
        self._parts.append((symbols, index, None if via is None else np.array(via)))

    def add_words(self, push) -> None:
        """A part another coder pushes: ``push(words) -> words`` takes the stream so far (what
        constriction's ``get_compressed`` gives) and returns it with the part pushed on. The other
        coder must be constriction's stack ANS (64-bit state, 32-bit words, 24-bit precision)
        word for word; it is called during ``finish``, in the stream's backward order."""
        self._parts.append((push, None, None))

    def finish(self, *, min_bytes: int = 0, framed: bool = True) -> bytes:
        """The stream: framed (end marker, and padding up to ``min_bytes``) unless ``framed`` is
        false (format 2)."""
        coder = constriction.stream.stack.AnsCoder()
        if framed:
            coder.encode_reverse(np.array([END_MARKER], np.int32), _UNIFORM)
        models, model = self.tables._models, self.tables.model
        for symbols, index, via in reversed(self._parts):
            if index is None:  # pushed by another coder
                coder = constriction.stream.stack.AnsCoder(symbols(coder.get_compressed()))
                continue
            if not index.size:
                continue
            order, tables, counts = _runs(index, via)
            table = index if via is None else via[index]
            sizes = self.tables.sizes[table]
            s = symbols - self.tables.lows[table]
            outside = (s < 0) | (s >= sizes)
            # escapes, by table then position: the decoder's order
            values = symbols[order][outside[order]]
            if values.size:
                coder.encode_reverse(
                    (values + _ESCAPE_OFFSET).astype(np.int32),
                    constriction.stream.model.Uniform(ESCAPE_RANGE),
                )
            s = np.where(outside, sizes, s).astype(np.int32)[order]
            ends = np.cumsum(counts).tolist()
            for t, end, count in zip(
                reversed(tables), reversed(ends), reversed(counts), strict=True
            ):
                coder.encode_reverse(s[end - count : end], models[t] or model(t))
        if framed:
            _pad(coder, min_bytes)
        return coder.get_compressed().tobytes()


_UNIFORM = constriction.stream.model.Uniform(ESCAPE_RANGE)
_PAD_MODEL = _model(_PAD_FLAG)


def _pad(coder, min_bytes: int) -> None:
    """Push the pad flag (and, when the stream is shorter than ``min_bytes``, zero words and their
    count)."""
    short = min_bytes - 4 * coder.num_words()
    if short > 0:
        # each pad symbol adds 16 bits; two spare for the ANS state's slack
        words = -(-short // 2) + 2
        coder.encode_reverse(np.zeros(words, np.int32), _UNIFORM)
        coder.encode_reverse(np.array([words >> 16, words & 0xFFFF], np.int32), _UNIFORM)
    coder.encode_reverse(np.array([int(short > 0)], np.int32), _PAD_MODEL)


class Decoder:
    """Reads the parts of a stream in order; ``finish()`` checks the end marker and that nothing is
    left."""

    def __init__(self, data: bytes, tables: Tables, *, framed: bool = True):
        if len(data) % 4:
            raise TruncatedError("entropy-coded stream is not a whole number of 32-bit words")
        self.tables = tables
        self._framed = framed
        try:
            self._coder = constriction.stream.stack.AnsCoder(
                np.frombuffer(data, dtype="<u4").astype(np.uint32)
            )
            if framed:
                self._skip_padding(len(data))
        except (ValueError, RuntimeError) as e:
            raise FormatError(f"entropy-coded stream is damaged ({e})") from None

    def _skip_padding(self, size: int) -> None:
        if self._coder.decode(_PAD_MODEL, 1)[0] == 0:
            return
        high, low = self._coder.decode(_UNIFORM, 2)
        words = (int(high) << 16) | int(low)
        if 2 * words > size:
            raise FormatError("entropy-coded stream claims more padding than it holds (damaged)")
        if self._coder.decode(_UNIFORM, words).any():
            raise FormatError("entropy-coded stream's padding is not zero (damaged)")

    def read(self, index: np.ndarray, via: np.ndarray | None = None) -> np.ndarray:
        """The symbols of the next part, one per entry of ``index`` (same shape; tables as
        ``Encoder.add``)."""
        flat = np.asarray(index).reshape(-1)
        if flat.size and (
            flat.min() < 0 or flat.max() >= (len(self.tables) if via is None else len(via))
        ):
            raise FormatError("table index out of range")
        if not flat.size:
            return np.zeros(np.shape(index), np.int32)
        # symbols are within int16 after escapes; half the memory of int64
        out = np.empty(flat.size, np.int32)
        try:
            order, tables, counts = _runs(flat, via)
            decode, models, model = self._coder.decode, self.tables._models, self.tables.model
            ordered = np.concatenate(
                [decode(models[t] or model(t), c) for t, c in zip(tables, counts, strict=True)]
            )
            # by table, then position
            escaped = np.flatnonzero(ordered == np.repeat(self.tables.sizes[tables], counts))
            ordered += np.repeat(self.tables.lows[tables], counts).astype(np.int32)
            if escaped.size:
                values = self._coder.decode(
                    constriction.stream.model.Uniform(ESCAPE_RANGE), escaped.size
                )
                ordered[escaped] = values.astype(np.int32) - _ESCAPE_OFFSET
            out[order] = ordered
        except (ValueError, RuntimeError) as e:
            raise FormatError(f"entropy-coded stream is damaged ({e})") from None
        return out.reshape(np.shape(index))

    def read_words(self, read) -> None:
        """The next part, read by another coder: ``read(words) -> words`` takes what is left of the
        stream (as ``Encoder.add_words`` gave it) and returns what it leaves."""
        try:
            left = read(self._coder.get_compressed())
            self._coder = constriction.stream.stack.AnsCoder(left)
        except (ValueError, RuntimeError) as e:
            raise FormatError(f"entropy-coded stream is damaged ({e})") from None

    def finish(self) -> None:
        try:
            marker = self._coder.decode(_UNIFORM, 1)[0] if self._framed else END_MARKER
        except (ValueError, RuntimeError) as e:
            raise FormatError(f"entropy-coded stream is damaged ({e})") from None
        if marker != END_MARKER:
            raise FormatError(
                "entropy-coded stream does not end where its image count says (damaged)"
            )
        if not self._coder.is_empty():
            raise FormatError("entropy-coded stream has data left after the last symbol (damaged)")


def integer_frequencies(probs: np.ndarray) -> np.ndarray:
    """Integer frequencies summing to 2**PRECISION, each >= 1, closest to ``probs`` (+ remainder to
    the mode)."""
    probs = np.asarray(probs, np.float64)
    freqs = np.floor(probs / probs.sum() * ((1 << PRECISION) - probs.size)).astype(np.int64) + 1
    freqs[np.argmax(freqs)] += (1 << PRECISION) - freqs.sum()
    return freqs.astype(np.uint32)


def ideal_bits(symbols: np.ndarray, index: np.ndarray, tables: Tables) -> float:
    """Ideal bits of ``symbols`` under the tables (escapes at 16 extra bits): what ``Encoder``
    approaches."""
    symbols, index = np.asarray(symbols).reshape(-1), np.asarray(index).reshape(-1)
    total = 0.0
    order, used, counts = _runs(index)
    for t, pos in zip(used, np.split(order, np.cumsum(counts)[:-1]), strict=True):
        freqs = tables.freqs[t].astype(np.float64) / (1 << PRECISION)
        s = symbols[pos] - tables.lows[t]
        size = len(freqs) - 1
        inside = (s >= 0) & (s < size)
        total += -np.log2(freqs[s[inside]]).sum() + (~inside).sum() * (16 - np.log2(freqs[-1]))
    return float(total)
