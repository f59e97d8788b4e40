"""The Lexicon Schemas API: entries, filters, single schemas, and its 5-requests-a-minute limit."""

from __future__ import annotations

from airflow_provider_mixpanel.testing import Quotas, SimClock
from airflow_provider_mixpanel.testing.data import EVENT_NAMES
from tests.integration.testing.helpers import app_api, utc


def test_schemas_list_every_synthetic_event_then_the_user_profile(start):
    server = start()
    response = app_api(server, "schemas")
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["results", "status"] and body["status"] == "ok"
    entries = body["results"]
    assert [(e["entityType"], e["name"]) for e in entries] == [
        *(("event", name) for name in EVENT_NAMES),
        ("profile", "$user"),
    ], "the profile schema is named $user, as Mixpanel's docs say"
    assert all(list(e) == ["entityType", "name", "schemaJson"] for e in entries)
    assert entries == server.lexicon_schemas()


def test_a_schema_is_json_schema_with_mixpanel_metadata(start):
    purchase = app_api(start(), "schemas/event/Purchase").json()
    assert purchase["$schema"] == "http://json-schema.org/draft-07/schema"
    assert purchase["metadata"]["com.mixpanel"] == {
        "displayName": "Purchase",
        "hidden": False,
        "dropped": False,
        "tags": ["KPIs"],
    }
    types = {prop["type"] for prop in purchase["properties"].values()}
    assert types <= {"array", "boolean", "integer", "null", "number", "object", "string"}
    assert purchase["required"][0] in purchase["properties"]


def test_every_json_schema_type_appears_across_the_lexicon(start):
    entries = app_api(start(), "schemas").json()["results"]
    types = {prop["type"] for e in entries for prop in e["schemaJson"]["properties"].values()}
    assert types == {"array", "boolean", "integer", "null", "number", "object", "string"}


def test_entity_type_and_entity_name_narrow_the_list(start):
    server = start()
    profiles = app_api(server, "schemas/profile").json()["results"]
    assert [e["name"] for e in profiles] == ["$user"]
    events = app_api(server, "schemas/event").json()["results"]
    assert [e["name"] for e in events] == list(EVENT_NAMES)
    one = app_api(server, "schemas/event", entity_name="Sign Up").json()["results"]
    assert [e["name"] for e in one] == ["Sign Up"]


def test_a_single_schema_is_the_bare_schema_and_an_unknown_one_a_404(start):
    server = start()
    user = app_api(server, "schemas/profile/$user")
    assert user.status_code == 200
    assert user.json() == server.lexicon_schemas("profile")[0]["schemaJson"]
    missing = app_api(server, "schemas/event/No Such Event")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no schema for event 'No Such Event'", "status": "error"}


def test_an_unknown_entity_type_is_a_400(start):
    response = app_api(start(), "schemas/group")
    assert response.status_code == 400
    assert response.json() == {"error": "entityType must be one of event, profile, not 'group'", "status": "error"}


def test_a_lexicon_of_any_size_streams(start):
    server = start(lexicon_events=20_000)
    response = app_api(server, "schemas")
    assert response.headers.get("Transfer-Encoding") == "chunked"
    entries = response.json()["results"]
    assert len(entries) == 5 + 20_000 + 1
    assert entries[-2]["name"] == "Synthetic Event 20000"


def test_the_sixth_lexicon_request_in_a_minute_gets_a_429_with_retry_after(start):
    clock = SimClock.manual(utc(2024, 3, 2, 12))
    server = start(quotas=True, clock=clock)
    for _ in range(5):
        assert app_api(server, "schemas").status_code == 200
        clock.advance(5)
    refused = app_api(server, "schemas/event")
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "Rate limit exceeded for project_id: 12345. 6/5 requests in the last minute.",
        "status": "error",
    }
    assert refused.headers["Retry-After"] == "35", "seconds until the first request leaves the minute"
    stats = server.quota_stats()["lexicon"]
    assert (stats.admitted, stats.refused_per_minute) == (5, 1)
    clock.advance(35)
    assert app_api(server, "schemas").status_code == 200, "a minute after the first request there is room again"


def test_the_lexicon_limit_is_its_own_pool(start):
    clock = SimClock.manual(utc(2024, 3, 2, 12))
    server = start(quotas=Quotas(lexicon_per_minute=1), clock=clock)
    assert app_api(server, "schemas").status_code == 200
    assert app_api(server, "annotations", fromDate="2024-03-01", toDate="2024-03-01").status_code == 200
    assert app_api(server, "schemas").status_code == 429
    assert server.quota_stats()["app"].admitted == 1, "annotations count in the app pool, not the Lexicon's"
