"""Identity mappings (Simplified ID Merge) written beside the events, against the Mixpanel test
server's visitors who identify later, moto's S3 server and fake-gcs-server; and the resolution
rule of docs/sql, run on DuckDB over what the operators wrote, gives the server's user count."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.testing import IdentityMerge, SimClock
from tests.integration.transfers.helpers import Destination, jsonl

pytestmark = pytest.mark.integration

SQL = Path(__file__).resolve().parents[3] / "docs" / "sql"
START = date(2024, 3, 1)
EVENTS = "ev/{window}/part-{part}.jsonl.gz"
IDENTITY = "id/{window}/part-{part}.jsonl.gz"
# A daily run's time: just after the day it exports ended (and its last events were processed).
RUN_AT = timedelta(days=1, seconds=10)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture(params=["s3", "gcs"])
def destination(request) -> Destination:
    return Destination(request.param, request.getfixturevalue(request.param))


@pytest.fixture
def s3_destination(s3) -> Destination:
    return Destination("s3", s3)


def run(destination: Destination, day: date, *, identity: str | None = IDENTITY, **kwargs):
    """The daily run exporting ``day`` (and its look-back days)."""
    argument = "identity_key" if destination.kind == "s3" else "identity_object_name"
    name = kwargs.pop("name", EVENTS)
    options = {"from_date": str(day), "to_date": str(day), argument: identity, **kwargs}
    return destination.operator(name, **options).execute({})


def test_each_window_writes_its_mappings_beside_its_events_with_a_manifest(mixpanel, destination):
    clock = SimClock.manual(midnight(START + timedelta(days=9)) + RUN_AT)
    server = mixpanel(events_per_day=600, identity=IdentityMerge(start=START), clock=clock)
    day = START + timedelta(days=9)
    result = run(destination, day, lookback_days=1)
    objects = destination.objects()
    days = [str(day - timedelta(days=1)), str(day)]
    assert sorted(name for name in objects if name.startswith("id/")) == [f"id/{d}/part-00000.jsonl.gz" for d in days]
    manifests = destination.manifests()
    assert sorted(manifests) == sorted(f"{kind}/{d}/_manifest.json" for kind in ("ev", "id") for d in days)
    assert {manifests[f"id/{d}/_manifest.json"]["stream"] for d in days} == {"identity"}
    hook = MixpanelHook()
    for d in days:
        written = jsonl(objects[f"id/{d}/part-00000.jsonl.gz"])
        assert written, f"{d}: the simulation logs visitors in every day"
        expected = [dict(m, event_time=m["event_time"].isoformat()) for m in hook.stream_identity_mappings(d, d)]
        assert written == expected, f"{d}: the operator writes what the hook streams"
        assert manifests[f"id/{d}/_manifest.json"]["records"] == len(written)
        assert all(m["distinct_id"].startswith("$device:") and m["resolved_distinct_id"] for m in written)
    identity = result["identity"]
    assert identity["records"] == sum(len(jsonl(objects[f"id/{d}/part-00000.jsonl.gz"])) for d in days)
    assert len(identity["manifests"]) == 2 and len(identity["files"]) == 2
    requests = [r for r in server.export_requests() if r.params["from_date"] in days]
    assert len(requests) == 2 * 2, "one request per window per stream: the mappings cost none (the hook's two)"


def test_events_without_user_ids_write_empty_mappings_and_no_error(mixpanel, s3_destination):
    mixpanel(events_per_day=300)  # the default synthetic events: $device_id, never $user_id
    result = run(s3_destination, START)
    assert jsonl(s3_destination.objects()["id/2024-03-01/part-00000.jsonl.gz"]) == []
    assert result["identity"]["records"] == 0 and result["records"] == 300


def test_a_project_whose_visitors_never_identify_has_no_mappings(mixpanel, s3_destination):
    clock = SimClock.manual(midnight(START + timedelta(days=3)) + RUN_AT)
    mixpanel(events_per_day=300, identity=IdentityMerge(start=START, identify_share=0.0), clock=clock)
    result = run(s3_destination, START + timedelta(days=3), raw=True)
    assert result["identity"]["records"] == 0 and result["records"] == 300


@pytest.mark.parametrize("raw", [False, True])
def test_millisecond_times_give_the_same_mappings(mixpanel, s3_destination, raw):
    clock = SimClock.manual(midnight(START + timedelta(days=3)) + RUN_AT)
    mixpanel(events_per_day=300, identity=IdentityMerge(start=START), clock=clock)
    day = START + timedelta(days=3)
    seconds = run(s3_destination, day, raw=raw, identity="s/{window}/part-{part}.jsonl.gz")
    millis = run(s3_destination, day, raw=raw, time_in_ms=True, name="ms/{window}/part-{part}.jsonl.gz")
    objects = s3_destination.objects()
    mappings = jsonl(objects[f"id/{day}/part-00000.jsonl.gz"])
    assert mappings, "the simulation identifies visitors every day"
    assert mappings == jsonl(objects[f"s/{day}/part-00000.jsonl.gz"]), "time_in_ms changed the mappings"
    assert millis["records"] == seconds["records"] and millis["identity"]["records"] == len(mappings)


def test_parquet_mappings_have_the_identity_columns(mixpanel, destination, tmp_path):
    clock = SimClock.manual(midnight(START + timedelta(days=9)) + RUN_AT)
    mixpanel(events_per_day=600, identity=IdentityMerge(start=START), clock=clock)
    day = START + timedelta(days=9)
    parquet = {"name": "ev/{window}/part-{part}.parquet", "identity": "id/{window}/part-{part}.parquet"}
    run(destination, day, output_format="parquet", **parquet)
    path = tmp_path / "mappings.parquet"
    path.write_bytes(destination.objects()["id/2024-03-10/part-00000.parquet"])
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY event_time").fetchall()
    columns = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]
    assert columns == ["distinct_id", "resolved_distinct_id", "event_time", "insert_id"]
    expected = list(MixpanelHook().stream_identity_mappings(day, day))
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (m["distinct_id"], m["resolved_distinct_id"], m["event_time"], m["insert_id"]) for m in expected
    ]


# ------------------------------------------------------------------ 30 days, counted as Mixpanel does

SIMULATED_DAYS = 30
LOOKBACK_DAYS = 5


def count_users(folder: Path) -> tuple[int, int]:
    """(unique distinct ids, unique users resolved by docs/sql) of the events and mappings in
    ``folder``, read by DuckDB."""
    db = duckdb.connect()
    db.execute(
        f"CREATE VIEW mixpanel_events AS SELECT * FROM read_json('{folder}/ev/*/*.jsonl.gz', "
        "format='newline_delimited', columns={'distinct_id': 'VARCHAR', 'event_time': 'TIMESTAMPTZ'})"
    )
    db.execute(
        f"CREATE VIEW mixpanel_identity_mappings AS SELECT * FROM read_json('{folder}/id/*/*.jsonl.gz', "
        "format='newline_delimited', columns={'distinct_id': 'VARCHAR', 'resolved_distinct_id': 'VARCHAR', "
        "'event_time': 'TIMESTAMPTZ', 'insert_id': 'VARCHAR'})"
    )
    db.execute((SQL / "identity_view.sql").read_text())
    (without,) = db.execute("SELECT COUNT(DISTINCT distinct_id) FROM mixpanel_events").fetchone()
    (with_mappings,) = db.execute((SQL / "unique_users.sql").read_text()).fetchone()
    return without, with_mappings


def test_thirty_daily_runs_with_lookback_count_the_servers_users_exactly(mixpanel, s3_destination, tmp_path):
    """Daily runs with lookback_days=5 over 30 days while visitors log in days or weeks after
    their first visit: days exported before a login keep ``$device:<id>``; with the mappings the
    count is the server's own resolved user count, exactly."""
    clock = SimClock.manual(midnight(START) + RUN_AT)
    identity = IdentityMerge(start=START, new_visitors_per_day=12, max_identify_delay_days=21)
    server = mixpanel(events_per_day=240, identity=identity, clock=clock)
    last = START + timedelta(days=SIMULATED_DAYS - 1)
    day = START
    while day <= last:
        clock.set(midnight(day) + RUN_AT)
        run(s3_destination, day, lookback_days=LOOKBACK_DAYS if day - START >= timedelta(days=LOOKBACK_DAYS) else 0)
        day += timedelta(days=1)
    for name, data in s3_destination.objects().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    without, with_mappings = count_users(tmp_path)
    resolved = len(server.resolved_distinct_ids(START, last))
    print(json.dumps({"without_mappings": without, "with_mappings": with_mappings, "server": resolved}))
    assert with_mappings == resolved, f"with the mappings: {with_mappings}, the server: {resolved}"
    assert without > resolved, "the test needs days exported before their visitors logged in"
    stale = sum(
        b'"distinct_id":"$device:' in line
        for name, data in s3_destination.objects().items()
        if name.startswith("ev/")
        for line in gzip.decompress(data).splitlines()
    )
    assert stale > 0


# ------------------------------------------------------------------ the hook and the command


def test_hook_gives_each_device_once_at_its_earliest_mapping_in_the_range(mixpanel):
    clock = SimClock.manual(midnight(START + timedelta(days=20)))
    server = mixpanel(events_per_day=400, identity=IdentityMerge(start=START), clock=clock)
    first, last = START, START + timedelta(days=19)
    mappings = list(MixpanelHook().stream_identity_mappings(first, last))
    assert len(server.export_requests()) == 1, "one export request for the range"
    devices = [m["distinct_id"] for m in mappings]
    assert len(devices) == len(set(devices)), "one record per device"
    # The earliest event of each device that carries a $user_id, read from the events themselves.
    earliest: dict[str, tuple] = {}
    for record in MixpanelHook().stream_events(from_date=first, to_date=last):
        user = record["properties"].get("$user_id")
        if user is not None:
            device = "$device:" + record["properties"]["$device_id"]
            earliest.setdefault(device, (device, user, record["event_time"], record["insert_id"]))
    assert sorted(tuple(m.values()) for m in mappings) == sorted(earliest.values())


def test_identity_command_writes_the_hooks_mappings_as_jsonl(mixpanel, capfd):
    from airflow_provider_mixpanel.cli import main

    clock = SimClock.manual(midnight(START + timedelta(days=10)))
    mixpanel(events_per_day=300, identity=IdentityMerge(start=START), clock=clock)
    first, last = str(START), str(START + timedelta(days=9))
    assert main(["identity", "--from", first, "--to", last]) == 0
    out, err = capfd.readouterr()
    expected = b"".join(MixpanelHook().stream_identity_mappings(first, last, encode=True))
    assert out.encode() == expected and expected
    records = len(expected.splitlines())
    assert err.strip() == f"mixpanel-stream: {records} records"
