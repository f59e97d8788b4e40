"""One Engage page read as it arrives: each profile's own JSON text, one at a time.

An engage page is one JSON object, ``{"page": 0, "page_size": 1000, "results": [...],
"session_id": "...", "status": "ok", "total": N}`` (its keys in any order, possibly pretty-printed),
that can hold 100,000 profiles of hundreds of properties each, 500 MB and more; building it whole
would hold gigabytes (Estuary's engage stream ran out of memory exactly so). The reader walks the
bytes instead and hands over each result as the bytes Mixpanel sent, made compact: whitespace
outside strings removed, everything else exactly as sent (number forms such as ``1.50``, escapes
such as ``\\u00e9``, integers of any width, key order). It holds about one result and one chunk.

Where a result ends is found two ways, both exact:

* Runs of results, the common case: a guess of where the last result in the buffer starts (the
  ``"$distinct_id"`` Mixpanel writes first) cuts the buffer; ``msgspec`` checks and compacts the
  results before the cut as one JSON array, in C. The guess is only a guess, and needs to be no
  more: JSON read from a value's start has one reading, so an array that msgspec accepts holds
  exactly the results before the cut. If msgspec refuses it (a wrong cut, or a result only the
  scanner below reads), the scanner reads each result until the next chunk comes.
* A byte scanner counting brackets outside strings, for everything else (the page's last result,
  one longer than :data:`MAX_CARRIED_BYTES`, pages shaped otherwise). Regular expressions skip
  whole runs of plain bytes, whole strings and whole containers nested up to
  :data:`NESTING_MATCHED_AT_ONCE` deep in one call, so Python steps once per result (or per
  bracket of what nests deeper or spans chunks), never per byte; its state (depth, inside a string,
  after a backslash) is kept across chunks, so a huge result is never scanned again from its start.
  Each result is then checked and made compact by ``msgspec.json.format``.

Two rare kinds of result take a slower road to the same bytes: one holding a lone UTF-16 surrogate
escape such as ``\\ud83d`` (JavaScript clients send them; kept as sent) and one holding a control
character left unescaped inside a string (read, and written back escaped, as the export path does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from airflow_provider_mixpanel.errors import MixpanelServerError
from airflow_provider_mixpanel.jsonl import loads_value, preview

# Containers nested up to this deep are skipped by one regular-expression call; deeper ones are
# walked bracket by bracket (Mixpanel profiles nest 3 to 4 deep: result, $properties, a list...).
NESTING_MATCHED_AT_ONCE = 6

_QUOTE, _COMMA, _COLON = b'"', b",", b":"
_OPEN_BRACE, _CLOSE_BRACE, _OPEN_BRACKET, _CLOSE_BRACKET = b"{", b"}", b"[", b"]"
_OPENERS = (_OPEN_BRACE[0], _OPEN_BRACKET[0])
_TRUNCATED = "it ends before the page does: truncated"

# A whole string: runs without quote or backslash, and escapes (a backslash and any byte), unrolled.
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# A run of bytes that are neither quote nor bracket (whitespace, separators, numbers, literals).
_PLAIN = rb'[^"\[\]{}]++'


def _container_pattern(depth: int) -> bytes:
    """A balanced container nested at most ``depth`` deep, its strings skipped whole. ``{}`` and
    ``[]`` are counted alike: whatever is matched is validated as JSON afterwards."""
    pattern = b""
    for _ in range(depth):
        inner = _PLAIN + b"|" + _STRING + (b"|" + pattern if pattern else b"")
        pattern = rb"[\[{](?:" + inner + rb")*+[\]}]"
    return pattern


# Possessive quantifiers: nothing is ever backtracked into, so each match is linear.
CONTAINER = re.compile(_container_pattern(NESTING_MATCHED_AT_ONCE), re.DOTALL)
STRING = re.compile(_STRING, re.DOTALL)
# Everything inside a container up to the next bracket of its own (or a string or a container
# that does not end within the bytes at hand, or one nested deeper).
_RUN = re.compile(
    rb"(?:" + _PLAIN + b"|" + _STRING + b"|" + _container_pattern(NESTING_MATCHED_AT_ONCE) + rb")*+", re.DOTALL
)
# The rest of a string whose opening quote was passed; stops before its closing quote, or before a
# backslash that is the last byte at hand.
_STRING_REST = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)
# A number or a literal (true, false, null): up to the next separator.
SCALAR = re.compile(rb'[^ \t\n\r,:\[\]{}"]*+')
_WHITESPACE = re.compile(rb"[ \t\n\r]*+")
# A string or a run of whitespace: what the lenient compaction looks at.
_STRING_OR_WHITESPACE = re.compile(_STRING + rb"|[ \t\n\r]++", re.DOTALL)
_CONTROL = re.compile(rb"[\x00-\x1f]")
# A control character as json.dumps escapes it (\n, \t..., else \u00XX), as the export path writes it.
_CONTROL_ESCAPES = {i: json.dumps(chr(i)).encode("ascii")[1:-1] for i in range(0x20)}

_format = msgspec.json.format
_results = msgspec.json.Decoder(list[msgspec.Raw])
# Where a result probably starts: Mixpanel writes "$distinct_id" first. Only a guess of where to cut
# a run of results; msgspec proves it right, else the scanner finds each end itself.
_RESULT_START = b'"$distinct_id"'
_WHITESPACE_BYTES = b" \t\n\r"
# A partial result this long is carried into the next chunk for a run; a longer one is scanned.
MAX_CARRIED_BYTES = 1024 * 1024
# How much of the body an error message shows.
PREVIEW_BYTES = 40


class _NotJson(Exception):
    """The body is not one well-formed JSON object; the reason is the message."""


@dataclass(frozen=True)
class EngagePage:
    """What a page said besides its profiles."""

    session_id: str | None
    page_size: int | None
    profiles: int


class EngagePageReader(Iterator[bytes]):
    """Iterate over the results of one page, each as its compact JSON text (bytes); once
    exhausted, :attr:`result` holds the envelope.

    :raises MixpanelServerError: the body is not an engage page (not JSON, cut short, no
        ``results`` list).
    """

    def __init__(self, chunks: Iterable[bytes], *, what: str):
        self._what = what
        self._chunks = iter(chunks)
        self._buffer = b""
        self._pos = 0
        self._envelope: dict[str, Any] = {}
        self._count = 0
        self._saw_results = False
        # Whole runs of results are cut with msgspec while that works (see _run), until the next chunk.
        self._runs = True
        self._results = self._read()
        self.result: EngagePage | None = None

    def __iter__(self) -> EngagePageReader:
        return self

    def __next__(self) -> bytes:
        return next(self._results)

    def _read(self) -> Iterator[bytes]:
        try:
            yield from self._page()
        except _NotJson as err:
            raise MixpanelServerError(f"Mixpanel {self._what} answered with a body that is not JSON ({err}).") from None
        if not self._saw_results:
            raise MixpanelServerError(
                f"Mixpanel {self._what} answered without a 'results' list ({str(self._envelope)[:200]!r})."
            )
        session_id = self._envelope.get("session_id")
        page_size = self._envelope.get("page_size")
        self.result = EngagePage(
            session_id=str(session_id) if session_id else None,
            page_size=page_size
            if isinstance(page_size, int) and not isinstance(page_size, bool) and page_size > 0
            else None,
            profiles=self._count,
        )

    # ------------------------------------------------------------ the page's structure

    def _page(self) -> Iterator[bytes]:
        first = self._next_byte(at_end=b"")
        if first != _OPEN_BRACE:
            raise _NotJson("it is empty" if not first else f"it does not start with '{{': {self._preview()}")
        self._pos += 1
        token = self._next_byte()
        if token == _CLOSE_BRACE:
            self._pos += 1
        else:
            while True:
                if token != _QUOTE:
                    raise _NotJson(f"a member name was expected at {self._preview()}")
                name = _decode(self._value())
                if self._next_byte() != _COLON:
                    raise _NotJson(f"':' was expected at {self._preview()}")
                self._pos += 1
                if name == "results" and self._next_byte() == _OPEN_BRACKET:
                    self._saw_results = True
                    self._pos += 1
                    yield from self._results_list()
                else:
                    self._next_byte()
                    text = self._value()
                    if text[:1] in (_OPEN_BRACE, _OPEN_BRACKET):
                        compact(text)  # checked, not kept: only the envelope's scalars matter
                    else:
                        self._envelope[name] = _decode(text)
                token = self._next_byte()
                self._pos += 1
                if token == _CLOSE_BRACE:
                    break
                if token != _COMMA:
                    raise _NotJson(f"',' or '}}' was expected at {self._preview(-1)}")
                token = self._next_byte()
        # Read to the end: only whitespace may follow, and a gzip body cut short is told by its chunks.
        if self._next_byte(at_end=b"") != b"":
            raise _NotJson(f"more follows the page's end: {self._preview()}")

    def _results_list(self) -> Iterator[bytes]:
        if self._next_byte() == _CLOSE_BRACKET:
            self._pos += 1
            return
        while True:
            run = self._run() if self._runs else None
            if run is not None:
                for item in run:
                    self._count += 1
                    yield bytes(item)
            else:
                result = compact(self._value())
                self._count += 1
                yield result
            token = self._next_byte()
            self._pos += 1
            if token == _CLOSE_BRACKET:
                return
            if token != _COMMA:
                raise _NotJson(f"',' or ']' was expected at {self._preview(-1)}")
            self._next_byte()

    def _run(self) -> list[msgspec.Raw] | None:
        """The whole results from the current position to the last one that surely ends in the
        buffer, compact, in one call of msgspec (which checks them too); ``None`` when there is no
        such run, or msgspec refuses it (then the scanner reads each result, until the next chunk)."""
        cut = _last_cut(self._buffer, self._pos)
        if cut < 0:
            # No result starts after this one: hand it over now if it is whole (the last before a
            # break, or before ']'), else carry it into the next chunk and look again.
            run = self._run_until(_tail_cut(self._buffer, self._pos))
            if run is not None:
                return run
            if len(self._buffer) - self._pos > MAX_CARRIED_BYTES or not self._more():
                self._runs = False
                return None
            cut = _last_cut(self._buffer, self._pos)
        run = self._run_until(cut)
        if run is None:
            self._runs = False
        return run

    def _run_until(self, cut: int) -> list[msgspec.Raw] | None:
        """The results from the current position to ``cut``, if msgspec reads them as whole results."""
        if cut <= self._pos:
            return None
        text = b"".join((_OPEN_BRACKET, memoryview(self._buffer)[self._pos : cut], _CLOSE_BRACKET))
        try:
            run = _format(text, indent=-1)
            results = _results.decode(run) if run.isascii() or _is_utf8(run) else None
        except msgspec.DecodeError:
            return None
        if results:
            self._pos = cut
        return results or None

    # ------------------------------------------------------------ bytes

    def _next_byte(self, *, at_end: bytes | None = None) -> bytes:
        """The next byte that is not whitespace (not consumed), reading chunks as needed; at the
        body's end ``at_end``, or, without it, the page was cut short."""
        while True:
            pos = _WHITESPACE.match(self._buffer, self._pos).end()  # type: ignore[union-attr]
            self._pos = pos
            if pos < len(self._buffer):
                return self._buffer[pos : pos + 1]
            if not self._more():
                if at_end is None:
                    raise _NotJson(_TRUNCATED)
                return at_end

    def _more(self) -> bool:
        """Append the next chunk to what is left of the buffer (a separator, a number, or a result
        of at most :data:`MAX_CARRIED_BYTES` to be read in the next run)."""
        for chunk in self._chunks:
            if chunk:
                self._buffer = self._buffer[self._pos :] + chunk
                self._pos = 0
                self._runs = True
                return True
        return False

    def _value(self) -> bytes:
        """The text of the value starting at the current position (a non-whitespace byte)."""
        buffer, pos = self._buffer, self._pos
        first = buffer[pos]
        if first in _OPENERS:
            match = CONTAINER.match(buffer, pos)
        elif first == _QUOTE[0]:
            match = STRING.match(buffer, pos)
        else:
            end = SCALAR.match(buffer, pos).end()  # type: ignore[union-attr]
            while end == len(buffer) and self._more():  # the number may go on in the next chunk
                buffer, pos = self._buffer, 0
                end = SCALAR.match(buffer).end()  # type: ignore[union-attr]
            if end == pos:
                raise _NotJson(f"a value was expected at {self._preview()}")
            self._pos = end
            return buffer[pos:end]
        if match is not None:
            self._pos = end = match.end()
            return buffer[pos:end]
        return self._long_value()

    def _long_value(self) -> bytes:
        """A container or string that ends beyond the buffer, or nests deeper than one match goes."""
        data, start = self._buffer, self._pos
        scan = ValueScan(data[start])
        pieces: list[bytes] = []
        end = scan.feed(data, start + 1)
        while end < 0:
            pieces.append(data[start:] if start else data)
            start = 0
            data = next((chunk for chunk in self._chunks if chunk), b"")
            if not data:
                raise _NotJson(_TRUNCATED)
            end = scan.feed(data, 0)
        self._buffer, self._pos = data, end
        self._runs = True
        if not pieces:
            return data[start:end]
        pieces.append(data[:end])
        return b"".join(pieces)

    def _preview(self, offset: int = 0) -> str:
        return preview(self._buffer[max(0, self._pos + offset) :], PREVIEW_BYTES)


def read_engage_page(chunks: Iterable[bytes], *, what: str) -> EngagePageReader:
    """The results of one engage page's body (decompressed chunks), read incrementally, each as
    its compact JSON text."""
    return EngagePageReader(chunks, what=what)


class ValueScan:
    """Where one container or string ends, its bytes fed piece by piece (the state is kept
    between pieces, so nothing is scanned twice but the last, unfinished, nested container)."""

    __slots__ = ("depth", "escaped", "in_string")

    def __init__(self, first: int):
        """``first``: the value's first byte (a quote or an opening bracket), already passed."""
        self.in_string = first == _QUOTE[0]
        self.depth = 0 if self.in_string else 1
        self.escaped = False

    def feed(self, data: bytes, pos: int) -> int:
        """Scan ``data`` from ``pos``: the index just past the value's end, or -1 if it goes on."""
        size = len(data)
        depth, in_string = self.depth, self.in_string
        if self.escaped and pos < size:  # the escaped byte of a backslash that ended the last piece
            pos += 1
            self.escaped = False
        while pos < size:
            if in_string:
                pos = _STRING_REST.match(data, pos).end()  # type: ignore[union-attr]
                if pos == size:
                    break
                if data[pos] != _QUOTE[0]:  # a backslash, the last byte: its pair comes next
                    self.escaped = True
                    pos = size
                    break
                pos += 1
                in_string = False
                if depth == 0:
                    return pos
            else:
                pos = _RUN.match(data, pos).end()  # type: ignore[union-attr]
                if pos == size:
                    break
                byte = data[pos]
                pos += 1
                if byte == _QUOTE[0]:
                    in_string = True
                elif byte in _OPENERS:
                    depth += 1
                else:
                    depth -= 1
                    if depth == 0:
                        return pos
        self.depth, self.in_string = depth, in_string
        return -1


def _last_cut(buffer: bytes, start: int) -> int:
    """The index of the ',' before the last result that starts after ``start`` (found by its
    ``"$distinct_id"``), or -1; a few guesses at most."""
    end = len(buffer)
    for _ in range(3):
        key = buffer.rfind(_RESULT_START, start + 1, end)
        if key < 0:
            return -1
        end = key
        index = key - 1
        while index > start and buffer[index] in _WHITESPACE_BYTES:
            index -= 1
        if buffer[index] != _OPEN_BRACE[0]:
            continue
        index -= 1
        while index > start and buffer[index] in _WHITESPACE_BYTES:
            index -= 1
        if index > start and buffer[index] == _COMMA[0]:
            return index
    return -1


def _tail_cut(buffer: bytes, start: int) -> int:
    """Where the buffer's last result ends if it is whole: at the ',' that follows it, or after
    its '}'; else -1."""
    index = len(buffer) - 1
    while index > start and buffer[index] in _WHITESPACE_BYTES:
        index -= 1
    if buffer[index] == _COMMA[0]:
        return index
    return index + 1 if buffer[index] == _CLOSE_BRACE[0] else -1


def _is_utf8(text: bytes) -> bool:
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def members_until(text: bytes, index: int) -> bool:
    """Whether ``text[1:index]`` is whole members of the object that ``text`` starts, so that
    ``index`` stands at its top level, outside any string. Proved by one match: ``False`` also
    when a container before ``index`` nests deeper than :data:`NESTING_MATCHED_AT_ONCE`."""
    return _RUN.match(text, 1, index).end() == index  # type: ignore[union-attr]


def value_end(text: bytes, pos: int) -> int:
    """Where the JSON value starting at ``text[pos]`` ends, ``text`` holding all of it (compact:
    no whitespace before a scalar's end); -1 if it does not end there."""
    first = text[pos]
    if first == _QUOTE[0]:
        match = STRING.match(text, pos)
        return match.end() if match is not None else -1
    if first in _OPENERS:
        match = CONTAINER.match(text, pos)
        if match is not None:
            return match.end()
        return ValueScan(first).feed(text, pos + 1)
    return SCALAR.match(text, pos).end()  # type: ignore[union-attr]


def compact(text: bytes) -> bytes:
    """One value's text, checked to be JSON, without whitespace outside strings; everything else as
    sent. A control character left unescaped inside a string is written back escaped.

    :raises _NotJson: it is not JSON (or not UTF-8).
    """
    try:
        result = _format(text, indent=-1)
    except msgspec.DecodeError:
        return _compact_leniently(text)
    if not (result.isascii() or _is_utf8(result)):
        raise _NotJson(f"not UTF-8: {preview(result, PREVIEW_BYTES)}")
    return result


def _compact_leniently(text: bytes) -> bytes:
    """What msgspec refuses but JSON readers take: a lone surrogate escape, a raw control character."""
    try:
        loads_value(text)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise _NotJson(str(err)) from None
    return _STRING_OR_WHITESPACE.sub(_compact_token, text)


def _compact_token(match: re.Match[bytes]) -> bytes:
    token = match.group()
    if token[0] != _QUOTE[0]:
        return b""
    return _CONTROL.sub(_escape_control, token)


def _escape_control(match: re.Match[bytes]) -> bytes:
    return _CONTROL_ESCAPES[match.group()[0]]


def _decode(text: bytes) -> Any:
    """One scalar of the envelope (or a member name) as Python."""
    try:
        return loads_value(text)
    except ValueError as err:
        raise _NotJson(str(err)) from None
