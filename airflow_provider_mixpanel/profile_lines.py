"""An engage result straight to its profile JSONL line, property values untouched.

The contract. :func:`profile_line` takes one engage result as the engage reader yields it (its
compact JSON text, see :mod:`~airflow_provider_mixpanel.engage`) and returns the normalized
profile's JSONL line::

    {"distinct_id":<$distinct_id>,"last_seen":<$last_seen or null>,"properties":{<the other properties>}}\\n

the keys, in their order, that ``dumps_line(normalize_profile(result))`` writes, but every value and
every property name byte for byte as Mixpanel sent it, in its order (``1.50`` stays ``1.50``,
``\\u00e9`` stays escaped, an integer of any width stays whole). As
:func:`~airflow_provider_mixpanel.records.normalize_profile` does: a missing ``$distinct_id`` is
written ``""``, a missing, ``null`` or ``[]`` ``$properties`` ``{}`` (any other value that is
not an object is malformed); only the top-level
``$last_seen`` member leaves the properties (one inside another property stays); should it occur
twice, both go and the last one's value is ``last_seen``. :func:`raw_profile_line` is the result
as it came, with its newline.

The common case is sliced, never parsed into Python objects: ``$last_seen`` is found with
``bytes.find``, proved a top-level member by one regular-expression match, and spliced out. What
cannot be proved so takes a slower road, member by member, to the same line: a lone UTF-16
surrogate escape (which msgspec refuses), a ``$last_seen`` written twice or spelled with escapes,
containers nested deeper than that one match goes before it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from airflow_provider_mixpanel.engage import STRING, members_until, value_end
from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.jsonl import loads_value, preview
from airflow_provider_mixpanel.records import properties_object

_result = msgspec.json.Decoder(dict[str, msgspec.Raw])
_LAST_SEEN = b'"$last_seen":'
_COMMA, _OPEN_BRACE, _QUOTE = b',{"'
_EMPTY_STRING = msgspec.Raw(b'""')
# A \u escape of one of the characters of "$last_seen": a name spelled with one might be it.
_NAME_ESCAPE = re.compile(rb"\\u00(?:24|5[fF]|6[15cCeE]|7[34])")
_LINE = b'{"distinct_id":%b,"last_seen":%b,"properties":%b}\n'


def raw_profile_line(result: bytes) -> bytes:
    """The raw profile's JSONL line: the engage result as the reader yields it, and ``\\n``."""
    return result + b"\n"


def profile_line(result: bytes) -> bytes:
    """The normalized profile's JSONL line (ending in ``\\n``) of one compact engage result.

    :raises MixpanelMalformedRecordError: the result, or its ``$properties``, is not an object.
    """
    try:
        members = _result.decode(result)
    except msgspec.DecodeError:  # a lone surrogate escape, or not an object
        return _profile_line_slowly(result)
    distinct_id = members.get("$distinct_id", _EMPTY_STRING)
    raw_properties = members.get("$properties")
    if raw_properties is None:
        return _LINE % (distinct_id, b"null", b"{}")
    properties = bytes(raw_properties)
    if properties[:1] != b"{":
        return _LINE % (distinct_id, b"null", _no_properties(properties))
    if b"\\u00" in properties and _NAME_ESCAPE.search(properties):
        return _profile_line_slowly(result)
    index = properties.find(_LAST_SEEN)
    if index < 0:
        return _LINE % (distinct_id, b"null", properties)
    start = index + len(_LAST_SEEN)
    before = properties[index - 1]
    if (
        (before != _OPEN_BRACE and before != _COMMA)
        or properties.find(_LAST_SEEN, start) >= 0  # written twice, or once more inside a property
        or (index > 1 and not members_until(properties, index))  # inside a property
    ):
        return _profile_line_slowly(result)
    if properties[start] == _QUOTE:  # a string, as Mixpanel sends it
        end = STRING.match(properties, start).end()  # type: ignore[union-attr]
    else:
        end = value_end(properties, start)
    if before == _COMMA:  # ...,"$last_seen":v} or ...,"$last_seen":v,...
        rest = properties[: index - 1] + properties[end:]
    elif properties[end] == _COMMA:  # {"$last_seen":v,...
        rest = properties[:index] + properties[end + 1 :]
    else:  # {"$last_seen":v}
        rest = b"{}"
    return _LINE % (distinct_id, properties[start:end], rest)


def _profile_line_slowly(result: bytes) -> bytes:
    """The same line, member by member."""
    distinct_id, properties = b'""', b"{}"
    for name, value in _members(result, "An engage result"):
        key = _decode(name)
        if key == "$distinct_id":
            distinct_id = value
        elif key == "$properties":
            properties = value
    last_seen = b"null"
    if properties[:1] != b"{":
        return _LINE % (distinct_id, last_seen, _no_properties(properties))
    kept = []
    for name, value in _members(properties, "A profile's $properties"):
        if _decode(name) == "$last_seen":
            last_seen = value
        else:
            kept.append(name + b":" + value)
    return _LINE % (distinct_id, last_seen, b"{" + b",".join(kept) + b"}")


def _members(text: bytes, what: str) -> list[tuple[bytes, bytes]]:
    """(name text, value text) of each member of the compact JSON object ``text``, in order."""
    if text[:1] != b"{":
        raise MixpanelMalformedRecordError(f"{what} is not a JSON object: {preview(text)}")
    members: list[tuple[bytes, bytes]] = []
    pos = 1
    if text[pos : pos + 1] == b"}":
        return members
    try:
        while True:
            name = STRING.match(text, pos)
            if name is None or text[name.end() : name.end() + 1] != b":":
                raise ValueError("a member name was expected")
            start = name.end() + 1
            end = value_end(text, start)
            if end <= start:
                raise ValueError("a value was expected")
            members.append((name.group(), text[start:end]))
            separator = text[end : end + 1]
            if separator == b"}":
                return members
            if separator != b",":
                raise ValueError("',' or '}' was expected")
            pos = end + 1
    except (ValueError, IndexError) as err:
        raise MixpanelMalformedRecordError(f"{what} is not compact JSON ({err}): {preview(text)}") from None


def _no_properties(text: bytes) -> bytes:
    """``{}`` for ``$properties`` that are ``null`` or ``[]``, as ``normalize_profile`` reads them.

    :raises MixpanelMalformedRecordError: any other value that is not an object.
    """
    properties_object(_decode(text), what="A profile", name="$properties")
    return b"{}"


def _decode(text: bytes) -> Any:
    try:
        return loads_value(text)
    except ValueError as err:
        raise MixpanelMalformedRecordError(f"Profile JSON is malformed ({err}): {preview(text)}") from None
