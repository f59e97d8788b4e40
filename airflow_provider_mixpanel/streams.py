"""What the hook (and ``mixpanel-stream``) hands out: :class:`RecordStream`, a lazy, counted
iterator of records, the choice of what one export line becomes (parsed, normalized, or a JSONL
line), and the streams of one :class:`EventQuery` or :class:`ProfileQuery` from a client.

No Airflow here: the command line streams without importing it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_mixpanel.dates import date_range
from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelMalformedRecordError
from airflow_provider_mixpanel.event_lines import event_line_normalizer, raw_line_checker
from airflow_provider_mixpanel.identity import IdentityMapping, IdentityMappings
from airflow_provider_mixpanel.jsonl import all_objects, check_object, convert_lines, loads_object
from airflow_provider_mixpanel.profile_lines import profile_line, raw_profile_line
from airflow_provider_mixpanel.records import normalize_event, normalize_profile

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


def open_event_stream(
    client: MixpanelClient,
    query: EventQuery,
    *,
    timezone: str | None,
    encode: bool,
    identity: IdentityMappings | None = None,
) -> RecordStream:
    """The events of ``query``; arguments are checked now, the request waits for the first ``next()``.

    :param timezone: the project's time zone for ``event_time`` (projects made before 2023).
    :param encode: yield JSONL lines (bytes) instead of dicts.
    :param identity: with ``encode``: also derive the identity mappings from the lines streamed.
    """
    first, last = date_range(query.from_date, query.to_date)
    names = _event_names(query.events)
    convert = event_converter(
        raw=query.raw, encode=encode, time_in_ms=query.time_in_ms, timezone=timezone, identity=identity
    )
    lines = client.export_lines(
        first, last, events=names, where=query.where, limit=query.limit, time_in_ms=query.time_in_ms
    )  # lazy: the request waits for the first next()
    return RecordStream(lines, convert, skip_malformed=query.skip_malformed)


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
                lines.append(b"")  # the last line's newline
                yield b"\n".join(lines)
                continue
            good: list[bytes] = []  # line by line: the lines before a bad one are written before it fails
            for line in lines:
                try:
                    check_object(line)
                except MixpanelMalformedRecordError as err:
                    if not skip_malformed:
                        if good:
                            yield b"".join(good)
                        raise
                    self.skip_malformed(line, err)
                    continue
                self.records += 1
                good.append(line + b"\n")
            if good:
                yield b"".join(good)


def open_raw_event_chunks(client: MixpanelClient, query: EventQuery) -> RawEventChunks:
    """The raw events of ``query`` as :class:`RawEventChunks`; arguments are checked now, the
    request waits for the first ``next()``."""
    first, last = date_range(query.from_date, query.to_date)
    batches = client.export_line_batches(
        first,
        last,
        events=_event_names(query.events),
        where=query.where,
        limit=query.limit,
        time_in_ms=query.time_in_ms,
    )
    return RawEventChunks(batches, skip_malformed=query.skip_malformed)


def open_profile_stream(client: MixpanelClient, query: ProfileQuery, *, encode: bool) -> RecordStream:
    """The profiles of ``query``; the client checks its arguments now, the first request waits for
    the first ``next()``.

    :param encode: yield JSONL lines (bytes, every value as Mixpanel sent it) instead of dicts.
    """
    selectors: dict[str, Any] = dict(
        where=query.where,
        output_properties=query.output_properties,
        cohort_id=_optional_int(query.cohort_id, "cohort_id"),
        distinct_ids=query.distinct_ids,
        data_group_id=query.data_group_id,
        include_all_users=query.include_all_users,
        page_size=query.page_size,
    )
    convert: Callable[[Any], Any]
    if encode:  # JSONL straight from each result's bytes: values exactly as Mixpanel sent them
        profiles: Iterator[Any] = client.query_profile_lines(**selectors)
        convert = raw_profile_line if query.raw else profile_line
    else:
        profiles = client.query_profiles(**selectors)
        convert = (lambda p: p) if query.raw else normalize_profile
    # Closing the stream closes the pages (freeing the response at once).
    return RecordStream(profiles, convert)


class EventQuery(NamedTuple):
    """The arguments of one raw event export (see ``MixpanelHook.stream_events``)."""

    from_date: date | str
    to_date: date | str
    events: Iterable[str] | str | None
    where: str | None
    raw: bool
    time_in_ms: bool
    limit: int | None
    skip_malformed: bool


class ProfileQuery(NamedTuple):
    """The arguments of one profile query (see ``MixpanelHook.stream_profiles``)."""

    where: str | None
    raw: bool
    cohort_id: int | str | None
    output_properties: Iterable[str] | str | None
    distinct_ids: Iterable[str] | None
    data_group_id: str | None
    include_all_users: bool | None
    page_size: int | None


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise MixpanelConfigError(f"{name}={value!r}: it must be a whole number (the id shown in Mixpanel).")


def _event_names(events: Iterable[str] | str | None) -> list[str] | None:
    if events is None:
        return None
    names = [events] if isinstance(events, str) else list(events)
    if not all(isinstance(n, str) and n for n in names):
        raise MixpanelConfigError(f"events={names!r}: give a list of non-empty event names.")
    return names or None
