"""``events``: raw events of a range of days, from the Raw Event Export API (``GET /api/2.0/export``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_mixpanel.kinds.arguments import WHERE, check_flag, check_limit, check_names
from airflow_provider_mixpanel.kinds.base import Argument, Opening, Query, Records, StreamKind, argument
from airflow_provider_mixpanel.pacing import Quota
from airflow_provider_mixpanel.schemas import JSON, TEXT, TIMESTAMP, Column
from airflow_provider_mixpanel.streams import RawEventChunks, RecordStream, event_converter

if TYPE_CHECKING:
    from airflow_provider_mixpanel.client import MixpanelClient

EVENT_COLUMNS = (
    Column("event_name", TEXT, "The event's name."),
    Column("event_time", TIMESTAMP, "When the event happened, in UTC."),
    Column("distinct_id", TEXT, "The user's distinct_id ('' when the event has none)."),
    Column("insert_id", TEXT, "The event's $insert_id, or a UUID derived from the event when it has none."),
    Column("properties", JSON, "Every other property of the event, as Mixpanel sent it."),
)
RAW_EVENT_COLUMNS = (
    Column("event", JSON, "The export line's 'event' value, as sent."),
    Column("properties", JSON, "The export line's 'properties' value, as sent."),
)


class EventsArguments(TypedDict, total=False):
    """The keywords of :class:`EventsQuery`, for typed ``**arguments`` (the client's and hook's methods)."""

    events: Iterable[str] | str | None
    where: str | None
    limit: int | None
    time_in_ms: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class EventsQuery(Query):
    """What to export of each day: which events, which of them, how many, with which time unit."""

    events: tuple[str, ...] | None = argument(
        Argument("only these event names", check_names, templated=True, flag="--event", metavar="NAME", repeat=True)
    )
    where: str | None = argument(WHERE)
    limit: int | None = argument(
        Argument("at most this many events (Mixpanel allows up to 100000)", check_limit, flag="--limit", cli_type=int)
    )
    time_in_ms: bool = argument(
        Argument("ask for millisecond timestamps", check_flag, flag="--time-in-ms", metavar=None), default=False
    )

    def params(self, first: date, last: date) -> dict[str, Any]:
        """The export request's query string for the days ``first`` to ``last`` (inclusive)."""
        params: dict[str, Any] = {"from_date": first.isoformat(), "to_date": last.isoformat()}
        if self.events:
            params["event"] = json.dumps(list(self.events), ensure_ascii=False)
        if self.where:
            params["where"] = self.where
        if self.limit is not None:
            params["limit"] = self.limit
        if self.time_in_ms:
            params["time_in_ms"] = "true"
        return params


def and_where(where: str | None, bounds: str | None) -> str | None:
    """``where`` (parenthesised) and ``bounds`` joined with ``and``; either alone when the other is empty."""
    if bounds is None:
        return where or None
    return f"({where}) and {bounds}" if where else bounds


class EventsKind(StreamKind):
    name = "events"
    summary = "raw events of a date range (Raw Event Export API)"
    records = (
        "``event_name``, ``event_time`` (UTC), ``distinct_id``, ``insert_id``, ``properties``; "
        "raw: the export line, ``{event, properties}``"
    )
    dated = True
    hour_windows = True
    quota = Quota.EXPORT
    query_type = EventsQuery

    def columns(self, *, raw: bool) -> tuple[Column, ...]:
        return RAW_EVENT_COLUMNS if raw else EVENT_COLUMNS

    def open(self, client: MixpanelClient, opening: Opening) -> Records:
        query: EventsQuery = opening.query
        assert opening.days is not None, "events are dated"
        convert = event_converter(
            raw=opening.raw,
            encode=opening.encode,
            time_in_ms=query.time_in_ms,
            timezone=opening.project_timezone,
            identity=opening.identity,
        )
        return Records(client.export(query.params(*opening.days)), convert)

    def raw_chunks(self, client: MixpanelClient, opening: Opening, *, skip_malformed: bool) -> RecordStream:
        """The export lines as sent, checked a batch at a time (no step of Python per line)."""
        assert opening.days is not None, "events are dated"
        return RawEventChunks(client.export_batches(opening.query.params(*opening.days)), skip_malformed=skip_malformed)

    def narrow(self, query: EventsQuery, time_bounds: str | None) -> EventsQuery:
        """An hour window asks for its day, its event times bounded by ``where`` on ``$time``."""
        return dataclasses.replace(query, where=and_where(query.where, time_bounds))
