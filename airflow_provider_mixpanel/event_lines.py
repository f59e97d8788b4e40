"""An export line straight to its normalized JSONL line, property values untouched.

The normalized JSONL record carries every property value exactly as Mixpanel sent it, byte for
byte (``1.50`` stays ``1.50``, ``\\u00e9`` stays escaped, nested objects keep their inner spacing,
key order is kept); only ``event_name``, ``event_time``, ``distinct_id`` and ``insert_id`` are
produced here.

Three roads give the same record (as parsed JSON), or the same
:class:`~airflow_provider_mixpanel.errors.MixpanelMalformedRecordError`, the first that applies:

1. **Splice** (Mixpanel's own layout, nearly every line): the export writes compact JSON that
   starts ``{"event":…,"properties":{"time":…,"distinct_id":…,`` and holds ``$insert_id`` among the
   flat members before any nested value. One msgspec decode into a small struct checks the whole
   line and, through its hook, counts the members cut out (``event``, ``time``, ``distinct_id``,
   ``$insert_id``) however their names are spelled; one regular expression shows the line starts
   as Mixpanel writes it, and the record is the line with the three members cut out: no property
   is parsed or re-encoded, so names keep their spelling too. A line where any of those members
   occurs more than once (a name sent twice, a second ``"properties"``) takes the next road.
2. **Members** (any other order or spacing, and those lines): msgspec reads the properties as
   ``dict[str, Raw]``: each value's bytes are sliced out, never built into Python objects;
   property names are written back as compact UTF-8 JSON strings, each once (its last value).
3. **Lenient** (rare): a control character left unescaped inside a string (written back escaped,
   since JSON requires it; nothing else in the value changes) or a lone UTF-16 surrogate escape
   such as ``\\ud83d`` (kept as sent), which msgspec refuses, are read by the standard library;
   values are the text of each member's last occurrence.

The rules every road keeps (docs/hook.rst, "Hostile lines"): UTF-8 throughout (msgspec does not
check the strings it skips, so the line is checked first unless it is ASCII); a repeated name
means its last occurrence and no reserved name survives in ``properties``; numbers of any size
are written as sent; ``properties`` missing, ``null`` or ``[]`` is empty, any other non-object
malformed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import msgspec

from airflow_provider_mixpanel.jsonl import check_object, lenient_members, loads_object, loads_value, require_utf8
from airflow_provider_mixpanel.records import (
    EVENT_RESERVED_PROPERTIES,
    deterministic_insert_id,
    event_time_text_cache,
    properties_object,
    utc_time_texts,
)

if TYPE_CHECKING:
    from airflow_provider_mixpanel.identity import IdentityMappings


class _Seen:
    """A member the splice road counts: its decoder's hook notes each occurrence of the name,
    however it is spelled, and the value (only ``time``'s is used; the others are cut from the
    line's own bytes)."""


_SEEN = _Seen()
# event, time, distinct_id and $insert_id, once each: any other count sends the line elsewhere.
_MEMBERS_CUT = 4
# A value that never matches a line's bytes: an id absent from the line gives no identity mapping.
_ABSENT = msgspec.Raw(b"")
_NULL = msgspec.Raw(b"null")


class _SpliceProperties(msgspec.Struct, gc=False):
    """The members of ``properties`` the splice road needs; the others are skipped unbuilt."""

    time: _Seen | None = None
    distinct_id: _Seen | None = None
    insert_id: _Seen | None = msgspec.field(name="$insert_id", default=None)
    # Read for the identity mappings only (Simplified ID Merge), never cut: the record keeps them as
    # sent, and a name sent twice reads as its last occurrence, as on the other roads.
    device_id: msgspec.Raw = msgspec.field(name="$device_id", default=_ABSENT)
    user_id: msgspec.Raw = msgspec.field(name="$user_id", default=_ABSENT)


class _SpliceLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An export line as the splice road reads it: any other top-level member sends it elsewhere,
    since the spliced record would carry it along."""

    event: _Seen | None = None
    properties: _SpliceProperties = msgspec.field(default_factory=_SpliceProperties)


def _splice_decoder() -> tuple[msgspec.json.Decoder[_SpliceLine], list[Any]]:
    """A decoder of :class:`_SpliceLine` and the list where it notes each counted member's value
    (one per normalizer: the list is its state)."""
    seen: list[Any] = []
    note = seen.append

    def hook(_: type, value: Any) -> _Seen:
        note(value)
        return _SEEN

    return msgspec.json.Decoder(_SpliceLine, dec_hook=hook), seen


_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# The start of a line as Mixpanel writes it: the event's name, then the properties' "time" and
# "distinct_id" (a string, or a whole number), compact.
_HEAD = re.compile(
    rb'\{"event":(' + _STRING + rb'),"properties":\{"time":\d++,"distinct_id":(' + _STRING + rb"|-?\d++),",
    re.DOTALL,
)
_STRING_VALUE = re.compile(_STRING, re.DOTALL)
_INSERT_ID = b',"$insert_id":'
_top = msgspec.json.Decoder(dict[str, msgspec.Raw])
_properties = msgspec.json.Decoder(dict[str, msgspec.Raw])
_value = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_EMPTY = msgspec.Raw(b'""')
_COMMA, _CLOSING_BRACE, _QUOTE = b',}"'
_END = b"}}"
# msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8.
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError)


def event_line_normalizer(
    *, time_in_ms: bool = False, project_timezone: str | tzinfo | None = None, identity: IdentityMappings | None = None
) -> Callable[[bytes], bytes]:
    """A function from one export line (bytes) to its normalized JSONL line (ending in ``\\n``).

    :param identity: also hand each line that converts to it, with the values already read
        (``$device_id``, ``$user_id``, the time text, ``$insert_id``): the identity mappings,
        derived at the cost of a few attribute reads per line.
    :raises MixpanelMalformedRecordError: the line is not a JSON object in UTF-8, its
        ``properties`` is not an object, or its ``time`` is not a time.
    """
    event_time_text = event_time_text_cache(time_in_ms=time_in_ms, project_timezone=project_timezone)
    if project_timezone is not None:
        # wall-clock times need the zone's rules: the cached general conversion
        return _general_normalizer(event_time_text, identity)
    members = _members_normalizer(event_time_text, identity)
    # A busy project sends many events per second: their text is read from recent_times.
    recent_times, time_text_of = utc_time_texts(time_in_ms=time_in_ms)
    decoder, seen = _splice_decoder()
    decode, forget = decoder.decode, seen.clear

    def normalize(line: bytes) -> bytes:
        if not line.isascii():
            require_utf8(line)  # msgspec skips the values it does not build unchecked
        forget()
        try:
            parsed = decode(line)
        except _UNREADABLE:  # malformed, or a member of another type: the general road decides
            return members(line)
        # Each member cut out must occur once, however spelled (a name sent twice means its last
        # occurrence; a second "properties" would be copied along), in the last "properties".
        properties = parsed.properties
        if len(seen) != _MEMBERS_CUT or properties.insert_id is None or properties.distinct_id is None:
            return members(line)
        head = _HEAD.match(line)
        # The line must end with the properties' brace and its own: nothing (not even whitespace)
        # is copied from after them.
        if head is None or not line.endswith(_END):
            return members(line)
        # Counted in the line's order: event, then "time" (a whole number, as the head shows).
        moment = seen[1]
        # "$insert_id" follows at once, or among the flat members that follow (Mixpanel sorts
        # them: it comes after "$browser", "$city"...); a bracket before it could mean it sits
        # inside a nested value: the general road then.
        start = head.end()
        found = line.find(_INSERT_ID, start - 1)
        if found < 0:
            return members(line)
        kept = line[start:found]
        if b"{" in kept or b"[" in kept:
            return members(line)
        value = found + len(_INSERT_ID)
        if line[value] != _QUOTE:  # not a string (null, a number): the general road
            return members(line)
        end = _STRING_VALUE.match(line, value).end()  # type: ignore[union-attr]
        insert_id = line[value:end]
        event, distinct_id = head.groups()
        follower = line[end]
        if follower != _COMMA and follower != _CLOSING_BRACE:
            return members(line)
        if not kept and follower == _COMMA:
            end += 1
        text = recent_times.get(moment) or time_text_of(moment)
        if text is None:
            return members(line)
        if identity is not None and properties.user_id is not _ABSENT and properties.device_id is not _ABSENT:
            # insert_id: the string's JSON text, cut from the line
            identity.add(properties.device_id, properties.user_id, text, msgspec.Raw(insert_id), line)
        return b"".join(
            (
                b'{"event_name":',
                event,
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
    """The members road (any layout msgspec reads), and the lenient road behind it, for any line."""
    members = _members_normalizer(event_time_text, identity)

    def normalize(line: bytes) -> bytes:
        if not line.isascii():
            require_utf8(line)
        return members(line)

    return normalize


def _members_normalizer(
    event_time_text: Callable[..., str], identity: IdentityMappings | None = None
) -> Callable[[bytes], bytes]:
    """The members road for a line whose UTF-8 is checked: msgspec keeps the last of a name sent
    twice, as JSON readers do, and reads names spelled with escapes as the names they spell."""

    def normalize(line: bytes) -> bytes:
        try:
            top = _top.decode(line)
            raw_properties = top.get("properties")
            event = top.get("event", _EMPTY)
            if raw_properties is None:
                properties = {}
            elif memoryview(raw_properties)[:1] == b"{":
                properties = _properties.decode(raw_properties)
            else:
                properties = _no_properties(raw_properties, event)
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
        # loads_value: a number beyond float range (1e400) is read as the standard library reads
        # it (inf), which is then no time.
        moment = loads_value(bytes(time_raw)) if time_raw is not None else 0
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
            return check_object(line) + b"\n"

        return passthrough

    # Recent UTC time texts, as the splice road keeps them (wall-clock zones go through time_bytes).
    recent_times = identity.recent_times if identity.project_timezone is None else {}

    def passthrough_with_identity(line: bytes) -> bytes:
        try:
            properties = _identity_decoder.decode(line).properties
        except _UNREADABLE:  # properties not an object, or what only the standard library reads
            checked = check_object(line)
            identity.observe(line)
            return checked + b"\n"
        # msgspec checks the UTF-8 of what it builds, not of the values it skips: as check_object.
        if not line.isascii():
            require_utf8(line)
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


def _no_properties(raw_properties: msgspec.Raw, event: msgspec.Raw) -> dict[str, msgspec.Raw]:
    """``{}`` for properties that are ``null`` or ``[]``, as ``normalize_event`` reads them."""
    value = loads_value(bytes(raw_properties))
    return properties_object(value, what=f"Event {_event_name(event)!r}", name="properties")


def _event_name(event: msgspec.Raw) -> Any:
    try:
        return loads_value(bytes(event))
    except ValueError:
        return None


def _normalize_leniently(line: bytes, event_time_text: Callable[..., str]) -> bytes:
    """The same record for a line msgspec refuses, read by the standard library; every value
    but the time is the text of the member's last occurrence, as the other roads write it."""
    record = loads_object(line)  # raises MixpanelMalformedRecordError for what nobody can read
    fields = properties_object(record.get("properties"), what=f"Event {record.get('event')!r}", name="properties")
    text = line.decode("utf-8")
    top = {name: (value_text, start) for name, value_text, start in lenient_members(text)}
    event_text, _ = top.get("event", ('""', 0))
    properties_text, properties_start = top.get("properties", ("", 0))
    reserved: dict[str, str] = {}
    kept: list[str] = []
    if properties_text.startswith("{"):
        for name, value_text, _ in lenient_members(text, properties_start):
            if name in EVENT_RESERVED_PROPERTIES:
                reserved[name] = value_text
            else:
                kept.append(f"{_dump(name)}:{value_text}")
    insert_id = reserved.get("$insert_id", "null")
    if insert_id == "null":
        insert_id = _dump(deterministic_insert_id(record))
    out = {
        "event_name": event_text,
        "event_time": _dump(event_time_text(fields.get("time", 0), lambda: record.get("event"))),
        "distinct_id": reserved.get("distinct_id", '""'),
        "insert_id": insert_id,
    }
    head = ",".join(f'"{key}":{value}' for key, value in out.items())
    return f'{{{head},"properties":{{{",".join(kept)}}}}}\n'.encode()


def _dump(value: Any) -> str:
    """Compact JSON of a name or a value we produce; ASCII-escaped only where UTF-8 cannot carry it."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text
