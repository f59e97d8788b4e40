"""What the hook hands out: :class:`RecordStream`, a lazy, counted iterator of records, and the
choice of what one export line becomes (parsed, normalized, or a JSONL line)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.event_lines import event_line_normalizer
from airflow_provider_mixpanel.jsonl import check_object, loads_object
from airflow_provider_mixpanel.records import normalize_event

if TYPE_CHECKING:
    from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError

log = logging.getLogger(__name__)


class RecordStream(Iterator[Any]):
    """A lazy iterator of records that counts what passed.

    :ivar records: records yielded so far.
    :ivar skipped_malformed: malformed lines skipped (only with ``skip_malformed=True``).
    """

    def __init__(self, make_records: Callable[[RecordStream], Iterator[Any]]):
        self.records = 0
        self.skipped_malformed = 0
        self._records = make_records(self)

    def __iter__(self) -> RecordStream:
        return self

    def __next__(self) -> Any:
        record = next(self._records)
        self.records += 1
        return record

    def close(self) -> None:
        """Stop the stream early and release its HTTP connection."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()

    def skip_malformed(self, line: bytes, error: MixpanelMalformedRecordError) -> None:
        """Count and log a malformed line instead of failing (``skip_malformed=True``)."""
        self.skipped_malformed += 1
        log.warning("Skipped malformed Mixpanel line #%d: %s", self.skipped_malformed, error)


def event_converter(*, raw: bool, encode: bool, time_in_ms: bool, timezone: str | None) -> Callable[[bytes], Any]:
    """What one export line becomes: parsed (raw), normalized, or either as a JSONL line."""
    if raw and encode:

        def passthrough(line: bytes) -> bytes:  # the line's own bytes, checked to be an object
            check_object(line)
            return line + b"\n"

        return passthrough
    if raw:
        return loads_object
    if encode:
        return event_line_normalizer(time_in_ms=time_in_ms, project_timezone=timezone)
    return lambda line: normalize_event(loads_object(line), time_in_ms=time_in_ms, project_timezone=timezone)
