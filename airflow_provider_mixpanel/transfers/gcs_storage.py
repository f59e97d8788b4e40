"""Google Cloud Storage through the google provider's GCSHook: a resumable upload per object."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.transfers.storage import ObjectStore, ObjectUpload, StoredObject

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

    def open(self, name: str, content_type: str) -> ObjectUpload:
        return GCSUpload(self, name, content_type)

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        for blob in self.client.list_blobs(self.bucket, prefix=prefix):
            yield StoredObject(blob.name, blob.size, blob.crc32c, "crc32c")

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


class GCSUpload(ObjectUpload):
    """One object through ``Blob.open("wb")``: invisible until :meth:`commit` finalizes it."""

    def __init__(self, store: GCSObjectStore, name: str, content_type: str):
        super().__init__(name)
        blob = store.client.bucket(store.bucket).blob(name, chunk_size=store.chunk_size)
        self._bucket = store.bucket
        self._writer: Any = blob.open("wb", content_type=content_type, ignore_flush=True)

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    def commit(self) -> None:
        try:
            self._writer.close()  # uploads the last chunk and finalizes the object
        except BaseException:
            self.abort()
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
