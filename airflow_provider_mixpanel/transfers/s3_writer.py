"""S3 through the amazon provider's S3Hook: multipart upload with one bounded part buffer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.transfers.writer import ObjectStore, ObjectUpload

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

# S3 parts must be 5 MiB to 5 GiB (but the last); 8 MiB parts allow objects up to ~78 GiB
# (10,000 parts) while holding one part in memory.
DEFAULT_PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
# delete_objects takes at most this many keys per call.
DELETE_BATCH = 1000


class S3ObjectStore(ObjectStore):
    """Objects in one S3 bucket.

    :param hook: the S3Hook whose connection, region, endpoint and ``extra_args`` (e.g. SSE) apply.
    :param part_size: bytes per multipart part (at least 5 MiB); one part is held in memory.
    """

    scheme = "s3"

    def __init__(self, hook: S3Hook, bucket: str, part_size: int = DEFAULT_PART_SIZE):
        super().__init__(bucket)
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size={part_size}: S3 needs parts of at least {MIN_PART_SIZE} bytes")
        self.client = hook.get_conn()
        self.extra_args: dict[str, Any] = dict(getattr(hook, "extra_args", None) or {})
        self.part_size = part_size

    def open(self, name: str, content_type: str) -> ObjectUpload:
        return S3Upload(self, name, content_type)

    def list_names(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def delete(self, names: list[str]) -> None:
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": n} for n in batch], "Quiet": True}
            )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"Could not delete {len(errors)} stale object(s) in s3://{self.bucket}, e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}. Check that the AWS "
                    "connection may s3:DeleteObject there."
                )

    def is_transient(self, error: BaseException) -> bool:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, ReadTimeoutError

        if isinstance(error, ConnectionError | HTTPClientError | ReadTimeoutError):
            return True
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = error.response.get("Error", {}).get("Code", "")
            return status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable")
        return super().is_transient(error)


class S3Upload(ObjectUpload):
    """One object: a single PUT when it fits in one part, else a multipart upload."""

    def __init__(self, store: S3ObjectStore, name: str, content_type: str):
        super().__init__(name)
        self._store = store
        self._content_type = content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._aborted = False

    def write(self, data: bytes) -> None:
        self._buffer += data
        size = self._store.part_size
        while len(self._buffer) >= size:
            self._upload_part(bytes(self._buffer[:size]))
            del self._buffer[:size]

    def _upload_part(self, body: bytes) -> None:
        store = self._store
        if self._aborted:  # on_kill may abort from another thread while a part is in flight
            raise RuntimeError(f"The upload of s3://{store.bucket}/{self.name} was aborted.")
        if self._upload_id is None:
            response = store.client.create_multipart_upload(
                Bucket=store.bucket, Key=self.name, ContentType=self._content_type, **store.extra_args
            )
            self._upload_id = response["UploadId"]
        number = len(self._parts) + 1
        response = store.client.upload_part(
            Bucket=store.bucket, Key=self.name, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})

    def commit(self) -> None:
        store = self._store
        if self._aborted:
            raise RuntimeError(f"The upload of s3://{store.bucket}/{self.name} was aborted.")
        try:
            if self._upload_id is None:
                store.client.put_object(
                    Bucket=store.bucket,
                    Key=self.name,
                    Body=bytes(self._buffer),
                    ContentType=self._content_type,
                    **store.extra_args,
                )
            else:
                if self._buffer:
                    self._upload_part(bytes(self._buffer))
                store.client.complete_multipart_upload(
                    Bucket=store.bucket,
                    Key=self.name,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException:
            self.abort()
            raise
        self._buffer = bytearray()

    def abort(self) -> None:
        self._aborted = True
        self._buffer = bytearray()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self._store.client.abort_multipart_upload(Bucket=self._store.bucket, Key=self.name, UploadId=upload_id)
        except Exception as err:  # the task is failing already; say what may be left behind
            log.error(
                "Could not abort multipart upload %s of s3://%s/%s (%s); an S3 lifecycle rule "
                "AbortIncompleteMultipartUpload removes leftovers.",
                upload_id,
                self._store.bucket,
                self.name,
                err,
            )
