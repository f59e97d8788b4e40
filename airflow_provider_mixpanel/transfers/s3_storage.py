"""S3 through the amazon provider's S3Hook: multipart upload with one bounded part buffer.

The user's ``s3_extra_args`` reach every call that needs them, filtered per operation as
s3transfer (boto3's own upload manager) filters them: SSE-C keys, ``RequestPayer`` and
``ExpectedBucketOwner`` go to each part and to the completion too, not only to the first call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.transfers.storage import (
    ObjectStore,
    ObjectUpload,
    PreconditionFailed,
    StoredObject,
    VersionedObject,
    precondition_text,
)

if TYPE_CHECKING:
    import re

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

# S3's part limits are stated in binary megabytes.
MIB = 1024 * 1024
# S3 parts must be 5 MiB to 5 GiB (but the last); 8 MiB parts allow objects up to ~78 GiB
# (10,000 parts) while holding one part in memory.
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB
# delete_objects takes at most this many keys per call.
DELETE_BATCH = 1000
# HTTP statuses from this one up are the service's failures, which may pass on a second try.
SERVER_ERROR_STATUS = 500
TRANSIENT_ERROR_CODES = ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable")
# A conditional write whose condition failed: 412 PreconditionFailed; 409 ConditionalRequestConflict
# when another conditional write of the key was under way at once; NoSuchKey for If-Match on a key
# that is gone.
CONDITION_FAILED_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")

# The extra arguments each call takes (s3transfer.upload.UploadSubmissionTask.UPLOAD_PART_ARGS and
# COMPLETE_MULTIPART_ARGS): the SSE-C key must accompany every part and the completion, and a
# requester-pays or owner-checked bucket refuses any call without RequestPayer / ExpectedBucketOwner.
SSE_C_ARGS = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5")
BUCKET_ARGS = ("RequestPayer", "ExpectedBucketOwner")
UPLOAD_PART_ARGS = ("ChecksumAlgorithm", *SSE_C_ARGS, *BUCKET_ARGS)
COMPLETE_MULTIPART_ARGS = (*SSE_C_ARGS, *BUCKET_ARGS)
# AbortMultipartUpload, ListObjectsV2 and DeleteObjects take only the bucket's (s3transfer leaves
# them out of the abort, which a requester-pays bucket then refuses).
ABORT_MULTIPART_ARGS = BUCKET_ARGS
# Describe one whole object known in advance (a checksum or size of all of it) or are set by the
# operator: a streamed object cannot honour them.
UNSTREAMABLE_ARGS = (
    "Bucket",
    "Key",
    "Body",
    "ContentLength",
    "ContentMD5",
    "ChecksumType",
    "MpuObjectSize",
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
)


def check_part_size(part_size: Any, *, where: str = "") -> int:
    """``s3_part_size`` checked: a whole number of bytes S3 accepts for a part."""
    if isinstance(part_size, bool) or not isinstance(part_size, int) or part_size < MIN_PART_SIZE:
        raise MixpanelConfigError(
            f"{where}s3_part_size={part_size!r}: S3 needs parts of at least {MIN_PART_SIZE} bytes (5 MiB); "
            f"use e.g. {DEFAULT_PART_SIZE} (the default)."
        )
    return part_size


def check_extra_args(extra_args: Any, *, where: str = "") -> dict[str, Any]:
    """``s3_extra_args`` checked: a dict without the arguments a streamed object cannot honour."""
    if extra_args is None:
        return {}
    if not isinstance(extra_args, Mapping):
        raise MixpanelConfigError(
            # Only the type: the value may hold an SSECustomerKey, which must not reach a log.
            f"{where}s3_extra_args is a {type(extra_args).__name__}: give a dict of upload arguments, e.g. "
            "{'ServerSideEncryption': 'aws:kms'}."
        )
    refused = sorted(set(extra_args) & set(UNSTREAMABLE_ARGS))
    if refused:
        raise MixpanelConfigError(
            f"{where}s3_extra_args holds {', '.join(refused)}: the operator sets these itself, or they describe "
            "a whole object known in advance, which a stream is not. Remove them (ChecksumAlgorithm asks S3 "
            "to check every part instead)."
        )
    return dict(extra_args)


def _conditions(*, if_absent: bool, if_version: str | None) -> dict[str, str]:
    """The conditional-write arguments of PutObject and CompleteMultipartUpload."""
    if if_absent:
        return {"IfNoneMatch": "*"}
    if if_version is not None:
        return {"IfMatch": f'"{if_version}"'}
    return {}


def _condition_failed(error: BaseException) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in CONDITION_FAILED_CODES


def _only(extra_args: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in extra_args.items() if name in names}


class S3ObjectStore(ObjectStore):
    """Objects in one S3 bucket.

    :param hook: the S3Hook whose connection, region, endpoint and ``extra_args`` (e.g. SSE) apply.
    :param bucket: the bucket.
    :param part_size: bytes per multipart part (at least 5 MiB, see :func:`check_part_size`); one
        part is held in memory.
    """

    scheme = "s3"

    def __init__(self, hook: S3Hook, bucket: str, *, part_size: int = DEFAULT_PART_SIZE):
        super().__init__(bucket)
        self.client = hook.get_conn()
        self.extra_args: dict[str, Any] = dict(getattr(hook, "extra_args", None) or {})
        self.bucket_args = _only(self.extra_args, BUCKET_ARGS)
        self._read_args = _only(self.extra_args, (*SSE_C_ARGS, *BUCKET_ARGS))
        self.part_size = part_size

    def open(self, name: str, content_type: str, *, if_absent: bool = False) -> ObjectUpload:
        return S3Upload(self, name, content_type, if_absent=if_absent)

    def read(self, name: str) -> VersionedObject | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name, **self._read_args)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        with response["Body"] as body:
            return VersionedObject(body.read(), response["ETag"].strip('"'))

    def put(
        self, name: str, data: bytes, content_type: str, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                **{"ContentType": content_type, **self.extra_args},
                **_conditions(if_absent=if_absent, if_version=if_version),
            )
        except Exception as err:
            if _condition_failed(err):
                raise PreconditionFailed(
                    self.uri(name), precondition_text(if_absent=if_absent, if_version=if_version)
                ) from err
            raise
        return str(response["ETag"]).strip('"')

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **self.bucket_args):
            for item in page.get("Contents", []):
                etag = item.get("ETag")
                checksum = etag.strip('"') if etag else None
                yield StoredObject(item["Key"], item["Size"], checksum, "etag", item.get("LastModified"))

    def abort_incomplete_uploads(self, prefix: str, pattern: re.Pattern[str]) -> list[str]:
        """Abort the multipart uploads a killed attempt left open under these names (S3 keeps and
        bills them until a lifecycle rule removes them)."""
        from botocore.exceptions import ClientError

        paginator = self.client.get_paginator("list_multipart_uploads")
        aborted: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **self.bucket_args):
            for upload in page.get("Uploads", []):
                key = upload["Key"]
                if not pattern.match(key):
                    continue
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload["UploadId"], **self.bucket_args
                    )
                except ClientError as err:
                    if err.response.get("Error", {}).get("Code") != "NoSuchUpload":
                        raise
                    continue  # completed or aborted meanwhile
                log.warning(
                    "Aborted an incomplete multipart upload of s3://%s/%s started %s, left by an earlier attempt.",
                    self.bucket,
                    key,
                    upload.get("Initiated"),
                )
                aborted.append(key)
        return aborted

    def delete(self, names: list[str]) -> None:
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": n} for n in batch], "Quiet": True}, **self.bucket_args
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
            return status >= SERVER_ERROR_STATUS or code in TRANSIENT_ERROR_CODES
        return super().is_transient(error)


class S3Upload(ObjectUpload):
    """One object: a single PUT when it fits in one part, else a multipart upload."""

    def __init__(self, store: S3ObjectStore, name: str, content_type: str, *, if_absent: bool = False):
        super().__init__(name)
        self._store = store
        self._object_args = {"ContentType": content_type, **store.extra_args}  # the user's ContentType wins
        self._if_absent = if_absent
        self._conditions = _conditions(if_absent=if_absent, if_version=None)
        self._part_args = _only(store.extra_args, UPLOAD_PART_ARGS)
        self._complete_args = _only(store.extra_args, COMPLETE_MULTIPART_ARGS)
        self._abort_args = _only(store.extra_args, ABORT_MULTIPART_ARGS)
        algorithm = store.extra_args.get("ChecksumAlgorithm")
        # With ChecksumAlgorithm S3 checks each part, and the completion lists each part's checksum.
        self._checksum_member = f"Checksum{algorithm.upper()}" if isinstance(algorithm, str) else None
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
        self._refuse_if_aborted()  # on_kill may abort from another thread while a part is in flight
        if self._upload_id is None:
            response = store.client.create_multipart_upload(Bucket=store.bucket, Key=self.name, **self._object_args)
            self._upload_id = response["UploadId"]
        number = len(self._parts) + 1
        response = store.client.upload_part(
            Bucket=store.bucket,
            Key=self.name,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            **self._part_args,
        )
        part = {"ETag": response["ETag"], "PartNumber": number}
        if self._checksum_member and self._checksum_member in response:
            part[self._checksum_member] = response[self._checksum_member]
        self._parts.append(part)

    def commit(self) -> None:
        store = self._store
        self._refuse_if_aborted()
        try:
            if self._upload_id is None:
                store.client.put_object(
                    Bucket=store.bucket,
                    Key=self.name,
                    Body=bytes(self._buffer),
                    **self._object_args,
                    **self._conditions,
                )
            else:
                if self._buffer:
                    self._upload_part(bytes(self._buffer))
                store.client.complete_multipart_upload(
                    Bucket=store.bucket,
                    Key=self.name,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                    **self._complete_args,
                    **self._conditions,
                )
        except BaseException as err:
            self.abort()
            if _condition_failed(err):
                uri = store.uri(self.name)
                raise PreconditionFailed(uri, precondition_text(if_absent=self._if_absent, if_version=None)) from err
            raise
        self._buffer = bytearray()

    def _refuse_if_aborted(self) -> None:
        if self._aborted:
            raise RuntimeError(f"The upload of s3://{self._store.bucket}/{self.name} was aborted.")

    def abort(self) -> None:
        self._aborted = True
        self._buffer = bytearray()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self._store.client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self.name, UploadId=upload_id, **self._abort_args
            )
        except Exception as err:  # the task is failing already; say what may be left behind
            log.error(
                "Could not abort multipart upload %s of s3://%s/%s (%s); an S3 lifecycle rule "
                "AbortIncompleteMultipartUpload removes leftovers.",
                upload_id,
                self._store.bucket,
                self.name,
                err,
            )
