"""The completion manifest of a window: ``_manifest.json``, written beside a window's parts once
they are all committed and its stale parts deleted, and deleted before the window is rewritten.

Its presence says "this folder holds exactly these parts, complete"; sensors wait for it and
readers take the part list and checksums from it instead of listing the folder. The format is a
contract across processes, so it is typed (:class:`WindowManifest`) and versioned
(:data:`MANIFEST_VERSION`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from airflow_provider_mixpanel import __version__

if TYPE_CHECKING:
    from airflow_provider_mixpanel.transfers.storage import StoredObject
    from airflow_provider_mixpanel.transfers.windows import Window

__all__ = [
    "MANIFEST_CONTENT_TYPE",
    "MANIFEST_FILENAME",
    "MANIFEST_VERSION",
    "ManifestPart",
    "ManifestWindow",
    "RequestParameters",
    "WindowManifest",
    "build_manifest",
    "encode_manifest",
    "manifest_folder",
    "manifest_name",
]

#: The manifest's object name within the folder of a window's parts. The leading underscore keeps
#: it out of Spark / Hive / Athena table scans (they skip files starting with ``_``), as Hadoop's
#: ``_SUCCESS`` marker.
MANIFEST_FILENAME = "_manifest.json"
MANIFEST_CONTENT_TYPE = "application/json"
#: Bumped when a field changes meaning or goes away (new fields keep the number).
MANIFEST_VERSION = 1


class ManifestPart(TypedDict):
    """One committed part, as the store lists it."""

    uri: str
    records: int
    bytes: int
    #: the checksum the store reports: S3's ETag (without quotes; ``md5-N`` for a multipart
    #: object), GCS's base64 crc32c
    checksum: str | None
    #: ``"etag"`` or ``"crc32c"``
    checksum_type: str


class ManifestWindow(TypedDict):
    """The event times a window holds: whole UTC days, or some hours of one."""

    first_day: str
    last_day: str
    #: ISO-8601 UTC instants, ``[start, end)``: ``end`` is the first instant after the window
    start: str
    end: str


class RequestParameters(TypedDict):
    """What was asked of Mixpanel, and how it was written."""

    events: list[str] | None
    #: the ``where`` expression sent; an hour window's holds its ``$time`` bounds
    where: str | None
    raw: bool
    #: ``"jsonl"`` or ``"parquet"``
    format: str
    compression: str | None


class WindowManifest(TypedDict):
    """The content of ``_manifest.json``."""

    manifest_version: int
    stream: str
    #: ``None`` for profiles (a snapshot, not a range of event times)
    window: ManifestWindow | None
    parts: list[ManifestPart]
    records: int
    bytes: int
    #: when the export request was sent (UTC, ISO-8601): events Mixpanel processed later are not in it
    exported_at: str
    project_id: int | None
    region: str
    request: RequestParameters
    provider_version: str
    #: the Iceberg snapshot that holds the window (``iceberg_table``), else ``None``
    snapshot_id: int | None


def manifest_folder(template: str) -> str:
    """The folder of a name template's objects: the part of the name before its last ``/``."""
    return template.rpartition("/")[0]


def manifest_name(template: str) -> str:
    """The manifest's object name beside the objects of ``template``."""
    folder = manifest_folder(template)
    return f"{folder}/{MANIFEST_FILENAME}" if folder else MANIFEST_FILENAME


def manifest_window(windows: Iterable[Window]) -> ManifestWindow | None:
    """The span of these windows (consecutive, in order); ``None`` for profiles."""
    spans = [w for w in windows if w.first is not None]
    if not spans:
        return None
    first, last = spans[0], spans[-1]
    assert first.start is not None and last.end is not None and last.last is not None
    return ManifestWindow(
        first_day=str(first.first),
        last_day=str(last.last),
        start=first.start.isoformat(),
        end=last.end.isoformat(),
    )


def build_manifest(
    *,
    stream: str,
    windows: Iterable[Window],
    parts: list[tuple[str, int, StoredObject]],
    exported_at: datetime,
    project_id: int | None,
    region: str,
    request: RequestParameters,
    snapshot_id: int | None = None,
) -> WindowManifest:
    """The manifest of one window's committed parts.

    :param parts: ``(uri, records, stored)`` of each part, in part order: the records counted
        while writing, the size and checksum as the store lists it.
    """
    entries = [
        ManifestPart(
            uri=uri, records=records, bytes=stored.size, checksum=stored.checksum, checksum_type=stored.checksum_type
        )
        for uri, records, stored in parts
    ]
    return WindowManifest(
        manifest_version=MANIFEST_VERSION,
        stream=stream,
        window=manifest_window(windows),
        parts=entries,
        records=sum(p["records"] for p in entries),
        bytes=sum(p["bytes"] for p in entries),
        exported_at=exported_at.isoformat(),
        project_id=project_id,
        region=region,
        request=request,
        provider_version=__version__,
        snapshot_id=snapshot_id,
    )


def encode_manifest(manifest: WindowManifest) -> bytes:
    """The bytes of ``_manifest.json``: indented, for a person reading it too."""
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
