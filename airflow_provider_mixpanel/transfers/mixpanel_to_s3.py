"""MixpanelStreamToS3Operator: Mixpanel events or profiles into Amazon S3, streamed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_mixpanel.transfers.arguments import task_prefix
from airflow_provider_mixpanel.transfers.base import BaseMixpanelStreamOperator, Destination
from airflow_provider_mixpanel.transfers.s3_storage import (
    DEFAULT_PART_SIZE,
    S3ObjectStore,
    check_extra_args,
    check_part_size,
)


class MixpanelStreamToS3Operator(BaseMixpanelStreamOperator):
    """Stream Mixpanel raw events or profiles into S3 as JSONL (gzip by default) or Parquet, with
    flat memory and no local files: each object is a multipart upload, visible only once complete.

    Returns a manifest (``files``, ``records``, ``bytes``, ``stream``, ``from_date``, ``to_date``,
    ``parts``, ``manifests``...) to XCom. Re-running the same interval replaces its objects and deletes
    stale parts; each window ends with a ``_manifest.json`` beside its parts, the completion signal
    for sensors (:ref:`howto/late-events`).

    .. seealso::
        :ref:`howto/operator:MixpanelStreamToS3Operator`

    :param s3_bucket: the bucket to write to (templated).
    :param s3_key: the object key (templated), e.g. ``"mixpanel/events/{window}/part-{part}.jsonl.gz"``;
        ``{window}`` becomes the day exported, ``{part}`` the zero-padded part number.
    :param aws_conn_id: the Amazon Web Services connection (templated); every auth method of the
        amazon provider's S3Hook works (``None`` uses boto3's default credential chain).
    :param s3_extra_args: extra arguments for the upload calls, e.g. ``{"ServerSideEncryption": "aws:kms"}``
        or SSE-C keys; each call gets those it takes (SSE-C, ``RequestPayer`` and ``ExpectedBucketOwner``
        also reach every part and the completion).
    :param s3_part_size: bytes per multipart part (at least 5 MiB); one part is held in memory.
    :param identity_key: also write each window's identity mappings (Simplified ID Merge), derived
        from the same export lines at no extra request, to these objects (templated), e.g.
        ``"mixpanel/identity/{window}/part-{part}.jsonl.gz"``: ``{window}`` and ``{part}`` as in
        ``s3_key`` (``{window}`` in both or in neither), in the events' format, with a manifest of
        their own. See :ref:`howto/identity`.

    The Mixpanel arguments are those of
    :class:`~airflow_provider_mixpanel.transfers.base.BaseMixpanelStreamOperator`.
    """

    template_fields: Sequence[str] = (
        *BaseMixpanelStreamOperator.template_fields,
        "s3_bucket",
        "s3_key",
        "aws_conn_id",
        "identity_key",
    )
    ui_color = "#7856ff"

    def __init__(
        self,
        *,
        s3_bucket: str,
        s3_key: str,
        aws_conn_id: str | None = "aws_default",
        s3_extra_args: dict[str, Any] | None = None,
        s3_part_size: int = DEFAULT_PART_SIZE,
        identity_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._check_identity_argument(identity_key, "identity_key")
        self.identity_key = identity_key
        self.s3_bucket = s3_bucket
        self.s3_key = s3_key
        self.aws_conn_id = aws_conn_id
        self.s3_extra_args = check_extra_args(s3_extra_args, where=task_prefix(self.task_id))
        self.s3_part_size = check_part_size(s3_part_size, where=task_prefix(self.task_id))

    def _destination(self) -> Destination:
        key = self.s3_key.lstrip("/") if isinstance(self.s3_key, str) else self.s3_key
        identity = self.identity_key.lstrip("/") if isinstance(self.identity_key, str) else self.identity_key
        return Destination(self.s3_bucket, key, "s3_bucket", "s3_key", identity, "identity_key")

    def _object_store(self, bucket: str) -> S3ObjectStore:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=self.aws_conn_id, extra_args=self.s3_extra_args)
        return S3ObjectStore(hook, bucket, part_size=self.s3_part_size)
