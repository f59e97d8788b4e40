"""Cohorts: ``/cohorts/list`` as Mixpanel's spec shows it, and members through engage's ``filter_by_cohort``."""

from __future__ import annotations

import json
import tracemalloc

from tests.integration.testing.helpers import engage, query_api


def test_cohort_list_has_the_spec_examples_keys_in_order(start):
    server = start(cohorts=5, cohort_size=40, profiles=100)
    response = query_api(server, "POST", "cohorts/list")
    assert response.status_code == 200, response.text
    cohorts = response.json()
    assert [list(c) for c in cohorts] == [
        ["count", "is_visible", "description", "created", "project_id", "id", "name"]
    ] * 5, "keys as in query.openapi.yaml's /cohorts/list example"
    assert [c["id"] for c in cohorts] == [1000, 1001, 1002, 1003, 1004]
    assert {c["count"] for c in cohorts} == {40}
    assert [c["is_visible"] for c in cohorts] == [1, 1, 1, 0, 1], "every fourth cohort is hidden (0/1 integers)"
    assert cohorts[0]["created"] == "2023-01-01 00:22:13", "Mixpanel's 'YYYY-MM-DD HH:MM:SS' form"
    assert cohorts == server.cohorts(), "the helper tells tests exactly what the server sends"


def test_cohort_list_is_post_only_as_the_spec_says(start):
    server = start()
    response = query_api(server, "GET", "cohorts/list")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_cohort_list_names_keep_non_ascii_text_raw(start):
    server = start(cohorts=3)
    body = query_api(server, "POST", "cohorts/list").content
    assert "新規ユーザー".encode() in body, "UTF-8 as sent, not \\u escapes"


def test_a_cohorts_members_are_the_profiles_engage_serves(start):
    server = start(cohorts=3, cohort_size=25, profiles=60)
    page = engage(server, filter_by_cohort=json.dumps({"id": 1002})).json()
    ids = [profile["$distinct_id"] for profile in page["results"]]
    assert ids == server.cohort_member_ids(1002)
    assert page["total"] == 25
    plain = engage(server, distinct_ids=json.dumps(ids)).json()["results"]
    assert sorted(page["results"], key=lambda p: p["$distinct_id"]) == sorted(plain, key=lambda p: p["$distinct_id"])


def test_cohort_members_page_like_any_engage_query(start):
    server = start(cohorts=2, cohort_size=45, profiles=100)
    cohort = json.dumps({"id": 1001})
    first = engage(server, filter_by_cohort=cohort, page_size=20).json()
    assert (first["page_size"], first["total"], len(first["results"])) == (20, 45, 20)
    ids = [p["$distinct_id"] for p in first["results"]]
    for page in (1, 2, 3):
        later = engage(server, filter_by_cohort=cohort, page_size=20, page=page, session_id=first["session_id"]).json()
        ids += [p["$distinct_id"] for p in later["results"]]
    assert ids == server.cohort_member_ids(1001), "pages 0-2 hold 20, 20, 5; page 3 is empty"


def test_cohorts_overlap_only_partly(start):
    server = start(cohorts=2, cohort_size=50, profiles=100)
    first, second = set(server.cohort_member_ids(1000)), set(server.cohort_member_ids(1001))
    assert 0 < len(first & second) < 50


def test_output_properties_narrow_cohort_members_too(start):
    server = start(cohorts=1, cohort_size=3, profiles=10)
    page = engage(server, filter_by_cohort='{"id": 1000}', output_properties='["$email"]').json()
    assert [list(p["$properties"]) for p in page["results"]] == [["$email"]] * 3


def test_distinct_ids_and_a_cohort_select_their_intersection(start):
    server = start(cohorts=1, cohort_size=5, profiles=100)
    members = server.cohort_member_ids(1000)
    page = engage(server, filter_by_cohort='{"id": 1000}', distinct_ids=json.dumps([members[1], "user-99"])).json()
    assert [p["$distinct_id"] for p in page["results"]] == [members[1]]


def test_include_all_users_accepts_true_and_false_only(start):
    server = start(cohorts=1, cohort_size=4, profiles=10)
    for value in ("true", "false"):
        page = engage(server, filter_by_cohort='{"id": 1000}', include_all_users=value).json()
        assert len(page["results"]) == 4, "every synthetic member has a profile"
    refused = engage(server, filter_by_cohort='{"id": 1000}', include_all_users="maybe")
    assert refused.status_code == 400
    assert "include_all_users" in refused.json()["error"]


def test_behaviors_and_filter_by_cohort_are_mutually_exclusive(start):
    server = start()
    response = engage(server, filter_by_cohort='{"id": 1000}', behaviors="1")
    assert response.status_code == 400
    assert response.json() == {"error": "behaviors and filter_by_cohort are mutually exclusive"}


def test_an_unknown_cohort_is_a_400_naming_it(start):
    server = start(cohorts=2)
    response = engage(server, filter_by_cohort='{"id": 4242}')
    assert response.status_code == 400
    assert response.json() == {"error": "cohort 4242 does not exist in project 12345"}


def test_a_cohort_filter_without_an_integer_id_is_a_400(start):
    server = start()
    for bad in ("1000", '{"id": "1000"}', "{not json", '{"id": true}'):
        response = engage(server, filter_by_cohort=bad)
        assert response.status_code == 400, bad
        assert "filter_by_cohort" in response.json()["error"]


def test_a_page_of_a_huge_cohort_is_sliced_not_listed(start):
    server = start(cohorts=100, cohort_size=10_000, profiles=2_000_000)
    tracemalloc.start()
    try:
        page = engage(server, filter_by_cohort='{"id": 1099}', page=9, page_size=1000, session_id="s").json()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [p["$distinct_id"] for p in page["results"]] == server.cohort_member_ids(1099)[9000:10_000]
    assert peak < 20 * 2**20, f"{peak} bytes traced for one page of a 10,000-member cohort"
    cohorts = query_api(server, "POST", "cohorts/list").json()
    assert len(cohorts) == 100 and {c["count"] for c in cohorts} == {10_000}
