"""identity_key / identity_object_name are checked when the DAG is parsed, and again, rendered,
before any request."""

from __future__ import annotations

import copy

import pytest

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

EVENTS = "ev/{window}/part-{part}.jsonl.gz"
IDENTITY = "id/{window}/part-{part}.jsonl.gz"


def s3(**kwargs):
    options = {"task_id": "t", "s3_bucket": "b", "s3_key": EVENTS, "identity_key": IDENTITY, **kwargs}
    return MixpanelStreamToS3Operator(**options)


def gcs(**kwargs):
    options = {"task_id": "t", "bucket": "b", "object_name": EVENTS, "identity_object_name": IDENTITY, **kwargs}
    return MixpanelStreamToGCSOperator(**options)


@pytest.mark.parametrize("make", [s3, gcs])
def test_lookback_needs_window_in_the_identity_name_at_parse_time(make):
    argument = "identity_key" if make is s3 else "identity_object_name"
    message = rf"Task 't': lookback_days=5 .* so {argument} must hold \{{window\}}"
    with pytest.raises(MixpanelConfigError, match=message):
        make(lookback_days=5, **{argument: "id/part-{part}.jsonl.gz"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stream": "profiles", "s3_key": "p/part-{part}.gz"}, "identity_key writes the identity mappings derived"),
        ({"max_file_size_bytes": 1 << 20, "identity_key": "id/{window}/all.jsonl.gz"}, "must hold the placeholder"),
        ({"max_active_windows": 4, "identity_key": "id/part-{part}.gz"}, "max_active_windows=4 .* identity_key"),
    ],
)
def test_bad_identity_arguments_fail_at_parse_time(kwargs, message):
    with pytest.raises(MixpanelConfigError, match=message):
        s3(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"identity_key": "id/part-{part}.jsonl.gz"}, r"s3_key holds \{window\} but identity_key does not"),
        ({"identity_key": EVENTS}, "names objects like s3_key"),
        ({"identity_key": "ev/{window}/id-{part}.jsonl.gz"}, "write into the same folder"),
        ({"identity_key": ""}, "identity_key is empty"),
    ],
)
def test_rendered_identity_names_are_checked_before_any_request(kwargs, message):
    operator = s3(from_date="2024-03-01", to_date="2024-03-01", **kwargs)
    with pytest.raises(MixpanelConfigError, match=message):
        operator.execute({})  # no connection exists: a request would fail differently


def test_identity_names_are_templated_and_the_operator_survives_deepcopy():
    assert "identity_key" in MixpanelStreamToS3Operator.template_fields
    assert "identity_object_name" in MixpanelStreamToGCSOperator.template_fields
    assert copy.deepcopy(s3()).identity_key == IDENTITY
