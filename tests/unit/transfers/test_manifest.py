"""The window manifest's name and format, and the checks of lookback_days, window_hours and
write_manifest: pure functions and operators built as a DAG file builds them, no servers."""

from __future__ import annotations

import json
from datetime import date

import pytest

from airflow_provider_mixpanel import __version__
from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.transfers.arguments import check_manifest_folders, check_placeholders
from airflow_provider_mixpanel.transfers.manifest import (
    MANIFEST_VERSION,
    RequestParameters,
    build_manifest,
    encode_manifest,
    manifest_name,
)
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator
from airflow_provider_mixpanel.transfers.storage import StoredObject
from airflow_provider_mixpanel.transfers.windows import PROFILES, plan_windows

REQUEST = RequestParameters(events=None, where=None, raw=False, format="jsonl", compression="gzip")


def operator(**kwargs) -> MixpanelStreamToS3Operator:
    options = {"task_id": "t", "s3_bucket": "b", "s3_key": "e/{window}/part-{part}.jsonl.gz", **kwargs}
    return MixpanelStreamToS3Operator(**options)


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("mixpanel/events/2024-03-01/part-{part}.jsonl.gz", "mixpanel/events/2024-03-01/_manifest.json"),
        ("mixpanel/events/2024-03-01.jsonl.gz", "mixpanel/events/_manifest.json"),
        ("events.jsonl.gz", "_manifest.json"),
    ],
)
def test_the_manifest_sits_in_the_folder_of_the_parts(template, name):
    assert manifest_name(template) == name


def test_manifest_totals_and_window_follow_the_parts():
    windows = plan_windows(date(2024, 3, 1), date(2024, 3, 1), None, window_hours=6)[1:2]
    parts = [
        ("s3://b/e/2024-03-01T06/part-00000.jsonl.gz", 10, StoredObject("x0", 100, "etag-0", "etag")),
        ("s3://b/e/2024-03-01T06/part-00001.jsonl.gz", 5, StoredObject("x1", 60, "etag-1", "etag")),
    ]
    manifest = build_manifest(
        stream="events",
        windows=windows,
        parts=parts,
        exported_at=windows[0].end,  # type: ignore[arg-type]
        project_id=12345,
        region="eu",
        request=REQUEST,
    )
    assert (manifest["records"], manifest["bytes"]) == (15, 160)
    assert manifest["window"] == {
        "first_day": "2024-03-01",
        "last_day": "2024-03-01",
        "start": "2024-03-01T06:00:00+00:00",
        "end": "2024-03-01T12:00:00+00:00",
    }
    assert [p["checksum"] for p in manifest["parts"]] == ["etag-0", "etag-1"]
    assert manifest["provider_version"] == __version__ and manifest["manifest_version"] == MANIFEST_VERSION
    assert json.loads(encode_manifest(manifest)) == manifest, "the manifest must survive JSON unchanged"


def test_a_profiles_manifest_has_no_window():
    manifest = build_manifest(
        stream="profiles",
        windows=[PROFILES],
        parts=[],
        exported_at=plan_windows(date(2024, 3, 1), date(2024, 3, 1), None)[0].end,  # type: ignore[arg-type]
        project_id=1,
        region="us",
        request=REQUEST,
    )
    assert manifest["window"] is None and manifest["records"] == 0


def test_windows_in_one_folder_would_share_a_manifest():
    with pytest.raises(MixpanelConfigError, match=r"would share one 'e/_manifest.json'.*write_manifest=False"):
        check_manifest_folders(["e/2024-03-01.jsonl.gz", "e/2024-03-02.jsonl.gz"], "s3_key", where="Task 't': ")
    check_manifest_folders(["e/2024-03-01/a.jsonl.gz", "e/2024-03-02/a.jsonl.gz"], "s3_key")
    # Windows written into one name template (no {window}) are one output, with one manifest.
    check_manifest_folders(["e/part-{part}.gz", "e/part-{part}.gz"], "s3_key")


def test_parts_spread_over_folders_cannot_have_one_manifest():
    with pytest.raises(MixpanelConfigError, match=r"puts \{part\} in the folder"):
        check_manifest_folders(["e/{part}/data.jsonl.gz"], "s3_key")


def test_parts_named_like_the_manifest_are_refused():
    with pytest.raises(MixpanelConfigError, match="names the parts like the window's manifest"):
        check_manifest_folders(["e/_manifest.json"], "s3_key")


def test_lookback_needs_window_in_the_name():
    with pytest.raises(MixpanelConfigError, match=r"lookback_days=5 re-exports each day.*must hold \{window\}"):
        check_placeholders("e/part-{part}.gz", "s3_key", rotating=True, max_active_windows=1, lookback_days=5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window_hours": 5}, r"window_hours=5 does not divide a day: use one of 1, 2, 3, 4, 6, 8, 12, 24"),
        ({"window_hours": 0}, "window_hours=0"),
        ({"window_hours": "6"}, "window_hours='6'"),
        ({"window_hours": 6, "window_days": 1}, "a window is either several days or some hours of one day"),
        ({"lookback_days": -1}, "lookback_days=-1"),
        ({"lookback_days": True}, "lookback_days=True"),
        ({"lookback_days": 5, "window_days": 7}, "lookback_days=5 replaces each day in objects of its own"),
        ({"write_manifest": "yes"}, "write_manifest='yes'"),
        ({"stream": "profiles", "lookback_days": 5, "s3_key": "p.gz"}, "lookback_days select events"),
        ({"stream": "profiles", "window_hours": 6, "s3_key": "p.gz"}, "window_hours select events"),
    ],
)
def test_bad_window_arguments_fail_when_the_dag_is_parsed(kwargs, match):
    with pytest.raises(MixpanelConfigError, match=match) as info:
        operator(**kwargs)
    assert str(info.value).startswith("Task 't': "), "the message must name the task"


def test_good_window_arguments_are_kept():
    op = operator(window_hours=6, lookback_days=5, write_manifest=False)
    assert (op.window_hours, op.lookback_days, op.write_manifest) == (6, 5, False)
    assert (operator().lookback_days, operator().write_manifest, operator().window_hours) == (0, True, None)
    assert operator(lookback_days=5, window_days=1).lookback_days == 5, "one-day windows are days replaced alone"
