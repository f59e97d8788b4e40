"""Auth, regions, error envelopes, faults and quota pools of the query API and the app API."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_mixpanel.testing import Fault, Quotas, SimClock
from airflow_provider_mixpanel.testing.__main__ import build_server
from tests.integration.testing.helpers import AUTH, app_api, engage, query_api, utc

# One request per metadata endpoint: (name, send(server, **overrides)).
ENDPOINTS = {
    "cohorts": lambda server, **kw: query_api(server, "POST", "cohorts/list", **kw),
    "funnels_list": lambda server, **kw: query_api(server, "GET", "funnels/list", **kw),
    "funnels": lambda server, **kw: query_api(
        server, "GET", "funnels", funnel_id=7500, from_date="2024-03-01", to_date="2024-03-01", **kw
    ),
    "annotations": lambda server, **kw: app_api(
        server, "annotations", fromDate="2024-03-01", toDate="2024-03-01", **kw
    ),
    "lexicon": lambda server, **kw: app_api(server, "schemas", **kw),
}
QUERY = ("cohorts", "funnels_list", "funnels")
APP = ("annotations", "lexicon")


def _envelope(endpoint: str, error: str) -> dict:
    return {"error": error, "status": "error"} if endpoint in APP else {"error": error}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wrong_credentials_are_a_401(start, endpoint):
    response = ENDPOINTS[endpoint](start(), auth=("test-user", "wrong"))
    assert response.status_code == 401
    assert response.json() == _envelope(endpoint, "Invalid credentials")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_another_project_is_a_403(start, endpoint):
    response = ENDPOINTS[endpoint](start(), project_id=999)
    assert response.status_code == 403
    assert response.json() == _envelope(
        endpoint, "Permission denied: the service account is not a member of this project"
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_project_of_another_region_is_the_clusters_400(start, endpoint):
    response = ENDPOINTS[endpoint](start(foreign_project_ids=(777,)), project_id=777)
    assert response.status_code == 400
    assert response.json() == _envelope(endpoint, "request failed with error: invalid project id for cluster.")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_expired_credentials_are_mixpanels_400(start, endpoint):
    response = ENDPOINTS[endpoint](start(expired=True))
    assert response.status_code == 400
    assert response.json() == _envelope(endpoint, "Unable to authenticate request")


@pytest.mark.parametrize("endpoint", QUERY)
def test_the_query_api_takes_a_project_secret_without_project_id(start, endpoint):
    server = start(project_secret="legacy-secret")
    url = {"cohorts": "cohorts/list", "funnels_list": "funnels/list", "funnels": "funnels"}[endpoint]
    params = {"funnel_id": 7500, "from_date": "2024-03-01", "to_date": "2024-03-01"} if endpoint == "funnels" else {}
    method = "POST" if endpoint == "cohorts" else "GET"
    response = requests.request(
        method, f"{server.url}/api/query/{url}", params=params, auth=("legacy-secret", ""), timeout=30
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", APP)
def test_the_app_api_refuses_a_project_secret(start, endpoint):
    response = ENDPOINTS[endpoint](start(project_secret="legacy-secret"), auth=("legacy-secret", ""))
    assert response.status_code == 401
    assert response.json() == {
        "error": "This API does not accept a project secret: authenticate with a service account",
        "status": "error",
    }


@pytest.mark.parametrize("endpoint", QUERY)
def test_a_service_account_must_send_project_id(start, endpoint):
    server = start()
    path = {"cohorts": "cohorts/list", "funnels_list": "funnels/list", "funnels": "funnels"}[endpoint]
    method = "POST" if endpoint == "cohorts" else "GET"
    response = requests.request(method, f"{server.url}/api/query/{path}", auth=AUTH, timeout=30)
    assert response.status_code == 400
    assert response.json() == {"error": "project_id is required for service account authentication"}


def test_a_non_integer_workspace_id_is_a_400(start):
    response = query_api(start(), "GET", "funnels/list", workspace_id="main")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid workspace_id: main"}
    assert query_api(start(), "GET", "funnels/list", workspace_id="42").ok


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("status", [402, 404, 500, 503])
def test_status_faults_answer_in_each_apis_envelope(start, endpoint, status):
    server = start()
    server.add_fault("status", endpoint=endpoint, status=status, body="injected")
    response = ENDPOINTS[endpoint](server)
    assert response.status_code == status
    assert response.json() == _envelope(endpoint, "injected")
    assert ENDPOINTS[endpoint](server).status_code == 200, "the fault struck once"
    assert [r.fault for r in server.requests_to(endpoint)] == ["status", None]


def test_an_injected_429_on_the_query_api_names_the_request(start):
    server = start()
    server.add_fault("status", endpoint="cohorts", status=429, body="Query rate limit exceeded", retry_after="3")
    response = ENDPOINTS["cohorts"](server)
    assert response.json() == {"request": "/api/query/cohorts/list", "error": "Query rate limit exceeded"}
    assert response.headers["Retry-After"] == "3"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_drop_mid_body_cuts_the_json(start, endpoint):
    server = start(cohorts=50, funnels=5, annotations_per_day=5, lexicon_events=50)
    server.add_fault("drop", endpoint=endpoint, after_records=2)
    with pytest.raises((requests.exceptions.RequestException, ValueError)):
        ENDPOINTS[endpoint](server).json()


def test_export_only_faults_are_refused_for_json_endpoints():
    with pytest.raises(ValueError, match="export bodies only, not to lexicon"):
        Fault(kind="truncated_gzip", endpoint="lexicon")


def test_cohorts_funnels_and_engage_share_the_query_apis_hour(start):
    clock = SimClock.manual(utc(2024, 3, 2, 12))
    server = start(quotas=Quotas(query_per_hour=3, query_concurrent=None), clock=clock)
    assert ENDPOINTS["cohorts"](server).ok
    assert ENDPOINTS["funnels_list"](server).ok
    assert engage(server).ok
    refused = ENDPOINTS["funnels"](server)
    assert refused.status_code == 429
    assert refused.json() == {
        "request": "/api/query/funnels",
        "error": "Query rate limit exceeded for project_id: 12345. 4/3 queries running in the last hour.",
    }
    stats = server.quota_stats()
    assert stats["query"].admitted == 3 and stats["query"].refused_hourly == 1
    assert stats["engage"] is stats["query"], "the old name of the query pool still works"


def test_annotations_have_no_limit_unless_one_is_set(start):
    clock = SimClock.manual(utc(2024, 3, 2, 12))
    server = start(quotas=True, clock=clock)
    assert all(ENDPOINTS["annotations"](server).ok for _ in range(12))
    limited = start(quotas=Quotas(app_per_minute=2), clock=clock)
    statuses = [ENDPOINTS["annotations"](limited).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_revenue_is_not_served(start):
    server = start()
    response = requests.get(f"{server.url}/api/2.0/engage/revenue", params={"project_id": 12345}, auth=AUTH, timeout=30)
    assert response.status_code == 404


def test_command_line_flags_size_the_metadata():
    server = build_server(
        [
            "--port=0",
            "--cohorts=100",
            "--cohort-size=10000",
            "--funnels=7",
            "--annotations-per-day=3",
            "--lexicon-events=50",
            "--quotas",
            "--lexicon-per-minute=2",
        ]
    )
    try:
        config = server.config
        assert (config.cohorts, config.cohort_size, config.funnels) == (100, 10_000, 7)
        assert (config.annotations_per_day, config.lexicon_events) == (3, 50)
        assert config.quotas is not None and config.quotas.lexicon_per_minute == 2
    finally:
        server.stop()


def test_bad_metadata_sizes_are_refused():
    with pytest.raises(ValueError, match="cohorts must be >= 0"):
        build_server(["--port=0", "--cohorts=-1"])
    with pytest.raises(ValueError, match="annotations_per_day must be at most 100"):
        build_server(["--port=0", "--annotations-per-day=101"])
