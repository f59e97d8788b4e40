"""MixpanelStreamToGCSOperator: Mixpanel events or profiles into Google Cloud Storage, streamed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_mixpanel.transfers.arguments import task_prefix
from airflow_provider_mixpanel.transfers.base import BaseMixpanelStreamOperator, Destination
from airflow_provider_mixpanel.transfers.gcs_storage import DEFAULT_CHUNK_SIZE, GCSObjectStore, check_chunk_size


class MixpanelStreamToGCSOperator(BaseMixpanelStreamOperator):
    """Stream Mixpanel raw events or profiles into GCS as JSONL (gzip by default) or Parquet, with
    flat memory and no local files: each object is a resumable upload, visible only once finalized.

    Returns a manifest (``files``, ``records``, ``bytes``, ``stream``, ``from_date``, ``to_date``,
    ``parts``, ``manifests``...) to XCom. Re-running the same interval replaces its objects and deletes
    stale parts; each window ends with a ``_manifest.json`` beside its parts, the completion signal
    for sensors (:ref:`howto/late-events`).

    .. seealso::
        :ref:`howto/operator:MixpanelStreamToGCSOperator`

    :param bucket: the bucket to write to (templated).
    :param object_name: the object name (templated), e.g.
        ``"mixpanel/profiles/{{ ds }}/part-{part}.jsonl.gz"``; ``{part}`` becomes the part number,
        ``{window}`` the day exported (events).
    :param gcp_conn_id: the Google Cloud connection (templated); every auth method of the google
        provider's GCSHook works.
    :param impersonation_chain: Optional service account to impersonate using short-term
        credentials, or chained list of accounts required to get the access token of the last
        account in the list, which will be impersonated in the request (templated).
    :param gcs_chunk_size: bytes per resumable-upload request (a multiple of 256 KiB); one chunk
        is held in memory.
    :param identity_object_name: also write each window's identity mappings (Simplified ID
        Merge), derived from the same export lines at no extra request, to these objects
        (templated), e.g. ``"mixpanel/identity/{window}/part-{part}.jsonl.gz"``: ``{window}`` and
        ``{part}`` as in ``object_name`` (``{window}`` in both or in neither), in the events'
        format, with a manifest of their own. See :ref:`howto/identity`.

    The Mixpanel arguments are those of
    :class:`~airflow_provider_mixpanel.transfers.base.BaseMixpanelStreamOperator`.
    """

    template_fields: Sequence[str] = (
        *BaseMixpanelStreamOperator.template_fields,
        "bucket",
        "object_name",
        "gcp_conn_id",
        "impersonation_chain",
        "identity_object_name",
    )
    ui_color = "#7856ff"

    def __init__(
        self,
        *,
        bucket: str,
        object_name: str,
        gcp_conn_id: str = "google_cloud_default",
        impersonation_chain: str | Sequence[str] | None = None,
        gcs_chunk_size: int = DEFAULT_CHUNK_SIZE,
        identity_object_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._check_identity_argument(identity_object_name, "identity_object_name")
        self.identity_object_name = identity_object_name
        self.bucket = bucket
        self.object_name = object_name
        self.gcp_conn_id = gcp_conn_id
        self.impersonation_chain = impersonation_chain
        self.gcs_chunk_size = check_chunk_size(gcs_chunk_size, where=task_prefix(self.task_id))

    def _destination(self) -> Destination:
        name = self.object_name.lstrip("/") if isinstance(self.object_name, str) else self.object_name
        identity = self.identity_object_name
        identity = identity.lstrip("/") if isinstance(identity, str) else identity
        return Destination(self.bucket, name, "bucket", "object_name", identity, "identity_object_name")

    def _object_store(self, bucket: str) -> GCSObjectStore:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        hook = GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
        return GCSObjectStore(hook, bucket, chunk_size=self.gcs_chunk_size)
