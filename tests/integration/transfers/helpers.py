"""Reading back what the operators wrote."""

from __future__ import annotations

import gzip
import json
from typing import Any

from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

MANIFEST = "_manifest.json"
# The window leases (``_lease.json``, ``_lease.<parts>.json``) a run leaves, released, beside its parts.
LEASE_PREFIX = "_lease"


def is_manifest(name: str) -> bool:
    return name.rpartition("/")[2] == MANIFEST


def is_lease(name: str) -> bool:
    return name.rpartition("/")[2].startswith(LEASE_PREFIX)


def s3_objects(client, bucket, *, manifests: bool = False) -> dict[str, bytes]:
    """The objects in the bucket: the parts, and the window manifests too with ``manifests=True``
    (never the windows' leases)."""
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in listing
        if (manifests or not is_manifest(o["Key"])) and not is_lease(o["Key"])
    }


def gcs_objects(client, bucket, *, manifests: bool = False) -> dict[str, bytes]:
    """The objects in the bucket: the parts, and the window manifests too with ``manifests=True``
    (never the windows' leases)."""
    return {
        b.name: b.download_as_bytes()
        for b in client.list_blobs(bucket)
        if (manifests or not is_manifest(b.name)) and not is_lease(b.name)
    }


def s3_manifests(client, bucket) -> dict[str, dict]:
    """The window manifests in the bucket, parsed."""
    return {k: json.loads(v) for k, v in s3_objects(client, bucket, manifests=True).items() if is_manifest(k)}


def gcs_manifests(client, bucket) -> dict[str, dict]:
    """The window manifests in the bucket, parsed."""
    return {k: json.loads(v) for k, v in gcs_objects(client, bucket, manifests=True).items() if is_manifest(k)}


def jsonl(data: bytes, compression: str | None = "gzip") -> list[dict]:
    if compression == "gzip":
        data = gzip.decompress(data)
    elif compression == "zstd":
        import zstandard

        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return [json.loads(line) for line in data.split(b"\n") if line]


def open_multipart_uploads(client, bucket) -> list:
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def record_s3_calls(operator) -> list[tuple[str, dict]]:
    """Record (operation name, parameters) of every call the operator's S3 client makes, as botocore
    builds them (``before-parameter-build``: before SSE-C keys are encoded)."""
    calls: list[tuple[str, dict]] = []
    real_store = operator._object_store

    def store_with_recorder(bucket):
        store = real_store(bucket)

        def record(params, model, **_):
            calls.append((model.name, dict(params)))

        store.client.meta.events.register("before-parameter-build.s3", record)
        return store

    operator._object_store = store_with_recorder
    return calls


class Destination:
    """One storage emulator's bucket, and an operator writing there."""

    def __init__(self, kind: str, storage: tuple[Any, str]):
        self.kind = kind
        self.client, self.bucket = storage

    def operator(self, name: str, **kwargs: Any) -> MixpanelStreamToS3Operator | MixpanelStreamToGCSOperator:
        options = {"task_id": f"to_{self.kind}", "mixpanel_hook_kwargs": {"backoff_base": 0.01}, **kwargs}
        if self.kind == "s3":
            return MixpanelStreamToS3Operator(s3_bucket=self.bucket, s3_key=name, **options)
        return MixpanelStreamToGCSOperator(bucket=self.bucket, object_name=name, **options)

    def objects(self, *, manifests: bool = False) -> dict[str, bytes]:
        """The parts written (and the window manifests with ``manifests=True``), by name."""
        return (s3_objects if self.kind == "s3" else gcs_objects)(self.client, self.bucket, manifests=manifests)

    @property
    def uri_scheme(self) -> str:
        return "s3" if self.kind == "s3" else "gs"

    def checksum(self, name: str) -> str:
        """What the store reports for the object: S3's ETag without quotes, GCS's crc32c."""
        if self.kind == "s3":
            return self.client.head_object(Bucket=self.bucket, Key=name)["ETag"].strip('"')
        return self.client.bucket(self.bucket).get_blob(name).crc32c

    def manifests(self) -> dict[str, dict]:
        """The window manifests written, parsed, by name."""
        return (s3_manifests if self.kind == "s3" else gcs_manifests)(self.client, self.bucket)
