"""output_format, compression and schema_object_name are checked when the DAG is parsed."""

from __future__ import annotations

import importlib.util

import pytest

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator


def s3(**kwargs):
    return MixpanelStreamToS3Operator(task_id="t", s3_bucket="b", s3_key="k/{window}/part-{part}.parquet", **kwargs)


def test_defaults_are_gzip_jsonl_and_zstd_parquet():
    assert (s3().output_format, s3().compression) == ("jsonl", "gzip")
    assert s3(output_format="parquet").compression == "zstd"
    assert s3(output_format="parquet", compression="snappy").compression == "snappy"
    assert s3(output_format="parquet", compression="none").compression is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_format": "csv"}, "Task 't': output_format='csv': use 'jsonl' or 'parquet'."),
        ({"output_format": "parquet", "compression": "gzip"}, "compression='gzip' is for JSONL"),
        ({"compression": "snappy"}, "compression='snappy': use 'gzip', 'zstd' or None."),
        ({"stream": "profiles", "raw": True, "schema_object_name": "s.json"}, "BigQuery refuses the column names"),
    ],
)
def test_bad_output_arguments_fail_at_parse_time(kwargs, message):
    with pytest.raises(MixpanelConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        s3(**kwargs)


def test_parquet_without_pyarrow_fails_at_parse_time(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(MixpanelConfigError, match=r"Task 't': Parquet output needs pyarrow: .*\[parquet\]"):
        MixpanelStreamToGCSOperator(task_id="t", bucket="b", object_name="o.parquet", output_format="parquet")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "give the object name of the BigQuery schema"),
        ("m/{window}/schema.json", "holds {window}: one schema describes every part"),
    ],
)
def test_rendered_schema_object_name_is_checked_before_any_request(name, message):
    operator = s3(schema_object_name=name)
    with pytest.raises(MixpanelConfigError, match=message):
        operator.execute({})  # fails before the connection is read: no socket is opened


def test_schema_object_name_is_templated():
    assert "schema_object_name" in MixpanelStreamToS3Operator.template_fields
    assert "schema_object_name" in MixpanelStreamToGCSOperator.template_fields


def test_extra_args_not_a_dict_names_only_its_type():
    # A list of pairs may hold an SSE-C key: the error (and so the task log) must not show it.
    secret = "c2VjcmV0LWtleS0zMi1ieXRlcy1sb25nLXh4eHh4eHg="
    with pytest.raises(MixpanelConfigError) as caught:
        s3(s3_extra_args=[("SSECustomerKey", secret)])
    assert secret not in str(caught.value)
    assert "s3_extra_args is a list" in str(caught.value)
