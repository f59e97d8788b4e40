"""Funnels: ``/funnels/list`` and ``/funnels`` in the shapes of Mixpanel's spec examples."""

from __future__ import annotations

from datetime import date

import pytest

from tests.integration.testing.helpers import query_api

MARCH_1 = {"from_date": "2024-03-01", "to_date": "2024-03-01"}


def test_saved_funnels_list_ids_and_names(start):
    server = start(funnels=3)
    response = query_api(server, "GET", "funnels/list")
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"funnel_id": 7500, "name": "Signup funnel #1"},
        {"funnel_id": 7501, "name": "Checkout – Zürich store #2"},
        {"funnel_id": 7502, "name": "Search → purchase #3"},
    ]
    assert response.json() == server.funnels()


def test_a_funnel_query_has_meta_dates_and_steps_per_day(start):
    server = start()
    body = query_api(server, "GET", "funnels", funnel_id=7500, from_date="2024-03-01", to_date="2024-03-03").json()
    assert list(body) == ["meta", "data"]
    assert body["meta"] == {"dates": ["2024-03-01", "2024-03-02", "2024-03-03"]}
    assert list(body["data"]) == body["meta"]["dates"]
    day = body["data"]["2024-03-02"]
    assert list(day) == ["steps", "analysis"]
    assert list(day["steps"][1]) == [
        "count",
        "avg_time",
        "avg_time_from_start",
        "step_conv_ratio",
        "goal",
        "overall_conv_ratio",
        "event",
    ], "keys in the spec example's order"
    steps = day["steps"]
    assert steps[0]["step_conv_ratio"] == 1.0 and steps[0]["overall_conv_ratio"] == 1.0
    assert steps[1]["step_conv_ratio"] == steps[1]["count"] / steps[0]["count"]
    assert day["analysis"] == {
        "completion": steps[-1]["count"],
        "starting_amount": steps[0]["count"],
        "steps": len(steps),
        "worst": 1,
    }
    assert body == server.funnel_data(7500, date(2024, 3, 1), date(2024, 3, 3))


def test_every_third_funnel_has_a_custom_event_step(start):
    server = start(funnels=2)
    step = query_api(server, "GET", "funnels", funnel_id=7501, **MARCH_1).json()["data"]["2024-03-01"]["steps"][1]
    assert list(step) == [
        "count",
        "avg_time",
        "avg_time_from_start",
        "step_conv_ratio",
        "goal",
        "step_label",
        "custom_event",
        "custom_event_id",
        "overall_conv_ratio",
        "event",
    ]
    assert (step["goal"], step["event"], step["custom_event"], step["custom_event_id"]) == (
        "$custom_event:12001",
        "$custom_event:12001",
        True,
        12001,
    )


def test_step_zero_avg_time_is_null_in_even_funnels_and_a_number_in_odd_ones(start):
    server = start(funnels=2)
    even = server.funnel_data(7500, date(2024, 3, 1), date(2024, 3, 1))["data"]["2024-03-01"]["steps"][0]
    odd = server.funnel_data(7501, date(2024, 3, 1), date(2024, 3, 1))["data"]["2024-03-01"]["steps"][0]
    assert even["avg_time"] is None
    assert isinstance(odd["avg_time"], int)


def test_the_same_question_gets_the_same_answer_from_another_server(start):
    first = query_api(start(), "GET", "funnels", funnel_id=7502, **MARCH_1).content
    assert query_api(start(), "GET", "funnels", funnel_id=7502, **MARCH_1).content == first


@pytest.mark.parametrize(
    ("params", "dates"),
    [
        ({"interval": "2"}, ["2024-03-01", "2024-03-03", "2024-03-05"]),
        ({"unit": "week"}, ["2024-03-01", "2024-03-04"]),
        ({"unit": "month", "to_date": "2024-04-02"}, ["2024-03-01", "2024-04-01"]),
    ],
)
def test_interval_and_unit_make_wider_buckets(start, params, dates):
    server = start()
    query = {"funnel_id": 7500, "from_date": "2024-03-01", "to_date": "2024-03-05", **params}
    body = query_api(server, "GET", "funnels", **query).json()
    assert body["meta"]["dates"] == dates


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"from_date": "2024-03-01", "to_date": "2024-03-01"}, "funnel_id is required"),
        ({"funnel_id": "x", **MARCH_1}, "funnel_id must be an integer, not 'x'"),
        ({"funnel_id": 9999, **MARCH_1}, "funnel_id 9999 does not exist in project 12345"),
        ({"funnel_id": 7500, "to_date": "2024-03-01"}, "from_date is required"),
        ({"funnel_id": 7500, "from_date": "2024-03-02", "to_date": "2024-03-01"}, "from_date 2024-03-02 is after"),
        ({"funnel_id": 7500, "from_date": "2024-3-1", "to_date": "2024-03-01"}, "yyyy-mm-dd"),
        ({"funnel_id": 7500, "length": 91, **MARCH_1}, "may not be greater than 90 days"),
        ({"funnel_id": 7500, "length_unit": "week", **MARCH_1}, "length_unit must be one of"),
        ({"funnel_id": 7500, "unit": "year", **MARCH_1}, "unit must be one of day, week, month"),
        ({"funnel_id": 7500, "on": 'properties["$city"]', **MARCH_1}, "does not model funnels segmented"),
        ({"funnel_id": 7500, "where": 'properties["plan"] == "pro"', **MARCH_1}, "filtered by 'where'"),
    ],
)
def test_bad_funnel_parameters_are_a_400_saying_which(start, params, error):
    response = query_api(start(), "GET", "funnels", **params)
    assert response.status_code == 400
    assert list(response.json()) == ["error"], "the query API's error envelope"
    assert error in response.json()["error"]


def test_a_length_within_90_days_in_any_unit_is_accepted(start):
    server = start()
    for length, unit in ((90, "day"), (2160, "hour"), (7_776_000, "second")):
        assert query_api(server, "GET", "funnels", funnel_id=7500, length=length, length_unit=unit, **MARCH_1).ok


def test_funnels_are_get_only(start):
    response = query_api(start(), "POST", "funnels/list")
    assert response.status_code == 405
