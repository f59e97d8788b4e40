"""Days downstream can trust: lookback_days re-exports late events, a _manifest.json marks each
complete window, and window_hours splits a day; against the Mixpanel test server (late arrival on
a manual clock), moto's S3 server and fake-gcs-server."""

from __future__ import annotations

import dataclasses
import gzip
from datetime import UTC, date, datetime, timedelta

import pytest

from airflow_provider_mixpanel import __version__
from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelMalformedRecordError
from airflow_provider_mixpanel.pacing import ApiLimits
from airflow_provider_mixpanel.testing import Quotas, SimClock
from tests.integration.transfers.helpers import Destination, jsonl, record_s3_calls

pytestmark = pytest.mark.integration

DAY = date(2024, 3, 1)
MIDNIGHT = datetime(2024, 3, 1, tzinfo=UTC)
# A daily run's time: half an hour after the day it exports ends.
RUN_AT = timedelta(days=1, minutes=30)
WINDOWS = "ev/{window}/part-{part}.jsonl.gz"


@pytest.fixture(params=["s3", "gcs"])
def destination(request) -> Destination:
    return Destination(request.param, request.getfixturevalue(request.param))


@pytest.fixture
def s3_destination(s3) -> Destination:
    return Destination("s3", s3)


def day_run(destination: Destination, day: date, **kwargs):
    """The operator of a daily run exporting ``day``."""
    options = {"from_date": str(day), "to_date": str(day), **kwargs}
    return destination.operator(options.pop("name", WINDOWS), **options)


def day_lines(destination: Destination, day: date) -> bytes:
    """Everything written for ``day`` (raw JSONL), its parts in order."""
    objects = destination.objects()
    prefix = f"ev/{day}/"
    return b"".join(gzip.decompress(objects[k]) for k in sorted(objects) if k.startswith(prefix))


# ------------------------------------------------------------------ lookback_days


def test_lookback_re_exports_each_day_in_a_request_and_objects_of_its_own(mixpanel, s3_destination):
    server = mixpanel(events_per_day=40)
    manifest = day_run(s3_destination, DAY + timedelta(days=3), lookback_days=3).execute({})
    requests = [(r.params["from_date"], r.params["to_date"]) for r in server.export_requests()]
    assert requests == [(str(DAY + timedelta(days=n)),) * 2 for n in range(4)], "one request per day, 4 at most"
    assert sorted(s3_destination.objects()) == [f"ev/{DAY + timedelta(days=n)}/part-00000.jsonl.gz" for n in range(4)]
    assert (manifest["from_date"], manifest["to_date"], manifest["records"]) == (str(DAY), "2024-03-04", 160)
    assert len(manifest["manifests"]) == 4


def test_a_day_re_exported_later_holds_exactly_the_servers_content_then(mixpanel, s3_destination):
    """Two daily runs with lookback_days=1 at 00:30: the second replaces the day before with what
    Mixpanel holds by then (late events included), each record once, byte for byte."""
    clock = SimClock.manual(MIDNIGHT + timedelta(days=1) + RUN_AT)  # 2024-03-03T00:30
    server = mixpanel(events_per_day=2000, late_arrival=True, clock=clock)
    second_day = DAY + timedelta(days=1)
    day_run(s3_destination, second_day, lookback_days=1, raw=True).execute({})
    first_export = clock.now()
    assert day_lines(s3_destination, second_day) == b"".join(server.visible_lines(second_day))
    missing_then = server.final_day_count(second_day) - server.visible_count(second_day)
    assert missing_then > 0, "the test needs events that arrive after the first export"

    clock.advance(timedelta(days=1))  # the next daily run, 2024-03-04T00:30
    server.requests.clear()
    day_run(s3_destination, second_day + timedelta(days=1), lookback_days=1, raw=True).execute({})
    assert [r.params["from_date"] for r in server.export_requests()] == ["2024-03-02", "2024-03-03"]
    written = day_lines(s3_destination, second_day)
    assert written == b"".join(server.visible_lines(second_day)), "the day must hold the server's content now"
    assert server.visible_count(second_day) > server.visible_count(second_day, at=first_export)
    ids = [line.split(b'"$insert_id":"', 1)[1].split(b'"', 1)[0] for line in written.splitlines()]
    assert len(ids) == len(set(ids)) == server.visible_count(second_day), "each record exactly once"
    # The first day was not in the second run: it keeps what the first run wrote.
    assert day_lines(s3_destination, DAY) == b"".join(server.visible_lines(DAY, at=first_export))


def test_lookback_needs_window_in_the_object_name(mixpanel, s3_destination):
    server = mixpanel(events_per_day=10)
    op = day_run(s3_destination, DAY, lookback_days=2, name="ev/part-{part}.jsonl.gz")
    with pytest.raises(MixpanelConfigError, match=r"lookback_days=2 re-exports each day.*must hold \{window\}"):
        op.execute({})
    assert server.requests == [] and s3_destination.objects(manifests=True) == {}


# ------------------------------------------------------------------ the manifest


def test_manifest_lists_exactly_the_parts_in_storage(mixpanel, destination):
    mixpanel(events_per_day=3000)
    result = day_run(
        destination, DAY, compression=None, max_file_size_bytes=1024 * 1024, events=["Purchase", "Sign Up"]
    ).execute({})
    objects = destination.objects()
    manifests = destination.manifests()
    assert list(manifests) == ["ev/2024-03-01/_manifest.json"]
    assert result["manifests"] == [f"{destination.uri_scheme}://{destination.bucket}/ev/2024-03-01/_manifest.json"]
    manifest = manifests["ev/2024-03-01/_manifest.json"]
    listed = [p["uri"].split(f"{destination.bucket}/", 1)[1] for p in manifest["parts"]]
    assert listed == sorted(objects), "the manifest lists every part, in order, and nothing else"
    for entry, name in zip(manifest["parts"], listed, strict=True):
        assert entry["records"] == len(jsonl(objects[name], None)), f"{name}: records"
        assert entry["bytes"] == len(objects[name]), f"{name}: bytes"
        assert entry["checksum"] == destination.checksum(name), f"{name}: checksum"
    assert manifest["records"] == result["records"] == sum(len(jsonl(v, None)) for v in objects.values())
    assert manifest["bytes"] == sum(len(v) for v in objects.values())
    assert manifest["window"] == {
        "first_day": "2024-03-01",
        "last_day": "2024-03-01",
        "start": "2024-03-01T00:00:00+00:00",
        "end": "2024-03-02T00:00:00+00:00",
    }
    assert (manifest["stream"], manifest["project_id"], manifest["region"]) == ("events", 12345, "us")
    assert manifest["request"] == {
        "events": ["Purchase", "Sign Up"],
        "where": None,
        "raw": False,
        "format": "jsonl",
        "compression": None,
    }
    assert manifest["provider_version"] == __version__
    exported_at = datetime.fromisoformat(manifest["exported_at"])
    assert exported_at.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - exported_at) < timedelta(minutes=5)


def test_manifest_is_deleted_first_and_written_last(mixpanel, s3_destination):
    """Record every S3 call of a re-run: the window's lease is taken first; then its manifest goes
    before anything else, its old parts before its first new part is written; the manifest comes
    back after its last part, and the lease is released last."""
    server = mixpanel(events_per_day=3000)
    options = dict(compression=None, max_file_size_bytes=1024 * 1024)
    day_run(s3_destination, DAY, **options).execute({})
    server.config.events_per_day = 1000  # fewer parts: the re-run deletes stale ones
    rerun = day_run(s3_destination, DAY, **options)
    calls = record_s3_calls(rerun)
    result = rerun.execute({})
    assert result["deleted_stale_files"], "the re-run must delete stale parts for this test"
    manifest_key = "ev/2024-03-01/_manifest.json"
    lease_key = "ev/2024-03-01/_lease.json"

    def keys(params) -> list[str]:
        if "Delete" in params:
            return [o["Key"] for o in params["Delete"]["Objects"]]
        return [params["Key"]] if "Key" in params else []

    touched = [(op, key) for op, params in calls for key in keys(params) or [None]]
    assert touched[0] == ("PutObject", lease_key), f"the lease must be taken first: {touched[:3]}"
    assert touched[-1] == ("PutObject", lease_key), f"the lease must be released last: {touched[-3:]}"
    window = [(op, key) for op, key in touched if key != lease_key]
    writes = [i for i, (op, key) in enumerate(window) if op in ("PutObject", "CreateMultipartUpload")]
    assert window[0] == ("DeleteObjects", manifest_key), f"the manifest must go first: {window[:3]}"
    assert window[-1] == ("PutObject", manifest_key), f"the manifest must come last: {window[-3:]}"
    old_parts = [i for i, (op, key) in enumerate(window) if op == "DeleteObjects" and key != manifest_key]
    assert old_parts and max(old_parts) < writes[0], "the old parts go before the first new part"
    assert window.index(("ListMultipartUploads", None)) < writes[0], "leftovers are aborted before the first part"


def test_a_failed_run_leaves_no_manifest_for_its_window(mixpanel, destination):
    server = mixpanel(events_per_day=1000)
    options = dict(compression=None, max_file_size_bytes=64 * 1024)
    day_run(destination, DAY, **options).execute({})
    assert list(destination.manifests()) == ["ev/2024-03-01/_manifest.json"]
    server.add_fault("malformed", after_records=600)  # parts are committed before the failure
    with pytest.raises(MixpanelMalformedRecordError):
        day_run(destination, DAY, **options).execute({})
    assert destination.manifests() == {}, "a window rewritten by a failed run must not look complete"
    server.clear_faults()
    day_run(destination, DAY, **options).execute({})
    manifest = destination.manifests()["ev/2024-03-01/_manifest.json"]
    assert manifest["records"] == 1000 and len(manifest["parts"]) == len(destination.objects())


def test_windows_completed_before_a_failure_keep_their_manifest(mixpanel, s3_destination):
    """Days written one after the other: the first completes (its manifest lists it exactly), the
    second fails (it has none). A manifest is only ever beside the complete parts it lists."""
    mixpanel(events_per_day=200)
    op = day_run(s3_destination, DAY + timedelta(days=1), lookback_days=1)
    real_store = op._object_store

    def store_refusing_the_second_day(bucket):
        store = real_store(bucket)
        real_open = store.open

        def open_part(name, content_type, **conditions):
            if name.startswith("ev/2024-03-02/part-"):
                raise PermissionError(f"injected: access denied to {name}")
            return real_open(name, content_type, **conditions)

        store.open = open_part
        return store

    op._object_store = store_refusing_the_second_day
    with pytest.raises(PermissionError):
        op.execute({})
    manifests = s3_destination.manifests()
    assert list(manifests) == ["ev/2024-03-01/_manifest.json"]
    assert manifests["ev/2024-03-01/_manifest.json"]["records"] == 200


def test_windows_sharing_a_folder_are_a_configuration_error(mixpanel, s3_destination):
    server = mixpanel(events_per_day=10)
    options = dict(from_date="2024-03-01", to_date="2024-03-02", window_days=1)
    with pytest.raises(MixpanelConfigError, match=r"would share one 'flat/_manifest.json'"):
        s3_destination.operator("flat/{window}.jsonl.gz", **options).execute({})
    assert server.requests == [] and s3_destination.objects(manifests=True) == {}
    result = s3_destination.operator("flat/{window}.jsonl.gz", write_manifest=False, **options).execute({})
    assert result["manifests"] == [] and s3_destination.manifests() == {}
    assert sorted(s3_destination.objects()) == ["flat/2024-03-01.jsonl.gz", "flat/2024-03-02.jsonl.gz"]


def test_profiles_get_a_manifest_without_a_window(mixpanel, destination):
    mixpanel(profiles=120)
    result = destination.operator("profiles/2024-03-01/part-{part}.jsonl.gz", stream="profiles").execute({})
    manifest = destination.manifests()["profiles/2024-03-01/_manifest.json"]
    assert manifest["window"] is None and manifest["stream"] == "profiles"
    assert manifest["records"] == result["records"] == 120


# ------------------------------------------------------------------ window_hours


@pytest.fixture
def unpaced(monkeypatch):
    """No per-second pacing in the client: 24 one-hour windows start at once instead of over 8 s."""
    from airflow_provider_mixpanel.pacing import QUOTAS, Quota

    unlimited = dataclasses.replace(QUOTAS[Quota.EXPORT], limits=ApiLimits(requests_per_second=None, concurrent=100))
    monkeypatch.setitem(QUOTAS, Quota.EXPORT, unlimited)


@pytest.mark.parametrize("hours", [24, 6, 1])
def test_hour_windows_partition_a_day_exactly_once(hours, mixpanel, s3_destination, unpaced):
    server = mixpanel(events_per_day=480)
    user_where = 'properties["plan"] == "pro"'  # accepted by the test server, not applied
    result = day_run(s3_destination, DAY, window_hours=hours, max_active_windows=4, where=user_where).execute({})
    starts = [MIDNIGHT + timedelta(hours=h) for h in range(0, 24, hours)]
    objects = s3_destination.objects()
    assert sorted(objects) == [f"ev/{start:%Y-%m-%dT%H}/part-00000.jsonl.gz" for start in starts]
    insert_ids: list[str] = []
    for start in starts:
        records = jsonl(objects[f"ev/{start:%Y-%m-%dT%H}/part-00000.jsonl.gz"])
        times = {datetime.fromisoformat(r["event_time"]) for r in records}
        assert all(start <= t < start + timedelta(hours=hours) for t in times), f"{start}: an event of another hour"
        insert_ids += [r["insert_id"] for r in records]
    assert insert_ids == list(server.expected_insert_ids(DAY)), "every event of the day once, in order"
    sent = sorted(r.params["where"] for r in server.export_requests())
    expected = sorted(
        f'({user_where}) and properties["$time"] >= datetime({int(s.timestamp())}) '
        f'and properties["$time"] < datetime({int((s + timedelta(hours=hours)).timestamp())})'
        for s in starts
    )
    assert sent == expected
    assert {(r.params["from_date"], r.params["to_date"]) for r in server.export_requests()} == {(str(DAY),) * 2}
    manifests = s3_destination.manifests()
    assert len(manifests) == len(starts) == len(result["manifests"])
    first = manifests[f"ev/{starts[0]:%Y-%m-%dT%H}/_manifest.json"]
    assert first["window"]["start"] == starts[0].isoformat()
    assert first["window"]["end"] == (starts[0] + timedelta(hours=hours)).isoformat()
    assert first["request"]["where"] == expected[0]


def test_hour_windows_run_concurrently(mixpanel, s3_destination):
    # ~120 KB per six hours at 150 KB/s: each request lasts most of a second, past the client's 1/3 s spacing.
    server = mixpanel(events_per_day=1200, quotas=Quotas(), gzip=False, bytes_per_second=150_000)
    day_run(s3_destination, DAY, window_hours=6, max_active_windows=4, compression=None).execute({})
    stats = server.quota_stats()["export"]
    assert stats.admitted == 4 and stats.refused_per_second == 0
    assert stats.peak_running >= 2, f"windows ran one at a time (peak {stats.peak_running})"


def test_lookback_days_are_split_into_hours_too(mixpanel, s3_destination):
    server = mixpanel(events_per_day=48)
    day_run(s3_destination, DAY + timedelta(days=1), window_hours=12, lookback_days=1).execute({})
    assert sorted(k.split("/")[1] for k in s3_destination.objects()) == [
        "2024-03-01T00",
        "2024-03-01T12",
        "2024-03-02T00",
        "2024-03-02T12",
    ]
    assert len(server.export_requests()) == 4


def test_hour_windows_refuse_a_project_that_counts_days_in_its_own_time_zone(mixpanel, s3_destination, monkeypatch):
    server = mixpanel(events_per_day=24)
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", server.connection_json(project_timezone="America/Los_Angeles"))
    with pytest.raises(MixpanelConfigError, match="project_timezone='America/Los_Angeles'"):
        day_run(s3_destination, DAY, window_hours=6).execute({})
    assert server.export_requests() == []
