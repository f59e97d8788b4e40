"""The normalized record formats, defined once: pure functions, no I/O.

Event: ``event_name``, ``event_time`` (timezone-aware UTC ``datetime``), ``distinct_id``,
``insert_id`` and ``properties`` (every other property, untouched). Profile: ``distinct_id``,
``last_seen`` (the string as given, or ``None``) and ``properties`` (without ``$last_seen``).
The input record is never modified. Properties that are missing, ``null`` or ``[]`` are none; any
other value that is not an object makes the record malformed (the rules every road follows are in
``docs/hook.rst``, "Hostile lines").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError

EVENT_RESERVED_PROPERTIES = ("distinct_id", "time", "$insert_id")
PROFILE_RESERVED_PROPERTIES = ("$last_seen",)

# Namespace of the deterministic insert ids given to events that have no $insert_id: the same
# record always gets the same id, so re-runs stay idempotent downstream. Never change it.
INSERT_ID_NAMESPACE = uuid.UUID("5d0b1f5e-3c4a-5e8a-9a51-6d6978706e6c")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Distinct event times whose ISO text is kept (a few MB at most); the cache restarts when full.
_ISO_CACHE_SIZE = 200_000
# 9999-12-31T23:59:59Z + 1 s, where datetime ends.
_MAX_TIMESTAMP = 253_402_300_800
_SECONDS_PER_DAY = 86_400
# Times whose text utc_time_texts keeps (about 2 MB at most); the table restarts when full.
_RECENT_TIMES = 20_000
# Dates whose text is kept: a long backfill restarts the table now and then.
_DAYS_KEPT = 4096


def normalize_event(
    record: dict[str, Any], *, time_in_ms: bool = False, project_timezone: str | tzinfo | None = None
) -> dict[str, Any]:
    """Turn a raw export line ``{"event": ..., "properties": {...}}`` into the normalized event.

    :param record: the export line as parsed.
    :param time_in_ms: the export was requested with ``time_in_ms``, so ``time`` is milliseconds.
    :param project_timezone: for projects created before 2023, whose ``time`` is the project's
        local wall-clock time written as if it were UTC: the IANA zone (``"America/New_York"``)
        that turns it into the true UTC instant. ``None`` reads ``time`` as UTC.
    """
    return _normalize_event(
        record,
        lambda value, _: _event_time(
            value, time_in_ms=time_in_ms, project_timezone=project_timezone, event=lambda: record.get("event")
        ),
    )


def event_time_text_cache(
    *, time_in_ms: bool = False, project_timezone: str | tzinfo | None = None
) -> Callable[[Any, Callable[[], Any]], str]:
    """The ISO-8601 text of ``event_time`` for JSONL output, computed once per distinct ``time``
    value (a day has at most 86,400 of them in seconds), which spares a ``datetime`` per event on
    the hot path. Call it with the ``time`` value and a function giving the event's name (only
    read for the error message of a bad time)."""
    cache: dict[Any, str] = {}
    utc = project_timezone is None
    recent, text_of = utc_time_texts(time_in_ms=time_in_ms)

    def iso(value: Any, event_name: Callable[[], Any]) -> str:
        if utc and type(value) is int:  # the common case: by arithmetic, no datetime
            utc_text = recent.get(value) or text_of(value)
            if utc_text is not None:
                return utc_text.decode("ascii")
        try:
            # true == 1 as a key: a bool must not find the text of 1 (_event_time refuses it)
            text = cache.get(value) if type(value) is not bool else None
        except TypeError:  # unhashable: not a time at all; _event_time says so
            text = None
        if text is None:
            moment = _event_time(value, time_in_ms=time_in_ms, project_timezone=project_timezone, event=event_name)
            text = moment.isoformat()
            if len(cache) >= _ISO_CACHE_SIZE:
                cache.clear()
            cache[value] = text
        return text

    return iso


def utc_time_texts(*, time_in_ms: bool) -> tuple[dict[int, bytes | None], Callable[[int], bytes | None]]:
    """``event_time`` texts of whole-number ``time`` values in UTC, as ``datetime.isoformat()``
    writes them, by arithmetic (the date once per day, the clock from a table of the day's
    seconds): the table of recent texts, to read first, and the function that fills it. ``None``
    for a time before 1970 or past ``datetime``'s range."""
    recent: dict[int, bytes | None] = {}
    days: dict[int, bytes] = {}
    clocks: list[bytes | None] = [None] * _SECONDS_PER_DAY

    def text_of(moment: int) -> bytes | None:
        if len(recent) >= _RECENT_TIMES:
            recent.clear()
        seconds, fraction = moment, b""
        if time_in_ms:
            seconds, milliseconds = divmod(moment, 1000)
            if milliseconds:
                fraction = b".%03d000" % milliseconds
        if not 0 <= seconds < _MAX_TIMESTAMP:
            recent[moment] = None
            return None
        day, second = divmod(seconds, _SECONDS_PER_DAY)
        clock = clocks[second]
        if clock is None:
            hour, rest = divmod(second, 3600)
            clock = clocks[second] = b"T%02d:%02d:%02d" % (hour, *divmod(rest, 60))
        date_text = days.get(day)
        if date_text is None:
            if len(days) >= _DAYS_KEPT:
                days.clear()
            date_text = days[day] = (_EPOCH + timedelta(days=day)).date().isoformat().encode()
        text = recent[moment] = date_text + clock + fraction + b"+00:00"
        return text

    return recent, text_of


def _normalize_event(record: dict[str, Any], event_time: Callable[[Any, dict[str, Any]], Any]) -> dict[str, Any]:
    properties = properties_object(record.get("properties"), what=f"Event {record.get('event')!r}", name="properties")
    distinct_id = properties.pop("distinct_id", "")
    moment = event_time(properties.pop("time", 0), record)
    insert_id = properties.pop("$insert_id", None)
    if insert_id is None:
        insert_id = deterministic_insert_id(record)
    return {
        "event_name": record.get("event", ""),
        "event_time": moment,
        "distinct_id": distinct_id,
        "insert_id": insert_id,
        "properties": properties,
    }


def normalize_profile(record: dict[str, Any]) -> dict[str, Any]:
    """Turn a raw engage result ``{"$distinct_id": ..., "$properties": {...}}`` into the normalized
    profile. ``distinct_id`` is kept as given (the API may send an integer)."""
    properties = properties_object(record.get("$properties"), what="A profile", name="$properties")
    last_seen = properties.pop("$last_seen", None)
    return {"distinct_id": record.get("$distinct_id", ""), "last_seen": last_seen, "properties": properties}


def properties_object(value: Any, *, what: str, name: str) -> dict[str, Any]:
    """A copy of a record's properties: an object; missing, ``null`` or ``[]`` (how some
    serializers write an empty map) mean none.

    :raises MixpanelMalformedRecordError: any other value (``"ab"``, ``5``, ``[["k", "v"]]``).
    """
    if isinstance(value, dict):
        return dict(value)
    if value is None or value == []:
        return {}
    raise MixpanelMalformedRecordError(
        f"{what} has {name!r} that is not a JSON object (got {type(value).__name__}: {str(value)[:60]!r})."
    )


def deterministic_insert_id(record: dict[str, Any]) -> str:
    """A UUID derived from the whole record's content: equal records get equal ids."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    try:
        return str(uuid.uuid5(INSERT_ID_NAMESPACE, canonical))
    except UnicodeEncodeError:  # a lone UTF-16 surrogate: the same UUIDv5 over its surrogatepass bytes
        digest = hashlib.sha1(INSERT_ID_NAMESPACE.bytes + canonical.encode("utf-8", "surrogatepass")).digest()
        return str(uuid.UUID(bytes=digest[:16], version=5))


def _event_time(
    value: Any, *, time_in_ms: bool, project_timezone: str | tzinfo | None, event: Callable[[], Any]
) -> datetime:
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(type(value).__name__)
        if isinstance(value, str):
            value = float(value) if any(c in value for c in ".eE") else int(value)
        if not time_in_ms:
            moment = datetime.fromtimestamp(value, UTC)
        else:  # timedelta keeps integer milliseconds exact, where value / 1000 could round
            moment = _EPOCH + timedelta(milliseconds=value)
    except (TypeError, ValueError, OverflowError, OSError) as err:
        hint = "" if time_in_ms else " If the export was requested with time_in_ms, pass time_in_ms=True."
        raise MixpanelMalformedRecordError(
            f"Event {event()!r} has a 'time' property that is not a Unix timestamp in "
            f"{'milliseconds' if time_in_ms else 'seconds'}: {value!r} ({err}).{hint}"
        ) from None
    if project_timezone is not None:
        zone = ZoneInfo(project_timezone) if isinstance(project_timezone, str) else project_timezone
        moment = moment.replace(tzinfo=zone).astimezone(UTC)
    return moment
