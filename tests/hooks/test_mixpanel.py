"""MixpanelHook: connection in, records out, against the bundled server over real HTTP."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, date, datetime
from urllib.parse import quote

import pytest

from airflow_provider_mixpanel.errors import (
    MixpanelConfigError,
    MixpanelMalformedRecordError,
    MixpanelStreamInterruptedError,
)
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook

DAY = "2024-03-01"
CONN = "AIRFLOW_CONN_MIXPANEL_DEFAULT"


@pytest.fixture
def server(make_server, monkeypatch):
    server = make_server(events_per_day=200, profiles=1200, page_size=500)
    monkeypatch.setenv(CONN, server.connection_json())
    return server


def set_conn(monkeypatch, server, conn_id="mixpanel_default", **fields):
    conn = {
        "conn_type": "mixpanel",
        "login": server.config.username,
        "password": server.config.secret,
        "extra": {"project_id": server.config.project_id, "host": server.url},
    }
    conn.update(fields)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


# ---------------------------------------------------------------- streams


def test_stream_events_returns_normalized_records(server):
    events = list(MixpanelHook().stream_events(from_date=DAY, to_date="2024-03-02"))
    assert len(events) == 400
    first = events[0]
    assert list(first) == ["event_name", "event_time", "distinct_id", "insert_id", "properties"]
    assert first["event_time"] == datetime(2024, 3, 1, tzinfo=UTC)
    assert first["event_time"].tzinfo is not None
    assert not {"time", "distinct_id", "$insert_id"} & set(first["properties"])


def test_raw_events_are_the_lines_as_parsed(server):
    hook = MixpanelHook()
    raw = list(hook.stream_events(from_date=DAY, to_date=DAY, raw=True))
    lines = list(hook.get_conn().export_lines(DAY, DAY))
    assert raw == [json.loads(line) for line in lines]
    assert set(raw[0]) == {"event", "properties"}


def test_dates_accept_date_objects(server):
    events = list(MixpanelHook().stream_events(from_date=date(2024, 3, 1), to_date=datetime(2024, 3, 1, 5)))
    assert len(events) == 200
    assert server.export_requests()[0].params["to_date"] == DAY


def test_stream_is_lazy(server):
    stream = MixpanelHook().stream_events(from_date=DAY, to_date=DAY)
    assert server.requests == [], "no request before the first next()"
    next(stream)
    stream.close()
    assert len(server.requests) == 1


def test_stream_counts_records(server):
    stream = MixpanelHook().stream_events(from_date=DAY, to_date=DAY)
    assert sum(1 for _ in stream) == stream.records == 200


def test_events_filter_accepts_one_name(server):
    events = list(MixpanelHook().stream_events(from_date=DAY, to_date=DAY, events="Purchase"))
    assert events and {e["event_name"] for e in events} == {"Purchase"}


def test_time_in_ms(server):
    (event,) = MixpanelHook().stream_events(from_date=DAY, to_date=DAY, time_in_ms=True, limit=1)
    assert event["event_time"] == datetime(2024, 3, 1, tzinfo=UTC)


def test_stream_profiles_normalized_and_raw(server):
    hook = MixpanelHook()
    profiles = list(hook.stream_profiles())
    raw = list(hook.stream_profiles(raw=True))
    assert len(profiles) == len(raw) == 1200
    assert set(profiles[0]) == {"distinct_id", "last_seen", "properties"}
    assert set(raw[0]) == {"$distinct_id", "$properties"}
    assert profiles[0]["last_seen"] == raw[0]["$properties"]["$last_seen"]


def test_profile_filters_reach_mixpanel(server):
    hook = MixpanelHook()
    list(hook.stream_profiles(where='properties["plan"]=="pro"', cohort_id="42", output_properties="$email"))
    form = server.engage_requests()[0].form
    assert json.loads(form["filter_by_cohort"]) == {"id": 42}
    assert json.loads(form["output_properties"]) == ["$email"]
    assert form["where"] == 'properties["plan"]=="pro"'


def test_group_profiles(server):
    profiles = list(MixpanelHook().stream_profiles(data_group_id="company_id"))
    assert profiles[0]["distinct_id"] == "company-0"


def test_malformed_lines_raise_or_are_skipped_and_counted(server):
    server.add_fault("malformed", after_records=3)
    with pytest.raises(MixpanelMalformedRecordError):
        list(MixpanelHook().stream_events(from_date=DAY, to_date=DAY))
    server.add_fault("malformed", after_records=3)
    stream = MixpanelHook().stream_events(from_date=DAY, to_date=DAY, skip_malformed=True)
    assert len(list(stream)) == 200
    assert stream.skipped_malformed == 1


def test_retries_come_from_hook_arguments(server):
    server.add_fault("status", status=503, times=2)
    assert len(list(MixpanelHook(backoff_base=0.01).stream_events(from_date=DAY, to_date=DAY))) == 200


def test_interrupted_stream_propagates(server):
    server.add_fault("drop", after_records=50)
    with pytest.raises(MixpanelStreamInterruptedError):
        list(MixpanelHook().stream_events(from_date=DAY, to_date=DAY))


# ---------------------------------------------------------------- bad input, before any request


@pytest.mark.parametrize(
    ("from_date", "to_date", "match"),
    [
        ("2024-02-30", DAY, "from_date='2024-02-30' is not a date"),
        ("03/01/2024", DAY, "YYYY-MM-DD"),
        (DAY, "tomorrow", "to_date='tomorrow'"),
        (DAY, 20240301, "to_date=20240301"),
        ("2024-03-02", DAY, "from_date 2024-03-02 is after to_date 2024-03-01"),
    ],
)
def test_bad_dates_fail_before_any_request(server, from_date, to_date, match):
    with pytest.raises(MixpanelConfigError, match=match):
        MixpanelHook().stream_events(from_date=from_date, to_date=to_date)
    assert server.requests == []


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"extra": {"project_id": "abc"}}, "connection 'mixpanel_default' has extra 'project_id'='abc'"),
        ({"extra": {"project_id": 1, "region": "mars"}}, "extra 'region'='mars'"),
        ({"extra": {"project_id": 1, "project_timezone": "Mars/Olympus"}}, "project_timezone"),
        ({"extra": {"project_id": 1, "workspace_id": "x1"}}, "workspace_id"),
        ({"extra": {}}, "no extra 'project_id'"),
        ({"password": None}, "has no password"),
        ({"extra": {"project_id": 1, "host": "ftp://x"}}, "host='ftp://x'"),
    ],
)
def test_bad_connection_fields_name_the_field_and_connection(make_server, monkeypatch, fields, match):
    server = make_server()
    set_conn(monkeypatch, server, **fields)
    with pytest.raises(MixpanelConfigError, match=match):
        MixpanelHook().stream_events(from_date=DAY, to_date=DAY)
    assert server.requests == []


def test_uri_connection_with_string_extras(make_server, monkeypatch):
    server = make_server(events_per_day=10)
    monkeypatch.setenv(
        CONN,
        "mixpanel://test-user:test-secret@/?project_id=12345&region=EU&workspace_id=7"
        f"&host={quote(server.url, safe='')}",
    )
    hook = MixpanelHook()
    assert hook.settings.project_id == 12345 and hook.settings.region == "eu" and hook.settings.workspace_id == 7
    assert len(list(hook.stream_events(from_date=DAY, to_date=DAY))) == 10


def test_host_field_of_the_connection_is_the_base_url(make_server, monkeypatch):
    server = make_server(events_per_day=10)
    set_conn(monkeypatch, server, host=server.url, extra={"project_id": 12345})
    assert len(list(MixpanelHook().stream_events(from_date=DAY, to_date=DAY))) == 10


def test_prefixed_extras_are_read(make_server, monkeypatch):
    server = make_server(events_per_day=10)
    set_conn(monkeypatch, server, extra={"extra__mixpanel__project_id": "12345", "host": server.url})
    assert MixpanelHook().settings.project_id == 12345


def test_project_timezone_from_the_connection_is_applied(make_server, monkeypatch):
    server = make_server(events_per_day=1)
    set_conn(monkeypatch, server, extra={"project_id": 12345, "host": server.url, "project_timezone": "Asia/Tokyo"})
    (event,) = MixpanelHook().stream_events(from_date=DAY, to_date=DAY)
    assert event["event_time"] == datetime(2024, 2, 29, 15, tzinfo=UTC)


def test_legacy_project_secret_warns(make_server, monkeypatch):
    server = make_server(project_secret="legacy", events_per_day=5)
    set_conn(monkeypatch, server, login=None, password="legacy", extra={"host": server.url})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events = list(MixpanelHook().stream_events(from_date=DAY, to_date=DAY))
    assert len(events) == 5
    assert any("2027-03-03" in str(w.message) for w in caught)


def test_include_all_users_needs_a_cohort(server):
    with pytest.raises(MixpanelConfigError, match="cohort_id"):
        MixpanelHook().stream_profiles(include_all_users=True)


def test_secret_not_in_repr(server):
    hook = MixpanelHook()
    hook.settings  # noqa: B018 - load the connection
    assert "test-secret" not in repr(hook) and "test-secret" not in repr(hook.settings)
    assert "test-secret" not in repr(hook.get_conn())


# ---------------------------------------------------------------- test_connection


def test_test_connection_succeeds(server):
    ok, message = MixpanelHook().test_connection()
    assert ok, message
    assert "12345" in message
    assert server.export_requests()[0].params["limit"] == "1"


def test_test_connection_bad_secret(make_server, monkeypatch):
    server = make_server()
    set_conn(monkeypatch, server, password="not-it")
    ok, message = MixpanelHook().test_connection()
    assert not ok and "authentication failed" in message and "not-it" not in message


def test_test_connection_wrong_region(make_server, monkeypatch):
    server = make_server(foreign_project_ids=(555,))
    set_conn(monkeypatch, server, extra={"project_id": 555, "host": server.url})
    ok, message = MixpanelHook().test_connection()
    assert not ok and "region" in message and "authentication" not in message


def test_test_connection_wrong_project(make_server, monkeypatch):
    server = make_server()
    set_conn(monkeypatch, server, extra={"project_id": 999, "host": server.url})
    ok, message = MixpanelHook().test_connection()
    assert not ok and "403" in message and "project_id" in message


def test_test_connection_bad_field(make_server, monkeypatch):
    server = make_server()
    set_conn(monkeypatch, server, extra={"project_id": "x"})
    ok, message = MixpanelHook().test_connection()
    assert not ok and "project_id" in message


def test_connection_form_for_airflow_before_3_2():
    behaviour = MixpanelHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == ["schema", "port"]
    assert behaviour["relabeling"]["password"] == "Service account secret"
    pytest.importorskip("wtforms")
    pytest.importorskip("flask_appbuilder")
    widgets = MixpanelHook.get_connection_form_widgets()
    assert set(widgets) == {"project_id", "region", "workspace_id", "project_timezone"}
