"""What both operators do alike, run against each of S3 (moto) and GCS (fake-gcs-server)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator
from tests.integration.transfers.helpers import gcs_objects, jsonl, s3_objects

pytestmark = pytest.mark.integration

DESTINATIONS = ["s3", "gcs"]
MIB = 1024 * 1024


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

    def objects(self) -> dict[str, bytes]:
        return (s3_objects if self.kind == "s3" else gcs_objects)(self.client, self.bucket)


@pytest.fixture(params=DESTINATIONS)
def destination(request) -> Destination:
    return Destination(request.param, request.getfixturevalue(request.param))


def test_operator_survives_deepcopy_before_and_after_execute(mixpanel, destination):
    """Airflow deep-copies tasks when a user clears a task with its upstream or downstream."""
    mixpanel(events_per_day=10)
    op = destination.operator("e/{window}/part-{part}.jsonl.gz", from_date="2024-03-01", to_date="2024-03-01")
    parsed_copy = copy.deepcopy(op)
    op.execute({})
    executed_copy = copy.deepcopy(op)
    assert parsed_copy.execute({})["records"] == 10
    assert executed_copy.execute({})["records"] == 10
    assert list(destination.objects()) == ["e/2024-03-01/part-00000.jsonl.gz"]


def test_group_profiles(mixpanel, destination):
    server = mixpanel(profiles=700, page_size=300)
    manifest = destination.operator(
        "mixpanel/groups/company_id/part-{part}.jsonl.gz",
        stream="profiles",
        data_group_id="company_id",
        page_size=250,
        max_file_size_bytes=64 * MIB,
    ).execute({})
    records = jsonl(destination.objects()["mixpanel/groups/company_id/part-00000.jsonl.gz"])
    assert len(records) == 700 == manifest["records"]
    assert {r["distinct_id"] for r in records} == {f"company-{i}" for i in range(700)}
    engage = server.engage_requests()
    assert {r.form.get("data_group_id") for r in engage} == {"company_id"}
    assert {r.form.get("page_size") for r in engage} == {"250"}
