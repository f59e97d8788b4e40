"""What both operators do alike, run against each of S3 (moto) and GCS (fake-gcs-server)."""

from __future__ import annotations

import copy

import pytest

from tests.integration.transfers.helpers import Destination, jsonl

pytestmark = pytest.mark.integration

DESTINATIONS = ["s3", "gcs"]
MIB = 1024 * 1024


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
