"""``annotations``: the notes on the project's charts, from the App API
(``GET /api/app/projects/{project_id}/annotations``). Dated: each window asks for its days
(``fromDate`` / ``toDate``, both inclusive), and ``{window}`` is the day."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.jsonl import loads_object
from airflow_provider_mixpanel.kinds.answers import list_items, members_line
from airflow_provider_mixpanel.kinds.base import Opening, Query, Records, StreamKind
from airflow_provider_mixpanel.pacing import Quota
from airflow_provider_mixpanel.schemas import INTEGER, JSON, TEXT, Column

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mixpanel.client import MixpanelClient

ANNOTATIONS_PATH = "/api/app/projects/{project_id}/annotations"

ANNOTATION_COLUMNS = (
    Column("annotation_id", INTEGER, "The annotation's id."),
    Column("date", TEXT, "When it is pinned on the charts, as Mixpanel wrote it ('2024-03-01 09:05:00')."),
    Column("description", TEXT, "The annotation's text."),
    Column("user", JSON, "Who created it: id, first_name, last_name, as sent."),
    Column("tags", JSON, "Its tags, a list of {id, name}, as sent."),
)
RAW_ANNOTATION_COLUMNS = (
    Column("date", TEXT, ANNOTATION_COLUMNS[1].description),
    Column("description", TEXT, ANNOTATION_COLUMNS[2].description),
    Column("id", INTEGER, "The annotation's id."),
    ANNOTATION_COLUMNS[3],
    ANNOTATION_COLUMNS[4],
)
# The normalized record's members and the members of Mixpanel's entry they come from.
_RENAMED = {"annotation_id": "id"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class AnnotationsQuery(Query):
    """Annotations take no arguments besides the days: every annotation of those days."""


def annotation_line(item: bytes) -> bytes:
    """The normalized annotation's JSONL line: ``id`` named ``annotation_id``, values byte for byte."""
    return members_line(item, ANNOTATION_COLUMNS, _RENAMED)


class AnnotationsKind(StreamKind):
    name = "annotations"
    summary = "the notes pinned on the project's charts, per day (App API, annotations)"
    records = (
        "``annotation_id``, ``date`` (as sent, ``'2024-03-01 09:05:00'``), ``description``, ``user`` "
        "(JSON), ``tags`` (JSON); raw: the list's entry, ``{date, description, id, user, tags}``"
    )
    dated = True
    quota = Quota.APP
    query_type = AnnotationsQuery

    def columns(self, *, raw: bool) -> tuple[Column, ...]:
        return RAW_ANNOTATION_COLUMNS if raw else ANNOTATION_COLUMNS

    def open(self, client: MixpanelClient, opening: Opening) -> Records:
        assert opening.days is not None  # a dated kind is always opened for its days
        return Records(list_annotations(client, *opening.days), _converter(raw=opening.raw, encode=opening.encode))


def list_annotations(client: MixpanelClient, first: date, last: date) -> Iterator[bytes]:
    """Each annotation of ``[first, last]``, its compact JSON text (one App API request)."""
    params = {"fromDate": first.isoformat(), "toDate": last.isoformat()}
    what = f"annotations {first}..{last}"
    return client.fetch_json(Quota.APP, "GET", ANNOTATIONS_PATH, what, params=params, items=list_items("results"))


def _converter(*, raw: bool, encode: bool) -> Any:
    if raw:
        return (lambda item: item + b"\n") if encode else loads_object
    return annotation_line if encode else (lambda item: loads_object(annotation_line(item)))
