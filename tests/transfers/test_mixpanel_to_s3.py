"""MixpanelStreamToS3Operator against the Mixpanel test server and moto's S3 server."""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from airflow_provider_mixpanel.encoding import dumps_line
from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelMalformedRecordError
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.transfers import base
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator
from tests.transfers.helpers import jsonl, open_multipart_uploads, s3_objects

DAY = "2024-03-01"
FAST_RETRIES = {"backoff_base": 0.01}


def operator(bucket, **kwargs) -> MixpanelStreamToS3Operator:
    options = dict(
        task_id="to_s3",
        s3_bucket=bucket,
        s3_key="events/2024-03-01/part-{part}.jsonl.gz",
        from_date=DAY,
        to_date=DAY,
        mixpanel_hook_kwargs=FAST_RETRIES,
    )
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
    expected = b"".join(dumps_line(r) for r in MixpanelHook().stream_events(from_date=DAY, to_date=DAY))
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
    assert all(len(body) < 256 * 1024 + base.BATCH_BYTES for body in objects.values())
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
    manifest = operator(bucket, stream="profiles", from_date=None, to_date=None, s3_key="p.jsonl.gz").execute({})
    records = jsonl(s3_objects(client, bucket)["p.jsonl.gz"])
    assert len(records) == 1200 == manifest["records"]
    assert set(records[0]) == {"distinct_id", "last_seen", "properties"}
    assert manifest["from_date"] is None


def test_zstd(mixpanel, s3):
    mixpanel(events_per_day=200)
    client, bucket = s3
    operator(bucket, compression="zstd", s3_key="z.jsonl.zst").execute({})
    assert len(jsonl(s3_objects(client, bucket)["z.jsonl.zst"], "zstd")) == 200


def test_progress_is_logged(mixpanel, s3, caplog, monkeypatch):
    mixpanel(events_per_day=2000)
    monkeypatch.setattr(base, "PROGRESS_INTERVAL", 0.0)
    caplog.set_level(logging.INFO, logger="airflow_provider_mixpanel")
    operator(s3[1]).execute({})
    lines = [r.getMessage() for r in caplog.records if "records/s" in r.getMessage()]
    assert any("progress" in line for line in lines) and any("done: 2,000 records" in line for line in lines)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"s3_bucket": ""}, "s3_bucket is empty"),
        ({"s3_key": " "}, "s3_key is empty"),
        ({"max_file_size_bytes": 1_000_000, "s3_key": "a.jsonl.gz"}, r"must hold the placeholder \{part\}"),
        ({"max_file_size_bytes": 10}, "max_file_size_bytes=10"),
        ({"stream": "people"}, "stream='people'"),
        ({"compression": "bz2"}, "compression='bz2'"),
        ({"compression_level": 12}, "compression_level=12"),
        ({"from_date": None}, "needs from_date and to_date"),
        ({"from_date": "2024-03-05"}, "after to_date"),
        ({"to_date": "2024-3-1"}, "to_date='2024-3-1'"),
        ({"window_days": 0}, "window_days=0"),
    ],
)
def test_bad_arguments_fail_before_any_request(mixpanel, s3, kwargs, match):
    server = mixpanel()
    client, bucket = s3
    with pytest.raises(MixpanelConfigError, match=match):
        operator(bucket, **kwargs).execute({})
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
    assert {"from_date", "to_date", "events", "where", "s3_bucket", "s3_key"} <= set(
        MixpanelStreamToS3Operator.template_fields
    )


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


def test_on_kill_aborts_the_upload_in_flight(mixpanel, s3):
    server = mixpanel(events_per_day=12000)
    client, bucket = s3
    op = operator(bucket, compression=None, s3_key="k.jsonl", s3_part_size=5 * 1024 * 1024)
    server.add_fault("stall", after_records=11000, delay=1.0)

    import threading

    def kill_when_part_uploaded():
        for _ in range(200):
            if open_multipart_uploads(client, bucket):
                op.on_kill()
                return
            threading.Event().wait(0.02)

    killer = threading.Thread(target=kill_when_part_uploaded)
    killer.start()
    with pytest.raises(Exception):  # noqa: B017 - aborted mid-part: which call notices first varies
        op.execute({})
    killer.join()
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
            s3_key="f/{window}.jsonl",
        ).execute({})
    for key, body in s3_objects(client, bucket).items():
        assert len(jsonl(body, None)) == 3000, f"{key} is partial"
    assert open_multipart_uploads(client, bucket) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_active_windows": 2, "window_days": 1}, r"must hold \{window\}"),
        ({"max_active_windows": 0}, "max_active_windows=0"),
        ({"max_active_windows": 101, "s3_key": "{window}.gz"}, "max_active_windows=101"),
        ({"stream": "profiles", "s3_key": "{window}.gz", "from_date": None, "to_date": None}, "needs stream='events'"),
    ],
)
def test_window_arguments_are_checked(mixpanel, s3, kwargs, match):
    server = mixpanel()
    with pytest.raises(MixpanelConfigError, match=match):
        operator(s3[1], **kwargs).execute({})
    assert server.requests == []
