"""Identity mappings of Simplified ID Merge, derived from export lines: which device belongs to which user.

Mixpanel's Simplified ID Merge gives an event without ``$user_id`` the distinct id
``$device:<$device_id>``, and "when a ``$user_id`` and ``$device_id`` are present in the same event
for the first time, a mapping is created" that re-attributes the device's earlier events to the
user, retroactively. The Raw Event Export answers each event's distinct id as resolved when the
export runs, so a day exported before its visitor logged in keeps ``$device:<id>`` for good. Every
mapping event is itself an event of the export, so the mappings can be rebuilt from the lines
already streamed, at no extra request: :class:`IdentityMappings` reads each line and gives a
:class:`IdentityMapping` for the first event of a device that carries both ids.

The record is Data Pipelines' identity table row (``distinct_id``, ``resolved_distinct_id``) plus
the time and ``$insert_id`` of the mapping event, so the earliest mapping of a device across all
exported days decides (see ``docs/identity.rst``).

Memory is bounded however many devices a window has: the devices already written are remembered
in two generations of at most ``max_devices // 2`` each; when the newer one is full the older is
forgotten. A device forgotten and seen again is written again (a repeat, never a loss), and a
device whose events come out of time order is written again when an earlier mapping event turns
up: the SQL rule (earliest mapping per device) makes both harmless. No Airflow here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

import msgspec

from airflow_provider_mixpanel.jsonl import loads_object, loads_value
from airflow_provider_mixpanel.records import deterministic_insert_id, event_time_text_cache, utc_time_texts

__all__ = [
    "DEVICE_PREFIX",
    "IDENTITY_FIELDS",
    "MAX_REMEMBERED_DEVICES",
    "IdentityMapping",
    "IdentityMappings",
    "mapping_event",
]

#: How Simplified ID Merge writes the distinct id of an event that has only a ``$device_id``.
DEVICE_PREFIX = "$device:"
#: The record's fields: Data Pipelines' identity table columns, then the mapping event's time and id.
IDENTITY_FIELDS = ("distinct_id", "resolved_distinct_id", "event_time", "insert_id")
#: Devices remembered as already written, per window: about 150 bytes each (key, time text, two
#: dict slots), so about 15 MB at most; a day with more devices than this may repeat some.
MAX_REMEMBERED_DEVICES = 100_000
# A line can only be a mapping event if it names $user_id, spelled plainly or with an escape.
_USER_ID_KEY = b'"$user_id"'
_ESCAPE = b"\\u"


class _Properties(msgspec.Struct, gc=False):
    """The properties a mapping event is read from; any other property is skipped unbuilt."""

    time: Any = 0  # a missing time reads as 0, as normalization reads it
    device_id: Any = msgspec.field(name="$device_id", default=None)
    user_id: Any = msgspec.field(name="$user_id", default=None)
    insert_id: Any = msgspec.field(name="$insert_id", default=None)


class _Line(msgspec.Struct, gc=False):
    properties: _Properties | None = None


_decoder = msgspec.json.Decoder(_Line)
_MAPPING_NAMES = ("$device_id", "$user_id", "time", "$insert_id")
# msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8.
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError)


class IdentityMapping:
    """One device mapped to its user by an event that carried both ids.

    Kept as the JSON texts the line holds, so a mapping costs no decoding on the events path:
    :meth:`jsonl` splices them, :meth:`record` decodes them.
    """

    __slots__ = ("_distinct_id", "_insert_id", "_resolved_distinct_id", "_time")

    def __init__(self, distinct_id: bytes, resolved_distinct_id: bytes, event_time: bytes, insert_id: bytes):
        """:param distinct_id: JSON text of ``$device:<$device_id>``.
        :param resolved_distinct_id: JSON text of the ``$user_id``.
        :param event_time: the mapping event's ``event_time`` (ISO-8601 UTC), UTF-8.
        :param insert_id: JSON text of its ``$insert_id``."""
        self._distinct_id = distinct_id
        self._resolved_distinct_id = resolved_distinct_id
        self._time = event_time
        self._insert_id = insert_id

    def jsonl(self) -> bytes:
        """The record as a JSONL line, as the operators and ``mixpanel-stream identity`` write it."""
        return b"".join(
            (
                b'{"distinct_id":',
                self._distinct_id,
                b',"resolved_distinct_id":',
                self._resolved_distinct_id,
                b',"event_time":"',
                self._time,
                b'","insert_id":',
                self._insert_id,
                b"}\n",
            )
        )

    def values(self) -> tuple[str, str, str, Any]:
        """``(distinct_id, resolved_distinct_id, event_time text, insert_id)``, decoded."""
        return (
            _json_value(self._distinct_id),
            _json_value(self._resolved_distinct_id),
            self._time.decode(),
            _json_value(self._insert_id),
        )

    def record(self) -> dict[str, Any]:
        """The record as :meth:`~airflow_provider_mixpanel.hooks.mixpanel.MixpanelHook.stream_identity_mappings`
        yields it: ``event_time`` a timezone-aware UTC ``datetime``, as in normalized events."""
        distinct_id, resolved, time_text, insert_id = self.values()
        return dict(
            zip(IDENTITY_FIELDS, (distinct_id, resolved, datetime.fromisoformat(time_text), insert_id), strict=True)
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdentityMapping) and self.values() == other.values()

    def __hash__(self) -> int:
        return hash(self.values())

    def __repr__(self) -> str:
        return f"IdentityMapping{self.values()!r}"


def mapping_event(line: bytes) -> tuple[str, str, Any, Any] | None:
    """``($device_id, $user_id, time, $insert_id)`` of an export line that carries both ids (each a
    non-empty string, or a whole number written as text), else ``None``. A name sent twice: the
    last one counts, as in every JSON reader.

    :raises MixpanelMalformedRecordError: the line is not a JSON object.
    """
    values: tuple[Any, ...]
    try:
        read = _decoder.decode(line).properties
        if read is None:
            return None
        values = (read.device_id, read.user_id, read.time, read.insert_id)
    except _UNREADABLE:  # properties not an object, a lone surrogate escape, a raw control character
        properties = loads_object(line).get("properties")  # the standard library reads the last two
        if not isinstance(properties, dict):
            return None
        properties = {"time": 0, **properties}  # a missing time reads as 0, as normalization reads it
        values = tuple(properties.get(name) for name in _MAPPING_NAMES)
    device, user = _identifier(values[0]), _identifier(values[1])
    if device is None or user is None:
        return None
    return device, user, values[2], values[3]


def _identifier(value: Any) -> str | None:
    """An id as Mixpanel takes it: a non-empty string, or a whole number (sent by server-side code)."""
    if type(value) is str:
        return value or None
    if type(value) is int:
        return str(value)
    return None


class _RememberedDevices:
    """Devices already written (by the JSON text of their ``$device_id``) and the time text of
    their mapping, in two generations: at most ``capacity`` in all, the least recently seen
    forgotten first."""

    def __init__(self, capacity: int):
        self._half = max(1, capacity // 2)
        self.current: dict[bytes, bytes] = {}
        self._previous: dict[bytes, bytes] = {}
        self.forgotten = 0

    def get(self, device: bytes) -> bytes | None:
        written = self.current.get(device)
        if written is None:
            written = self._previous.pop(device, None)
            if written is not None:
                self.put(device, written)
        return written

    def put(self, device: bytes, time_text: bytes) -> None:
        if len(self.current) >= self._half and device not in self.current:
            self.forgotten += len(self._previous)
            self._previous = self.current
            self.current = {}
        self.current[device] = time_text


class IdentityMappings:
    """Reads export lines and hands each identity mapping they create to ``on_mapping``.

    One instance per window (or per export request): it remembers the devices it has handed out,
    so each device is handed out once per window (see the module's docstring for the rare repeat).
    The event line roads call :meth:`add` with the values they have already read (no second parse
    of the line); any other reader calls :meth:`observe` with the line.

    :param on_mapping: called with each mapping; ``None`` keeps them in :attr:`pending` instead.
    :param time_in_ms: the export was requested with ``time_in_ms``.
    :param project_timezone: the connection's ``project_timezone`` (projects created before 2023),
        as the events' normalization takes it.
    :param max_devices: devices remembered as written; memory is about 150 bytes each.
    :ivar mappings: mappings handed out so far.
    """

    def __init__(
        self,
        on_mapping: Callable[[IdentityMapping], None] | None = None,
        *,
        time_in_ms: bool = False,
        project_timezone: str | tzinfo | None = None,
        max_devices: int = MAX_REMEMBERED_DEVICES,
    ):
        self.pending: list[IdentityMapping] = []
        self.on_mapping = on_mapping if on_mapping is not None else self.pending.append
        self.time_in_ms = time_in_ms
        self.project_timezone = project_timezone
        self.time_text: Callable[[Any, Callable[[], Any]], str] = event_time_text_cache(
            time_in_ms=time_in_ms, project_timezone=project_timezone
        )
        # Whole-second (or millisecond) UTC times by arithmetic, as the splice road reads them.
        self.recent_times, self._utc_text_of = utc_time_texts(time_in_ms=time_in_ms)
        self._utc = project_timezone is None
        self._written = _RememberedDevices(max_devices)
        self.mappings = 0

    def time_bytes(self, value: Any, line: bytes) -> bytes:
        """The ``event_time`` text (UTF-8) of a ``time`` value read from ``line``.

        :raises MixpanelMalformedRecordError: ``value`` is not a time.
        """
        if self._utc and type(value) is int:
            text = self.recent_times.get(value) or self._utc_text_of(value)
            if text is not None:
                return text
        return self.time_text(value, lambda: loads_object(line).get("event")).encode()

    @property
    def forgotten_devices(self) -> int:
        """Devices forgotten to keep memory bounded (each may be handed out once more)."""
        return self._written.forgotten

    def add(self, device: msgspec.Raw, user: msgspec.Raw, time_text: bytes, insert_id: Any, line: bytes) -> None:
        """An event carrying ``$device_id`` and ``$user_id`` (their JSON texts), at ``time_text``
        (its ``event_time``, UTF-8): hand out its mapping if it is the first of its device in
        this window (or earlier than the one handed out).

        :param insert_id: its ``$insert_id`` (JSON text or value), or ``None`` when it has none.
        :param line: the export line, for the deterministic ``insert_id`` of an event without one.
        """
        key = bytes(device)
        written = self._written.current.get(key)  # the common case, without a call
        if written is None:
            written = self._written.get(key)
        # ISO-8601 UTC texts of one format order as the instants do ("...:00+00:00" < "...:00.5...").
        if written is not None and written <= time_text:
            return
        device_text = _identifier_text(key)
        user_text = _identifier_text(bytes(user))
        if device_text is None or user_text is None:
            return
        if isinstance(insert_id, msgspec.Raw):
            insert_id = bytes(insert_id)
        elif insert_id is not None:
            insert_id = _json_text(insert_id)
        self._hand_out(key, device_text, user_text, time_text, insert_id, line)

    def observe(self, line: bytes) -> None:
        """Read ``line`` (an export line already known to be a JSON object) and hand out the
        mapping it creates, if any.

        :raises MixpanelMalformedRecordError: a mapping event whose ``time`` is not a time.
        """
        if _USER_ID_KEY not in line and _ESCAPE not in line:  # nearly every line of anonymous traffic
            return
        found = mapping_event(line)
        if found is None:
            return
        device_id, user_id, moment, insert_id = found
        key = _json_text(device_id)
        text = self.time_bytes(moment, line)
        written = self._written.get(key)
        if written is None or text < written:
            insert_text = None if insert_id is None else _json_text(insert_id)
            self._hand_out(key, key, _json_text(user_id), text, insert_text, line)

    def _hand_out(
        self, key: bytes, device_text: bytes, user_text: bytes, time_text: bytes, insert_id: bytes | None, line: bytes
    ) -> None:
        """Remember the device and hand out its mapping.

        :param device_text: JSON string text of the ``$device_id``; ``user_text`` of the ``$user_id``.
        :param insert_id: JSON text of the ``$insert_id``, ``None`` for the event's deterministic id.
        """
        self._written.put(key, time_text)
        if insert_id is None:
            insert_id = _json_text(deterministic_insert_id(loads_object(line)))
        self.mappings += 1
        distinct_id = b'"' + _DEVICE_PREFIX_TEXT + device_text[1:]  # '"D1"' -> '"$device:D1"'
        self.on_mapping(IdentityMapping(distinct_id, user_text, time_text, insert_id))

    def take(self) -> list[IdentityMapping]:
        """The mappings kept in :attr:`pending` (without ``on_mapping``) since the last call."""
        taken = self.pending[:]
        self.pending.clear()
        return taken


_value_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_DEVICE_PREFIX_TEXT = DEVICE_PREFIX.encode()


def _json_value(text: bytes | msgspec.Raw) -> Any:
    try:
        return _value_decoder.decode(text)
    except _UNREADABLE:  # a lone surrogate escape: the standard library reads it
        return loads_value(bytes(text))


def _json_text(value: Any) -> bytes:
    """The compact JSON text of a value read by a JSON reader (a lone surrogate kept escaped)."""
    try:
        return _encoder.encode(value)
    except (UnicodeEncodeError, msgspec.EncodeError, TypeError, OverflowError):
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def _identifier_text(text: bytes) -> bytes | None:
    """The JSON string text of an id given as JSON text: a non-empty string as it is, a whole
    number (sent by server-side code) as a string of its digits; anything else is no id."""
    if text[:1] == b'"':
        return text if len(text) > 2 else None
    if text.isdigit() or (text[:1] == b"-" and text[1:].isdigit()):
        return b'"' + text + b'"'
    return None
