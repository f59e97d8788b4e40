"""What the deployment test checks, on what the DAGs actually wrote: the objects in the buckets
(listed, not assumed: any key layout), their records against what the Mixpanel test server serves
for each day, the per-window ``_manifest.json`` files when there are any, and the places a secret
must never reach."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_provider_mixpanel.transfers.lease import LEASE_FILENAME
from airflow_provider_mixpanel.transfers.manifest import MANIFEST_FILENAME

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


# ---------------------------------------------------------------- the report


@dataclass
class Check:
    name: str
    status: str  # PASS, FAIL, SKIP
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def record(self, name: str, ok: bool, detail: str = "") -> bool:
        check = Check(name, "PASS" if ok else "FAIL", detail)
        self.checks.append(check)
        print(f"[{check.status}] {name}{': ' + detail if detail else ''}", flush=True)
        return ok

    def skip(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, "SKIP", detail))
        print(f"[SKIP] {name}: {detail}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.status == "FAIL"]


class Stopwatch:
    """``with Stopwatch(report, "phase"):`` records how long the phase took."""

    def __init__(self, report: Report, name: str):
        self.report = report
        self.name = name
        self.started = 0.0

    def __enter__(self) -> Stopwatch:
        self.started = time.monotonic()
        print(f"--- {self.name}", flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.report.timings[self.name] = time.monotonic() - self.started


# ---------------------------------------------------------------- objects in a bucket


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int
    updated: datetime


class Bucket:
    """An S3 or GCS bucket seen the same way: list, read."""

    def __init__(self, scheme: str, name: str, client: Any):
        self.scheme = scheme
        self.name = name
        self.client = client

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.name}/{key}"

    def objects(self, prefix: str = "") -> list[StoredObject]:
        if self.scheme == "s3":
            found = []
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
                for item in page.get("Contents", []):
                    found.append(StoredObject(item["Key"], item["Size"], item["LastModified"]))
            return found
        return [StoredObject(b.name, b.size, b.updated) for b in self.client.list_blobs(self.name, prefix=prefix)]

    def read(self, key: str) -> bytes:
        if self.scheme == "s3":
            return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return self.client.bucket(self.name).blob(key).download_as_bytes()

    def incomplete_uploads(self) -> list[dict[str, Any]]:
        """S3's in-progress multipart uploads (what a killed writer leaves behind)."""
        if self.scheme != "s3":
            return []
        return self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])


def decode(body: bytes) -> bytes:
    if body.startswith(GZIP_MAGIC):
        return gzip.decompress(body)
    if body.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    return body


def records(body: bytes) -> Iterator[dict[str, Any]]:
    for line in decode(body).split(b"\n"):
        if line.strip():
            yield json.loads(line)


def is_part(name: str) -> bool:
    return PurePosixPath(name).name != MANIFEST_FILENAME


def folder(name: str) -> str:
    return name.rpartition("/")[0]


# ---------------------------------------------------------------- events and profiles


def event_id(record: dict[str, Any]) -> str:
    if "insert_id" in record:
        return record["insert_id"]
    return record["properties"]["$insert_id"]  # raw


def event_day(record: dict[str, Any]) -> date:
    if "event_time" in record:
        return datetime.fromisoformat(record["event_time"]).astimezone(UTC).date()
    return datetime.fromtimestamp(record["properties"]["time"], UTC).date()  # raw


def profile_id(record: dict[str, Any]) -> str:
    return record["distinct_id"] if "distinct_id" in record else record["$distinct_id"]


@dataclass
class Contents:
    """Every record of a bucket's part objects: ids per day (events) or per folder (profiles), and
    per object how many records it holds."""

    ids: dict[Any, list[str]] = field(default_factory=lambda: defaultdict(list))
    per_object: dict[str, int] = field(default_factory=dict)
    objects: dict[str, StoredObject] = field(default_factory=dict)
    manifests: list[StoredObject] = field(default_factory=list)  # from the same listing
    leases: list[StoredObject] = field(default_factory=list)


def is_lease(name: str) -> bool:
    """A window's lease (``_lease.json``, or ``_lease.<window>.json`` without manifests): one writer
    per window's bookkeeping, neither a part nor a manifest."""
    filename = PurePosixPath(name).name
    return filename == LEASE_FILENAME or (filename.startswith("_lease.") and filename.endswith(".json"))


def read_contents(
    bucket: Bucket, prefix: str, group: Callable[[str, dict[str, Any]], Any], ident: Callable
) -> Contents:
    contents = Contents()
    for obj in bucket.objects(prefix):
        if is_lease(obj.name):
            contents.leases.append(obj)
            continue
        if not is_part(obj.name):
            contents.manifests.append(obj)
            continue
        contents.objects[obj.name] = obj
        count = 0
        for record in records(bucket.read(obj.name)):
            contents.ids[group(obj.name, record)].append(ident(record))
            count += 1
        contents.per_object[obj.name] = count
    return contents


def read_events(bucket: Bucket, prefix: str) -> Contents:
    return read_contents(bucket, prefix, lambda _name, record: event_day(record), event_id)


def read_profiles(bucket: Bucket, prefix: str) -> Contents:
    """Profiles grouped by (folder, kind): a folder may hold user and group profile snapshots."""

    def group(name: str, record: dict[str, Any]) -> tuple[str, str]:
        return folder(name), profile_id(record).split("-")[0]

    return read_contents(bucket, prefix, group, profile_id)


def compare_ids(found: list[str], expected: Iterable[str]) -> str | None:
    """``None`` when ``found`` holds each expected id exactly once; else what is wrong."""
    counts = Counter(found)
    wanted = set(expected)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    missing = len(wanted - counts.keys())
    extra = len(counts.keys() - wanted)
    if not (duplicated or missing or extra):
        return None
    return (
        f"{len(found)} records for {len(wanted)} expected: "
        f"{duplicated} duplicated, {missing} missing, {extra} unexpected"
    )


# ---------------------------------------------------------------- manifests


def check_manifests(bucket: Bucket, contents: Contents) -> tuple[int, list[str]]:
    """Each ``_manifest.json`` against the parts beside it: every listed part exists with its size
    and record count, and every part in its folder is listed. Returns (manifests, problems)."""
    problems: list[str] = []
    manifests = contents.manifests
    for manifest_object in manifests:
        where = bucket.uri(manifest_object.name)
        try:
            manifest = json.loads(bucket.read(manifest_object.name))
        except ValueError as err:
            problems.append(f"{where} is not JSON: {err}")
            continue
        parts = manifest.get("parts") or []
        listed = set()
        for part in parts:
            key = _key_of(part.get("uri", ""), bucket)
            listed.add(key)
            obj = contents.objects.get(key)
            if obj is None:
                problems.append(f"{where} lists {part.get('uri')}, which does not exist")
                continue
            if part.get("bytes") is not None and part["bytes"] != obj.size:
                problems.append(f"{where}: {key} has {obj.size} bytes, the manifest says {part['bytes']}")
            if part.get("records") is not None and part["records"] != contents.per_object.get(key):
                problems.append(
                    f"{where}: {key} holds {contents.per_object.get(key)} records, the manifest says {part['records']}"
                )
        beside = {name for name in contents.objects if folder(name) == folder(manifest_object.name)}
        unlisted = sorted(beside - listed)
        if unlisted:
            problems.append(f"{where} does not list {len(unlisted)} part(s) beside it, e.g. {unlisted[0]}")
        total = manifest.get("records")
        if isinstance(total, int) and total != sum(contents.per_object.get(k, 0) for k in listed):
            problems.append(f"{where}: total records {total} differ from its parts'")
    return len(manifests), problems


def _key_of(uri: str, bucket: Bucket) -> str:
    head = f"{bucket.scheme}://{bucket.name}/"
    return uri[len(head) :] if uri.startswith(head) else uri


# ---------------------------------------------------------------- secrets


def files_containing(root: Path, needles: dict[str, str]) -> dict[str, list[str]]:
    """label -> files under ``root`` (recursively) that contain that secret."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            text = path.read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        for label, secret in needles.items():
            if secret in text:
                found[label].append(str(path))
    return dict(found)


def texts_containing(texts: Iterable[str], needles: dict[str, str]) -> dict[str, int]:
    """label -> how many of ``texts`` contain that secret."""
    found: Counter[str] = Counter()
    for text in texts:
        for label, secret in needles.items():
            if secret in text:
                found[label] += 1
    return dict(found)
