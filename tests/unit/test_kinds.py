"""The stream kinds' registry and their query values: each argument declared once, checked once."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.kinds import KIND_ARGUMENTS, KINDS, get_kind, kinds_accepting
from airflow_provider_mixpanel.kinds.arguments import DEFAULT_ENGAGE_PAGE_SIZE
from airflow_provider_mixpanel.kinds.events import EventsArguments, EventsQuery
from airflow_provider_mixpanel.kinds.profiles import ProfilesArguments, ProfilesQuery


def test_every_kind_is_registered_under_its_name():
    assert list(KINDS)[:2] == ["events", "profiles"]
    assert all(kind.name == name for name, kind in KINDS.items())


def test_an_unknown_kind_lists_the_kinds_there_are():
    with pytest.raises(MixpanelConfigError, match=r"stream='people': use one of 'events', 'profiles'"):
        get_kind("people")


@pytest.mark.parametrize(
    ("typed", "query"), [(EventsArguments, EventsQuery), (ProfilesArguments, ProfilesQuery)], ids=["events", "profiles"]
)
def test_typed_keywords_are_the_query_fields(typed, query):
    assert list(typing.get_type_hints(typed)) == [f.name for f in dataclasses.fields(query)], (
        "the keywords a type checker sees must be exactly the query's arguments"
    )


def test_a_query_is_frozen_and_built_once():
    query = EventsQuery.build({"events": "Purchase", "where": "", "limit": 10})
    assert query == EventsQuery(events=("Purchase",), where=None, limit=10, time_in_ms=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        query.limit = 5  # type: ignore[misc]


def test_the_page_size_default_is_said_once_and_is_what_is_sent():
    assert ProfilesQuery.build({}).form()["page_size"] == DEFAULT_ENGAGE_PAGE_SIZE == 50_000
    assert "default 50,000" in ProfilesQuery.arguments()["page_size"].help


@pytest.mark.parametrize(
    ("query", "given", "match"),
    [
        (EventsQuery, {"limit": 0}, "limit=0: Mixpanel accepts 1 to 100000"),
        (EventsQuery, {"events": ["ok", ""]}, "events=.*non-empty names"),
        (EventsQuery, {"cohort_id": 1}, "unknown argument.*cohort_id"),
        (ProfilesQuery, {"page_size": 0}, "page_size=0"),
        (ProfilesQuery, {"cohort_id": "x"}, "cohort_id='x'"),
        (ProfilesQuery, {"include_all_users": True}, "include_all_users applies only with cohort_id"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_task(query, given, match):
    with pytest.raises(MixpanelConfigError, match=match) as info:
        query.build(given, where="Task 't': ")
    assert str(info.value).startswith("Task 't': ")


def test_templated_ids_arrive_as_text_and_become_numbers():
    assert ProfilesQuery.build({"cohort_id": " 42 "}).cohort_id == 42


def test_an_argument_means_one_thing_in_every_kind_that_takes_it():
    for name in KIND_ARGUMENTS:
        specs = {
            id(kind.query_type.arguments()[name]) for kind in KINDS.values() if name in kind.query_type.arguments()
        }
        assert len(specs) == 1, f"{name} is declared by {kinds_accepting(name)} differently"


@pytest.mark.parametrize("document", ["README.md", "docs/kinds.rst"])
def test_every_kind_is_listed_with_its_records_in_the_docs(document):
    from pathlib import Path

    text = (Path(__file__).parents[2] / document).read_text()
    missing = [name for name in KINDS if f"`{name}`" not in text]
    assert not missing, f"{document} does not list the kind(s) {missing}"


def test_every_argument_of_every_kind_is_documented():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs/kinds.rst").read_text()
    missing = [name for name in KIND_ARGUMENTS if f"``{name}``" not in text]
    assert not missing, f"docs/kinds.rst does not document {missing}"


def test_no_kind_argument_shadows_an_operator_attribute():
    from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

    for operator in (MixpanelStreamToS3Operator, MixpanelStreamToGCSOperator):
        clashes = set(KIND_ARGUMENTS) & set(dir(operator))
        assert not clashes, f"the kind argument(s) {clashes} would overwrite {operator.__name__}'s own"


def test_an_id_given_twice_is_asked_for_once():
    from airflow_provider_mixpanel.kinds.cohort_members import CohortMembersQuery
    from airflow_provider_mixpanel.kinds.funnels import FunnelsQuery

    assert CohortMembersQuery.build({"cohort_ids": [1000, "1001", 1000]}).cohort_ids == (1000, 1001)
    assert FunnelsQuery.build({"funnel_ids": ["7", 7]}).funnel_ids == (7,)


def test_a_raw_cohort_member_with_an_empty_result_stays_json():
    import json

    from airflow_provider_mixpanel.kinds.cohort_members import _converter

    line = _converter(raw=True, encode=True)((1000, b"{}"))
    assert json.loads(line) == {"cohort_id": 1000}
    assert json.loads(_converter(raw=True, encode=True)((1000, b'{"$distinct_id":"a"}'))) == {
        "cohort_id": 1000,
        "$distinct_id": "a",
    }
