"""Google Cloud Storage through the google provider's GCSHook: a resumable upload per object."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
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
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)

# Resumable chunks must be multiples of 256 KiB.
CHUNK_MULTIPLE = 256 * 1024
# One chunk is held in memory (the library's default of 40 MiB is more than a streaming transfer needs).
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
# HTTP statuses that may pass on a second try: the service's failures (500 and up) and throttling.
SERVER_ERROR_STATUS = 500
TOO_MANY_REQUESTS = 429
# What a resumable upload's last request answers when its ifGenerationMatch does not hold.
PRECONDITION_FAILED = 412


def check_chunk_size(chunk_size: Any, *, where: str = "") -> int:
    """``gcs_chunk_size`` checked: a positive multiple of 256 KiB, as resumable uploads need."""
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size <= 0
        or chunk_size % CHUNK_MULTIPLE
    ):
        raise MixpanelConfigError(
            f"{where}gcs_chunk_size={chunk_size!r}: GCS needs a positive multiple of {CHUNK_MULTIPLE} bytes "
            f"(256 KiB); use e.g. {DEFAULT_CHUNK_SIZE} (the default)."
        )
    return chunk_size


class GCSObjectStore(ObjectStore):
    """Objects in one GCS bucket.

    :param hook: the GCSHook whose connection and impersonation chain apply.
    :param bucket: the bucket.
    :param chunk_size: bytes per resumable-upload request, a multiple of 256 KiB (see
        :func:`check_chunk_size`).
    """

    scheme = "gs"

    def __init__(self, hook: GCSHook, bucket: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE):
        super().__init__(bucket)
        self.client = hook.get_conn()
        self.chunk_size = chunk_size

    def open(self, name: str, content_type: str, *, if_absent: bool = False) -> ObjectUpload:
        return GCSUpload(self, name, content_type, if_absent=if_absent)

    def read(self, name: str) -> VersionedObject | None:
        from google.api_core.exceptions import NotFound

        blob = self.client.bucket(self.bucket).blob(name)
        try:
            data = blob.download_as_bytes()  # sets blob.generation from the response
        except NotFound:
            return None
        return VersionedObject(data, str(blob.generation))

    def put(
        self, name: str, data: bytes, content_type: str, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        from google.api_core.exceptions import PreconditionFailed as GooglePreconditionFailed

        blob = self.client.bucket(self.bucket).blob(name)
        generation = _generation_match(if_absent=if_absent, if_version=if_version)
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=generation)
        except GooglePreconditionFailed as err:
            raise PreconditionFailed(
                self.uri(name), precondition_text(if_absent=if_absent, if_version=if_version)
            ) from err
        return str(blob.generation)

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        for blob in self.client.list_blobs(self.bucket, prefix=prefix):
            yield StoredObject(blob.name, blob.size, blob.crc32c, "crc32c", blob.updated)

    # abort_incomplete_uploads: the base's no-op. An unfinalized resumable session never becomes
    # an object, holds no billed storage, and expires by itself after a week.

    def delete(self, names: list[str]) -> None:
        from google.api_core.exceptions import NotFound

        bucket = self.client.bucket(self.bucket)
        for name in names:
            with contextlib.suppress(NotFound):
                bucket.delete_blob(name)

    def is_transient(self, error: BaseException) -> bool:
        from google.api_core import exceptions as api
        from requests import ConnectionError as RequestsConnectionError

        if isinstance(error, api.ServerError | api.TooManyRequests | RequestsConnectionError):
            return True
        status = getattr(getattr(error, "response", None), "status_code", None)
        if isinstance(status, int) and (status >= SERVER_ERROR_STATUS or status == TOO_MANY_REQUESTS):
            return True
        return super().is_transient(error)


def _generation_match(*, if_absent: bool, if_version: str | None) -> int | None:
    """GCS's ``ifGenerationMatch``: 0 means "no live object of that name"."""
    if if_absent:
        return 0
    return int(if_version) if if_version is not None else None


class GCSUpload(ObjectUpload):
    """One object through ``Blob.open("wb")``: invisible until :meth:`commit` finalizes it. With
    ``if_absent`` the resumable session carries ``ifGenerationMatch=0``, which GCS checks when the
    object is finalized."""

    def __init__(self, store: GCSObjectStore, name: str, content_type: str, *, if_absent: bool = False):
        super().__init__(name)
        blob = store.client.bucket(store.bucket).blob(name, chunk_size=store.chunk_size)
        self._uri = store.uri(name)
        self._bucket = store.bucket
        self._if_absent = if_absent
        conditions = {"if_generation_match": 0} if if_absent else {}
        self._writer: Any = blob.open("wb", content_type=content_type, ignore_flush=True, **conditions)

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    def commit(self) -> None:
        from google.api_core.exceptions import PreconditionFailed as GooglePreconditionFailed

        try:
            self._writer.close()  # uploads the last chunk and finalizes the object
        except BaseException as err:
            self.abort()
            if (
                isinstance(err, GooglePreconditionFailed)
                or getattr(getattr(err, "response", None), "status_code", None) == PRECONDITION_FAILED
            ):
                raise PreconditionFailed(
                    self._uri, precondition_text(if_absent=self._if_absent, if_version=None)
                ) from err
            raise

    def abort(self) -> None:
        writer = self._writer
        if writer.closed:
            return
        try:
            writer.terminate()  # cancels the resumable session and closes the buffer
        except Exception as err:
            log.warning(
                "Could not cancel the upload of gs://%s/%s (%s); it expires unfinalized.", self._bucket, self.name, err
            )
        finally:
            # Without a closed buffer, garbage collection would call close() and finalize a partial object.
            buffer = getattr(writer, "_buffer", None)
            if buffer is not None and not buffer.closed:
                buffer.close()
