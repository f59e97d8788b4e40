"""MixpanelClient against the bundled Mixpanel-compatible server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from airflow_provider_mixpanel.client import REGIONS, MixpanelClient
from airflow_provider_mixpanel.errors import (
    MixpanelAuthError,
    MixpanelConfigError,
    MixpanelMalformedRecordError,
    MixpanelQueryError,
    MixpanelRateLimitError,
    MixpanelServerError,
    MixpanelStreamInterruptedError,
)
from airflow_provider_mixpanel.retry import RetryPolicy

DAY = "2024-03-01"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


RETRY_FIELDS = {"max_retries", "backoff_base", "backoff_max", "max_retry_after", "quota_poll_interval"}


def client_for(server, *, sleeps=None, **overrides) -> MixpanelClient:
    """A client of ``server`` whose waits are recorded, not slept; retry fields go to its policy."""
    retry = {"backoff_base": 0.01, **{k: overrides.pop(k) for k in list(overrides) if k in RETRY_FIELDS}}
    options = dict(
        username=server.config.username,
        secret=server.config.secret,
        project_id=server.config.project_id,
        base_url=server.url,
        retry_policy=RetryPolicy(**retry),
        sleep=sleeps if sleeps is not None else Sleeps(),
        pacing=False,
    )
    options.update(overrides)
    return MixpanelClient(**options)


# ---------------------------------------------------------------- export: data


def test_export_yields_every_event_of_the_range(make_server):
    server = make_server(events_per_day=300)
    events = list(client_for(server).export_events("2024-03-01", "2024-03-03"))
    assert len(events) == 900
    assert {e["event"] for e in events} == {"Page View", "Sign Up", "Purchase", "Add To Cart", "Search"}
    request = server.export_requests()[0]
    assert request.params["from_date"] == "2024-03-01" and request.params["to_date"] == "2024-03-03"
    assert request.params["project_id"] == "12345"
    assert request.user == "test-user"


def test_large_body_is_gzipped_and_small_body_is_not(make_server):
    big = make_server(events_per_day=500)
    small = make_server(events_per_day=1)
    assert len(list(client_for(big).export_events(DAY, DAY))) == 500
    assert len(list(client_for(small).export_events(DAY, DAY))) == 1


def test_raw_lines_come_back_exactly_as_sent(make_server, samples):
    path = samples / "export_mixpanel_docs_openapi.jsonl"
    server = make_server(export_file=path)
    lines = list(client_for(server).export_lines(DAY, DAY))
    assert lines == path.read_bytes().splitlines()
    assert list(client_for(server).export_events(DAY, DAY)) == [json.loads(x) for x in lines]


def test_empty_body_means_no_records(make_server, samples):
    server = make_server(export_file=samples / "export_edge_empty_body.jsonl")
    assert list(client_for(server).export_events(DAY, DAY)) == []


@pytest.mark.parametrize("ascii_escape", [True, False], ids=["u-escaped", "raw-utf8"])
def test_non_ascii_and_line_separators_survive(make_server, ascii_escape):
    server = make_server(events_per_day=50, ascii_escape=ascii_escape)
    events = list(client_for(server).export_events(DAY, DAY))
    assert len(events) == 50
    assert events[0]["properties"]["title"] == "Summer sale – 20% off\u2028second line"
    assert {e["properties"]["$city"] for e in events} >= {"São Paulo", "東京", "Zürich"}


def test_unicode_escapes_sample(make_server, samples):
    server = make_server(export_file=samples / "event_objects_unicode_escapes_mixpanel_docs_pubsub.jsonl")
    events = list(client_for(server).export_events(DAY, DAY))
    assert len(events) == 10
    assert "\u2013" in events[3]["properties"]["title"]


def test_request_parameters_are_sent(make_server):
    server = make_server(events_per_day=100)
    client = client_for(server)
    events = list(
        client.export_events(
            DAY, DAY, events=["Purchase", "Search"], where='properties["plan"]=="pro"', limit=7, time_in_ms=True
        )
    )
    assert len(events) == 7
    assert {e["event"] for e in events} <= {"Purchase", "Search"}
    assert events[0]["properties"]["time"] > 10**12, "time_in_ms must give milliseconds"
    params = server.export_requests()[0].params
    assert json.loads(params["event"]) == ["Purchase", "Search"]
    assert params["where"] == 'properties["plan"]=="pro"'
    assert params["limit"] == "7" and params["time_in_ms"] == "true"


def test_limit_out_of_range_is_rejected_before_any_request(make_server):
    server = make_server()
    with pytest.raises(MixpanelConfigError, match="limit"):
        client_for(server).export_lines(DAY, DAY, limit=100_001)
    assert server.requests == []


def test_region_hosts():
    urls = {
        region: MixpanelClient(username="u", secret="s", project_id=1, region=region).export_url for region in REGIONS
    }
    assert urls == {
        "us": "https://data.mixpanel.com/api/2.0/export",
        "eu": "https://data-eu.mixpanel.com/api/2.0/export",
        "in": "https://data-in.mixpanel.com/api/2.0/export",
    }
    engage = MixpanelClient(username="u", secret="s", project_id=1, region="eu").engage_url
    assert engage == "https://eu.mixpanel.com/api/query/engage"


def test_unknown_region_is_a_config_error():
    with pytest.raises(MixpanelConfigError, match="extra 'region'='mars'"):
        MixpanelClient(username="u", secret="s", project_id=1, region="mars")


# ---------------------------------------------------------------- export: errors that are never retried


def test_401_is_an_auth_error_and_not_retried(make_server):
    server = make_server()
    with pytest.raises(MixpanelAuthError, match="authentication failed") as info:
        list(client_for(server, secret="Zq-not-the-secret").export_events(DAY, DAY))
    assert info.value.http_status == 401
    assert len(server.requests) == 1, "authentication errors must not be retried"
    assert "Zq-not-the-secret" not in str(info.value)


def test_expired_credentials_400_is_an_auth_error(make_server):
    server = make_server(expired=True)
    with pytest.raises(MixpanelAuthError, match="Unable to authenticate request") as info:
        list(client_for(server).export_events(DAY, DAY))
    assert info.value.http_status == 400
    assert len(server.requests) == 1


def test_wrong_region_says_so(make_server):
    server = make_server(foreign_project_ids=(777,))
    with pytest.raises(MixpanelAuthError, match="region"):
        list(client_for(server, project_id=777).export_events(DAY, DAY))


def test_wrong_project_is_403(make_server):
    server = make_server()
    with pytest.raises(MixpanelAuthError, match="project_id") as info:
        list(client_for(server, project_id=999).export_events(DAY, DAY))
    assert info.value.http_status == 403


@pytest.mark.parametrize("status", [402, 403])
def test_payment_and_permission_errors(make_server, status):
    server = make_server()
    server.add_fault("status", status=status, body="nope")
    with pytest.raises(MixpanelAuthError, match=str(status)):
        list(client_for(server).export_events(DAY, DAY))
    assert len(server.requests) == 1


def test_other_400_is_a_query_error_with_mixpanels_message(make_server):
    server = make_server()
    server.add_fault("status", status=400, body="to_date cannot be later than today")
    with pytest.raises(MixpanelQueryError, match="to_date cannot be later than today"):
        list(client_for(server).export_events(DAY, DAY))
    assert len(server.requests) == 1


# ---------------------------------------------------------------- export: retries


def test_retry_after_is_honoured(make_server):
    server = make_server(events_per_day=20)
    server.add_fault("status", status=429, retry_after="3")
    sleeps = Sleeps()
    assert len(list(client_for(server, sleeps=sleeps).export_events(DAY, DAY))) == 20
    assert sleeps == [3.0]


def test_429_without_retry_after_backs_off_exponentially_then_fails(make_server):
    server = make_server()
    server.add_fault("status", status=429, times=10)
    sleeps = Sleeps()
    with pytest.raises(MixpanelRateLimitError, match="after 4 attempts"):
        list(client_for(server, sleeps=sleeps, max_retries=3, backoff_base=1.0).export_events(DAY, DAY))
    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 and 2 <= sleeps[2] <= 4, sleeps
    assert len(server.requests) == 4


def test_retry_after_beyond_the_limit_fails_at_once(make_server):
    server = make_server()
    server.add_fault("status", status=429, retry_after="3600")
    with pytest.raises(MixpanelRateLimitError, match="3600") as info:
        list(client_for(server).export_events(DAY, DAY))
    assert info.value.retry_after == 3600
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_and_succeeds(make_server, status):
    server = make_server(events_per_day=40)
    server.add_fault("status", status=status, times=2)
    assert len(list(client_for(server).export_events(DAY, DAY))) == 40
    assert len(server.requests) == 3


def test_5xx_after_the_budget_is_a_server_error(make_server):
    server = make_server()
    server.add_fault("status", status=503, times=10)
    with pytest.raises(MixpanelServerError, match="503"):
        list(client_for(server, max_retries=2).export_events(DAY, DAY))
    assert len(server.requests) == 3


def test_connection_refused_is_retried_then_a_server_error(make_server):
    server = make_server()
    url = server.url
    server.stop()
    client = client_for(server, base_url=url, max_retries=1)
    with pytest.raises(MixpanelServerError, match="connection failed"):
        list(client.export_events(DAY, DAY))


def test_drop_before_the_first_record_is_retried(make_server):
    server = make_server(events_per_day=500)
    server.add_fault("drop", after_records=0)
    assert len(list(client_for(server).export_events(DAY, DAY))) == 500
    assert len(server.requests) == 2


def test_drop_after_records_raises_and_never_repeats_them(make_server):
    server = make_server(events_per_day=500)
    server.add_fault("drop", after_records=300)
    received = []
    with pytest.raises(MixpanelStreamInterruptedError, match="after 300 records") as info:
        for event in client_for(server).export_events(DAY, DAY):
            received.append(event)
    assert info.value.records_yielded == 300
    assert len(received) == 300
    assert len({e["properties"]["$insert_id"] for e in received}) == 300
    assert len(server.requests) == 1, "a stream that already yielded records must not be retried in place"


def test_truncated_gzip_is_an_interrupted_stream(make_server):
    server = make_server(events_per_day=500)
    server.add_fault("truncated_gzip", after_records=100)
    with pytest.raises(MixpanelStreamInterruptedError, match="truncated"):
        list(client_for(server).export_events(DAY, DAY))


def test_terminated_early_is_never_success(make_server):
    server = make_server(events_per_day=500)
    server.add_fault("terminated_early", after_records=10)
    with pytest.raises(MixpanelStreamInterruptedError, match="terminated early"):
        list(client_for(server).export_events(DAY, DAY))


def test_terminated_early_before_any_record_is_retried(make_server):
    server = make_server(events_per_day=30)
    server.add_fault("terminated_early", after_records=0)
    assert len(list(client_for(server).export_events(DAY, DAY))) == 30


def test_stall_past_the_read_timeout_after_records_is_interrupted(make_server):
    server = make_server(events_per_day=3000)
    server.add_fault("stall", after_records=1000, delay=2.0)
    with pytest.raises(MixpanelStreamInterruptedError, match="timed out"):
        list(client_for(server, read_timeout=0.5).export_events(DAY, DAY))


def test_slow_first_byte_is_retried(make_server):
    server = make_server(events_per_day=30)
    server.add_fault("slow", delay=1.5)
    assert len(list(client_for(server, read_timeout=0.5).export_events(DAY, DAY))) == 30
    assert len(server.requests) == 2


def test_malformed_line_raises_by_default(make_server):
    server = make_server(events_per_day=100)
    server.add_fault("malformed", after_records=5)
    with pytest.raises(MixpanelMalformedRecordError, match="not valid JSON"):
        list(client_for(server).export_events(DAY, DAY))


def test_malformed_line_can_be_skipped(make_server):
    server = make_server(events_per_day=100)
    server.add_fault("malformed", after_records=5, line=b"[1, 2]")
    skipped = []
    events = list(client_for(server).export_events(DAY, DAY, on_malformed=lambda line, err: skipped.append(line)))
    assert len(events) == 100
    assert skipped == [b"[1, 2]"]


# ---------------------------------------------------------------- engage


def test_profiles_are_paged_with_session_id(make_server):
    server = make_server(profiles=2500)
    profiles = list(client_for(server).query_profiles(page_size=1000))
    assert len(profiles) == 2500
    assert len({p["$distinct_id"] for p in profiles}) == 2500
    pages = server.engage_requests()
    assert [r.form.get("page") for r in pages] == [None, "1", "2"]
    assert pages[1].form["session_id"] == pages[2].form["session_id"]
    assert all(r.method == "POST" and r.params["project_id"] == "12345" for r in pages)


def test_exact_multiple_of_the_page_size_ends_on_an_empty_page(make_server):
    server = make_server(profiles=2000)
    assert len(list(client_for(server).query_profiles(page_size=1000))) == 2000
    assert len(server.engage_requests()) == 3


def test_a_large_page_size_is_sent_by_default(make_server):
    server = make_server(profiles=5)
    list(client_for(server).query_profiles())
    assert server.engage_requests()[0].form["page_size"] == "50000", "1,000,000 profiles must take at most 25 pages"


def test_requested_page_size_is_sent(make_server):
    server = make_server(profiles=25)
    assert len(list(client_for(server).query_profiles(page_size=10))) == 25
    assert [r.form["page_size"] for r in server.engage_requests()] == ["10", "10", "10"]


def test_total_is_not_trusted(make_server, samples):
    # Mixpanel's own example says total 1 with 2 results.
    server = make_server(engage_files=[samples / "engage_mixpanel_docs_export_methods.json"])
    profiles = list(client_for(server).query_profiles())
    assert [p["$distinct_id"] for p in profiles] == [1, 2]
    assert len(server.engage_requests()) == 1


def test_pages_without_total_or_page_size(make_server, tmp_path):
    pages = [
        {"page": 0, "page_size": 2, "session_id": "s", "results": [{"$distinct_id": "a"}, {"$distinct_id": "b"}]},
        {"page": 1, "session_id": "s", "results": [{"$distinct_id": "c"}, {"$distinct_id": "d"}]},
        {"page": 2, "session_id": "s", "results": [{"$distinct_id": "e"}]},
    ]
    files = []
    for i, page in enumerate(pages):
        files.append(tmp_path / f"p{i}.json")
        files[-1].write_text(json.dumps(page))
    server = make_server(engage_files=files)
    assert [p["$distinct_id"] for p in client_for(server).query_profiles()] == list("abcde")


def test_missing_session_id_stops_paging(make_server, tmp_path):
    page = tmp_path / "p.json"
    page.write_text(json.dumps({"page": 0, "page_size": 1, "results": [{"$distinct_id": "a"}]}))
    server = make_server(engage_files=[page, page])
    assert len(list(client_for(server).query_profiles())) == 1
    assert len(server.engage_requests()) == 1


# A page as Mixpanel might write it: pretty-printed, odd number forms and escapes, an integer
# beyond 64 bits (which used to fail the whole page: "integer overflow").
BIG_INTEGER_PAGE = (
    b'{\n  "page": 0,\n  "page_size": 1000,\n  "results": [\n'
    b'    {"$distinct_id": 123456789012345678901234567890,\n'
    b'     "$properties": {"$last_seen": "2024-01-02T03:04:05", "n": 1.50, "e": 1E+2, "z": -0.0,\n'
    b'                     "t": "caf\\u00e9 \\/ \\"q\\"", "big": -98765432109876543210987654321,\n'
    b'                     "nested": {"$last_seen": "inner", "l": [ 1 , 2.0 ]}}},\n'
    b'    {"$distinct_id": "u2", "$properties": {"s": "\\ud83d"}}\n'
    b'  ],\n  "session_id": "s-1",\n  "status": "ok",\n  "total": 2\n}\n'
)
BIG_INTEGER_RESULTS = [
    b'{"$distinct_id":123456789012345678901234567890,"$properties":{"$last_seen":"2024-01-02T03:04:05",'
    b'"n":1.50,"e":1E+2,"z":-0.0,"t":"caf\\u00e9 \\/ \\"q\\"","big":-98765432109876543210987654321,'
    b'"nested":{"$last_seen":"inner","l":[1,2.0]}}}',
    b'{"$distinct_id":"u2","$properties":{"s":"\\ud83d"}}',
]


def test_an_integer_beyond_64_bits_no_longer_fails_the_page(make_server, tmp_path):
    page = tmp_path / "page.json"
    page.write_bytes(BIG_INTEGER_PAGE)
    server = make_server(engage_files=[page])
    client = client_for(server)
    assert list(client.query_profile_lines()) == BIG_INTEGER_RESULTS
    profiles = list(client.query_profiles())
    assert profiles[0]["$distinct_id"] == 123456789012345678901234567890
    assert profiles[0]["$properties"]["big"] == -98765432109876543210987654321
    assert profiles[0]["$properties"]["t"] == 'café / "q"'
    assert profiles[1]["$properties"]["s"] == "\ud83d"
    assert len(server.engage_requests()) == 2, "one request per stream: 2 of the 1000 the page said is short"


def test_profile_lines_check_their_arguments_at_once(make_server):
    server = make_server()
    with pytest.raises(MixpanelConfigError, match="page_size"):
        client_for(server).query_profile_lines(page_size=0)
    with pytest.raises(MixpanelConfigError, match="cohort_id"):
        client_for(server).query_profiles(include_all_users=True)
    assert server.engage_requests() == []


def test_a_result_that_is_not_an_object_is_malformed(make_server, tmp_path):
    page = tmp_path / "page.json"
    page.write_bytes(b'{"page":0,"results":[{"$distinct_id":"a"},[1]],"session_id":"s"}')
    server = make_server(engage_files=[page])
    lines = client_for(server).query_profile_lines()
    assert next(lines) == b'{"$distinct_id":"a"}'
    with pytest.raises(MixpanelMalformedRecordError, match="not an object"):
        next(lines)


def test_profile_filters_are_sent(make_server):
    server = make_server(profiles=10)
    list(
        client_for(server).query_profiles(
            where='properties["plan"]=="pro"',
            output_properties=["$email"],
            cohort_id=1000,
            include_all_users=False,
            distinct_ids=["user-1", "user-2"],
            data_group_id="company_id",
        )
    )
    form = server.engage_requests()[0].form
    assert form["where"] == 'properties["plan"]=="pro"'
    assert json.loads(form["output_properties"]) == ["$email"]
    assert json.loads(form["filter_by_cohort"]) == {"id": 1000}
    assert form["include_all_users"] == "false"
    assert json.loads(form["distinct_ids"]) == ["user-1", "user-2"]
    assert form["data_group_id"] == "company_id"


def test_engage_page_is_retried_whole(make_server):
    server = make_server(profiles=1500)
    server.add_fault("status", endpoint="engage", status=502)
    assert len(list(client_for(server).query_profiles(page_size=1000))) == 1500


def test_engage_auth_error(make_server):
    server = make_server()
    with pytest.raises(MixpanelAuthError):
        list(client_for(server, secret="bad").query_profiles())


# ---------------------------------------------------------------- auth modes and secrets


def test_legacy_project_secret_sends_no_project_id(make_server):
    server = make_server(project_secret="legacy-secret", events_per_day=10)
    client = MixpanelClient(username=None, secret="legacy-secret", project_id=None, base_url=server.url)
    assert len(list(client.export_events(DAY, DAY))) == 10
    assert "project_id" not in server.export_requests()[0].params
    assert server.export_requests()[0].user == "legacy-secret"


def test_repr_and_errors_never_show_the_secret(make_server):
    server = make_server()
    client = client_for(server, secret="s3cr3t-value")
    assert "s3cr3t-value" not in repr(client)
    with pytest.raises(MixpanelAuthError) as info:
        list(client.export_events(DAY, DAY))
    assert "s3cr3t-value" not in str(info.value) and "s3cr3t-value" not in repr(info.value)


# ---------------------------------------------------------------- regressions (issue 9)


def _engage_files(tmp_path, pages):
    files = []
    for i, page in enumerate(pages):
        files.append(tmp_path / f"page{i}.json")
        files[-1].write_text(json.dumps(page))
    return files


def test_short_pages_without_a_reported_page_size_do_not_end_paging(make_server, tmp_path):
    # The server ignores the requested page_size (3), serves 2 per page and never reports it.
    pages = [
        {"page": 0, "session_id": "s", "results": [{"$distinct_id": "a"}, {"$distinct_id": "b"}]},
        {"page": 1, "session_id": "s", "results": [{"$distinct_id": "c"}, {"$distinct_id": "d"}]},
        {"page": 2, "session_id": "s", "results": [{"$distinct_id": "e"}]},
    ]
    server = make_server(engage_files=_engage_files(tmp_path, pages))
    ids = [p["$distinct_id"] for p in client_for(server).query_profiles(page_size=3)]
    assert ids == list("abcde"), "paging stopped on a short page the server never called short"


def test_a_short_page_ends_paging_when_the_server_reported_the_page_size(make_server, tmp_path):
    pages = [
        {"page": 0, "page_size": 2, "session_id": "s", "results": [{"$distinct_id": "a"}, {"$distinct_id": "b"}]},
        {"page": 1, "session_id": "s", "results": [{"$distinct_id": "c"}]},
        {"page": 2, "session_id": "s", "results": [{"$distinct_id": "never"}]},
    ]
    server = make_server(engage_files=_engage_files(tmp_path, pages))
    assert [p["$distinct_id"] for p in client_for(server).query_profiles()] == list("abc")
    assert len(server.engage_requests()) == 2


def test_unescaped_control_characters_inside_strings_are_read(make_server, tmp_path):
    export = tmp_path / "export.jsonl"
    export.write_bytes(b'{"event":"a\x01b","properties":{"time":1709251200,"note":"tab\there\x1f"}}\n')
    server = make_server(export_file=export)
    (event,) = client_for(server).export_events(DAY, DAY)
    assert event["event"] == "a\x01b" and event["properties"]["note"] == "tab\there\x1f"


def test_datetime_arguments_send_their_date(make_server):
    server = make_server(events_per_day=3)
    list(client_for(server).export_lines(datetime(2024, 3, 1, 12, 0), datetime(2024, 3, 2, 23, 59)))
    params = server.export_requests()[0].params
    assert (params["from_date"], params["to_date"]) == ("2024-03-01", "2024-03-02")


HOURLY_429 = (
    "Query rate limit exceeded for project_id: 12345. 1/5 queries running concurrently and 61/60 queries "
    "running in the last hour."
)


def test_hourly_quota_429_waits_for_the_quota_without_spending_retries(make_server):
    server = make_server(events_per_day=5)
    server.add_fault("status", status=429, body=HOURLY_429, times=8)
    sleeps = Sleeps()
    client = client_for(server, sleeps=sleeps, max_retries=2, quota_poll_interval=30, max_retry_after=300)
    assert len(list(client.export_lines(DAY, DAY))) == 5
    assert sleeps == [30] * 8, "each hourly-quota 429 waits one poll interval and spends no retry"


def test_hourly_quota_wait_beyond_max_retry_after_fails_fast(make_server):
    server = make_server(events_per_day=5)
    server.add_fault("status", status=429, body=HOURLY_429, times=50)
    sleeps = Sleeps()
    client = client_for(server, sleeps=sleeps, quota_poll_interval=60, max_retry_after=120)
    with pytest.raises(MixpanelRateLimitError, match="hourly quota") as info:
        list(client.export_lines(DAY, DAY))
    assert sleeps == [60, 60]
    assert "retry_delay" in str(info.value)


def test_per_second_429_spends_the_retry_budget(make_server):
    server = make_server(events_per_day=5)
    server.add_fault("status", status=429, body="Too many requests per second", times=10)
    sleeps = Sleeps()
    with pytest.raises(MixpanelRateLimitError, match="Failed after 3 attempts"):
        list(client_for(server, sleeps=sleeps, max_retries=2).export_lines(DAY, DAY))
    assert len(sleeps) == 2


def test_export_requests_are_paced_to_three_per_second(make_server):
    from airflow_provider_mixpanel.pacing import EXPORT_LIMITS, RequestPacer

    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = RequestPacer(EXPORT_LIMITS, clock=lambda: now[0], sleep=sleep)
    for _ in range(7):
        pacer.acquire()
        pacer.release()
    assert now[0] >= 2.0, "7 request starts fit in less than two seconds: more than 3/s"
    assert len(waits) == 2, "three starts per second may go at once; the 4th and 7th wait"


# ---------------------------------------------------------------- Mixpanel's limits (issue 10)


def test_an_engage_page_broken_mid_body_resumes_after_the_profiles_already_yielded(make_server):
    server = make_server(profiles=2500)
    profiles = client_for(server).query_profiles(page_size=1000)
    ids = [next(profiles)["$distinct_id"] for _ in range(1000)]  # page 0, whole: the session is named
    server.add_fault("drop", endpoint="engage", after_records=300)  # page 1 breaks after 300 profiles
    ids += [p["$distinct_id"] for p in profiles]
    assert ids == [f"user-{i}" for i in range(2500)], "a profile was lost or repeated"
    pages = server.engage_requests()
    assert [(r.form.get("page"), r.fault) for r in pages] == [(None, None), ("1", "drop"), ("1", None), ("2", None)]
    assert pages[1].form["session_id"] == pages[2].form["session_id"], "page 1 was not asked again in its session"


def test_page_zero_broken_after_profiles_were_yielded_is_an_interrupted_stream(make_server):
    # Before Mixpanel names the session, asking again opens a new one whose order nothing promises.
    server = make_server(profiles=2500)
    server.add_fault("drop", endpoint="engage", after_records=700)
    profiles = client_for(server).query_profiles(page_size=1000)
    seen = []
    with pytest.raises(MixpanelStreamInterruptedError, match="broke after 700 profiles") as info:
        for profile in profiles:
            seen.append(profile)
    assert len(seen) == 700 and info.value.records_yielded == 700
    assert len(server.engage_requests()) == 1


def test_closing_a_profile_stream_frees_its_pacer_slot_at_once(make_server):
    from airflow_provider_mixpanel.pacing import QUERY_LIMITS

    server = make_server(profiles=50)
    client = client_for(server, pacing=True)
    for _ in range(QUERY_LIMITS.concurrent + 2):  # more than the slots there are
        profiles = client.query_profiles(page_size=10)
        next(profiles)
        profiles.close()
    assert len(server.engage_requests()) == QUERY_LIMITS.concurrent + 2


def test_hourly_quota_is_waited_out_under_a_sped_up_clock(make_server):
    from airflow_provider_mixpanel.testing import Quotas, SimClock

    # One simulated hour passes in 2 real seconds; 4 exports an hour are allowed.
    server = make_server(events_per_day=3, quotas=Quotas(export_per_hour=4), clock=SimClock(speed=1800))
    import time

    client = client_for(server, sleeps=time.sleep, max_retry_after=30)
    for _ in range(6):
        assert len(list(client.export_lines(DAY, DAY))) == 3
    stats = server.quota_stats()["export"]
    assert stats.admitted == 6 and stats.refused_hourly >= 1


def test_client_pacing_keeps_the_per_second_limit(make_server):
    from airflow_provider_mixpanel.testing import Quotas

    server = make_server(events_per_day=1, quotas=Quotas())
    client = client_for(server, pacing=True, max_retries=0)
    for _ in range(7):
        assert len(list(client.export_lines(DAY, DAY))) == 1
    assert server.quota_stats()["export"].refused_per_second == 0, "the client sent more than 3 per second"


# ---------------------------------------------------------------- cancel from another thread


def test_cancel_ends_a_blocked_read_at_once_and_refuses_new_requests(make_server):
    import threading
    import time

    from airflow_provider_mixpanel.errors import MixpanelCancelledError

    server = make_server(events_per_day=2000)
    server.add_fault("stall", after_records=1000, delay=30)
    client = client_for(server, read_timeout=60)
    lines = client.export_lines(DAY, DAY)
    next(lines)  # the stream is open and will block in a read after about 1000 records
    timer = threading.Timer(0.5, client.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(MixpanelCancelledError):
        for _ in lines:
            pass
    assert time.monotonic() - started < 5, "the blocked read was not woken by cancel()"
    with pytest.raises(MixpanelCancelledError):
        next(client.export_lines(DAY, DAY))
    assert len(server.export_requests()) == 1, "a request was sent after cancel()"
