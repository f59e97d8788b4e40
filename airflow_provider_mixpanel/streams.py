"""What the hook hands out: :class:`RecordStream`, a lazy, counted iterator of records, and the
choice of what one export line becomes (parsed, normalized, or a JSONL line)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.event_lines import event_line_normalizer, raw_line_checker
from airflow_provider_mixpanel.jsonl import convert_lines, loads_object
from airflow_provider_mixpanel.records import normalize_event

if TYPE_CHECKING:
    from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
    from airflow_provider_mixpanel.identity import IdentityMappings

log = logging.getLogger(__name__)


class RecordStream(Iterator[Any]):
    """A lazy iterator of records that counts what passed: each item of ``source`` converted.

    :param source: the lines (or parsed records) to convert; closed with the stream.
    :param convert: what one item becomes; it raises
        :class:`~airflow_provider_mixpanel.errors.MixpanelMalformedRecordError` for a bad one.
    :param skip_malformed: count, log and skip a malformed item instead of raising.
    :ivar records: records yielded so far.
    :ivar skipped_malformed: malformed lines skipped (only with ``skip_malformed=True``).
    """

    def __init__(self, source: Iterator[Any], convert: Callable[[Any], Any], *, skip_malformed: bool = False):
        self.records = 0
        self.skipped_malformed = 0
        self._source = source
        on_malformed = self.skip_malformed if skip_malformed else None
        self._records = convert_lines(source, convert, on_malformed, self)

    def __iter__(self) -> Iterator[Any]:
        # The generator itself: a for loop resumes it directly, without a method call per record.
        return self._records

    def __next__(self) -> Any:
        return next(self._records)

    def close(self) -> None:
        """Stop the stream early and release its HTTP connection."""
        self._records.close()
        close = getattr(self._source, "close", None)  # a stream never started has not entered
        if close is not None:  # the generator's finally, which closes it
            close()

    def skip_malformed(self, line: bytes, error: MixpanelMalformedRecordError) -> None:
        """Count and log a malformed line instead of failing (``skip_malformed=True``)."""
        self.skipped_malformed += 1
        log.warning("Skipped malformed Mixpanel line #%d: %s", self.skipped_malformed, error)


def event_converter(
    *, raw: bool, encode: bool, time_in_ms: bool, timezone: str | None, identity: IdentityMappings | None = None
) -> Callable[[bytes], Any]:
    """What one export line becomes: parsed (raw), normalized, or either as a JSONL line.

    :param identity: JSONL lines only: also derive the identity mappings from each line converted.
    """
    if identity is not None and not encode:
        raise ValueError("identity mappings are derived on the JSONL roads only (encode=True)")
    if raw and encode:
        return raw_line_checker(identity)  # the line's own bytes, checked to be an object
    if raw:
        return loads_object
    if encode:
        return event_line_normalizer(time_in_ms=time_in_ms, project_timezone=timezone, identity=identity)
    return lambda line: normalize_event(loads_object(line), time_in_ms=time_in_ms, project_timezone=timezone)
