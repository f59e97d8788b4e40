"""One measured path, run in its own process so its peak RSS is its own.

    python benchmarks/paths.py PATH RECORDS

prints one JSON line: records (``events``), seconds (streaming only: interpreter start and imports
excluded), ``startup_seconds`` (from the process's start to the start of the timing), bytes out,
peak RSS. The environment carries the connections (AIRFLOW_CONN_*) that reach the local servers,
and these settings:

- ``BENCH_BUCKET``: the S3 / GCS bucket;
- ``BENCH_TMP``: the directory of the files the CLI and the naive baseline write (deleted after);
- ``BENCH_GZIP_LEVEL``: a gzip level instead of the operators' default;
- ``BENCH_PAGE_SIZE``: an engage page size instead of the hook's default.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

DAY = "2024-03-01"
WEEK = {"from_date": "2024-03-01", "to_date": "2024-03-08", "window_days": 1}
LEVEL_OVERRIDE = os.environ.get("BENCH_GZIP_LEVEL")
PAGE_SIZE = int(os.environ["BENCH_PAGE_SIZE"]) if os.environ.get("BENCH_PAGE_SIZE") else None
EXTENSIONS = {"gzip": ".jsonl.gz", "zstd": ".jsonl.zst", None: ".jsonl"}


def gzip_level() -> int:
    """The operators' default gzip level, unless the run overrides it; baselines use the same."""
    from airflow_provider_mixpanel.compression import DEFAULT_LEVELS

    return int(LEVEL_OVERRIDE) if LEVEL_OVERRIDE else DEFAULT_LEVELS["gzip"]


class CountingSink:
    """The sink the gzip baselines write into: counts bytes, keeps nothing."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)


def _export_url_and_auth() -> tuple[str, tuple[str, str], dict[str, Any]]:
    conn = json.loads(os.environ["AIRFLOW_CONN_MIXPANEL_DEFAULT"])
    params = {"from_date": DAY, "to_date": DAY, "project_id": conn["extra"]["project_id"]}
    return conn["extra"]["host"] + "/api/2.0/export", (conn["login"], conn["password"]), params


def _output_file() -> str:
    handle, path = tempfile.mkstemp(prefix="bench-", suffix=".jsonl", dir=os.environ.get("BENCH_TMP"))
    os.close(handle)
    return path


def _count_lines(path: str) -> int:
    """Lines of a written file (after the timing), read in large blocks."""
    count = 0
    with open(path, "rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            count += block.count(b"\n")
    return count


# ---------------------------------------------------------------- baselines, written plainly


def baseline_ceiling(events: int) -> dict[str, Any]:
    """The byte ceiling: read the export body as fast as plain code can (large raw reads, one
    zlib gunzip), and gzip it into the sink. No splitting, no parsing."""
    import zlib

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


def _naive_record(line: bytes) -> dict[str, Any]:
    raw = json.loads(line)
    properties = dict(raw.get("properties", {}))
    return {
        "event_name": raw.get("event", ""),
        "event_time": datetime.fromtimestamp(properties.pop("time", 0), UTC).isoformat(),
        "distinct_id": properties.pop("distinct_id", ""),
        "insert_id": properties.pop("$insert_id", None) or str(uuid.uuid4()),
        "properties": properties,
    }


def baseline_naive_file(events: int) -> dict[str, Any]:
    """What issue 12 compares the CLI with: ``requests`` + ``iter_lines`` + ``json.loads`` + the
    normalization written the obvious way + ``json.dumps``, one line at a time into a file."""
    import requests

    url, auth, params = _export_url_and_auth()
    path = _output_file()
    count = 0
    try:
        started = time.perf_counter()
        with (
            open(path, "wb") as out,
            requests.get(url, params=params, auth=auth, stream=True, timeout=600) as response,
        ):
            response.raise_for_status()
            for line in response.iter_lines():
                if not line:
                    continue
                out.write((json.dumps(_naive_record(line)) + "\n").encode("utf-8"))
                count += 1
        seconds = time.perf_counter() - started
        size = os.path.getsize(path)
    finally:
        os.unlink(path)
    return {"events": count, "seconds": seconds, "bytes_out": size}


def baseline_naive_gzip(events: int) -> dict[str, Any]:
    """The same naive loop into gzip (``gzip.GzipFile``, one write per record) and the counting sink."""
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
            gz.write((json.dumps(_naive_record(line)) + "\n").encode("utf-8"))
            count += 1
    gz.close()
    return {"events": count, "seconds": time.perf_counter() - started, "bytes_out": sink.bytes}


# ---------------------------------------------------------------- ours


def cli_to_file(events: int, raw: bool) -> dict[str, Any]:
    """``mixpanel-stream events --from DAY --to DAY -q [--raw] > file``: the command's own ``main``,
    in this process, with stdout (fd 1) on a file. What the command imports is imported first,
    untimed, as for every path; ``startup_seconds`` says what interpreter start and imports cost."""
    import airflow  # noqa: F401 - what the command imports before it streams
    from airflow.models.connection import Connection  # noqa: F401

    from airflow_provider_mixpanel import cli
    from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook  # noqa: F401

    argv = ["events", "--from", DAY, "--to", DAY, "-q"] + (["--raw"] if raw else [])
    path = _output_file()
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.dup2(target, 1)
        started = time.perf_counter()
        code = cli.main(argv)
        seconds = time.perf_counter() - started
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)
    try:
        if code != 0:
            raise SystemExit(f"mixpanel-stream exited {code}")
        count = _count_lines(path)
        size = os.path.getsize(path)
    finally:
        os.unlink(path)
    return {"events": count, "seconds": seconds, "bytes_out": size}


def hook_consume(events: int, raw: bool) -> dict[str, Any]:
    """``MixpanelHook().stream_events()`` consumed: one dict per event."""
    from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook

    hook = MixpanelHook()
    hook.settings  # noqa: B018 - connection lookup outside the timing
    started = time.perf_counter()
    count = sum(1 for _ in hook.stream_events(from_date=DAY, to_date=DAY, raw=raw))
    return {"events": count, "seconds": time.perf_counter() - started, "bytes_out": 0}


def hook_jsonl(events: int, raw: bool) -> dict[str, Any]:
    """``MixpanelHook().stream_events_jsonl()`` consumed: the JSONL line of each event (bytes)."""
    from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook

    hook = MixpanelHook()
    hook.settings  # noqa: B018
    count = size = 0
    started = time.perf_counter()
    for line in hook.stream_events_jsonl(from_date=DAY, to_date=DAY, raw=raw):
        count += 1
        size += len(line)
    return {"events": count, "seconds": time.perf_counter() - started, "bytes_out": size}


def profiles_consume(profiles: int, raw: bool, jsonl: bool) -> dict[str, Any]:
    """``stream_profiles_jsonl()`` (or ``stream_profiles()``, dicts) consumed."""
    from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook

    hook = MixpanelHook()
    hook.settings  # noqa: B018
    stream = hook.stream_profiles_jsonl if jsonl else hook.stream_profiles
    count = size = 0
    started = time.perf_counter()
    for record in stream(raw=raw, page_size=PAGE_SIZE):
        count += 1
        if jsonl:
            size += len(record)
    return {"events": count, "seconds": time.perf_counter() - started, "bytes_out": size}


def memory_store(*, keep: bool = False) -> Any:
    """An object store in this process's memory, with the commit-or-abort behaviour of a real one:
    an object is listed (name and size) once committed, never before, and an aborted one leaves
    nothing. ``keep=False`` counts bytes and keeps no content (the *sink* paths); ``keep=True``
    keeps each committed object's bytes (``MemoryStore.objects``), to read back."""
    import threading

    from airflow_provider_mixpanel.transfers.storage import ObjectStore, ObjectUpload, StoredObject

    class MemoryUpload(ObjectUpload):
        def __init__(self, store: MemoryStore, name: str):
            super().__init__(name)
            self.store = store
            self.size = 0
            self.chunks: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.size += len(data)
            if keep:
                self.chunks.append(bytes(data))

        def commit(self) -> None:
            with self.store.lock:
                self.store.sizes[self.name] = self.size
                if keep:
                    self.store.objects[self.name] = b"".join(self.chunks)
                self.store.committed += 1

        def abort(self) -> None:
            self.chunks = []
            with self.store.lock:
                self.store.aborted += 1

    class MemoryStore(ObjectStore):
        scheme = "memory"
        # Shared by every store of the process (an operator makes one per execute), like a bucket.
        sizes: dict[str, int] = {}
        objects: dict[str, bytes] = {}
        lock = threading.Lock()
        committed = 0
        aborted = 0

        def open(self, name: str, content_type: str) -> ObjectUpload:
            return MemoryUpload(self, name)

        def list_objects(self, prefix: str) -> list[Any]:
            with self.lock:
                return [StoredObject(n, s, None, "etag") for n, s in self.sizes.items() if n.startswith(prefix)]

        def delete(self, names: list[str]) -> None:
            with self.lock:
                for name in names:
                    self.sizes.pop(name, None)
                    self.objects.pop(name, None)

    return MemoryStore


def operator_path(
    records: int,
    destination: str,
    raw: bool,
    compression: str | None = "gzip",
    stream: str = "events",
    **options: Any,
) -> dict[str, Any]:
    """The operator's whole ``execute``. ``destination`` ``sink`` swaps the object store for a
    counting sink, so it compares with the baselines on equal terms; ``s3`` / ``gcs`` use the emulators."""
    from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

    folder = f"bench/{uuid.uuid4().hex}"
    key = f"{folder}/{{window}}/part-{{part}}{EXTENSIONS[compression]}"
    level = int(LEVEL_OVERRIDE) if LEVEL_OVERRIDE and compression == "gzip" else None
    common: dict[str, Any] = dict(task_id="bench", raw=raw, compression=compression, compression_level=level)
    if stream == "profiles":
        key = f"{folder}/part-{{part}}{EXTENSIONS[compression]}"
        common.update(stream="profiles", page_size=PAGE_SIZE, max_file_size_bytes=256 * 1024 * 1024)
    elif stream != "events":  # another snapshot kind: its default arguments
        key = f"{folder}/part-{{part}}{EXTENSIONS[compression]}"
        common.update(stream=stream, max_file_size_bytes=256 * 1024 * 1024)
    else:
        common.update(from_date=DAY, to_date=DAY)
    common.update(options)
    if destination == "gcs":
        operator: Any = MixpanelStreamToGCSOperator(bucket=os.environ["BENCH_BUCKET"], object_name=key, **common)
    else:
        operator = MixpanelStreamToS3Operator(s3_bucket=os.environ.get("BENCH_BUCKET", "sink"), s3_key=key, **common)
    if destination == "sink":
        store = memory_store(keep=False)
        operator._object_store = lambda bucket: store(bucket)  # type: ignore[method-assign]
    operator.hook.settings  # noqa: B018 - connection lookup outside the timing
    started = time.perf_counter()
    manifest = operator.execute({})
    return {"events": manifest["records"], "seconds": time.perf_counter() - started, "bytes_out": manifest["bytes"]}


def _startup_seconds() -> float:
    """Seconds from this process's start (the kernel's start time, 10 ms resolution) to now."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 of the whole line: starttime, in clock ticks since boot
        with open("/proc/uptime") as uptime:
            now = float(uptime.read().split()[0])
        return max(0.0, now - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _peak_rss_kib() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries the parent's resident set
    across fork and exec into it, which would hide the child's own peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _operator_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for destination in ("sink", "s3", "gcs"):
        for shape in ("normalized", "raw"):
            for compression in ("gzip", "zstd"):
                paths[f"{destination}-{shape}-{compression}"] = (
                    lambda n, d=destination, r=(shape == "raw"), c=compression: operator_path(n, d, r, c)
                )
    return paths


PATHS = {
    "baseline-ceiling": baseline_ceiling,
    "naive-file": baseline_naive_file,
    "naive-gzip": baseline_naive_gzip,
    "cli-normalized-file": lambda n: cli_to_file(n, raw=False),
    "cli-raw-file": lambda n: cli_to_file(n, raw=True),
    "hook-jsonl-normalized": lambda n: hook_jsonl(n, raw=False),
    "hook-jsonl-raw": lambda n: hook_jsonl(n, raw=True),
    "hook-dicts-normalized": lambda n: hook_consume(n, raw=False),
    "hook-dicts-raw": lambda n: hook_consume(n, raw=True),
    **_operator_paths(),
    "sink-normalized-none": lambda n: operator_path(n, "sink", raw=False, compression=None),
    # Profiles (the server holds RECORDS profiles).
    "profiles-jsonl-normalized": lambda n: profiles_consume(n, raw=False, jsonl=True),
    "profiles-jsonl-raw": lambda n: profiles_consume(n, raw=True, jsonl=True),
    "profiles-dicts-normalized": lambda n: profiles_consume(n, raw=False, jsonl=False),
    "profiles-gcs-normalized": lambda n: operator_path(n, "gcs", raw=False, stream="profiles"),
    "profiles-gcs-raw": lambda n: operator_path(n, "gcs", raw=True, stream="profiles"),
    "cohort-members-gcs": lambda n: operator_path(n, "gcs", raw=False, stream="cohort_members"),
    # A week of days from a server throttled per connection (network-bound, like real Mixpanel).
    "windows-1": lambda n: operator_path(n, "sink", raw=False, **WEEK, max_active_windows=1),
    "windows-4": lambda n: operator_path(n, "sink", raw=False, **WEEK, max_active_windows=4),
    # One day in hour windows, from a server throttled per connection (benchmarks/scale.py windows).
    "hours-day": lambda n: operator_path(n, "sink", raw=False),
    "hours-24x1": lambda n: operator_path(n, "sink", raw=False, window_hours=1, max_active_windows=1),
    "hours-24x8": lambda n: operator_path(n, "sink", raw=False, window_hours=1, max_active_windows=8),
}


def main() -> None:
    name, records = sys.argv[1], int(sys.argv[2])
    import logging

    logging.disable(logging.WARNING)  # progress lines would only add noise
    startup = None
    if name.startswith("cli-"):
        startup = 0.0  # measured inside, once the command's imports are done
    result = PATHS[name](records) if startup is None else _timed_cli(name, records)
    result["peak_rss_mib"] = _peak_rss_kib() / 1024
    if result["events"] != records:
        raise SystemExit(f"{name}: streamed {result['events']} records, expected {records}")
    print(json.dumps({"path": name, **result}))


def _timed_cli(name: str, records: int) -> dict[str, Any]:
    """The CLI path, with the cost of interpreter start and imports measured in the same process."""
    import airflow  # noqa: F401
    from airflow.models.connection import Connection  # noqa: F401

    from airflow_provider_mixpanel import cli
    from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook  # noqa: F401

    # The first connection lookup initializes Airflow's secrets backends (~1.4 s here): outside the
    # timing, as every other path looks its connection up first; counted in startup_seconds.
    cli._resolve_connection("mixpanel_default")
    startup = _startup_seconds()
    result = PATHS[name](records)
    result["startup_seconds"] = startup
    return result


if __name__ == "__main__":
    main()
