"""Asset events per window: one partition key per window on Airflow 3.3+, the same ``extra`` before."""

from __future__ import annotations

import pytest

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.transfers.asset_events import WINDOWS_KEY, WindowEvent, emit_window_events
from airflow_provider_mixpanel.transfers.iceberg_names import (
    ORPHAN_MIN_AGE_SECONDS,
    AttemptToken,
    attempt_pattern,
    attempt_template,
    check_table_name,
)

WINDOWS = [
    WindowEvent(
        window="2024-03-01", records=10, bytes=100, manifest="s3://b/e/2024-03-01/_manifest.json", snapshot_id=1
    ),
    WindowEvent(
        window="2024-03-02", records=20, bytes=200, manifest="s3://b/e/2024-03-02/_manifest.json", snapshot_id=2
    ),
]


def _asset_and_events():
    try:
        from airflow.sdk import Asset
        from airflow.sdk.execution_time.context import OutletEventAccessors
    except ImportError:  # Airflow 2.11: datasets
        from airflow.datasets import Dataset
        from airflow.utils.context import OutletEventAccessors  # type: ignore[no-redef]

        return Dataset("s3://b/e/"), OutletEventAccessors()
    return Asset(name="mixpanel_events", uri="s3://b/e/"), OutletEventAccessors()


def test_each_window_is_a_partition_key_with_its_details_keyed_by_window():
    asset, outlet_events = _asset_and_events()
    keys = emit_window_events({"outlet_events": outlet_events}, [asset], WINDOWS)
    accessor = outlet_events[asset]
    assert accessor.extra[WINDOWS_KEY]["2024-03-02"]["snapshot_id"] == 2
    assert accessor.extra[WINDOWS_KEY]["2024-03-01"]["records"] == 10
    if hasattr(accessor, "add_partitions"):  # Airflow 3.3+
        assert keys == ["2024-03-01", "2024-03-02"]
        assert accessor.partition_keys == {"2024-03-01", "2024-03-02"}
    else:
        assert keys == [], "no partition keys before Airflow 3.3"


def test_a_subclass_of_asset_gets_the_windows_too():
    asset, outlet_events = _asset_and_events()
    subclass = type("MixpanelEventsAsset", (type(asset),), {})
    try:
        mine = subclass(name="mine", uri="s3://b/mine/")
    except TypeError:  # Airflow 2.11: a Dataset is its URI
        mine = subclass("s3://b/mine/")
    emit_window_events({"outlet_events": outlet_events}, [mine], WINDOWS)
    assert outlet_events[mine].extra[WINDOWS_KEY]["2024-03-01"]["records"] == 10


def test_no_outlets_no_events():
    _, outlet_events = _asset_and_events()
    assert emit_window_events({"outlet_events": outlet_events}, [], WINDOWS) == []
    assert len(outlet_events) == 0


def test_attempt_names_keep_the_template_and_match_any_attempt():
    template = attempt_template("e/2024-03-01/part-{part}.parquet", "0123456789abcdef")
    assert template == "e/2024-03-01/part-{part}-0123456789abcdef.parquet"
    pattern = attempt_pattern(template, "0123456789abcdef")
    assert pattern.match("e/2024-03-01/part-00003-ffffffffffffffff.parquet")
    assert not pattern.match("e/2024-03-01/_manifest.json")
    assert not pattern.match("e/2024-03-01/part-00003.parquet")
    assert attempt_template("p/profiles.parquet", "0123456789abcdef") == "p/profiles-0123456789abcdef.parquet"


def test_only_an_earlier_try_or_an_old_attempt_may_lose_its_unreferenced_parts():
    now = AttemptToken(1_700_000_000, "abc123", 3)
    assert not now.may_still_commit(AttemptToken(now.started - 60, "abc123", 2)), "an earlier try is dead"
    assert now.may_still_commit(AttemptToken(now.started - 60, "def456", 1)), "another task may still commit"
    assert not now.may_still_commit(AttemptToken(now.started - ORPHAN_MIN_AGE_SECONDS, "def456", 1))
    assert AttemptToken.parse(str(now)) == now


@pytest.mark.parametrize("name", ["events", "", ".events", "a..b", "a.b c", None])
def test_a_table_name_needs_a_namespace(name):
    with pytest.raises(MixpanelConfigError, match=r"namespace\.table"):
        check_table_name(name)


def test_nested_namespaces_are_table_names():
    assert check_table_name("lake.mixpanel.events") == "lake.mixpanel.events"
