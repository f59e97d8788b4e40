"""An export line straight to its normalized JSONL line, property values untouched.

The normalized JSONL record carries every property value exactly as Mixpanel sent it, byte for
byte (``1.50`` stays ``1.50``, ``\\u00e9`` stays escaped, nested objects keep their inner spacing,
key order is kept); only ``event_name``, ``event_time``, ``distinct_id`` and ``insert_id`` are
produced here.

Three roads give the same values, the first that applies:

1. **Splice** (Mixpanel's own layout, nearly every line): the export writes compact JSON that
   starts ``{"event":…,"properties":{"time":…,"distinct_id":…,`` and holds ``$insert_id`` among the
   flat members before any nested value. One msgspec decode into a small struct checks the whole
   line and reads those values; the line's own bytes then show they stand exactly there, and the
   record is the line with the three members cut out: no property is parsed or re-encoded, so
   names keep their spelling too and a name sent twice stays twice.
2. **Members** (any other order or spacing): msgspec reads the properties as
   ``dict[str, Raw]``: each value's bytes are sliced out, never built into Python objects;
   property names are written back as compact UTF-8 JSON strings.
3. **Lenient** (rare): a control character left unescaped inside a string (written back escaped,
   since JSON requires it) or a lone UTF-16 surrogate escape such as ``\\ud83d`` (kept as sent),
   which msgspec refuses, are read by the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import msgspec

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.jsonl import check_object, lenient_members, loads_object
from airflow_provider_mixpanel.records import deterministic_insert_id, event_time_text_cache, utc_time_texts

if TYPE_CHECKING:
    from airflow_provider_mixpanel.identity import IdentityMappings

# A value that never matches a line's bytes: a member absent from the line fails the splice check.
_ABSENT = msgspec.Raw(b"")
_NULL = msgspec.Raw(b"null")


class _SpliceProperties(msgspec.Struct, gc=False):
    """The members of ``properties`` the splice road needs; the others are skipped unbuilt."""

    time: int = -1
    distinct_id: msgspec.Raw = _ABSENT
    insert_id: msgspec.Raw = msgspec.field(name="$insert_id", default=_ABSENT)
    # Read for the identity mappings only (Simplified ID Merge); the record keeps them as sent.
    device_id: msgspec.Raw = msgspec.field(name="$device_id", default=_ABSENT)
    user_id: msgspec.Raw = msgspec.field(name="$user_id", default=_ABSENT)


class _SpliceLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An export line as the splice road reads it: any other top-level member sends it elsewhere,
    since the spliced record would carry it along."""

    event: msgspec.Raw = _ABSENT
    properties: _SpliceProperties = msgspec.field(default_factory=_SpliceProperties)


_splice_decoder = msgspec.json.Decoder(_SpliceLine)
_top = msgspec.json.Decoder(dict[str, msgspec.Raw])
_properties = msgspec.json.Decoder(dict[str, msgspec.Raw])
_value = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_EMPTY = msgspec.Raw(b'""')
_COMMA, _CLOSING_BRACE = b",}"
# msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8.
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError)
_NULL_LITERALS = (b"null", b"")


def event_line_normalizer(
    *, time_in_ms: bool = False, project_timezone: str | tzinfo | None = None, identity: IdentityMappings | None = None
) -> Callable[[bytes], bytes]:
    """A function from one export line (bytes) to its normalized JSONL line (ending in ``\\n``).

    :param identity: also hand each line that converts to it, with the values already read
        (``$device_id``, ``$user_id``, the time text, ``$insert_id``): the identity mappings,
        derived at the cost of a few attribute reads per line.
    :raises MixpanelMalformedRecordError: the line is not a JSON object, or its ``time`` is not a time.
    """
    event_time_text = event_time_text_cache(time_in_ms=time_in_ms, project_timezone=project_timezone)
    general = _general_normalizer(event_time_text, identity)
    if project_timezone is not None:
        return general  # wall-clock times need the zone's rules: the cached general conversion
    # A busy project sends many events per second: their text is read from recent_times.
    recent_times, time_text_of = utc_time_texts(time_in_ms=time_in_ms)

    def normalize(line: bytes) -> bytes:
        try:
            parsed = _splice_decoder.decode(line)
        except _UNREADABLE:  # malformed, or a member of another type: the general road decides
            return general(line)
        properties = parsed.properties
        moment = properties.time
        distinct_id = properties.distinct_id
        insert_id = properties.insert_id
        # b"".join takes Raw values as they are; %-formatting would convert each one (slower).
        head = b"".join(
            (
                b'{"event":',
                parsed.event,
                b',"properties":{"time":',
                b"%d" % moment,
                b',"distinct_id":',
                distinct_id,
                b",",
            )
        )
        if not line.startswith(head) or insert_id == _NULL:
            return general(line)
        # "$insert_id" follows at once, or among the flat members that follow (Mixpanel sorts
        # them: it comes after "$browser", "$city"...); a bracket before it could mean it sits
        # inside a nested value: the general road then.
        start = len(head)
        member = b',"$insert_id":' + insert_id  # with its comma, as the head ends in one
        found = line.find(member, start - 1)
        if found < 0:
            return general(line)
        kept = line[start:found]
        if b"{" in kept or b"[" in kept:
            return general(line)
        end = found + len(member)
        follower = line[end]  # the value must end there: 12 must not pass for the start of 123
        if follower != _COMMA and follower != _CLOSING_BRACE:
            return general(line)
        if not kept and follower == _COMMA:
            end += 1
        text = recent_times.get(moment) or time_text_of(moment)
        if text is None:
            return general(line)
        if identity is not None and properties.user_id is not _ABSENT and properties.device_id is not _ABSENT:
            identity.add(properties.device_id, properties.user_id, text, insert_id, line)
        return b"".join(
            (
                b'{"event_name":',
                parsed.event,
                b',"event_time":"',
                text,
                b'","distinct_id":',
                distinct_id,
                b',"insert_id":',
                insert_id,
                b',"properties":{',
                kept,
                line[end:],
                b"\n",
            )
        )

    return normalize


def _general_normalizer(
    event_time_text: Callable[..., str], identity: IdentityMappings | None = None
) -> Callable[[bytes], bytes]:
    """The members road (any layout msgspec reads), and the lenient road behind it."""

    def normalize(line: bytes) -> bytes:
        try:
            top = _top.decode(line)
            raw_properties = top.get("properties")
            properties = (
                {}
                if raw_properties is None or bytes(raw_properties) in _NULL_LITERALS
                else _properties.decode(raw_properties)
            )
        except _UNREADABLE:
            normalized = _normalize_leniently(line, event_time_text)
            if identity is not None:
                identity.observe(line)
            return normalized
        distinct_id = properties.pop("distinct_id", _EMPTY)
        time_raw = properties.pop("time", None)
        insert_id: msgspec.Raw | str | None = properties.pop("$insert_id", None)
        if insert_id is None or bytes(insert_id) == b"null":  # type: ignore[arg-type]
            insert_id = deterministic_insert_id(loads_object(line))
        event = top.get("event", _EMPTY)
        moment = _value.decode(time_raw) if time_raw is not None else 0
        time_text = event_time_text(moment, lambda: _event_name(event))
        record = {
            "event_name": event,
            "event_time": time_text,
            "distinct_id": distinct_id,
            "insert_id": insert_id,
            "properties": properties,
        }
        normalized = _encoder.encode(record) + b"\n"
        if identity is not None:
            device, user = properties.get("$device_id"), properties.get("$user_id")
            if device is not None and user is not None:
                identity.add(device, user, time_text.encode(), insert_id, line)
        return normalized

    return normalize


class _IdentityProperties(msgspec.Struct, gc=False):
    """What a raw line holds for the identity mappings; any other property is skipped unbuilt."""

    time: Any = 0  # a missing time reads as 0, as normalization reads it
    device_id: msgspec.Raw = msgspec.field(name="$device_id", default=_ABSENT)
    user_id: msgspec.Raw = msgspec.field(name="$user_id", default=_ABSENT)
    insert_id: msgspec.Raw = msgspec.field(name="$insert_id", default=_ABSENT)


class _IdentityLine(msgspec.Struct, gc=False):
    properties: _IdentityProperties | None = None


_identity_decoder = msgspec.json.Decoder(_IdentityLine)


def raw_line_checker(identity: IdentityMappings | None = None) -> Callable[[bytes], bytes]:
    """A function from one export line to itself as a JSONL line (its own bytes, ``\\n`` added),
    checked to be a JSON object; with ``identity``, the one parse that checks it also reads the
    values the identity mappings need.

    :raises MixpanelMalformedRecordError: the line is not a JSON object (or, with ``identity``, it
        is a mapping event whose ``time`` is not a time).
    """
    if identity is None:

        def passthrough(line: bytes) -> bytes:
            check_object(line)
            return line + b"\n"

        return passthrough

    # Recent UTC time texts, as the splice road keeps them (wall-clock zones go through time_bytes).
    recent_times = identity.recent_times if identity.project_timezone is None else {}

    def passthrough_with_identity(line: bytes) -> bytes:
        try:
            properties = _identity_decoder.decode(line).properties
        except _UNREADABLE:  # properties not an object, or what only the standard library reads
            check_object(line)
            identity.observe(line)
            return line + b"\n"
        if properties is not None and properties.user_id is not _ABSENT and properties.device_id is not _ABSENT:
            moment = properties.time
            text = recent_times.get(moment) if type(moment) is int else None  # the common case, without a call
            insert_id = properties.insert_id
            identity.add(
                properties.device_id,
                properties.user_id,
                text or identity.time_bytes(moment, line),
                None if insert_id is _ABSENT or insert_id == _NULL else insert_id,
                line,
            )
        return line + b"\n"

    return passthrough_with_identity


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
    for member, value_text, start in lenient_members(text):
        if member == name:
            return start if value_text.startswith("{") else None
    return None


def _member_texts(text: str, start: int | None) -> list[tuple[str, str]]:
    """(name, value text) of each member of the object at ``start`` (none without one)."""
    if start is None:
        return []
    return [(name, value_text) for name, value_text, _ in lenient_members(text, start)]
