"""The fault matrix: every failure production throws, injected through the Mixpanel test server
or at the storage boundary, against the real S3 (moto) and GCS (fake-gcs-server) emulators.

Each row asserts the outcome (retried and complete with the exact record count, or failed with the
right exception and a clear message) and that the destination holds complete parts or nothing:
never partial, never duplicated, no open multipart upload.
"""

from __future__ import annotations

import pytest

from airflow_provider_mixpanel.errors import (
    MixpanelAuthError,
    MixpanelMalformedRecordError,
    MixpanelRateLimitError,
    MixpanelServerError,
)
from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator
from tests.integration.transfers.helpers import gcs_objects, jsonl, open_multipart_uploads, s3_objects

pytestmark = pytest.mark.integration

DAY = "2024-03-01"
EVENTS = 12_000  # about 10 MB uncompressed: multipart uploads with 5 MiB parts are in flight
PART = 5 * 1024 * 1024
HOOK = {"backoff_base": 0.01, "read_timeout": 1.0, "max_retries": 3}

# (fault kind, options, outcome): outcome "ok" means retried and complete.
SERVER_FAULTS = {
    "429 with Retry-After": ("status", {"status": 429, "retry_after": "0"}, "ok"),
    "429 without Retry-After": ("status", {"status": 429}, "ok"),
    "429 beyond the retry budget": ("status", {"status": 429, "times": 10}, MixpanelRateLimitError),
    "500": ("status", {"status": 500}, "ok"),
    "502": ("status", {"status": 502}, "ok"),
    "503": ("status", {"status": 503, "times": 2}, "ok"),
    "503 beyond every retry and restart": ("status", {"status": 503, "times": 50}, MixpanelServerError),
    "connection dropped before any record": ("drop", {"after_records": 0}, "ok"),
    "connection dropped after K records": ("drop", {"after_records": 9_000}, "ok"),
    "truncated gzip body": ("truncated_gzip", {"after_records": 9_000}, "ok"),
    "terminated early": ("terminated_early", {"after_records": 9_000}, "ok"),
    "slower than the read timeout": ("stall", {"after_records": 9_000, "delay": 2.5}, "ok"),
    "expired credentials (400)": (
        "status",
        {"status": 400, "body": "Unable to authenticate request"},
        MixpanelAuthError,
    ),
    "401": ("status", {"status": 401, "body": "Invalid credentials"}, MixpanelAuthError),
    "402": ("status", {"status": 402, "body": "Payment required"}, MixpanelAuthError),
    "403": ("status", {"status": 403, "body": "Permission denied"}, MixpanelAuthError),
    "malformed line": ("malformed", {"after_records": 9_000}, MixpanelMalformedRecordError),
}


def s3_operator(bucket: str, **kwargs) -> MixpanelStreamToS3Operator:
    return MixpanelStreamToS3Operator(
        task_id="fault",
        s3_bucket=bucket,
        s3_key="events/part-{part}.jsonl",
        from_date=DAY,
        to_date=DAY,
        compression=None,
        s3_part_size=PART,
        mixpanel_hook_kwargs=HOOK,
        **kwargs,
    )


def assert_complete(objects: dict[str, bytes], expected: int) -> None:
    records = [r for name in sorted(objects) for r in jsonl(objects[name], None)]
    assert len(records) == expected, f"{len(records)} records written, {expected} in the source"
    assert len({r["insert_id"] for r in records}) == expected, "a record was written twice"


@pytest.mark.parametrize("row", list(SERVER_FAULTS), ids=list(SERVER_FAULTS))
def test_server_fault_to_s3(row, mixpanel, s3):
    kind, options, outcome = SERVER_FAULTS[row]
    server = mixpanel(events_per_day=EVENTS)
    server.add_fault(kind, **options)
    client, bucket = s3
    operator = s3_operator(bucket)
    if outcome == "ok":
        manifest = operator.execute({})
        assert manifest["records"] == EVENTS
        assert_complete(s3_objects(client, bucket), EVENTS)
    else:
        with pytest.raises(outcome) as info:
            operator.execute({})
        assert str(info.value), "the error must say what went wrong"
        assert s3_objects(client, bucket) == {}, "a failed run must leave no object"
    assert open_multipart_uploads(client, bucket) == []


@pytest.mark.parametrize("row", ["connection dropped after K records", "truncated gzip body", "401"])
def test_server_fault_to_gcs(row, mixpanel, gcs):
    kind, options, outcome = SERVER_FAULTS[row]
    server = mixpanel(events_per_day=EVENTS)
    server.add_fault(kind, **options)
    client, bucket = gcs
    operator = MixpanelStreamToGCSOperator(
        task_id="fault",
        bucket=bucket,
        object_name="events/part-{part}.jsonl",
        from_date=DAY,
        to_date=DAY,
        compression=None,
        gcs_chunk_size=1024 * 1024,
        mixpanel_hook_kwargs=HOOK,
    )
    if outcome == "ok":
        assert operator.execute({})["records"] == EVENTS
        assert_complete(gcs_objects(client, bucket), EVENTS)
    else:
        with pytest.raises(outcome):
            operator.execute({})
        assert gcs_objects(client, bucket) == {}


def _fail_s3_upload_part(operator: MixpanelStreamToS3Operator, status: int, times: int) -> list[int]:
    """Make the next ``times`` UploadPart calls fail with ``status`` at the botocore boundary."""
    from botocore.exceptions import ClientError

    failures: list[int] = []
    real_store = operator._object_store

    def store_with_fault(bucket):
        store = real_store(bucket)

        def fail(params, **_):
            if len(failures) < times:
                failures.append(len(failures) + 1)
                raise ClientError(
                    {
                        "Error": {"Code": "InternalError" if status >= 500 else "AccessDenied", "Message": "injected"},
                        "ResponseMetadata": {"HTTPStatusCode": status},
                    },
                    "UploadPart",
                )

        store.client.meta.events.register("before-call.s3.UploadPart", fail)
        return store

    operator._object_store = store_with_fault  # type: ignore[method-assign]
    return failures


def test_s3_part_upload_error_is_retried_whole(mixpanel, s3):
    server = mixpanel(events_per_day=EVENTS)
    client, bucket = s3
    operator = s3_operator(bucket)
    failures = _fail_s3_upload_part(operator, 500, times=1)
    assert operator.execute({})["records"] == EVENTS
    assert failures == [1]
    assert_complete(s3_objects(client, bucket), EVENTS)
    assert open_multipart_uploads(client, bucket) == []
    assert len(server.export_requests()) == 2, "the window is streamed again from scratch"


def test_s3_permanent_error_fails_and_leaves_nothing(mixpanel, s3):
    mixpanel(events_per_day=EVENTS)
    client, bucket = s3
    operator = s3_operator(bucket)
    _fail_s3_upload_part(operator, 403, times=1)
    with pytest.raises(Exception, match="AccessDenied"):
        operator.execute({})
    assert s3_objects(client, bucket) == {}
    assert open_multipart_uploads(client, bucket) == []


def test_gcs_chunk_error_is_retried_whole(mixpanel, gcs, monkeypatch):
    from google.cloud.storage import fileio

    server = mixpanel(events_per_day=EVENTS)
    client, bucket = gcs
    real = fileio.BlobWriter._upload_chunks_from_buffer
    failures: list[int] = []

    def flaky(self, num_chunks):
        if not failures and self._upload_and_transport is not None:  # a chunk after the first
            failures.append(num_chunks)
            raise ConnectionError("injected: connection reset while sending a chunk")
        return real(self, num_chunks)

    monkeypatch.setattr(fileio.BlobWriter, "_upload_chunks_from_buffer", flaky)
    operator = MixpanelStreamToGCSOperator(
        task_id="fault",
        bucket=bucket,
        object_name="events/all.jsonl",
        from_date=DAY,
        to_date=DAY,
        compression=None,
        gcs_chunk_size=1024 * 1024,
        mixpanel_hook_kwargs=HOOK,
    )
    assert operator.execute({})["records"] == EVENTS
    assert failures
    assert_complete(gcs_objects(client, bucket), EVENTS)
    assert len(server.export_requests()) == 2
