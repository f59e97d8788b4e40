"""The ``cohorts`` and ``cohort_members`` kinds against the test server: the hook, both operators
(JSONL, and Parquet read back by DuckDB), the command, quota refusals, auth errors and regions."""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime

import duckdb
import pytest

from airflow_provider_mixpanel.cli import main
from airflow_provider_mixpanel.errors import (
    MixpanelAuthError,
    MixpanelConfigError,
    MixpanelQueryError,
    MixpanelRateLimitError,
    MixpanelServerError,
)
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.kinds import get_kind
from airflow_provider_mixpanel.testing import Quotas
from tests.integration.transfers.helpers import Destination

pytestmark = pytest.mark.integration

RUN = {"data_interval_start": datetime(2024, 3, 1, tzinfo=UTC), "data_interval_end": datetime(2024, 3, 2, tzinfo=UTC)}


def normalized_cohort(cohort: dict) -> dict:
    return {
        "cohort_id": cohort["id"],
        "name": cohort["name"],
        "description": cohort["description"],
        "count": cohort["count"],
        "created": cohort["created"],
        "project_id": cohort["project_id"],
        "is_visible": bool(cohort["is_visible"]),
    }


@pytest.fixture(params=["s3", "gcs"])
def destination(request) -> Destination:
    return Destination(request.param, request.getfixturevalue(request.param))


# ---------------------------------------------------------------- the hook


def test_cohorts_raw_are_the_list_as_sent_and_normalized_name_the_id(mixpanel):
    server = mixpanel(cohorts=5, cohort_size=10, profiles=50)
    hook = MixpanelHook()
    assert list(hook.stream("cohorts", raw=True)) == server.cohorts()
    assert list(hook.stream("cohorts")) == [normalized_cohort(c) for c in server.cohorts()]
    assert [(r.method, r.path) for r in server.requests] == [("POST", "/api/query/cohorts/list")] * 2


def test_cohorts_jsonl_keeps_the_text_byte_for_byte(mixpanel):
    mixpanel(cohorts=3)
    lines = list(MixpanelHook().stream_jsonl("cohorts"))
    assert "新規ユーザー".encode() in b"".join(lines), "non-ASCII names as Mixpanel sent them"
    assert all(line.endswith(b"\n") for line in lines)


def test_cohort_members_of_every_cohort_carry_their_cohort(mixpanel, caplog):
    server = mixpanel(cohorts=3, cohort_size=25, profiles=60)
    caplog.set_level(logging.INFO, logger="airflow_provider_mixpanel")
    members = list(MixpanelHook().stream("cohort_members", output_properties=["$email"], page_size=10))
    expected = [(c, i) for c in (1000, 1001, 1002) for i in server.cohort_member_ids(c)]
    assert [(m["cohort_id"], m["distinct_id"]) for m in members] == expected
    assert all(set(m["properties"]) <= {"$email"} for m in members), "only the properties asked for"
    forms = [r.form for r in server.engage_requests()]
    assert {json.loads(f["filter_by_cohort"])["id"] for f in forms} == {1000, 1001, 1002}
    assert all(f["output_properties"] == '["$email"]' for f in forms)
    plan = [r.getMessage() for r in caplog.records if "Engage session" in r.getMessage()]
    assert plan and "3 cohort(s) = 3 Engage session(s)" in plan[0], "the plan is logged before the sessions"


def test_cohort_members_of_chosen_cohorts_skip_the_list(mixpanel):
    server = mixpanel(cohorts=4, cohort_size=5, profiles=60)
    raw = list(MixpanelHook().stream("cohort_members", cohort_ids=["1003"], raw=True))
    assert [m["$distinct_id"] for m in raw] == server.cohort_member_ids(1003)
    assert all(list(m)[:2] == ["cohort_id", "$distinct_id"] and m["cohort_id"] == 1003 for m in raw)
    assert [r.path for r in server.requests] == ["/api/query/engage"], "no cohort list when the ids are given"


def test_a_snapshot_takes_no_days(mixpanel):
    mixpanel()
    with pytest.raises(MixpanelConfigError, match=r"snapshot .* drop from_date and to_date"):
        MixpanelHook().stream("cohorts", from_date="2024-03-01", to_date="2024-03-01")


# ---------------------------------------------------------------- errors, quota, regions


def test_cohort_members_quota_refusal_says_to_spend_fewer(mixpanel):
    mixpanel(cohorts=3, cohort_size=5, profiles=20, quotas=Quotas(query_per_hour=2, retry_after="never"))
    hook = MixpanelHook(max_retries=0, max_retry_after=1.0)  # no waiting for the hourly quota
    with pytest.raises(MixpanelRateLimitError, match="fewer cohorts"):
        list(hook.stream("cohort_members"))


def test_cohorts_auth_error_is_not_retried(mixpanel, monkeypatch):
    server = mixpanel(cohorts=2)
    conn = json.loads(server.connection_json())
    conn["password"] = "wrong"
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", json.dumps(conn))
    with pytest.raises(MixpanelAuthError):
        list(MixpanelHook().stream("cohorts"))
    assert len(server.requests) == 1


@pytest.mark.parametrize("stream", ["cohorts", "cohort_members"])
@pytest.mark.parametrize(
    ("status", "error", "attempts"),
    [
        (400, MixpanelQueryError, 1),
        (402, MixpanelAuthError, 1),
        (403, MixpanelAuthError, 1),
        (404, MixpanelQueryError, 1),
        (503, MixpanelServerError, 3),
    ],
)
def test_error_answers_raise_what_to_do(mixpanel, stream, status, error, attempts):
    server = mixpanel(cohorts=1, cohort_size=3, profiles=10)
    endpoint = "cohorts" if stream == "cohorts" else "engage"
    server.add_fault("status", endpoint=endpoint, status=status, times=10)
    hook = MixpanelHook(max_retries=2, backoff_base=0.01)
    with pytest.raises(error):
        list(hook.stream(stream, cohort_ids=[1000]) if stream == "cohort_members" else hook.stream(stream))
    assert sum(1 for r in server.requests if endpoint in r.path) == attempts, "only 5xx are retried"


def test_cohorts_work_with_a_legacy_project_secret(make_server, monkeypatch):
    server = make_server(project_secret="legacy", cohorts=2)
    conn = {"conn_type": "mixpanel", "password": "legacy", "extra": {"host": server.url}}
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", json.dumps(conn))
    with pytest.warns(Warning, match="legacy project secret"):
        cohorts = list(MixpanelHook().stream("cohorts"))
    assert [c["cohort_id"] for c in cohorts] == [1000, 1001]
    assert "project_id" not in server.requests[-1].params, "the secret names the project"


@pytest.mark.parametrize(("region", "host"), [("us", "https://mixpanel.com"), ("eu", "https://eu.mixpanel.com")])
def test_cohorts_go_to_the_regions_query_host(region, host):
    from airflow_provider_mixpanel.client import MixpanelClient

    client = MixpanelClient(username="u", secret="s", project_id=1, region=region, pacing=False)
    assert client.hosts[get_kind("cohort_members").quota] == client.hosts[get_kind("cohorts").quota] == host


# ---------------------------------------------------------------- operators and the command


def test_operators_write_cohort_members_under_the_run_date(mixpanel, destination):
    server = mixpanel(cohorts=2, cohort_size=30, profiles=60)
    op = destination.operator("cohort_members/{window}/part-{part}.jsonl.gz", stream="cohort_members")
    manifest = op.execute(RUN)
    (name,) = destination.objects()
    assert name == "cohort_members/2024-03-01/part-00000.jsonl.gz"
    records = [json.loads(line) for line in gzip.decompress(destination.objects()[name]).splitlines()]
    assert [(r["cohort_id"], r["distinct_id"]) for r in records] == [
        (c, i) for c in (1000, 1001) for i in server.cohort_member_ids(c)
    ]
    assert manifest["records"] == 60 and manifest["stream"] == "cohort_members"


@pytest.mark.parametrize("stream", ["cohorts", "cohort_members"])
def test_parquet_reads_back_in_duckdb(mixpanel, destination, tmp_path, stream):
    server = mixpanel(cohorts=3, cohort_size=4, profiles=20)
    op = destination.operator(f"{stream}/part-{{part}}.parquet", stream=stream, output_format="parquet")
    op.execute(RUN)
    ((_name, data),) = destination.objects().items()
    path = tmp_path / "part.parquet"
    path.write_bytes(data)
    rows = duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    if stream == "cohorts":
        assert rows == [tuple(normalized_cohort(c).values()) for c in server.cohorts()]
    else:
        assert [row[:2] for row in rows] == [(c, i) for c in (1000, 1001, 1002) for i in server.cohort_member_ids(c)]


def test_the_command_streams_cohorts(mixpanel, capfd):
    server = mixpanel(cohorts=3)
    assert main(["cohorts", "-q"]) == 0
    out, err = capfd.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == [normalized_cohort(c) for c in server.cohorts()]
    assert err == ""


def test_the_command_streams_members_of_chosen_cohorts(mixpanel, capfd):
    server = mixpanel(cohorts=3, cohort_size=7, profiles=20)
    assert main(["cohort_members", "--cohort-id", "1001", "--cohort-id", "1002", "--raw", "-q"]) == 0
    out, _ = capfd.readouterr()
    ids = [(r["cohort_id"], r["$distinct_id"]) for r in map(json.loads, out.splitlines())]
    assert ids == [(c, i) for c in (1001, 1002) for i in server.cohort_member_ids(c)]
