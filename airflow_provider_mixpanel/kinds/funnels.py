"""``funnels``: the project's saved funnels (``GET /api/query/funnels/list``) and, per funnel and
day, its steps (``GET /api/query/funnels``). Dated: a client lists the funnels once for all the
windows it reads within FUNNEL_LIST_REUSE_SECONDS, and a window asks for each funnel's days in one
query, so a run of W windows costs 1 + W x N of the Query API's 60 an hour; each window's share
is logged before its first request."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

import msgspec

from airflow_provider_mixpanel.engage import compact
from airflow_provider_mixpanel.errors import MixpanelQueryError, MixpanelServerError
from airflow_provider_mixpanel.jsonl import loads_object
from airflow_provider_mixpanel.kinds.answers import list_items, members, members_line
from airflow_provider_mixpanel.kinds.arguments import check_ids
from airflow_provider_mixpanel.kinds.base import Argument, Opening, Query, Records, StreamKind, argument
from airflow_provider_mixpanel.pacing import Quota
from airflow_provider_mixpanel.schemas import INTEGER, JSON, TEXT, Column

if TYPE_CHECKING:
    from airflow_provider_mixpanel.client import MixpanelClient

log = logging.getLogger(__name__)

FUNNELS_LIST_PATH = "/api/query/funnels/list"
FUNNELS_PATH = "/api/query/funnels"
# The Query API's requests per rolling hour, which the list and every funnel query spend.
QUERY_REQUESTS_PER_HOUR = 60
# The windows of one run (look-back days) share the funnel list read by the first of them; a
# funnel saved later is seen by the next run.
FUNNEL_LIST_REUSE_SECONDS = 600.0

FUNNEL_COLUMNS = (
    Column("funnel_id", INTEGER, "The saved funnel's id."),
    Column("name", TEXT, "The saved funnel's name."),
    Column("date", TEXT, "The day of these results (yyyy-mm-dd)."),
    Column("steps", JSON, "Each step: count, avg_time, step_conv_ratio, overall_conv_ratio, event, goal..., as sent."),
    Column("analysis", JSON, "completion, starting_amount, steps, worst, as sent."),
)
RAW_FUNNEL_COLUMNS = (FUNNEL_COLUMNS[0], FUNNEL_COLUMNS[2], FUNNEL_COLUMNS[3], FUNNEL_COLUMNS[4])
_funnel_body = msgspec.json.Decoder(dict[str, msgspec.Raw])


@dataclasses.dataclass(frozen=True, kw_only=True)
class FunnelsQuery(Query):
    """Which saved funnels."""

    funnel_ids: tuple[int, ...] | None = argument(
        Argument(
            "only these saved funnels (default: every funnel of the funnel list)",
            check_ids,
            templated=True,
            flag="--funnel-id",
            metavar="N",
            repeat=True,
            cli_type=int,
        )
    )


class FunnelsKind(StreamKind):
    name = "funnels"
    summary = "each saved funnel's steps per day (Query API, funnels/list and funnels)"
    records = (
        "``funnel_id``, ``name``, ``date``, ``steps`` (JSON), ``analysis`` (JSON); raw: the day's result "
        "with the funnel's id and the day first, ``{funnel_id, date, steps, analysis}``"
    )
    dated = True
    quota = Quota.QUERY
    query_type = FunnelsQuery

    def columns(self, *, raw: bool) -> tuple[Column, ...]:
        return RAW_FUNNEL_COLUMNS if raw else FUNNEL_COLUMNS

    def open(self, client: MixpanelClient, opening: Opening) -> Records:
        assert opening.days is not None  # a dated kind is always opened for its days
        records = _funnel_days(client, opening.query, *opening.days)
        return Records(records, _converter(raw=opening.raw, encode=opening.encode))


# client -> (when listed, funnel id -> name as JSON text): the list each client read last
_saved_funnels: weakref.WeakKeyDictionary[MixpanelClient, tuple[float, dict[int, bytes]]] = weakref.WeakKeyDictionary()
_saved_funnels_lock = threading.Lock()  # windows of one run read in threads


def saved_funnels(client: MixpanelClient) -> tuple[dict[int, bytes], bool]:
    """The project's saved funnels, id -> name as JSON text, and whether they were asked for now
    (else this client's list of the last FUNNEL_LIST_REUSE_SECONDS)."""
    with _saved_funnels_lock:  # held while listing: the other windows wait for the one list
        listed = _saved_funnels.get(client)
        if listed is not None and time.monotonic() - listed[0] < FUNNEL_LIST_REUSE_SECONDS:
            return listed[1], False
        saved = [
            members(item)
            for item in client.fetch_json(Quota.QUERY, "GET", FUNNELS_LIST_PATH, "funnels list", items=list_items())
        ]
        names = {int(bytes(f["funnel_id"])): bytes(f.get("name") or b"null") for f in saved if "funnel_id" in f}
        _saved_funnels[client] = (time.monotonic(), names)
        return names, True


def _funnel_days(client: MixpanelClient, query: FunnelsQuery, first: date, last: date) -> Iterator[tuple[bytes, bytes]]:
    """``(name, raw record)`` of each funnel and day: the list (once per client), then one query per funnel."""
    names, listed = saved_funnels(client)
    wanted = list(query.funnel_ids) if query.funnel_ids is not None else list(names)
    missing = [funnel_id for funnel_id in wanted if funnel_id not in names]
    if missing:
        raise MixpanelQueryError(
            f"funnel_ids {missing} are not among the project's saved funnels ({', '.join(map(str, names)) or 'none'}): "
            "check the ids in Mixpanel (Funnels report, or mixpanel-stream funnels without --funnel-id)."
        )
    log.info(plan(len(wanted), first, last, listed=listed))
    for funnel_id in wanted:
        # unit=day: one result per day, said rather than left to the default (interval=1)
        params = {"funnel_id": funnel_id, "from_date": first.isoformat(), "to_date": last.isoformat(), "unit": "day"}
        what = f"funnel {funnel_id} {first}..{last}"
        for record in client.fetch_json(
            Quota.QUERY, "GET", FUNNELS_PATH, what, params=params, items=_day_records(funnel_id)
        ):
            yield names[funnel_id], record


def plan(funnels: int, first: date, last: date, *, listed: bool = True) -> str:
    """What one window of ``funnels`` funnels spends of the Query API's hourly quota (``listed``:
    the window also listed them)."""
    requests = funnels + listed
    how = "1 listed them, one per funnel" if listed else "one per funnel; the list was read by an earlier window"
    text = (
        f"Funnels {first}..{last}: {funnels} saved funnel(s) = {requests} Query API request(s) ({how}) of the "
        f"{QUERY_REQUESTS_PER_HOUR} an hour, shared by every window and task of the project."
    )
    if requests > QUERY_REQUESTS_PER_HOUR:
        text += (
            f" More than {QUERY_REQUESTS_PER_HOUR}: the export waits for the hourly quota (or fails with Mixpanel's "
            "429 for Airflow to retry); pass funnel_ids to export fewer per task."
        )
    return text


def _day_records(funnel_id: int) -> Callable[[bytes, str], list[bytes]]:
    """A reader of one funnel's answer: each day's result as its raw record, the funnel's id and
    the day first, then the day's members as sent (``{"funnel_id":7500,"date":"2024-03-01","steps":...}``)."""

    def records(body: bytes, what: str) -> list[bytes]:
        try:
            data = _funnel_body.decode(body).get("data")
            days = _funnel_body.decode(data) if data is not None else None
        except msgspec.DecodeError as err:
            raise MixpanelServerError(f"Mixpanel {what} answered with a body that is not its JSON ({err}).") from None
        if days is None:
            raise MixpanelServerError(f"Mixpanel {what} answered without its 'data': {body[:200]!r}")
        result = []
        for day, raw in days.items():
            text = compact(bytes(raw))
            rest = b"," + text[1:] if text != b"{}" else b"}"
            result.append(b'{"funnel_id":%d,"date":%b%b' % (funnel_id, msgspec.json.encode(day), rest))
        return result

    return records


def funnel_line(name: bytes, record: bytes) -> bytes:
    """The normalized funnel day's JSONL line: the raw record's members with the funnel's name."""
    source = dict(members(record))
    source["name"] = msgspec.Raw(name)
    return members_line(source, FUNNEL_COLUMNS)


def _converter(*, raw: bool, encode: bool) -> Any:
    def line(item: tuple[bytes, bytes]) -> bytes:
        name, record = item
        return record + b"\n" if raw else funnel_line(name, record)

    return line if encode else (lambda item: loads_object(line(item)))
