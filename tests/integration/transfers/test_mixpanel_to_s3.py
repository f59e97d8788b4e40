"""MixpanelStreamToS3Operator against the Mixpanel test server and moto's S3 server."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from datetime import UTC, datetime

import pytest

from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelMalformedRecordError
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.transfers import parts, progress
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator
from airflow_provider_mixpanel.transfers.parts import AirflowTaskAborted
from tests.integration.transfers.helpers import jsonl, open_multipart_uploads, record_s3_calls, s3_objects

pytestmark = pytest.mark.integration

DAY = "2024-03-01"
FAST_RETRIES = {"backoff_base": 0.01}
MIB = 1024 * 1024


def operator(bucket, **kwargs) -> MixpanelStreamToS3Operator:
    options = dict(
        task_id="to_s3",
        s3_bucket=bucket,
        s3_key="events/2024-03-01/part-{part}.jsonl.gz",
        from_date=DAY,
        to_date=DAY,
        mixpanel_hook_kwargs=FAST_RETRIES,
    )
    if kwargs.get("stream") == "profiles":
        del options["from_date"], options["to_date"]
    options.update(kwargs)
    return MixpanelStreamToS3Operator(**options)


def test_writes_normalized_gzip_jsonl(mixpanel, s3):
    server = mixpanel(events_per_day=500)
    client, bucket = s3
    manifest = operator(bucket).execute({})
    objects = s3_objects(client, bucket)
    assert list(objects) == ["events/2024-03-01/part-00000.jsonl.gz"]
    records = jsonl(objects["events/2024-03-01/part-00000.jsonl.gz"])
    assert len(records) == 500 == manifest["records"]
    assert records[0]["event_time"] == "2024-03-01T00:00:00+00:00"
    # Property values exactly as Mixpanel sent them (0.00 stays 0.00): the hook's JSONL, byte for byte.
    expected = b"".join(MixpanelHook().stream_events_jsonl(from_date=DAY, to_date=DAY))
    assert gzip.decompress(objects["events/2024-03-01/part-00000.jsonl.gz"]) == expected
    assert manifest["files"] == [f"s3://{bucket}/events/2024-03-01/part-00000.jsonl.gz"]
    assert manifest["stream"] == "events" and manifest["from_date"] == DAY and manifest["to_date"] == DAY
    assert manifest["bytes"] == len(objects["events/2024-03-01/part-00000.jsonl.gz"])
    assert len(server.export_requests()) == 2


def test_raw_records_are_written_as_parsed(mixpanel, s3):
    mixpanel(events_per_day=50)
    client, bucket = s3
    operator(bucket, raw=True, s3_key="raw.jsonl", compression=None).execute({})
    written = jsonl(s3_objects(client, bucket)["raw.jsonl"], None)
    assert written == list(MixpanelHook().stream_events(from_date=DAY, to_date=DAY, raw=True))


def test_parts_rotate_by_size_and_keep_every_record(mixpanel, s3):
    mixpanel(events_per_day=1500)
    client, bucket = s3
    manifest = operator(bucket, compression=None, max_file_size_bytes=256 * 1024, s3_key="e/part-{part}.jsonl").execute(
        {}
    )
    objects = s3_objects(client, bucket)
    assert len(objects) >= 4 and len(objects) == len(manifest["files"])
    assert sorted(objects) == [f"e/part-{i:05d}.jsonl" for i in range(len(objects))]
    records = [r for key in sorted(objects) for r in jsonl(objects[key], None)]
    assert len(records) == 1500 == manifest["records"]
    assert len({r["insert_id"] for r in records}) == 1500
    assert all(len(body) < 256 * 1024 + parts.BATCH_BYTES for body in objects.values())
    assert [p["records"] for p in manifest["parts"]] == [len(jsonl(objects[k], None)) for k in sorted(objects)]


def test_large_object_uses_multipart(mixpanel, s3):
    mixpanel(events_per_day=9000)  # about 7 MB uncompressed: two 5 MiB-or-more parts
    client, bucket = s3
    manifest = operator(bucket, compression=None, s3_key="big.jsonl", s3_part_size=5 * 1024 * 1024).execute({})
    head = client.head_object(Bucket=bucket, Key="big.jsonl")
    assert head["ETag"].strip('"').endswith("-2"), head["ETag"]
    assert len(jsonl(s3_objects(client, bucket)["big.jsonl"], None)) == 9000 == manifest["records"]
    assert head["ContentType"] == "application/x-ndjson"


def test_rerun_replaces_parts_and_deletes_stale_ones(mixpanel, s3):
    server = mixpanel(events_per_day=1500)
    client, bucket = s3
    options = dict(compression=None, max_file_size_bytes=128 * 1024, s3_key="d/part-{part}.jsonl")
    first = operator(bucket, **options).execute({})
    client.put_object(Bucket=bucket, Key="d/notes.txt", Body=b"not a part")
    server.config.events_per_day = 300
    second = operator(bucket, **options).execute({})
    objects = s3_objects(client, bucket)
    assert len(second["files"]) < len(first["files"])
    assert sorted(k for k in objects if k.endswith(".jsonl")) == sorted(
        f.split(f"{bucket}/")[1] for f in second["files"]
    )
    assert "d/notes.txt" in objects, "objects that are not parts of this key must be left alone"
    assert sum(len(jsonl(v, None)) for k, v in objects.items() if k.endswith(".jsonl")) == 300
    assert second["deleted_stale_files"]


def test_failure_mid_stream_leaves_nothing_behind(mixpanel, s3, caplog):
    server = mixpanel(events_per_day=12000)
    server.add_fault("malformed", after_records=11000)
    client, bucket = s3
    op = operator(bucket, compression=None, s3_key="f.jsonl", s3_part_size=5 * 1024 * 1024)
    with pytest.raises(MixpanelMalformedRecordError):
        op.execute({})
    assert s3_objects(client, bucket) == {}
    assert open_multipart_uploads(client, bucket) == []


def test_interrupted_stream_is_restarted_and_counts_stay_exact(mixpanel, s3, caplog):
    server = mixpanel(events_per_day=12000)
    server.add_fault("drop", after_records=10000)
    client, bucket = s3
    caplog.set_level(logging.WARNING)
    manifest = operator(bucket, compression=None, s3_key="r.jsonl", s3_part_size=5 * 1024 * 1024).execute({})
    records = jsonl(s3_objects(client, bucket)["r.jsonl"], None)
    assert len(records) == 12000 == manifest["records"]
    assert len({r["insert_id"] for r in records}) == 12000
    assert open_multipart_uploads(client, bucket) == []
    assert len(server.export_requests()) == 2
    assert "restart 1 of 2" in caplog.text


def test_restart_budget_is_bounded(mixpanel, s3):
    server = mixpanel(events_per_day=3000)
    server.add_fault("drop", after_records=1000, times=5)
    client, bucket = s3
    with pytest.raises(Exception, match="stream broke after 1000 records"):
        operator(bucket, max_stream_restarts=1).execute({})
    assert len(server.export_requests()) == 2
    assert s3_objects(client, bucket) == {} and open_multipart_uploads(client, bucket) == []


def test_windows_split_the_range(mixpanel, s3):
    server = mixpanel(events_per_day=100)
    _, bucket = s3
    manifest = operator(
        bucket, from_date="2024-03-01", to_date="2024-03-03", window_days=1, max_file_size_bytes=64 * 1024
    ).execute({})
    assert [(r.params["from_date"], r.params["to_date"]) for r in server.export_requests()] == [
        ("2024-03-01", "2024-03-01"),
        ("2024-03-02", "2024-03-02"),
        ("2024-03-03", "2024-03-03"),
    ]
    assert manifest["records"] == 300 and len(manifest["files"]) == 3
    assert manifest["from_date"] == "2024-03-01" and manifest["to_date"] == "2024-03-03"


def test_empty_interval_writes_one_empty_part(mixpanel, s3):
    mixpanel(events_per_day=0)
    client, bucket = s3
    manifest = operator(bucket).execute({})
    assert manifest["records"] == 0 and len(manifest["files"]) == 1
    assert jsonl(s3_objects(client, bucket)["events/2024-03-01/part-00000.jsonl.gz"]) == []


def test_profiles(mixpanel, s3):
    mixpanel(profiles=1200, page_size=500)
    client, bucket = s3
    manifest = operator(bucket, stream="profiles", s3_key="p.jsonl.gz").execute({})
    records = jsonl(s3_objects(client, bucket)["p.jsonl.gz"])
    assert len(records) == 1200 == manifest["records"]
    assert set(records[0]) == {"distinct_id", "last_seen", "properties"}
    assert manifest["from_date"] is None


def test_a_snapshot_names_its_window_after_the_run_date(mixpanel, s3):
    mixpanel(profiles=30, page_size=500)
    client, bucket = s3
    run = {
        "data_interval_start": datetime(2024, 3, 1, tzinfo=UTC),
        "data_interval_end": datetime(2024, 3, 2, tzinfo=UTC),
    }
    operator(bucket, stream="profiles", s3_key="profiles/{window}/part-{part}.jsonl.gz").execute(run)
    assert sorted(s3_objects(client, bucket)) == ["profiles/2024-03-01/part-00000.jsonl.gz"], (
        "{window} of a snapshot is the day the run stands for"
    )


def test_zstd(mixpanel, s3):
    mixpanel(events_per_day=200)
    client, bucket = s3
    operator(bucket, compression="zstd", s3_key="z.jsonl.zst").execute({})
    assert len(jsonl(s3_objects(client, bucket)["z.jsonl.zst"], "zstd")) == 200


def test_progress_is_logged(mixpanel, s3, caplog, monkeypatch):
    mixpanel(events_per_day=2000)
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL", 0.0)
    caplog.set_level(logging.INFO, logger="airflow_provider_mixpanel")
    operator(s3[1]).execute({})
    lines = [r.getMessage() for r in caplog.records if "records/s" in r.getMessage()]
    assert any(line.startswith("Progress: ") for line in lines)
    assert any(line.startswith("Done: 2,000 records in 1 window, ") for line in lines)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_file_size_bytes": 10}, "max_file_size_bytes=10"),
        ({"stream": "people"}, "stream='people'"),
        ({"compression": "bz2"}, "compression='bz2'"),
        ({"compression_level": 12}, "compression_level=12"),
        ({"window_days": 0}, "window_days=0"),
        ({"max_active_windows": 0}, "max_active_windows=0"),
        ({"max_active_windows": 101}, "max_active_windows=101"),
        ({"max_stream_restarts": -1}, "max_stream_restarts=-1"),
        ({"s3_part_size": MIB}, "s3_part_size=1048576"),
        ({"s3_extra_args": {"ChecksumSHA256": "x"}}, "s3_extra_args holds ChecksumSHA256"),
        ({"raw": "yes"}, "raw='yes'"),
        ({"skip_malformed": 1}, "skip_malformed=1"),
        ({"from_date": None}, "give both from_date and to_date"),
        ({"data_group_id": "company_id"}, "data_group_id select profiles, but stream='events'"),
        ({"page_size": 100, "include_all_users": True}, "include_all_users, page_size select profiles"),
        ({"stream": "profiles", "events": ["Signup"]}, "events select events, but stream='profiles'"),
    ],
)
def test_bad_untemplated_argument_fails_when_the_dag_is_parsed(kwargs, match):
    with pytest.raises(MixpanelConfigError, match=match) as info:
        operator("bucket", **kwargs)
    assert str(info.value).startswith("Task 'to_s3': "), "the message must name the task"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"s3_bucket": ""}, "s3_bucket is empty"),
        ({"s3_key": " "}, "s3_key is empty"),
        ({"max_file_size_bytes": 1_000_000, "s3_key": "a.jsonl.gz"}, r"must hold the placeholder \{part\}"),
        ({"from_date": "2024-03-05"}, "after to_date"),
        ({"to_date": "2024-3-1"}, "to_date='2024-3-1'"),
        ({"from_date": ""}, "from_date=''"),
        ({"max_active_windows": 2, "window_days": 1}, r"must hold \{window\}"),
        ({"s3_key": "{window}/{window}-{part}.gz"}, r"holds \{window\} more than once"),
    ],
)
def test_bad_templated_argument_fails_before_any_request(mixpanel, s3, kwargs, match):
    server = mixpanel()
    client, bucket = s3
    op = operator(bucket, **kwargs)
    with pytest.raises(MixpanelConfigError, match=match):
        op.execute({})
    assert server.requests == []
    assert s3_objects(client, bucket) == {}


def test_bad_mixpanel_connection_fails_before_any_request(make_server, s3, monkeypatch):
    server = make_server()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIXPANEL_DEFAULT", json.dumps({"conn_type": "mixpanel", "login": "u", "password": "p"})
    )
    with pytest.raises(MixpanelConfigError, match="project_id"):
        operator(s3[1]).execute({})
    assert server.requests == []


def test_templated_fields():
    templated = {"from_date", "to_date", "events", "where", "cohort_id", "output_properties", "distinct_ids"}
    templated |= {"data_group_id", "s3_bucket", "s3_key", "mixpanel_conn_id", "aws_conn_id"}
    assert templated <= set(MixpanelStreamToS3Operator.template_fields)


def test_lineage(mixpanel, s3):
    mixpanel(events_per_day=10)
    op = operator(s3[1])
    op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    pytest.importorskip("airflow.providers.openlineage")
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (MixpanelHook().get_conn().export_url.split("/api/")[0], "project/12345/events")
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(f"s3://{s3[1]}", "events/2024-03-01")]


def test_lineage_is_harmless_without_openlineage(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_openlineage(name, *args, **kwargs):
        if "openlineage" in name:
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openlineage)
    assert operator("b").get_openlineage_facets_on_complete(None) is None


def _kill_when_a_part_is_uploaded(op, client, bucket) -> threading.Thread:
    def kill():
        for _ in range(500):
            if open_multipart_uploads(client, bucket):
                op.on_kill()
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill)
    killer.start()
    return killer


def test_on_kill_aborts_the_upload_in_flight(mixpanel, s3):
    server = mixpanel(events_per_day=12000)
    client, bucket = s3
    op = operator(bucket, compression=None, s3_key="k.jsonl", s3_part_size=5 * MIB)
    server.add_fault("stall", after_records=11000, delay=1.0)
    killer = _kill_when_a_part_is_uploaded(op, client, bucket)
    with pytest.raises(AirflowTaskAborted) as info:
        op.execute({})
    killer.join()
    assert type(info.value) is AirflowTaskAborted
    assert str(info.value) == "The task was killed: its uploads in flight were aborted."
    assert open_multipart_uploads(client, bucket) == []
    assert s3_objects(client, bucket) == {}


# A stalled window's read blocks this long (seconds): far longer than an abort may take.
STALL = 20.0


def two_windows_at_once(bucket: str, s3_key: str) -> MixpanelStreamToS3Operator:
    """Two days streamed at once, uncompressed in 5 MiB parts, reads that outlast a stall."""
    return operator(
        bucket,
        from_date="2024-03-01",
        to_date="2024-03-02",
        window_days=1,
        max_active_windows=2,
        compression=None,
        s3_key=s3_key,
        s3_part_size=5 * MIB,
        mixpanel_hook_kwargs={**FAST_RETRIES, "read_timeout": STALL * 2},
    )


def test_on_kill_aborts_every_window_at_once(mixpanel, s3):
    server = mixpanel(events_per_day=12000)
    for _ in range(2):
        server.add_fault("stall", after_records=9000, delay=STALL)
    client, bucket = s3
    op = two_windows_at_once(bucket, "kw/{window}/data.jsonl")
    started = time.monotonic()
    killer = _kill_when_a_part_is_uploaded(op, client, bucket)
    with pytest.raises(AirflowTaskAborted, match=r"^The task was killed: its uploads in flight were aborted\.$"):
        op.execute({})
    killer.join()
    assert time.monotonic() - started < STALL / 2, "the task waited for the stalled windows"
    assert open_multipart_uploads(client, bucket) == []
    assert s3_objects(client, bucket) == {}


def test_raw_lines_are_written_byte_for_byte(make_server, s3, samples, monkeypatch):
    path = samples / "event_objects_unicode_escapes_mixpanel_docs_pubsub.jsonl"
    server = make_server(export_file=path)
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", server.connection_json())
    client, bucket = s3
    operator(bucket, raw=True, compression=None, s3_key="verbatim.jsonl").execute({})
    assert s3_objects(client, bucket)["verbatim.jsonl"] == path.read_bytes()


def test_window_placeholder_gives_every_day_its_objects(mixpanel, s3):
    server = mixpanel(events_per_day=200)
    client, bucket = s3
    manifest = operator(
        bucket, from_date="2024-03-01", to_date="2024-03-04", window_days=1, s3_key="ev/{window}/part-{part}.jsonl.gz"
    ).execute({})
    objects = s3_objects(client, bucket)
    assert sorted(objects) == [f"ev/2024-03-0{d}/part-00000.jsonl.gz" for d in range(1, 5)]
    for day in range(1, 5):
        records = jsonl(objects[f"ev/2024-03-0{day}/part-00000.jsonl.gz"])
        assert len(records) == 200 and {r["event_time"][:10] for r in records} == {f"2024-03-0{day}"}
    assert manifest["records"] == 800 and len(server.export_requests()) == 4


def test_concurrent_windows_write_the_same_as_sequential(mixpanel, s3):
    server = mixpanel(events_per_day=3000)
    client, bucket = s3
    options = dict(from_date="2024-03-01", to_date="2024-03-06", window_days=2, compression=None)
    manifest = operator(
        bucket, max_active_windows=3, max_file_size_bytes=1024 * 1024, s3_key="c/{window}/part-{part}.jsonl", **options
    ).execute({})
    objects = s3_objects(client, bucket)
    assert sorted({k.split("/")[1] for k in objects}) == [
        "2024-03-01_2024-03-02",
        "2024-03-03_2024-03-04",
        "2024-03-05_2024-03-06",
    ]
    records = [r for k in sorted(objects) for r in jsonl(objects[k], None)]
    assert len(records) == 18_000 == manifest["records"]
    assert len({r["insert_id"] for r in records}) == 18_000
    assert manifest["files"] == [f"s3://{bucket}/{k}" for k in sorted(objects)]
    starts = sorted(server.export_requests(), key=lambda r: r.params["from_date"])
    assert [r.params["from_date"] for r in starts] == ["2024-03-01", "2024-03-03", "2024-03-05"]


def test_concurrent_window_failure_fails_the_task_and_leaves_only_complete_parts(mixpanel, s3):
    server = mixpanel(events_per_day=3000)
    server.add_fault("status", status=403)
    client, bucket = s3
    with pytest.raises(Exception, match="403"):
        operator(
            bucket,
            from_date="2024-03-01",
            to_date="2024-03-04",
            window_days=1,
            max_active_windows=2,
            compression=None,
            s3_key="f/{window}/data.jsonl",
        ).execute({})
    for key, body in s3_objects(client, bucket).items():
        assert len(jsonl(body, None)) == 3000, f"{key} is partial"
    assert open_multipart_uploads(client, bucket) == []


# SSE-C, requester-pays and owner checks: S3 refuses a part or a completion without them.
SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
BUCKET_ARGS = {"RequestPayer": "requester", "ExpectedBucketOwner": "123456789012"}
OBJECT_ONLY = {"StorageClass": "STANDARD_IA", "Metadata": {"source": "mixpanel"}}


def _arguments_by_call(calls: list[tuple[str, dict]]) -> dict[str, set[str]]:
    """The extra argument names each operation received (every call of it the same)."""
    passed: dict[str, set[str]] = {}
    for name, params in calls:
        extra = set(params) & (set(SSE_C) | set(BUCKET_ARGS) | set(OBJECT_ONLY))
        assert passed.setdefault(name, extra) == extra, f"{name} calls differ in their extra arguments"
    return passed


def test_s3_extra_args_reach_every_multipart_call_that_takes_them(mixpanel, s3):
    server = mixpanel(events_per_day=12_000)  # about 10 MB: two parts of 5 MiB and a last one
    _, bucket = s3
    op = operator(
        bucket,
        compression=None,
        s3_key="sse/part-{part}.jsonl",
        s3_part_size=5 * MIB,
        max_file_size_bytes=64 * MIB,
        s3_extra_args={**SSE_C, **BUCKET_ARGS, **OBJECT_ONLY},
    )
    calls = record_s3_calls(op)
    assert op.execute({})["records"] == 12_000
    passed = _arguments_by_call(calls)
    everything = set(SSE_C) | set(BUCKET_ARGS) | set(OBJECT_ONLY)
    assert passed["CreateMultipartUpload"] == everything
    assert passed["UploadPart"] == set(SSE_C) | set(BUCKET_ARGS), "each part needs the SSE-C key"
    assert passed["CompleteMultipartUpload"] == set(SSE_C) | set(BUCKET_ARGS)
    assert passed["ListObjectsV2"] == set(BUCKET_ARGS), "stale-part listing in a requester-pays bucket"
    assert len(server.export_requests()) == 1


def test_s3_extra_args_reach_put_abort_and_delete(mixpanel, s3):
    server = mixpanel(events_per_day=12_000)
    client, bucket = s3
    extra = {**SSE_C, **BUCKET_ARGS, **OBJECT_ONLY}
    options = dict(compression=None, s3_key="x/part-{part}.jsonl", max_file_size_bytes=4 * MIB, s3_extra_args=extra)
    operator(bucket, **options).execute({})  # three single-PUT parts
    server.config.events_per_day = 100
    rerun = operator(bucket, **options)
    calls = record_s3_calls(rerun)
    assert len(rerun.execute({})["deleted_stale_files"]) == 2
    passed = _arguments_by_call(calls)
    assert passed["PutObject"] == set(extra)
    assert passed["DeleteObjects"] == set(BUCKET_ARGS)

    server.config.events_per_day = 12_000
    server.add_fault("malformed", after_records=11_000)
    failing = operator(bucket, **{**options, "max_file_size_bytes": None, "s3_key": "y.jsonl"}, s3_part_size=5 * MIB)
    calls = record_s3_calls(failing)
    with pytest.raises(MixpanelMalformedRecordError):
        failing.execute({})
    assert _arguments_by_call(calls)["AbortMultipartUpload"] == set(BUCKET_ARGS)
    assert open_multipart_uploads(client, bucket) == []


def test_profile_selectors_reach_engage(mixpanel, s3):
    server = mixpanel(profiles=50)
    client, bucket = s3
    manifest = operator(
        bucket,
        stream="profiles",
        distinct_ids=["user-3", "user-7"],
        output_properties=["$city"],
        s3_key="p.jsonl",
        compression=None,
    ).execute({})
    records = jsonl(s3_objects(client, bucket)["p.jsonl"], None)
    assert sorted(r["distinct_id"] for r in records) == ["user-3", "user-7"] and manifest["records"] == 2
    assert all(set(r["properties"]) <= {"$city"} for r in records)
    assert json.loads(server.engage_requests()[0].form["distinct_ids"]) == ["user-3", "user-7"]


def test_connection_ids_are_templated(mixpanel, s3, monkeypatch):
    server = mixpanel(events_per_day=20)
    client, bucket = s3
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_EU", server.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_AWS_EXPORTS", _aws_connection(client))
    op = operator(bucket, mixpanel_conn_id="{{ params.mixpanel }}", aws_conn_id="{{ params.aws }}")
    op.render_template_fields({"params": {"mixpanel": "mixpanel_eu", "aws": "aws_exports"}})
    assert (op.mixpanel_conn_id, op.aws_conn_id) == ("mixpanel_eu", "aws_exports")
    assert op.execute({})["records"] == 20


def _aws_connection(client) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": client.meta.endpoint_url},
        }
    )


def test_default_days_come_from_the_run(mixpanel, s3, caplog):
    server = mixpanel(events_per_day=30)
    client, bucket = s3
    caplog.set_level(logging.INFO, logger="airflow_provider_mixpanel")
    op = operator(bucket, from_date=None, to_date=None, s3_key="d/{window}/part-{part}.jsonl.gz")
    week = {
        "data_interval_start": datetime(2024, 3, 4, tzinfo=UTC),
        "data_interval_end": datetime(2024, 3, 11, tzinfo=UTC),
    }
    manifest = op.execute(week)
    assert (manifest["from_date"], manifest["to_date"]) == ("2024-03-04", "2024-03-10")
    assert sorted(s3_objects(client, bucket)) == ["d/2024-03-04_2024-03-10/part-00000.jsonl.gz"]
    trigger = datetime(2024, 3, 12, tzinfo=UTC)  # Airflow 3's CronTriggerTimetable: an empty interval
    manifest = op.execute({"data_interval_start": trigger, "data_interval_end": trigger, "logical_date": trigger})
    assert (manifest["from_date"], manifest["to_date"]) == ("2024-03-11", "2024-03-11")
    assert "d/2024-03-11/part-00000.jsonl.gz" in s3_objects(client, bucket)
    assert [(r.params["from_date"], r.params["to_date"]) for r in server.export_requests()] == [
        ("2024-03-04", "2024-03-10"),
        ("2024-03-11", "2024-03-11"),
    ]
    assert "Exporting events 2024-03-11 (1 day): run day 2024-03-11." in caplog.text
    assert "Run day 2024-03-11: the run's data interval is empty" in caplog.text
    assert "Committed 2024-03-11: 30 records, " in caplog.text


def test_one_failing_window_aborts_the_others_at_once(mixpanel, s3):
    """Two windows at once: one stalls after a part is uploaded, the other meets a malformed line.
    The task fails at once, without waiting for the stalled window, and leaves no upload open."""
    server = mixpanel(events_per_day=12_000)  # about 10 MB a day: a 5 MiB part is uploaded before the faults
    server.add_fault("stall", after_records=9_000, delay=STALL)
    server.add_fault("malformed", after_records=10_000)
    client, bucket = s3
    op = two_windows_at_once(bucket, "ff/{window}/data.jsonl")
    started = time.monotonic()
    with pytest.raises(MixpanelMalformedRecordError):
        op.execute({})
    elapsed = time.monotonic() - started
    assert elapsed < STALL / 2, f"the task waited {elapsed:.1f}s for the stalled window"
    assert open_multipart_uploads(client, bucket) == [], "the stalled window's upload must be aborted"
    assert s3_objects(client, bucket) == {}


def test_hook_client_is_built_once_before_windows_fan_out(mixpanel, s3, monkeypatch):
    """Window threads share one client, built on the task's thread before they start (on Python
    3.12+ a cached_property built in several threads at once is built several times)."""
    from airflow_provider_mixpanel import client as client_module

    built_on: list[str] = []
    real_init = client_module.MixpanelClient.__init__

    def recording_init(self, *args, **kwargs):
        built_on.append(threading.current_thread().name)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(client_module.MixpanelClient, "__init__", recording_init)
    mixpanel(events_per_day=50)
    manifest = operator(
        s3[1],
        from_date="2024-03-01",
        to_date="2024-03-03",
        window_days=1,
        max_active_windows=3,
        s3_key="w/{window}/data.gz",
    ).execute({})
    assert manifest["records"] == 150
    assert built_on == [threading.main_thread().name], built_on
