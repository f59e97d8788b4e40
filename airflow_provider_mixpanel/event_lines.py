"""An export line straight to its normalized JSONL line, property values untouched.

The normalized JSONL record carries every property value exactly as Mixpanel sent it, byte for
byte (``1.50`` stays ``1.50``, ``\\u00e9`` stays escaped, nested objects keep their inner spacing,
key order is kept); only ``event_name``, ``event_time``, ``distinct_id`` and ``insert_id`` are
produced here, and property names are written as compact UTF-8 JSON strings. msgspec reads the
properties as ``dict[str, Raw]``: each value's bytes are sliced out, never built into Python
objects, which makes this about as fast as copying the raw line.

Two rare kinds of line take a slower road that gives the same record: a control character left
unescaped inside a string (written back escaped, since JSON requires it) and a lone UTF-16
surrogate escape such as ``\\ud83d`` (kept as sent), which msgspec refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

import msgspec

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.jsonl import loads_object
from airflow_provider_mixpanel.records import deterministic_insert_id, event_time_text_cache

_top = msgspec.json.Decoder(dict[str, msgspec.Raw])
_properties = msgspec.json.Decoder(dict[str, msgspec.Raw])
_value = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_EMPTY = msgspec.Raw(b'""')
_NULL_LITERALS = (b"null", b"")
# The stdlib reads what msgspec refuses; raw_decode gives each value's end, so its text is kept.
_lenient = json.JSONDecoder(strict=False)
_WHITESPACE = " \t\n\r"


def event_line_normalizer(
    *, time_in_ms: bool = False, project_timezone: str | tzinfo | None = None
) -> Callable[[bytes], bytes]:
    """A function from one export line (bytes) to its normalized JSONL line (ending in ``\\n``).

    :raises MixpanelMalformedRecordError: the line is not a JSON object, or its ``time`` is not a time.
    """
    event_time_text = event_time_text_cache(time_in_ms=time_in_ms, project_timezone=project_timezone)

    def normalize(line: bytes) -> bytes:
        try:
            top = _top.decode(line)
            raw_properties = top.get("properties")
            properties = (
                {}
                if raw_properties is None or bytes(raw_properties) in _NULL_LITERALS
                else _properties.decode(raw_properties)
            )
        except msgspec.DecodeError:
            return _normalize_leniently(line, event_time_text)
        distinct_id = properties.pop("distinct_id", _EMPTY)
        time_raw = properties.pop("time", None)
        insert_id: msgspec.Raw | str | None = properties.pop("$insert_id", None)
        if insert_id is None or bytes(insert_id) == b"null":  # type: ignore[arg-type]
            insert_id = deterministic_insert_id(loads_object(line))
        event = top.get("event", _EMPTY)
        moment = _value.decode(time_raw) if time_raw is not None else 0
        record = {
            "event_name": event,
            "event_time": event_time_text(moment, lambda: _event_name(event)),
            "distinct_id": distinct_id,
            "insert_id": insert_id,
            "properties": properties,
        }
        return _encoder.encode(record) + b"\n"

    return normalize


def _event_name(event: msgspec.Raw) -> Any:
    try:
        return _value.decode(event)
    except msgspec.DecodeError:
        return None


def _normalize_leniently(line: bytes, event_time_text: Callable[..., str]) -> bytes:
    """The same record for a line msgspec refuses, read by the standard library."""
    record = loads_object(line)  # raises MixpanelMalformedRecordError for what nobody can read
    text = line.decode("utf-8")
    properties_text = _member_texts(text, _object_start(text, "properties"))
    fields = record.get("properties") or {}
    if not isinstance(fields, dict):
        raise MixpanelMalformedRecordError(f"Event {record.get('event')!r} has properties that are not an object.")
    insert_id = fields.get("$insert_id")
    out = {
        "event_name": _dump(record.get("event", "")),
        "event_time": _dump(event_time_text(fields.get("time", 0), lambda: record.get("event"))),
        "distinct_id": _dump(fields.get("distinct_id", "")),
        "insert_id": _dump(insert_id if insert_id is not None else deterministic_insert_id(record)),
    }
    kept = [
        f"{_dump(name)}:{value_text}"
        for name, value_text in properties_text
        if name not in ("distinct_id", "time", "$insert_id")
    ]
    head = ",".join(f'"{key}":{value}' for key, value in out.items())
    return f'{{{head},"properties":{{{",".join(kept)}}}}}\n'.encode("utf-8", "surrogatepass")


def _dump(value: Any) -> str:
    """Compact JSON of a value we produce; ASCII-escaped only where UTF-8 cannot carry it."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def _object_start(text: str, name: str) -> int | None:
    """Where the value of top-level member ``name`` starts, if it is an object."""
    for member, value_text, start in _members(text, 0):
        if member == name:
            return start if value_text.startswith("{") else None
    return None


def _member_texts(text: str, start: int | None) -> list[tuple[str, str]]:
    """(name, value text) of each member of the object at ``start``; a value holding a raw
    control character is written back escaped, since JSON requires it."""
    if start is None:
        return []
    texts = []
    for name, value_text, _ in _members(text, start):
        if any(ord(c) < 0x20 for c in value_text):
            value_text = json.dumps(_lenient.decode(value_text), ensure_ascii=True, separators=(",", ":"))
        texts.append((name, value_text))
    return texts


def _members(text: str, start: int) -> list[tuple[str, str, int]]:
    """(name, value text, value start) of each member of the JSON object at ``start``."""
    members: list[tuple[str, str, int]] = []
    index = _skip(text, start)
    if text[index] != "{":
        return members
    index = _skip(text, index + 1)
    if text[index] == "}":
        return members
    while True:
        name, index = _lenient.raw_decode(text, index)
        index = _skip(text, index)
        index = _skip(text, index + 1)  # the ':'
        _, end = _lenient.raw_decode(text, index)
        members.append((name, text[index:end], index))
        index = _skip(text, end)
        if text[index] == "}":
            return members
        index = _skip(text, index + 1)  # the ','


def _skip(text: str, index: int) -> int:
    while text[index] in _WHITESPACE:
        index += 1
    return index
