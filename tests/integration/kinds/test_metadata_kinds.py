"""The ``annotations``, ``lexicon`` and ``funnels`` kinds against the test server: exact records raw
and normalized through the hook, both operators (JSONL, and Parquet read back by DuckDB), the
command, quota refusals, auth errors and regions."""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, date, datetime

import duckdb
import pytest

from airflow_provider_mixpanel.cli import main
from airflow_provider_mixpanel.errors import (
    MixpanelAuthError,
    MixpanelConfigError,
    MixpanelQueryError,
    MixpanelRateLimitError,
)
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.kinds import get_kind
from airflow_provider_mixpanel.testing import Quotas, SimClock
from tests.integration.transfers.helpers import Destination

pytestmark = pytest.mark.integration

MARCH_1 = date(2024, 3, 1)
MARCH_2 = date(2024, 3, 2)
RUN = {"data_interval_start": datetime(2024, 3, 1, tzinfo=UTC), "data_interval_end": datetime(2024, 3, 2, tzinfo=UTC)}
KINDS = ("annotations", "lexicon", "funnels")


def normalized_annotation(entry: dict) -> dict:
    return {
        "annotation_id": entry["id"],
        "date": entry["date"],
        "description": entry["description"],
        "user": entry["user"],
        "tags": entry["tags"],
    }


def normalized_schema(entry: dict) -> dict:
    schema = entry["schemaJson"]
    return {
        "entity_type": entry["entityType"],
        "name": entry["name"],
        "description": schema.get("description"),
        "metadata": schema.get("metadata"),
        "schema_json": schema,
    }


def funnel_days(server, first: date, last: date, *, raw: bool) -> list[dict]:
    """What the funnels kind yields for ``[first, last]``: each saved funnel, each day."""
    records = []
    for funnel in server.funnels():
        data = server.funnel_data(funnel["funnel_id"], first, last)["data"]
        for day, result in data.items():
            head = (
                {"funnel_id": funnel["funnel_id"]}
                if raw
                else {"funnel_id": funnel["funnel_id"], "name": funnel["name"]}
            )
            records.append({**head, "date": day, **result})
    return records


@pytest.fixture(params=["s3", "gcs"])
def destination(request) -> Destination:
    return Destination(request.param, request.getfixturevalue(request.param))


# ---------------------------------------------------------------- the hook: exact records


def test_annotations_of_the_days_raw_and_normalized(mixpanel):
    server = mixpanel(annotations_per_day=2)
    hook = MixpanelHook()
    expected = server.annotations(MARCH_1, date(2024, 3, 4))
    assert list(hook.stream("annotations", raw=True, from_date="2024-03-01", to_date="2024-03-04")) == expected
    normalized = list(hook.stream("annotations", from_date=MARCH_1, to_date=date(2024, 3, 4)))
    assert normalized == [normalized_annotation(a) for a in expected]
    (first, _) = server.requests_to("annotations")
    assert first.path == "/api/app/projects/12345/annotations"
    assert first.params == {"fromDate": "2024-03-01", "toDate": "2024-03-04"}, (
        "the app API names the project in its path"
    )


def test_annotations_jsonl_keeps_the_text_byte_for_byte(mixpanel):
    mixpanel(annotations_per_day=3)
    lines = list(MixpanelHook().stream_jsonl("annotations", from_date=MARCH_1, to_date=MARCH_2))
    assert "Łukasz".encode() in b"".join(lines)
    assert all(next(iter(json.loads(line))) == "annotation_id" for line in lines)


def test_lexicon_raw_entries_and_normalized_schemas(mixpanel):
    server = mixpanel(lexicon_events=3)
    hook = MixpanelHook()
    assert list(hook.stream("lexicon", raw=True)) == server.lexicon_schemas()
    normalized = list(hook.stream("lexicon"))
    assert normalized == [normalized_schema(e) for e in server.lexicon_schemas()]
    assert normalized[-1]["entity_type"] == "profile" and normalized[-1]["name"] == "$user"
    assert [r.path for r in server.requests] == ["/api/app/projects/12345/schemas"] * 2


def test_funnels_per_funnel_and_day_raw_and_normalized(mixpanel, caplog):
    server = mixpanel(funnels=3)
    caplog.set_level(logging.INFO, logger="airflow_provider_mixpanel")
    hook = MixpanelHook()
    raw = list(hook.stream("funnels", raw=True, from_date=MARCH_1, to_date=MARCH_2))
    assert raw == funnel_days(server, MARCH_1, MARCH_2, raw=True)
    assert all(list(r)[:2] == ["funnel_id", "date"] for r in raw)
    normalized = list(hook.stream("funnels", from_date=MARCH_1, to_date=MARCH_2))
    assert normalized == funnel_days(server, MARCH_1, MARCH_2, raw=False)
    queries = server.requests_to("funnels")
    assert {q.params["unit"] for q in queries} == {"day"}, "a result per day, asked for in so many words"
    assert [(q.params["funnel_id"], q.params["from_date"], q.params["to_date"]) for q in queries[:3]] == [
        (str(f), "2024-03-01", "2024-03-02") for f in (7500, 7501, 7502)
    ], "one request per funnel for the whole window"
    plan = [r.getMessage() for r in caplog.records if "saved funnel(s)" in r.getMessage()]
    assert plan and "3 saved funnel(s) = 4 Query API request(s)" in plan[0]


def test_funnels_of_chosen_ids_only(mixpanel):
    server = mixpanel(funnels=4)
    records = list(MixpanelHook().stream("funnels", funnel_ids=["7502"], from_date=MARCH_1, to_date=MARCH_1))
    assert [(r["funnel_id"], r["date"]) for r in records] == [(7502, "2024-03-01")]
    assert [q.params["funnel_id"] for q in server.requests_to("funnels")] == ["7502"]


def test_an_unknown_funnel_id_says_which_ids_exist(mixpanel):
    mixpanel(funnels=2)
    with pytest.raises(MixpanelQueryError, match=r"funnel_ids \[9\] are not among .* \(7500, 7501\)"):
        list(MixpanelHook().stream("funnels", funnel_ids=[9], from_date=MARCH_1, to_date=MARCH_1))


# ---------------------------------------------------------------- errors, quota, regions


def test_the_lexicon_client_keeps_to_5_requests_a_minute(mixpanel):
    clock = SimClock(datetime(2024, 3, 2, 12, tzinfo=UTC), speed=60)  # a simulated minute a real second
    server = mixpanel(quotas=True, clock=clock)
    hook = MixpanelHook()
    for _ in range(6):
        assert len(list(hook.stream("lexicon"))) == 6
    assert server.quota_stats()["lexicon"].refused == 0, "the client's pacing kept within Mixpanel's limit"


def test_a_lexicon_429_outlasting_the_retries_says_to_wait_a_minute(mixpanel):
    mixpanel(quotas=Quotas(lexicon_per_minute=1, retry_after="never"))
    hook = MixpanelHook(max_retries=0)
    list(hook.stream("lexicon"))
    with pytest.raises(MixpanelRateLimitError, match="5 requests a minute"):
        list(hook.stream("lexicon"))


def test_funnels_quota_refusal_says_to_spend_fewer(mixpanel):
    mixpanel(funnels=3, quotas=Quotas(query_per_hour=2))  # the 429 says to wait most of an hour
    with pytest.raises(MixpanelRateLimitError, match="fewer cohorts or funnels"):
        list(MixpanelHook(max_retries=0).stream("funnels", from_date=MARCH_1, to_date=MARCH_1))


@pytest.mark.parametrize("kind", KINDS)
def test_auth_errors_are_not_retried(mixpanel, monkeypatch, kind):
    server = mixpanel()
    conn = json.loads(server.connection_json())
    conn["password"] = "wrong"
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", json.dumps(conn))
    days = {} if kind == "lexicon" else {"from_date": MARCH_1, "to_date": MARCH_1}
    with pytest.raises(MixpanelAuthError):
        list(MixpanelHook().stream(kind, **days))
    assert len(server.requests) == 1


@pytest.mark.parametrize("kind", ["annotations", "lexicon"])
def test_the_app_api_with_a_project_secret_is_refused_before_any_request(mixpanel, monkeypatch, kind):
    server = mixpanel(project_secret="legacy")
    extra = {"host": server.url, "project_id": server.config.project_id}  # the App API names the project in its path
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIXPANEL_DEFAULT", json.dumps({"conn_type": "mixpanel", "password": "legacy", "extra": extra})
    )
    days = {} if kind == "lexicon" else {"from_date": MARCH_1, "to_date": MARCH_1}
    with pytest.warns(DeprecationWarning), pytest.raises(MixpanelConfigError, match="accepts only a service account"):
        list(MixpanelHook().stream(kind, **days))
    assert server.requests == [], "asked the App API with a project secret it refuses"


@pytest.mark.parametrize("kind", KINDS)
def test_a_project_in_another_region_says_so(mixpanel, monkeypatch, kind):
    server = mixpanel(foreign_project_ids=(777,))
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", server.connection_json(project_id=777))
    days = {} if kind == "lexicon" else {"from_date": MARCH_1, "to_date": MARCH_1}
    with pytest.raises(MixpanelAuthError, match="region"):
        list(MixpanelHook().stream(kind, **days))


@pytest.mark.parametrize(
    ("region", "host"),
    [("us", "https://mixpanel.com"), ("eu", "https://eu.mixpanel.com"), ("in", "https://in.mixpanel.com")],
)
def test_every_kind_goes_to_the_regions_query_host(region, host):
    from airflow_provider_mixpanel.client import MixpanelClient

    client = MixpanelClient(username="u", secret="s", project_id=1, region=region, pacing=False)
    assert {client.hosts[get_kind(kind).quota] for kind in KINDS} == {host}


# ---------------------------------------------------------------- operators and the command


def test_operators_write_annotations_per_day(mixpanel, destination):
    server = mixpanel(annotations_per_day=2)
    op = destination.operator(
        "annotations/{window}/part-{part}.jsonl.gz",
        stream="annotations",
        from_date="2024-03-01",
        to_date="2024-03-02",
        window_days=1,
    )
    manifest = op.execute(RUN)
    objects = destination.objects()
    assert sorted(objects) == [
        "annotations/2024-03-01/part-00000.jsonl.gz",
        "annotations/2024-03-02/part-00000.jsonl.gz",
    ]
    day = [
        json.loads(line) for line in gzip.decompress(objects["annotations/2024-03-02/part-00000.jsonl.gz"]).splitlines()
    ]
    assert day == [normalized_annotation(a) for a in server.annotations(MARCH_2, MARCH_2)]
    assert manifest["stream"] == "annotations"


def test_operators_write_funnels_per_day(mixpanel, destination):
    server = mixpanel(funnels=2)
    op = destination.operator("funnels/{window}/part-{part}.jsonl.gz", stream="funnels")
    op.execute(RUN)
    ((name, data),) = destination.objects().items()
    assert name == "funnels/2024-03-01/part-00000.jsonl.gz"
    assert [json.loads(line) for line in gzip.decompress(data).splitlines()] == funnel_days(
        server, MARCH_1, MARCH_1, raw=False
    )
    assert len(server.requests_to("funnels")) == 2, "one request per funnel per window"


@pytest.mark.parametrize("stream", KINDS)
def test_parquet_reads_back_in_duckdb(mixpanel, destination, tmp_path, stream):
    server = mixpanel(funnels=2, annotations_per_day=2)
    op = destination.operator(f"{stream}/{{window}}/part-{{part}}.parquet", stream=stream, output_format="parquet")
    op.execute(RUN)
    ((name, data),) = destination.objects().items()
    assert name == f"{stream}/2024-03-01/part-00000.parquet"
    path = tmp_path / "part.parquet"
    path.write_bytes(data)
    db = duckdb.connect()
    columns = [c.name for c in get_kind(stream).columns(raw=False)]
    rows = db.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    if stream == "annotations":
        expected = [normalized_annotation(a) for a in server.annotations(MARCH_1, MARCH_1)]
    elif stream == "lexicon":
        expected = [normalized_schema(e) for e in server.lexicon_schemas()]
    else:
        expected = funnel_days(server, MARCH_1, MARCH_1, raw=False)
    as_json = {c.name for c in get_kind(stream).columns(raw=False) if c.kind == "json"}
    assert [
        {c: (json.loads(v) if c in as_json and v is not None else v) for c, v in zip(columns, row, strict=True)}
        for row in rows
    ] == expected


def test_operators_write_the_lexicon_under_the_run_date(mixpanel, destination):
    server = mixpanel()
    op = destination.operator(
        "lexicon/{window}/part-{part}.jsonl.gz", stream="lexicon", output_format="jsonl", raw=True
    )
    manifest = op.execute(RUN)
    ((name, data),) = destination.objects().items()
    assert name == "lexicon/2024-03-01/part-00000.jsonl.gz"
    assert [json.loads(line) for line in gzip.decompress(data).splitlines()] == server.lexicon_schemas()
    assert manifest["records"] == len(server.lexicon_schemas())


def test_the_command_streams_annotations(mixpanel, capfd):
    server = mixpanel(annotations_per_day=1)
    assert main(["annotations", "--from", "2024-03-01", "--to", "2024-03-05", "-q"]) == 0
    out, err = capfd.readouterr()
    expected = server.annotations(MARCH_1, date(2024, 3, 5))
    assert [json.loads(line) for line in out.splitlines()] == [normalized_annotation(a) for a in expected]
    assert err == ""


def test_the_command_streams_the_lexicon_raw(mixpanel, capfd):
    server = mixpanel()
    assert main(["lexicon", "--raw", "-q"]) == 0
    out, _ = capfd.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == server.lexicon_schemas()


def test_the_command_streams_chosen_funnels(mixpanel, capfd):
    server = mixpanel(funnels=3)
    assert main(["funnels", "--from", "2024-03-01", "--to", "2024-03-01", "--funnel-id", "7501", "-q"]) == 0
    out, _ = capfd.readouterr()
    expected = [r for r in funnel_days(server, MARCH_1, MARCH_1, raw=False) if r["funnel_id"] == 7501]
    assert [json.loads(line) for line in out.splitlines()] == expected
