"""``cohort_members``: the members of every cohort (or of ``cohort_ids``), one Engage session per
cohort with ``filter_by_cohort``. A dated snapshot: ``{window}`` is the run's date, so the members
of each day can be compared over time."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from airflow_provider_mixpanel.jsonl import loads_object
from airflow_provider_mixpanel.kinds.arguments import (
    DEFAULT_ENGAGE_PAGE_SIZE,
    INCLUDE_ALL_USERS,
    OUTPUT_PROPERTIES,
    PAGE_SIZE,
    check_ids,
)
from airflow_provider_mixpanel.kinds.base import Argument, Opening, Query, Records, StreamKind, argument
from airflow_provider_mixpanel.kinds.cohorts import list_cohorts
from airflow_provider_mixpanel.kinds.profiles import PROFILE_COLUMNS, RAW_PROFILE_COLUMNS, ProfilesQuery
from airflow_provider_mixpanel.pacing import Quota
from airflow_provider_mixpanel.profile_lines import profile_line
from airflow_provider_mixpanel.schemas import INTEGER, Column

if TYPE_CHECKING:
    from airflow_provider_mixpanel.client import MixpanelClient

log = logging.getLogger(__name__)

# The Query API's requests per rolling hour, which every engage page and cohort list spends.
QUERY_REQUESTS_PER_HOUR = 60
_COHORT_ID = Column("cohort_id", INTEGER, "The id of the cohort the profile is a member of.")
MEMBER_COLUMNS = (_COHORT_ID, *PROFILE_COLUMNS)
RAW_MEMBER_COLUMNS = (_COHORT_ID, *RAW_PROFILE_COLUMNS)
_cohort_id = msgspec.json.Decoder(dict[str, msgspec.Raw])


@dataclasses.dataclass(frozen=True, kw_only=True)
class CohortMembersQuery(Query):
    """Whose members, with which profile properties, how many a page."""

    cohort_ids: tuple[int, ...] | None = argument(
        Argument(
            "only the members of these cohorts (default: every cohort of the cohort list)",
            check_ids,
            templated=True,
            flag="--cohort-id",
            metavar="N",
            repeat=True,
            cli_type=int,
        )
    )
    output_properties: tuple[str, ...] | None = argument(OUTPUT_PROPERTIES)
    include_all_users: bool | None = argument(INCLUDE_ALL_USERS)
    page_size: int = argument(PAGE_SIZE, default=DEFAULT_ENGAGE_PAGE_SIZE)

    def members_of(self, cohort_id: int) -> ProfilesQuery:
        """The engage query of one cohort's members."""
        return ProfilesQuery(
            cohort_id=cohort_id,
            output_properties=self.output_properties,
            include_all_users=self.include_all_users,
            page_size=self.page_size,
        )


class CohortMembersKind(StreamKind):
    name = "cohort_members"
    summary = "the members of every cohort, one Engage session per cohort (Engage API, filter_by_cohort)"
    records = (
        "``cohort_id``, ``distinct_id``, ``last_seen``, ``properties`` (those asked for with "
        "``output_properties``); raw: the engage result with the cohort's id first, "
        "``{cohort_id, $distinct_id, $properties}``"
    )
    dated = False
    quota = Quota.QUERY
    query_type = CohortMembersQuery

    def columns(self, *, raw: bool) -> tuple[Column, ...]:
        return RAW_MEMBER_COLUMNS if raw else MEMBER_COLUMNS

    def open(self, client: MixpanelClient, opening: Opening) -> Records:
        return Records(_members(client, opening.query), _converter(raw=opening.raw, encode=opening.encode))


def _members(client: MixpanelClient, query: CohortMembersQuery) -> Iterator[tuple[int, bytes]]:
    """Each member of each cohort, with its cohort's id: the cohorts' engage sessions one after
    the other, planned (and said in the log) before the first."""
    listed = query.cohort_ids is None
    cohort_ids = list(query.cohort_ids) if query.cohort_ids is not None else _listed_ids(client)
    log.info(plan(len(cohort_ids), page_size=query.page_size, listed=listed))
    for cohort_id in cohort_ids:
        form = query.members_of(cohort_id).form()
        for member in client.engage(form):
            yield cohort_id, member


def plan(cohorts: int, *, page_size: int, listed: bool) -> str:
    """What exporting the members of ``cohorts`` cohorts spends of the Query API's hourly quota."""
    listing = "1 request listed them, and " if listed else ""
    text = (
        f"Cohort members: {cohorts} cohort(s) = {cohorts} Engage session(s): {listing}each takes one request per "
        f"{page_size:,} members, and one more for a cohort that fills its last page, of the Query API's "
        f"{QUERY_REQUESTS_PER_HOUR} an hour."
    )
    if cohorts + listed > QUERY_REQUESTS_PER_HOUR:
        text += (
            f" More than {QUERY_REQUESTS_PER_HOUR}: the export waits for the hourly quota (or fails with "
            "Mixpanel's 429 for Airflow to retry); pass cohort_ids to export fewer per task."
        )
    return text


def _listed_ids(client: MixpanelClient) -> list[int]:
    ids = []
    for cohort in list_cohorts(client):
        raw = _cohort_id.decode(cohort).get("id")
        if raw is not None:
            ids.append(int(bytes(raw)))
    return ids


def _converter(*, raw: bool, encode: bool) -> Any:
    def line(item: tuple[int, bytes]) -> bytes:
        cohort_id, member = item
        record = member + b"\n" if raw else profile_line(member)
        comma = b"" if record[1:2] == b"}" else b","  # an empty result: {} (results are compact)
        return b'{"cohort_id":%d%b%b' % (cohort_id, comma, record[1:])

    return line if encode else (lambda item: loads_object(line(item)))
