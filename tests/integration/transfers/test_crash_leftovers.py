"""A worker killed mid-upload (``kill -9``, the OOM killer, a lost spot node) cannot abort its S3
multipart upload nor release its window's lease. A run of the same window while that lease is
fresh refuses, naming the dead task; once the lease expired, the next run takes the window over,
aborts the upload left open before writing, and leaves a complete day. The killed worker is a real
process: a subprocess running the operator against moto's S3 server and a throttled Mixpanel test
server."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pytest

from airflow_provider_mixpanel.transfers.lease import WindowLockedError
from tests.integration.transfers.helpers import Destination, jsonl, open_multipart_uploads

pytestmark = pytest.mark.integration

DAY = "2024-03-01"
KEY = "ev/{window}/part-{part}.jsonl"
# About 10 MB a day, uncompressed on the wire: the first 5 MiB part is uploaded half-way through.
EVENTS = 12_000
# Two MB/s: the export lasts about five seconds, so the upload stays open for over two seconds
# after its first part, long enough to be seen and killed.
BYTES_PER_SECOND = 2_000_000
PART_SIZE = 5 * 1024 * 1024
# How long the child may take to start (imports Airflow) and open its multipart upload.
OPEN_UPLOAD_TIMEOUT = 90.0
POLL_SECONDS = 0.05
REPOSITORY = Path(__file__).resolve().parents[3]
# The killed task's lease, shortened so the test need not wait two minutes for it to expire.
LEASE_SECONDS = 4.0

CHILD = textwrap.dedent(
    f"""
    import sys
    from airflow_provider_mixpanel.transfers import lease
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

    lease.LEASE_SECONDS, lease.RENEW_SECONDS, lease.SAFETY_SECONDS = {LEASE_SECONDS}, 1.0, 1.0

    MixpanelStreamToS3Operator(
        task_id="killed",
        s3_bucket=sys.argv[1],
        s3_key={KEY!r},
        from_date={DAY!r},
        to_date={DAY!r},
        compression=None,
        s3_part_size={PART_SIZE},
        max_file_size_bytes=64 * 1024 * 1024,
    ).execute({{}})
    """
)


def _wait_for_open_upload(child: subprocess.Popen, client, bucket: str) -> list[dict]:
    deadline = time.monotonic() + OPEN_UPLOAD_TIMEOUT
    while time.monotonic() < deadline:
        uploads = open_multipart_uploads(client, bucket)
        if uploads:
            return uploads
        if child.poll() is not None:
            output = child.stdout.read() if child.stdout else ""
            pytest.fail(f"the child ended ({child.returncode}) before opening an upload:\n{output[-4000:]}")
        time.sleep(POLL_SECONDS)
    child.kill()
    pytest.fail(f"no multipart upload was opened within {OPEN_UPLOAD_TIMEOUT:.0f} s")


def test_sigkilled_upload_is_aborted_by_the_next_run_once_its_lease_expired(mixpanel, s3, caplog):
    server = mixpanel(events_per_day=EVENTS, gzip=False, bytes_per_second=BYTES_PER_SECOND)
    client, bucket = s3
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, bucket],
        cwd=REPOSITORY,
        env=dict(os.environ),  # the Mixpanel and AWS connections the fixtures set
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        uploads = _wait_for_open_upload(child, client, bucket)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert [u["Key"] for u in uploads] == ["ev/2024-03-01/part-00000.jsonl"]
    assert [u["Key"] for u in open_multipart_uploads(client, bucket)] == ["ev/2024-03-01/part-00000.jsonl"], (
        "the killed process must have left its upload open, or this test proves nothing"
    )
    destination = Destination("s3", s3)
    assert destination.objects(manifests=True) == {}, "the killed run must leave no object and no manifest"
    # Someone else's upload in the same folder, not named like the window's parts: left alone.
    client.create_multipart_upload(Bucket=bucket, Key="ev/2024-03-01/notes.bin")

    server.config.bytes_per_second = None
    caplog.set_level(logging.WARNING, logger="airflow_provider_mixpanel")
    options = dict(
        from_date=DAY, to_date=DAY, compression=None, s3_part_size=PART_SIZE, max_file_size_bytes=64 * 1024 * 1024
    )
    with pytest.raises(WindowLockedError, match=rf"killed on host .* \(pid {child.pid}\)"):
        destination.operator(KEY, **options).execute({})  # the dead task's lease is still fresh
    assert sorted(u["Key"] for u in open_multipart_uploads(client, bucket)) == [
        "ev/2024-03-01/notes.bin",
        "ev/2024-03-01/part-00000.jsonl",
    ], "a refused run must not touch the window"

    time.sleep(LEASE_SECONDS)
    result = destination.operator(KEY, **options).execute({})

    assert [u["Key"] for u in open_multipart_uploads(client, bucket)] == ["ev/2024-03-01/notes.bin"]
    assert "taken for dead" in caplog.text
    assert "Aborted 1 incomplete upload(s)" in caplog.text
    records = jsonl(destination.objects()["ev/2024-03-01/part-00000.jsonl"], None)
    assert [r["insert_id"] for r in records] == list(server.expected_insert_ids(date.fromisoformat(DAY)))
    assert result["records"] == EVENTS == destination.manifests()["ev/2024-03-01/_manifest.json"]["records"]
