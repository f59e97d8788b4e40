"""One Engage page read as it arrives: profiles one at a time, never the whole page as objects.

An engage page is one JSON object, ``{"page": 0, "page_size": 1000, "session_id": "...",
"results": [...]}``, that can hold 100,000 profiles of hundreds of properties each; building it
whole would hold gigabytes (Estuary's engage stream ran out of memory exactly so). ijson (its C
backend) parses the bytes incrementally: each profile is built alone and handed over, and the
envelope's fields are kept wherever they stand in the body.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import ijson

from airflow_provider_mixpanel.errors import MixpanelServerError

# ijson asks its file for this many bytes at a time.
PARSE_BUFFER_BYTES = 64 * 1024


@dataclass(frozen=True)
class EngagePage:
    """What a page said besides its profiles."""

    session_id: str | None
    page_size: int | None
    profiles: int


class EngagePageReader(Iterator[Any]):
    """Iterate over the profiles of one page; once exhausted, :attr:`result` holds the envelope.

    :raises MixpanelServerError: the body is not an engage page (not JSON, no ``results`` list).
    """

    def __init__(self, chunks: Iterable[bytes], *, what: str):
        self._what = what
        self._events = ijson.parse(_ChunkFile(chunks), buf_size=PARSE_BUFFER_BYTES, use_float=True)
        self._profiles = self._read()
        self._envelope: dict[str, Any] = {}
        self._count = 0
        self._saw_results = False
        self.result: EngagePage | None = None

    def __iter__(self) -> EngagePageReader:
        return self

    def __next__(self) -> Any:
        return next(self._profiles)

    def _read(self) -> Iterator[Any]:
        try:
            yield from self._profiles_and_envelope()
        except ijson.JSONError as err:
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

    def _profiles_and_envelope(self) -> Iterator[Any]:
        events = self._events
        for prefix, event, value in events:
            if prefix == "results" and event == "start_array":
                self._saw_results = True
            elif prefix == "results.item":
                self._count += 1
                yield _build(event, value, events)
            elif "." not in prefix and prefix and event in ("string", "number", "boolean", "null"):
                self._envelope[prefix] = value


def read_engage_page(chunks: Iterable[bytes], *, what: str) -> EngagePageReader:
    """The profiles of one engage page's body (decompressed chunks), read incrementally."""
    return EngagePageReader(chunks, what=what)


def _build(event: str, value: Any, events: Iterator[tuple[str, str, Any]]) -> Any:
    """The value that starts with (``event``, ``value``), its nested events taken from ``events``."""
    if event not in ("start_map", "start_array"):
        return value
    builder = ijson.ObjectBuilder()
    depth = 0
    while True:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return builder.value
        _, event, value = next(events)


class _ChunkFile(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (what ijson reads from)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
