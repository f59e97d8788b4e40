"""Every road an export line or an engage result can take, and the slow reference they must all
agree with: ``json.loads`` and the record formats of ``records.py``, written the obvious way."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.event_lines import _general_normalizer, _normalize_leniently, event_line_normalizer
from airflow_provider_mixpanel.jsonl import check_object, loads_object
from airflow_provider_mixpanel.profile_lines import _profile_line_slowly, profile_line
from airflow_provider_mixpanel.records import event_time_text_cache, normalize_event, normalize_profile

MALFORMED = "malformed"
EVENT_KEYS = ["event_name", "event_time", "distinct_id", "insert_id", "properties"]
PROFILE_KEYS = ["distinct_id", "last_seen", "properties"]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def reference_value(line: bytes) -> Any:
    """The line as the standard library reads JSON: UTF-8 only, NaN and Infinity refused.

    :raises ValueError: it is not JSON in UTF-8.
    """
    return json.loads(line.decode("utf-8"), strict=False, parse_constant=_refuse_constant)


def reference_event(line: bytes, *, time_in_ms: bool = False) -> Any:
    """The normalized event as parsed JSON (``event_time`` as its ISO text), or ``MALFORMED``."""
    try:
        value = reference_value(line)
        if not isinstance(value, dict):
            return MALFORMED
        record = normalize_event(value, time_in_ms=time_in_ms)
    except (ValueError, MixpanelMalformedRecordError):
        return MALFORMED
    return {**record, "event_time": record["event_time"].isoformat()}


def reference_raw(line: bytes) -> Any:
    """The raw event as parsed JSON, or ``MALFORMED``."""
    try:
        value = reference_value(line)
    except ValueError:
        return MALFORMED
    return value if isinstance(value, dict) else MALFORMED


def reference_profile(result: bytes) -> Any:
    """The normalized profile as parsed JSON, or ``MALFORMED``."""
    try:
        value = reference_value(result)
        if not isinstance(value, dict):
            return MALFORMED
        return normalize_profile(value)
    except (ValueError, MixpanelMalformedRecordError):
        return MALFORMED


def read_output(out: bytes, keys: list[str]) -> dict[str, Any]:
    """A JSONL line a road wrote, read strictly: one line, UTF-8, JSON without raw control
    characters, NaN or Infinity, an object with exactly ``keys`` in that order."""
    assert out.endswith(b"\n") and out.count(b"\n") == 1, out
    record = json.loads(out.decode("utf-8"), parse_constant=_refuse_constant)
    assert list(record) == keys, out
    return record


def line_roads(*, time_in_ms: bool = False) -> dict[str, Callable[[bytes], bytes]]:
    """Each road from an export line to its normalized JSONL line."""
    event_time_text = event_time_text_cache(time_in_ms=time_in_ms)
    return {
        "splice": event_line_normalizer(time_in_ms=time_in_ms),
        "members": _general_normalizer(event_time_text),
        "lenient": lambda line: _normalize_leniently(line, event_time_text),
    }


def event_roads(*, time_in_ms: bool = False) -> dict[str, Callable[[bytes], Any]]:
    """Each road from an export line to its normalized record as parsed JSON, or ``MALFORMED``."""
    lines = line_roads(time_in_ms=time_in_ms)

    def dicts(line: bytes) -> dict[str, Any]:
        record = normalize_event(loads_object(line), time_in_ms=time_in_ms)
        return {**record, "event_time": record["event_time"].isoformat()}

    roads: dict[str, Callable[[bytes], Any]] = {
        name: _outcome(lambda line, road=road: read_output(road(line), EVENT_KEYS)) for name, road in lines.items()
    }
    roads["stream_events"] = _outcome(dicts)
    return roads


def raw_roads() -> dict[str, Callable[[bytes], Any]]:
    """The raw check (its verdict, the line read back) and the raw dicts of ``stream_events``."""

    def checked(line: bytes) -> Any:
        written = check_object(line) + b"\n"
        record = json.loads(written.decode("utf-8"), parse_constant=_refuse_constant)  # strictly: valid JSON
        assert record == reference_raw(line), written
        return record

    return {"raw check": _outcome(checked), "stream_events raw": _outcome(loads_object)}


def profile_roads() -> dict[str, Callable[[bytes], Any]]:
    """Each road from a compact engage result to its normalized profile as parsed JSON."""
    return {
        "profile_line": _outcome(lambda result: read_output(profile_line(result), PROFILE_KEYS)),
        "member by member": _outcome(lambda result: read_output(_profile_line_slowly(result), PROFILE_KEYS)),
        "stream_profiles": _outcome(lambda result: normalize_profile(loads_object(result))),
    }


def _outcome(road: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``MALFORMED`` for a ``MixpanelMalformedRecordError``; any other exception propagates."""

    def outcome(line: bytes) -> Any:
        try:
            return road(line)
        except MixpanelMalformedRecordError:
            return MALFORMED

    return outcome
