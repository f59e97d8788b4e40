"""``cohorts``: the project's saved cohorts, from the Query API's cohort list
(``POST /api/query/cohorts/list``). A snapshot: one list per run."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.jsonl import loads_object
from airflow_provider_mixpanel.kinds.answers import list_items, members_line
from airflow_provider_mixpanel.kinds.base import Opening, Query, Records, StreamKind
from airflow_provider_mixpanel.pacing import Quota
from airflow_provider_mixpanel.schemas import BOOLEAN, INTEGER, TEXT, Column

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mixpanel.client import MixpanelClient

COHORTS_PATH = "/api/query/cohorts/list"

COHORT_COLUMNS = (
    Column("cohort_id", INTEGER, "The cohort's id."),
    Column("name", TEXT, "The cohort's name."),
    Column("description", TEXT, "The cohort's description."),
    Column("count", INTEGER, "How many members the cohort had when it was listed."),
    Column("created", TEXT, "When the cohort was created, as Mixpanel wrote it ('2019-03-19 23:49:51')."),
    Column("project_id", INTEGER, "The project the cohort belongs to."),
    Column("is_visible", BOOLEAN, "Whether the cohort is shown in Mixpanel's UI."),
)
RAW_COHORT_COLUMNS = (
    Column("id", INTEGER, "The cohort's id."),
    *(c for c in COHORT_COLUMNS[1:] if c.name != "is_visible"),
    Column("is_visible", INTEGER, "1 when the cohort is shown in Mixpanel's UI, else 0."),
)
# The normalized record's members and the cohort's members they come from, in the record's order.
_RENAMED = {"cohort_id": "id"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CohortsQuery(Query):
    """The cohort list takes no arguments: every cohort of the project (and workspace)."""


def cohort_line(item: bytes) -> bytes:
    """The normalized cohort's JSONL line: ``id`` named ``cohort_id``, ``is_visible`` a boolean,
    every other value byte for byte as sent."""
    return members_line(item, COHORT_COLUMNS, _RENAMED)


class CohortsKind(StreamKind):
    name = "cohorts"
    summary = "the project's saved cohorts (Query API, cohorts/list)"
    records = (
        "``cohort_id``, ``name``, ``description``, ``count``, ``created`` (as sent), ``project_id``, "
        "``is_visible`` (boolean); raw: the list's item, ``{count, is_visible (0/1), description, created, "
        "project_id, id, name}``"
    )
    dated = False
    quota = Quota.QUERY
    query_type = CohortsQuery

    def columns(self, *, raw: bool) -> tuple[Column, ...]:
        return RAW_COHORT_COLUMNS if raw else COHORT_COLUMNS

    def open(self, client: MixpanelClient, opening: Opening) -> Records:
        return Records(list_cohorts(client), _converter(raw=opening.raw, encode=opening.encode))


def list_cohorts(client: MixpanelClient) -> Iterator[bytes]:
    """Each cohort of the list, its compact JSON text (one query of the hourly 60)."""
    return client.fetch_json(Quota.QUERY, "POST", COHORTS_PATH, "cohorts list", items=list_items())


def _converter(*, raw: bool, encode: bool) -> Any:
    if raw:
        return (lambda item: item + b"\n") if encode else loads_object
    return cohort_line if encode else (lambda item: loads_object(cohort_line(item)))
