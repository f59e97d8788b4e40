"""JSONL framing and codec: split a byte stream into lines on ``b"\\n"`` only, and read or
write one line.

A line ends at ``\\n``; a ``\\r`` right before it (a CRLF ending) belongs to the ending and is
removed on every road, raw output included; a line left empty is no record and is skipped.

``str.splitlines()`` (and so ``requests.iter_lines(decode_unicode=True)``) also breaks on U+2028,
U+2029, U+0085 and 0x1C-0x1E, which JSON allows raw inside strings; Mixpanel exports contain them,
and splitting there corrupts records. Splitting the *bytes* on ``\\n`` is safe: in UTF-8 the byte
0x0A never occurs inside a multi-byte character, and JSON escapes a newline inside a string.

The CLI and both operators write the lines the roads make from each line's own bytes
(:mod:`~airflow_provider_mixpanel.event_lines`, :mod:`~airflow_provider_mixpanel.profile_lines`),
so a file from either agrees byte for byte; :func:`dumps_line` writes a record built in Python.
Output is compact UTF-8 JSON (non-ASCII written as is, not ``\\u``-escaped), one record per line;
``datetime`` values are written as ISO-8601 (``2020-10-13T17:48:31+00:00``).
"""

from __future__ import annotations

import collections
import json
import re
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol, TypeVar

import msgspec

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield each non-empty line of the concatenated ``chunks``, without its ``\\n``.

    Lines may span any number of chunks; a last line without a trailing newline is yielded too.
    A line's pieces are joined once, when its end arrives, so a very long line costs linear time.
    """
    for lines in split_line_batches(chunks):
        yield from lines


class LineBatch(list[bytes]):
    """Lines (without their ``\\n``), and ``text``: the same lines as one bytes object, each with its
    ``\\n``, when they are exactly that (no ``\\r`` was removed, no blank line skipped), else ``None``.
    Raw output writes ``text`` at once instead of joining the lines again."""

    __slots__ = ("text",)

    def __init__(self, lines: Iterable[bytes], text: bytes | None = None):
        super().__init__(lines)
        self.text = text


def split_line_batches(chunks: Iterable[bytes]) -> Iterator[LineBatch]:
    """:func:`split_lines`, a list at a time: the non-empty lines each chunk completes (one step
    of Python per chunk instead of one per line, for the hot paths). A CRLF ending's ``\\r`` is
    removed, so a file written on Windows gives the same lines."""
    pending: list[bytes] = []
    for chunk in chunks:
        end = chunk.rfind(b"\n") + 1  # after the chunk's last newline: what it completes
        if not end:
            if chunk:
                pending.append(chunk)
            continue
        if pending:
            pending.append(chunk[:end])
            text = b"".join(pending)
            pending = []
        else:
            text = chunk if end == len(chunk) else chunk[:end]
        if end < len(chunk):
            pending.append(chunk[end:])
        lines = text.split(b"\n")
        lines.pop()  # empty: the text ends with its last line's newline
        exact = True  # the lines are the text, byte for byte
        # A CR is looked for once per text (in C): Mixpanel ends lines with LF only.
        if b"\r" in text:
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
            exact = False
        if b"" in lines:  # blank lines: rare, dropped
            lines = [line for line in lines if line]
            exact = False
        if lines:
            yield LineBatch(lines, text if exact else None)
    if pending:
        last = b"".join(pending)
        if last.endswith(b"\r"):
            last = last[:-1]
        if last:
            yield LineBatch([last])


# msgspec (a dependency of Airflow 3 itself) parses and writes JSON 3-8x faster than the standard
# library and, unlike orjson, keeps integers beyond 64 bits exact (benchmarks/RESULTS.md).
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
# Reads what msgspec refuses; raw_decode gives each value's end, so its text is kept.
_lenient = json.JSONDecoder(strict=False)
_WHITESPACE = " \t\n\r"
# Checks that a line is one well-formed JSON object without building it (about 4x faster).
_object_checker = msgspec.json.Decoder(type=dict[str, msgspec.Raw])


def dumps_line(record: dict[str, Any]) -> bytes:
    """One record as a JSONL line: compact UTF-8 JSON followed by ``\\n``.

    A top-level ``datetime`` (the normalized ``event_time``) is written as ISO-8601 with
    ``+00:00``. A record holding a lone UTF-16 surrogate (which UTF-8 cannot carry) is written
    with ASCII escapes instead, losslessly.

    :raises ValueError: the record holds a float that is not finite (``inf``, ``nan``: what
        ``1e400`` reads as), which JSON cannot write; the roads keep such numbers as sent instead.
    """
    if isinstance(record.get("event_time"), datetime):
        record = {**record, "event_time": record["event_time"].isoformat()}
    try:
        line = _encoder.encode(record) + b"\n"
    except (UnicodeEncodeError, TypeError, OverflowError, msgspec.EncodeError):
        try:
            text = json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=_default, allow_nan=False)
        except ValueError as err:
            raise _not_finite(err) from None
        return (text + "\n").encode("ascii")
    if b"null" in line:  # msgspec writes inf and nan as null: a changed value, unless it was None
        try:
            json.dumps(record, default=str, allow_nan=False)
        except ValueError as err:
            raise _not_finite(err) from None
    return line


def _not_finite(err: ValueError) -> ValueError:
    return ValueError(f"The record holds a number JSON cannot write ({err}); write the line's own text instead.")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def loads_value(text: bytes) -> Any:
    """Parse one JSON value (UTF-8 bytes).

    msgspec rejects lone UTF-16 surrogates (``\\ud83d``), which JavaScript clients can send, and
    control characters left unescaped inside strings; the standard library reads both. It reads
    UTF-8 only (given bytes it would guess UTF-16 too) and refuses NaN and Infinity, which are
    not JSON.

    :raises ValueError: the text is not JSON in UTF-8.
    """
    try:
        return _decoder.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return json.loads(text.decode("utf-8"), strict=False, parse_constant=_refuse_constant)


def loads_object(line: bytes) -> dict[str, Any]:
    """Parse one JSONL line that must hold a JSON object.

    :raises MixpanelMalformedRecordError: the line is not valid UTF-8 JSON, or not an object.
    """
    try:
        value = loads_value(line)
    except ValueError as err:
        raise MixpanelMalformedRecordError(f"Line is not valid JSON ({err}): {preview(line)}") from None
    except RecursionError:  # msgspec and the standard library both stop at Python's recursion limit
        raise too_deep(preview(line)) from None
    if not isinstance(value, dict):
        raise MixpanelMalformedRecordError(
            f"Line is JSON but not an object (got {type(value).__name__}): {preview(line)}"
        )
    return value


def too_deep(shown: str) -> MixpanelMalformedRecordError:
    """The error of a line nested deeper than the parsers go (Python's recursion limit); ``shown``:
    the line's start, as :func:`preview` gives it."""
    return MixpanelMalformedRecordError(
        f"Line is nested deeper than {sys.getrecursionlimit()} levels, more than can be read: {shown}"
    )


def lenient_members(text: str, start: int = 0) -> list[tuple[str, str, int]]:
    """(name, value text, where the value starts) of each member of the JSON object at
    ``text[start]``, in order, a repeated name as often as it occurs, read by the standard
    library, which takes what msgspec refuses (a lone surrogate escape, a raw control character);
    each value keeps its text, except that a control character left raw inside a string is
    written escaped, since JSON requires it (only that character changes: ``1.50`` stays ``1.50``).

    :raises ValueError: there is no JSON object there (``IndexError`` if the text ends first).
    """
    members: list[tuple[str, str, int]] = []
    index = _skip_whitespace(text, start)
    if text[index] != "{":
        raise ValueError("not a JSON object")
    index = _skip_whitespace(text, index + 1)
    if text[index] == "}":
        return members
    while True:
        name, index = _lenient.raw_decode(text, index)
        index = _skip_whitespace(text, _skip_whitespace(text, index) + 1)  # past the ':'
        _, end = _lenient.raw_decode(text, index)
        members.append((name, escape_controls(text[index:end]), index))
        index = _skip_whitespace(text, end)
        if text[index] == "}":
            return members
        index = _skip_whitespace(text, index + 1)  # past the ','


# A whole JSON string (escapes included), and a control character, which JSON allows only escaped.
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f]")


def escape_controls(value_text: str) -> str:
    """A JSON value's text with each control character left raw inside a string escaped as
    ``json.dumps`` writes it (``\\n``, ``\\t``..., else ``\\u00XX``); everything else as it was."""
    if not _CONTROL.search(value_text):
        return value_text
    return _STRING.sub(lambda string: _CONTROL.sub(_escape_control, string.group()), value_text)


def _escape_control(match: re.Match[str]) -> str:
    return json.dumps(match.group())[1:-1]


def _skip_whitespace(text: str, index: int) -> int:
    while text[index] in _WHITESPACE:
        index += 1
    return index


def check_object(line: bytes) -> bytes:
    """Check that a line is one well-formed JSON object in UTF-8, without building the object: for
    raw output, which writes the line's bytes as they came. Exactly the lines :func:`loads_object`
    reads pass. Returns what raw output writes: the line itself, or, for the rare line with a
    control character left raw inside a string (read, as JSON parsers are not), the line with
    those escaped, so the output is valid JSON.

    :raises MixpanelMalformedRecordError: as :func:`loads_object` would.
    """
    try:
        _object_checker.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        loads_object(line)  # the precise error, or the rare line only the standard library reads
        return escape_controls(line.decode("utf-8")).encode("utf-8")
    # msgspec checks the UTF-8 of what it builds (the names), not of the values it skips.
    if not line.isascii():
        require_utf8(line)
    return line


def require_utf8(line: bytes) -> None:
    """Check that a line is UTF-8: JSON must be, and the output must be.

    :raises MixpanelMalformedRecordError: it is not.
    """
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MixpanelMalformedRecordError(f"Line is not valid JSON ({err}): {preview(line)}") from None


def all_objects(lines: list[bytes]) -> bool:
    """Whether every line passes :func:`check_object` by the fast test alone, with no step of
    Python per line: for raw output, a batch at a time. ``False`` says only that some line needs
    :func:`check_object` itself (its precise error, or the rare line only the standard library
    reads)."""
    try:
        # Both loops in C, keeping nothing. msgspec checks the UTF-8 of the names only, as in
        # check_object; the rest is checked line by line: one UTF-8 decode of many lines at once
        # costs more, a non-ASCII character late in the text widening all of it again.
        collections.deque(map(_object_checker.decode, lines), 0)
        collections.deque(map(bytes.decode, lines), 0)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    return True


_Item = TypeVar("_Item")


class Tally(Protocol):
    """What counts the records :func:`convert_lines` hands out."""

    records: int


def convert_lines(
    lines: Iterator[_Item],
    convert: Callable[[_Item], Any],
    on_malformed: Callable[[_Item, MixpanelMalformedRecordError], None] | None,
    tally: Tally | None = None,
) -> Generator[Any, None, None]:
    """``convert`` each line (or parsed record). A line it finds malformed is passed to ``on_malformed`` and skipped,
    or, without ``on_malformed``, raises; either way the error names the line's number (1 for
    the first) and shows its start. ``tally.records`` counts what was handed out. Closing the
    result closes ``lines``."""
    try:
        for number, line in enumerate(lines, 1):
            try:
                record = convert(line)
            except (MixpanelMalformedRecordError, RecursionError) as caught:
                shown = preview(line) if isinstance(line, bytes) else repr(line)[:_PREVIEW_CHARS]
                # Each road's parser stops at the recursion limit in its own place: one error for all.
                err = caught if isinstance(caught, MixpanelMalformedRecordError) else too_deep(shown)
                err.locate(number, shown)
                if on_malformed is None:
                    raise err from None
                on_malformed(line, err)
                continue
            if tally is not None:
                tally.records += 1
            yield record
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# How much of a line an error message shows.
_PREVIEW_CHARS = 100


def preview(line: bytes, limit: int = _PREVIEW_CHARS) -> str:
    """The start of a line, for an error message."""
    text = line[:limit].decode("utf-8", errors="replace")
    return repr(text + ("..." if len(line) > limit else ""))
