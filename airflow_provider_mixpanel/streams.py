"""What the hook (and ``mixpanel-stream``) hands out: :class:`RecordStream`, a lazy, counted
iterator of records; :class:`RawEventChunks`, raw export lines many at a time; and the choice of
what one export line becomes (parsed, normalized, or a JSONL line). Which records a kind streams
is the kind's (:mod:`airflow_provider_mixpanel.kinds`).

No Airflow here: the command line streams without importing it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.dates import date_range
from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.event_lines import event_line_normalizer, raw_line_checker
from airflow_provider_mixpanel.identity import IdentityMapping, IdentityMappings
from airflow_provider_mixpanel.jsonl import all_objects, check_object, convert_lines, loads_object, preview
from airflow_provider_mixpanel.records import normalize_event

if TYPE_CHECKING:
    from airflow_provider_mixpanel.client import MixpanelClient

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


def open_identity_stream(
    client: MixpanelClient,
    from_date: date | str,
    to_date: date | str,
    *,
    timezone: str | None,
    time_in_ms: bool = False,
    skip_malformed: bool = False,
    encode: bool = False,
) -> RecordStream:
    """The identity mappings (Simplified ID Merge) the events of a range create, from one export
    request: one record per device at its earliest mapping event (see
    ``MixpanelHook.stream_identity_mappings``); the request waits for the first ``next()``.

    :param encode: yield JSONL lines (bytes) instead of dicts.
    """
    first, last = date_range(from_date, to_date)
    lines = client.export_lines(first, last, time_in_ms=time_in_ms)
    found: list[IdentityMapping] = []
    identity = IdentityMappings(found.append, time_in_ms=time_in_ms, project_timezone=timezone)

    def mappings_found() -> Iterator[IdentityMapping]:
        # Malformed lines are counted (and logged) by the stream handed out.
        on_malformed = stream.skip_malformed if skip_malformed else None
        for _ in convert_lines(lines, raw_line_checker(identity), on_malformed):
            if found:
                yield from found
                found.clear()

    stream = RecordStream(mappings_found(), IdentityMapping.jsonl if encode else IdentityMapping.record)
    return stream


class RawEventChunks(RecordStream):
    """Raw export lines as JSONL, many lines per item: each line exactly as Mixpanel sent it,
    checked to be one JSON object as :func:`~.jsonl.check_object` checks it, a batch at a time.
    The bytes are those of ``stream_events_jsonl(raw=True)`` joined, without a step of Python per line;
    ``records`` and ``skipped_malformed`` count as a :class:`RecordStream` does.

    :param batches: the export's lines, a list at a time (``MixpanelClient.export_line_batches``).
    """

    def __init__(self, batches: Generator[list[bytes], None, None], *, skip_malformed: bool = False):
        self.records = 0
        self.skipped_malformed = 0
        self._source = batches
        self._records = self._chunks(batches, skip_malformed)

    def _chunks(self, batches: Iterator[list[bytes]], skip_malformed: bool) -> Generator[bytes, None, None]:
        for lines in batches:
            if all_objects(lines):
                self.records += len(lines)
                text = getattr(lines, "text", None)  # the lines as they came, newlines included
                if text is None:
                    lines.append(b"")  # the last line's newline
                    text = b"\n".join(lines)
                yield text
                continue
            good: list[bytes] = []  # line by line: the lines before a bad one are written before it fails
            for line in lines:
                try:
                    written = check_object(line)
                except MixpanelMalformedRecordError as err:
                    err.locate(self.records + self.skipped_malformed + 1, preview(line))
                    if not skip_malformed:
                        if good:
                            yield b"".join(good)
                        raise
                    self.skip_malformed(line, err)
                    continue
                self.records += 1
                good.append(written + b"\n")
            if good:
                yield b"".join(good)
