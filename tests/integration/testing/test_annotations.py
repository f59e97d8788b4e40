"""Annotations: the app API's list, in the schema's exact keys, for inclusive day ranges."""

from __future__ import annotations

from datetime import date

from airflow_provider_mixpanel.testing import SimClock
from tests.integration.testing.helpers import app_api, utc


def test_annotations_come_in_the_list_envelope_with_the_entrys_keys(start):
    server = start(annotations_per_day=2)
    response = app_api(server, "annotations", fromDate="2024-03-01", toDate="2024-03-02")
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["status", "results"] and body["status"] == "ok"
    assert [list(a) for a in body["results"]] == [["date", "description", "id", "user", "tags"]] * 4, (
        "AnnotationsEntry has additionalProperties: false"
    )
    first = body["results"][0]
    assert first["date"] == "2024-03-01 09:05:00", "the spec's 'YYYY-MM-DD HH:mm:ss'"
    assert list(first["user"]) == ["id", "first_name", "last_name"]
    assert all(list(tag) == ["id", "name"] for a in body["results"] for tag in a["tags"])
    assert body["results"] == server.annotations(date(2024, 3, 1), date(2024, 3, 2))


def test_both_dates_are_inclusive_and_some_days_have_none(start):
    server = start(annotations_per_day=1)
    results = app_api(server, "annotations", fromDate="2024-03-01", toDate="2024-03-07").json()["results"]
    days = [a["date"][:10] for a in results]
    assert days == ["2024-03-01", "2024-03-02", "2024-03-04", "2024-03-05", "2024-03-06"], (
        "03-03 and 03-07 carry none; the last day is included"
    )
    assert len({a["id"] for a in results}) == len(results), "ids are unique"


def test_without_dates_the_list_runs_from_the_projects_creation_to_today(start):
    clock = SimClock.manual(utc(2024, 1, 10, 12))
    server = start(annotations_per_day=1, project_created=date(2024, 1, 1), clock=clock)
    results = app_api(server, "annotations").json()["results"]
    assert results == server.annotations(date(2024, 1, 1), date(2024, 1, 10))
    assert results[0]["date"].startswith("2024-01-01") and results[-1]["date"].startswith("2024-01-10")


def test_a_long_range_streams_in_chunks(start):
    server = start(annotations_per_day=20)
    response = app_api(server, "annotations", fromDate="2020-01-01", toDate="2024-12-31")
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert len(response.json()["results"]) == len(server.annotations(date(2020, 1, 1), date(2024, 12, 31)))


def test_bad_dates_are_a_400_in_the_app_apis_envelope(start):
    server = start()
    for params, error in (
        ({"fromDate": "2024-03-02", "toDate": "2024-03-01"}, "fromDate 2024-03-02 is after toDate 2024-03-01"),
        ({"fromDate": "03/01/2024"}, "fromDate must be a date in yyyy-mm-dd format, not '03/01/2024'"),
    ):
        response = app_api(server, "annotations", **params)
        assert response.status_code == 400
        assert response.json() == {"error": error, "status": "error"}


def test_non_ascii_annotation_text_is_raw_utf8(start):
    server = start(annotations_per_day=3)
    body = app_api(server, "annotations", fromDate="2024-03-01", toDate="2024-03-02").content
    assert "Łukasz".encode() in body
