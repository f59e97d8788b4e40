"""Reading back what the operators wrote."""

from __future__ import annotations

import gzip
import json


def s3_objects(client, bucket) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def gcs_objects(client, bucket) -> dict[str, bytes]:
    return {b.name: b.download_as_bytes() for b in client.list_blobs(bucket)}


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
