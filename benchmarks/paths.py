"""One measured path, run in its own process so its peak RSS is its own.

    python benchmarks/paths.py PATH EVENTS

prints one JSON line: events, seconds (streaming only, imports excluded), bytes out, peak RSS.
The environment carries the connections (AIRFLOW_CONN_*) that reach the local servers.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import time
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

DAY = "2024-03-01"
WEEK = {"from_date": "2024-03-01", "to_date": "2024-03-08", "window_days": 1}
LEVEL_OVERRIDE = os.environ.get("BENCH_GZIP_LEVEL")


def gzip_level() -> int:
    """The operators' default gzip level, unless the run overrides it; baselines use the same."""
    from airflow_provider_mixpanel.compression import DEFAULT_LEVELS

    return int(LEVEL_OVERRIDE) if LEVEL_OVERRIDE else DEFAULT_LEVELS["gzip"]


class CountingSink:
    """The sink every gzip path writes into: counts bytes, keeps nothing."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)


def _export_url_and_auth() -> tuple[str, tuple[str, str], dict[str, Any]]:
    conn = json.loads(os.environ["AIRFLOW_CONN_MIXPANEL_DEFAULT"])
    params = {"from_date": DAY, "to_date": DAY, "project_id": conn["extra"]["project_id"]}
    return conn["extra"]["host"] + "/api/2.0/export", (conn["login"], conn["password"]), params


# ---------------------------------------------------------------- baselines, written plainly


def baseline_ceiling(events: int) -> dict[str, Any]:
    """The byte ceiling: read the export body as fast as plain code can (large raw reads, one
    zlib gunzip), and gzip it into the sink. No splitting, no parsing."""
    import requests

    url, auth, params = _export_url_and_auth()
    sink = CountingSink()
    compressor = zlib.compressobj(gzip_level(), zlib.DEFLATED, 31)
    started = time.perf_counter()
    headers = {"Accept-Encoding": "gzip"}
    with requests.get(url, params=params, auth=auth, headers=headers, stream=True, timeout=600) as response:
        response.raise_for_status()
        gunzip = zlib.decompressobj(31)
        for chunk in response.raw.stream(1024 * 1024, decode_content=False):
            sink.write(compressor.compress(gunzip.decompress(chunk)))
    sink.write(compressor.flush())
    return {"events": events, "seconds": time.perf_counter() - started, "bytes_out": sink.bytes}


def baseline_naive(events: int) -> dict[str, Any]:
    """requests + iter_lines + json.loads + the normalization written the obvious way + json.dumps + gzip."""
    import requests

    url, auth, params = _export_url_and_auth()
    sink = CountingSink()
    gz = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=gzip_level())  # type: ignore[arg-type]
    count = 0
    started = time.perf_counter()  # gzip_level() imported the package (and Airflow) above, untimed
    with requests.get(url, params=params, auth=auth, stream=True, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line:
                continue
            raw = json.loads(line)
            properties = dict(raw.get("properties", {}))
            record = {
                "event_name": raw.get("event", ""),
                "event_time": datetime.fromtimestamp(properties.pop("time", 0), UTC).isoformat(),
                "distinct_id": properties.pop("distinct_id", ""),
                "insert_id": properties.pop("$insert_id", None) or str(uuid.uuid4()),
                "properties": properties,
            }
            gz.write((json.dumps(record) + "\n").encode("utf-8"))
            count += 1
    gz.close()
    return {"events": count, "seconds": time.perf_counter() - started, "bytes_out": sink.bytes}


# ---------------------------------------------------------------- ours


def hook_consume(events: int, raw: bool) -> dict[str, Any]:
    from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook

    hook = MixpanelHook()
    hook.settings  # noqa: B018 - connection lookup outside the timing
    started = time.perf_counter()
    count = sum(1 for _ in hook.stream_events(from_date=DAY, to_date=DAY, raw=raw))
    return {"events": count, "seconds": time.perf_counter() - started, "bytes_out": 0}


def operator_path(
    events: int, destination: str, raw: bool, compression: str | None = "gzip", **options: Any
) -> dict[str, Any]:
    """The operator's whole path. ``destination`` ``sink`` swaps the object store for the counting
    sink, so it compares with the baselines on equal terms; ``s3`` / ``gcs`` use the emulators."""
    from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator
    from airflow_provider_mixpanel.transfers.storage import ObjectStore, ObjectUpload

    key = f"bench/{uuid.uuid4().hex}/{{window}}/part-{{part}}.jsonl.gz"
    level = int(LEVEL_OVERRIDE) if LEVEL_OVERRIDE and compression == "gzip" else None
    common = dict(
        task_id="bench", from_date=DAY, to_date=DAY, raw=raw, compression=compression, compression_level=level
    )
    common.update(options)
    if destination == "gcs":
        operator: Any = MixpanelStreamToGCSOperator(bucket=os.environ["BENCH_BUCKET"], object_name=key, **common)
    else:
        operator = MixpanelStreamToS3Operator(s3_bucket=os.environ.get("BENCH_BUCKET", "sink"), s3_key=key, **common)
    sink = CountingSink()
    if destination == "sink":

        class SinkUpload(ObjectUpload):
            def write(self, data: bytes) -> None:
                sink.write(data)

            def commit(self) -> None:
                pass

            def abort(self) -> None:
                pass

        class SinkStore(ObjectStore):
            scheme = "sink"

            def open(self, name: str, content_type: str) -> ObjectUpload:
                return SinkUpload(name)

            def list_names(self, prefix: str) -> list[str]:
                return []

            def delete(self, names: list[str]) -> None:
                pass

        operator._object_store = lambda bucket: SinkStore(bucket)  # type: ignore[method-assign]
    operator.hook.settings  # noqa: B018 - connection lookup outside the timing
    started = time.perf_counter()
    manifest = operator.execute({})
    return {"events": manifest["records"], "seconds": time.perf_counter() - started, "bytes_out": manifest["bytes"]}


def cli_devnull(events: int) -> dict[str, Any]:
    """``mixpanel-stream events ... > /dev/null``, timed from outside (imports included)."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(
            [sys.executable, "-m", "airflow_provider_mixpanel", "events", "--from", DAY, "--to", DAY, "-q"],
            stdout=devnull,
            check=True,
        )
    seconds = time.perf_counter() - started
    # ru_maxrss of a child counts what it inherited at fork; this process is small, so the
    # figure is an upper bound of the command's own peak.
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"events": events, "seconds": seconds, "bytes_out": 0, "child_rss_kib": child}


def _peak_rss_kib() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries the parent's resident set
    across fork and exec into it, which would hide the child's own peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


PATHS = {
    "baseline-ceiling": baseline_ceiling,
    "baseline-naive": baseline_naive,
    "hook-normalized": lambda n: hook_consume(n, raw=False),
    "hook-raw": lambda n: hook_consume(n, raw=True),
    "sink-normalized-gzip": lambda n: operator_path(n, "sink", raw=False),
    "sink-raw-gzip": lambda n: operator_path(n, "sink", raw=True),
    "sink-normalized-zstd": lambda n: operator_path(n, "sink", raw=False, compression="zstd"),
    "sink-normalized-none": lambda n: operator_path(n, "sink", raw=False, compression=None),
    "s3-normalized": lambda n: operator_path(n, "s3", raw=False),
    "s3-raw": lambda n: operator_path(n, "s3", raw=True),
    "gcs-normalized": lambda n: operator_path(n, "gcs", raw=False),
    "gcs-raw": lambda n: operator_path(n, "gcs", raw=True),
    "cli-devnull": cli_devnull,
    # A week of days from a server throttled per connection (network-bound, like real Mixpanel).
    "windows-1": lambda n: operator_path(n, "sink", raw=False, **WEEK, max_active_windows=1),
    "windows-4": lambda n: operator_path(n, "sink", raw=False, **WEEK, max_active_windows=4),
}


def main() -> None:
    name, events = sys.argv[1], int(sys.argv[2])
    import logging

    logging.disable(logging.WARNING)  # progress lines would only add noise
    result = PATHS[name](events)
    result["peak_rss_mib"] = max(_peak_rss_kib(), result.pop("child_rss_kib", 0)) / 1024
    if result["events"] != events:
        raise SystemExit(f"{name}: streamed {result['events']} events, expected {events}")
    print(json.dumps({"path": name, **result}))


if __name__ == "__main__":
    main()
