"""``profiles``: user profiles, or group profiles of a group key, from the Engage API (``POST /api/query/engage``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.jsonl import loads_object
from airflow_provider_mixpanel.kinds.arguments import (
    DEFAULT_ENGAGE_PAGE_SIZE,
    INCLUDE_ALL_USERS,
    OUTPUT_PROPERTIES,
    PAGE_SIZE,
    WHERE,
    check_id,
    check_strings,
    check_text,
)
from airflow_provider_mixpanel.kinds.base import Argument, Opening, Query, Records, StreamKind, argument
from airflow_provider_mixpanel.pacing import Quota
from airflow_provider_mixpanel.profile_lines import profile_line, raw_profile_line
from airflow_provider_mixpanel.records import normalize_profile
from airflow_provider_mixpanel.schemas import JSON, TEXT, Column

if TYPE_CHECKING:
    from airflow_provider_mixpanel.client import MixpanelClient

PROFILE_COLUMNS = (
    Column("distinct_id", TEXT, "The profile's $distinct_id."),
    Column("last_seen", TEXT, "The profile's $last_seen, as given."),
    Column("properties", JSON, "Every other property of the profile, as Mixpanel sent it."),
)
RAW_PROFILE_COLUMNS = (
    Column("$distinct_id", JSON, "The engage result's '$distinct_id' value, as sent."),
    Column("$properties", JSON, "The engage result's '$properties' value, as sent."),
)


class ProfilesArguments(TypedDict, total=False):
    """The keywords of :class:`ProfilesQuery`, for typed ``**arguments`` (the client's and hook's methods)."""

    where: str | None
    cohort_id: int | str | None
    output_properties: Iterable[str] | str | None
    distinct_ids: Iterable[str] | str | None
    data_group_id: str | None
    include_all_users: bool | None
    page_size: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProfilesQuery(Query):
    """Which profiles to page through, and how many a page."""

    where: str | None = argument(WHERE)
    cohort_id: int | None = argument(
        Argument("only members of this cohort", check_id, templated=True, flag="--cohort-id", metavar="N", cli_type=int)
    )
    output_properties: tuple[str, ...] | None = argument(OUTPUT_PROPERTIES)
    distinct_ids: tuple[str, ...] | None = argument(
        Argument("only these profiles", check_strings, templated=True, flag="--distinct-id", metavar="ID", repeat=True)
    )
    data_group_id: str | None = argument(
        Argument(
            "group profiles of this group key, e.g. 'company_id' (Project Settings > Group Keys)",
            check_text,
            templated=True,
            flag="--data-group-id",
            metavar="KEY",
        )
    )
    include_all_users: bool | None = argument(INCLUDE_ALL_USERS)
    page_size: int = argument(PAGE_SIZE, default=DEFAULT_ENGAGE_PAGE_SIZE)

    def __post_init__(self) -> None:
        if self.include_all_users is not None and self.cohort_id is None:
            raise MixpanelConfigError("include_all_users applies only with cohort_id: set cohort_id or drop it.")

    def form(self) -> dict[str, Any]:
        """The engage request's form (the first page's; later pages add their session and number)."""
        form: dict[str, Any] = {}
        if self.where:
            form["where"] = self.where
        if self.output_properties is not None:
            form["output_properties"] = json.dumps(list(self.output_properties), ensure_ascii=False)
        if self.cohort_id is not None:
            form["filter_by_cohort"] = json.dumps({"id": self.cohort_id})
        if self.include_all_users is not None:
            form["include_all_users"] = "true" if self.include_all_users else "false"
        if self.distinct_ids is not None:
            form["distinct_ids"] = json.dumps(list(self.distinct_ids), ensure_ascii=False)
        if self.data_group_id is not None:
            form["data_group_id"] = str(self.data_group_id)
        form["page_size"] = self.page_size
        return form


def profile_converter(*, raw: bool, encode: bool) -> Callable[[bytes], Any]:
    """What one engage result (its compact JSON text) becomes: parsed or normalized, or either as a JSONL line."""
    if encode:  # JSONL straight from each result's bytes: values exactly as Mixpanel sent them
        return raw_profile_line if raw else profile_line
    return loads_object if raw else (lambda result: normalize_profile(loads_object(result)))


class ProfilesKind(StreamKind):
    name = "profiles"
    summary = "user or group profiles (Engage API)"
    records = "``distinct_id``, ``last_seen``, ``properties``; raw: the engage result, ``{$distinct_id, $properties}``"
    dated = False
    quota = Quota.QUERY
    query_type = ProfilesQuery

    def columns(self, *, raw: bool) -> tuple[Column, ...]:
        return RAW_PROFILE_COLUMNS if raw else PROFILE_COLUMNS

    def open(self, client: MixpanelClient, opening: Opening) -> Records:
        convert = profile_converter(raw=opening.raw, encode=opening.encode)
        return Records(client.engage(opening.query.form()), convert)
