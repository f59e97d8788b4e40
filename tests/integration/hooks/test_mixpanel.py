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
from airflow_provider_mixpanel.jsonl import dumps_line
from airflow_provider_mixpanel.records import normalize_profile

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


def test_profile_jsonl_lines_carry_values_byte_for_byte(make_server, monkeypatch, tmp_path):
    from tests.integration.test_client import BIG_INTEGER_PAGE, BIG_INTEGER_RESULTS

    page = tmp_path / "page.json"
    page.write_bytes(BIG_INTEGER_PAGE)
    server = make_server(engage_files=[page])
    monkeypatch.setenv(CONN, server.connection_json())
    hook = MixpanelHook()
    assert list(hook.stream_profiles_jsonl(raw=True)) == [r + b"\n" for r in BIG_INTEGER_RESULTS]
    assert list(hook.stream_profiles_jsonl()) == [
        b'{"distinct_id":123456789012345678901234567890,"last_seen":"2024-01-02T03:04:05","properties":{'
        b'"n":1.50,"e":1E+2,"z":-0.0,"t":"caf\\u00e9 \\/ \\"q\\"","big":-98765432109876543210987654321,'
        b'"nested":{"$last_seen":"inner","l":[1,2.0]}}}\n',
        b'{"distinct_id":"u2","last_seen":null,"properties":{"s":"\\ud83d"}}\n',
    ]
    # the Python records are what they always were
    results = json.loads(BIG_INTEGER_PAGE)["results"]
    assert list(hook.stream_profiles(raw=True)) == results
    assert list(hook.stream_profiles()) == [normalize_profile(r) for r in results]


def test_profile_jsonl_lines_of_the_synthetic_profiles(server):
    hook = MixpanelHook()
    raw = list(hook.stream_profiles(raw=True))
    lines = list(hook.stream_profiles_jsonl())
    assert len(lines) == len(raw) == 1200
    assert [json.loads(line) for line in lines] == [json.loads(dumps_line(normalize_profile(r))) for r in raw]
    assert b'"$name":"\\u00dcser 0"' in lines[0], "the server's escapes are kept"


def test_profile_filters_reach_mixpanel(server):
    hook = MixpanelHook()
    list(hook.stream_profiles(where='properties["plan"]=="pro"', cohort_id="1000", output_properties="$email"))
    form = server.engage_requests()[0].form
    assert json.loads(form["filter_by_cohort"]) == {"id": 1000}
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
        ({"extra": {"project_id": 1, "host": "ftp://x"}}, "extra 'host'='ftp://x'"),
        ({"host": "ftp://x"}, "has host='ftp://x'"),
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
    assert widgets["region"].kwargs["default"] == "us"
    assert widgets["project_id"].kwargs["default"] is None  # an empty field, not ""
    assert behaviour["placeholders"]["project_id"] == "e.g. 2195193"


# ---------------------------------------------------------------- the Test button (issue 15)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TEMPORARY_ID = "0oOcHoUy"  # what Airflow's Test button names the connection it tests


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (f"http://127.0.0.1:{_closed_port()}", "connection failed"),
        ("http://mixpanel-test-host.invalid", "connection failed"),
    ],
    ids=["refused", "dns-failure"],
)
def test_test_connection_answers_fast_when_mixpanel_is_unreachable(monkeypatch, host, expected):
    import time

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{TEMPORARY_ID.upper()}",
        json.dumps({"conn_type": "mixpanel", "login": "u", "password": "p", "host": host, "extra": {"project_id": 1}}),
    )
    started = time.monotonic()
    ok, message = MixpanelHook(TEMPORARY_ID).test_connection()
    elapsed = time.monotonic() - started
    assert not ok and expected in message
    assert elapsed < 5, f"the Test button waited {elapsed:.1f} s: it must not spend the retry budget"
    assert TEMPORARY_ID not in message, "the message names the temporary connection id"


def test_test_connection_wrong_region_answers_at_once_without_the_temporary_id(make_server, monkeypatch):
    server = make_server(foreign_project_ids=(555,))
    set_conn(monkeypatch, server, conn_id=TEMPORARY_ID, extra={"project_id": 555, "host": server.url})
    ok, message = MixpanelHook(TEMPORARY_ID).test_connection()
    assert not ok and "region" in message and TEMPORARY_ID not in message
    assert len(server.export_requests()) == 1, "the test retried"


def test_test_connection_bad_field_names_no_temporary_id(make_server, monkeypatch):
    server = make_server()
    set_conn(monkeypatch, server, conn_id=TEMPORARY_ID, extra={"project_id": "x"})
    ok, message = MixpanelHook(TEMPORARY_ID).test_connection()
    assert not ok and "project_id" in message and TEMPORARY_ID not in message


def test_test_connection_does_not_retry_a_5xx(make_server, monkeypatch):
    server = make_server()
    set_conn(monkeypatch, server)
    server.add_fault("status", status=503, times=5)
    ok, message = MixpanelHook().test_connection()
    assert not ok and "503" in message
    assert len(server.export_requests()) == 1


# ---------------------------------------------------------------- hook plumbing


def test_from_connection_uses_the_given_connection_without_a_lookup(make_server, monkeypatch):
    from airflow.models import Connection

    server = make_server(events_per_day=7)
    monkeypatch.delenv(CONN, raising=False)
    conn = Connection(
        conn_id="from_db",
        conn_type="mixpanel",
        login=server.config.username,
        password=server.config.secret,
        host=server.url,
        extra=json.dumps({"project_id": server.config.project_id}),
    )
    hook = MixpanelHook.from_connection(conn)
    assert len(list(hook.stream_events(from_date=DAY, to_date=DAY))) == 7


def test_host_field_and_host_extra_disagreeing_is_an_error(make_server, monkeypatch):
    server = make_server()
    set_conn(monkeypatch, server, host="http://127.0.0.1:1")
    with pytest.raises(MixpanelConfigError, match="base URL twice"):
        MixpanelHook().stream_events(from_date=DAY, to_date=DAY)


def test_the_client_is_built_once_and_shared(server):
    hook = MixpanelHook()
    assert hook.client is hook.client is hook.get_conn()


def test_closing_a_profile_stream_releases_its_request_at_once(server):
    hook = MixpanelHook()
    for _ in range(8):  # more than the query API's 5 concurrent slots
        stream = hook.stream_profiles(page_size=10)
        next(stream)
        stream.close()
    assert len(server.engage_requests()) == 8
