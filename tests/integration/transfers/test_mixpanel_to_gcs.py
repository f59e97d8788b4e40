"""MixpanelStreamToGCSOperator against the Mixpanel test server and fake-gcs-server."""

from __future__ import annotations

import gzip

import pytest

from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelStreamInterruptedError
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
from tests.integration.transfers.helpers import gcs_objects, jsonl

pytestmark = pytest.mark.integration

DAY = "2024-03-01"
CHUNK = 256 * 1024


def operator(bucket_name, **kwargs) -> MixpanelStreamToGCSOperator:
    options = dict(
        task_id="to_gcs",
        bucket=bucket_name,
        object_name="events/2024-03-01/part-{part}.jsonl.gz",
        from_date=DAY,
        to_date=DAY,
        gcs_chunk_size=CHUNK,
        mixpanel_hook_kwargs={"backoff_base": 0.01},
    )
    if kwargs.get("stream") == "profiles":
        del options["from_date"], options["to_date"]
    options.update(kwargs)
    return MixpanelStreamToGCSOperator(**options)


def test_writes_normalized_gzip_jsonl(mixpanel, gcs):
    mixpanel(events_per_day=700)
    client, bucket = gcs
    manifest = operator(bucket).execute({})
    objects = gcs_objects(client, bucket)
    body = objects["events/2024-03-01/part-00000.jsonl.gz"]
    # Property values exactly as Mixpanel sent them (0.00 stays 0.00): the hook's JSONL, byte for byte.
    expected = b"".join(MixpanelHook().stream_events_jsonl(from_date=DAY, to_date=DAY))
    assert gzip.decompress(body) == expected
    assert manifest["records"] == 700 and manifest["files"] == [f"gs://{bucket}/events/2024-03-01/part-00000.jsonl.gz"]
    assert manifest["bytes"] == len(body)
    blob = client.bucket(bucket).get_blob("events/2024-03-01/part-00000.jsonl.gz")
    assert blob.content_type == "application/gzip"


def test_multi_chunk_object_and_rotation(mixpanel, gcs):
    mixpanel(events_per_day=3000)  # ~2.3 MB uncompressed: several 256 KiB resumable chunks per part
    client, bucket = gcs
    manifest = operator(
        bucket, compression=None, max_file_size_bytes=1024 * 1024, object_name="e/{part}.jsonl"
    ).execute({})
    objects = gcs_objects(client, bucket)
    assert sorted(objects) == [f"e/{i:05d}.jsonl" for i in range(len(objects))] and len(objects) == 3
    records = [r for name in sorted(objects) for r in jsonl(objects[name], None)]
    assert len(records) == 3000 == manifest["records"]
    assert len({r["insert_id"] for r in records}) == 3000


def test_failure_mid_stream_leaves_no_object(mixpanel, gcs):
    server = mixpanel(events_per_day=3000)
    server.add_fault("drop", after_records=2500)
    client, bucket = gcs
    with pytest.raises(MixpanelStreamInterruptedError):
        operator(bucket, compression=None, max_stream_restarts=0, object_name="x.jsonl").execute({})
    assert gcs_objects(client, bucket) == {}


def test_interrupted_stream_is_restarted(mixpanel, gcs):
    server = mixpanel(events_per_day=3000)
    server.add_fault("truncated_gzip", after_records=2000)
    client, bucket = gcs
    manifest = operator(bucket, object_name="y.jsonl.gz").execute({})
    assert len(jsonl(gcs_objects(client, bucket)["y.jsonl.gz"])) == 3000 == manifest["records"]


def test_rerun_deletes_stale_parts(mixpanel, gcs):
    server = mixpanel(events_per_day=3000)
    client, bucket = gcs
    options = dict(compression=None, max_file_size_bytes=512 * 1024, object_name="s/{part}.jsonl")
    first = operator(bucket, **options).execute({})
    server.config.events_per_day = 100
    second = operator(bucket, **options).execute({})
    objects = gcs_objects(client, bucket)
    assert len(first["files"]) > 1 and list(objects) == ["s/00000.jsonl"]
    assert len(second["deleted_stale_files"]) == len(first["files"]) - 1


def test_profiles_raw(mixpanel, gcs):
    mixpanel(profiles=300)
    client, bucket = gcs
    operator(bucket, stream="profiles", raw=True, object_name="p.jsonl.gz").execute({})
    records = jsonl(gcs_objects(client, bucket)["p.jsonl.gz"])
    assert len(records) == 300 and set(records[0]) == {"$distinct_id", "$properties"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bucket": ""}, "bucket is empty"),
        ({"object_name": ""}, "object_name is empty"),
        ({"max_file_size_bytes": 10**6, "object_name": "a.jsonl"}, r"\{part\}"),
        (
            {"object_name": "exports/v1.2/events.jsonl.gz", "max_file_size_bytes": 10**6},
            "'exports/v1.2/events-{part}.jsonl.gz'",
        ),
    ],
)
def test_bad_arguments_fail_before_any_request(mixpanel, gcs, kwargs, match):
    server = mixpanel()
    op = operator(gcs[1], **kwargs)
    with pytest.raises(MixpanelConfigError, match=match):
        op.execute({})
    assert server.requests == []


@pytest.mark.parametrize("chunk_size", [0, 1000, 256 * 1024 + 1, True])
def test_bad_chunk_size_fails_when_the_dag_is_parsed(chunk_size):
    with pytest.raises(MixpanelConfigError, match=f"Task 'to_gcs': gcs_chunk_size={chunk_size!r}"):
        operator("bucket", gcs_chunk_size=chunk_size)


def test_templated_fields():
    templated = {"from_date", "to_date", "events", "where", "data_group_id", "distinct_ids", "bucket"}
    templated |= {"object_name", "impersonation_chain", "mixpanel_conn_id", "gcp_conn_id"}
    assert templated <= set(MixpanelStreamToGCSOperator.template_fields)


def test_lineage(mixpanel, gcs):
    pytest.importorskip("airflow.providers.openlineage")
    mixpanel(events_per_day=10)
    op = operator(gcs[1])
    op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(f"gs://{gcs[1]}", "events/2024-03-01")]
    assert lineage.inputs[0].name == "project/12345/events"
