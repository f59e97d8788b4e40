"""Reading the small JSON answers of the Query and App APIs (cohorts, annotations, the Lexicon...):
the items of their list, each as its own compact JSON text, values byte for byte as sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import msgspec

from airflow_provider_mixpanel.engage import _NotJson, compact
from airflow_provider_mixpanel.errors import MixpanelServerError
from airflow_provider_mixpanel.schemas import BOOLEAN, Column

_list = msgspec.json.Decoder(list[msgspec.Raw])
_envelope = msgspec.json.Decoder(dict[str, msgspec.Raw])


def list_items(key: str | None = None) -> Callable[[bytes, str], list[bytes]]:
    """A reader of an answer that is a JSON list (``key=None``) or an object holding the list in
    ``key`` (``{"status": "ok", "results": [...]}``): each item's compact JSON text. An answer of
    another shape raises :class:`MixpanelServerError`, so the request is asked for again."""

    def items(body: bytes, what: str) -> list[bytes]:
        try:
            if key is None:
                raws = _list.decode(body)
            else:
                inner = _envelope.decode(body).get(key)
                if inner is None:
                    raise MixpanelServerError(f"Mixpanel {what} answered without a {key!r} list: {body[:200]!r}")
                raws = _list.decode(inner)
            return [compact(bytes(raw)) for raw in raws]
        except (msgspec.DecodeError, _NotJson) as err:
            raise MixpanelServerError(
                f"Mixpanel {what} answered with a body that is not its JSON list ({err})."
            ) from None

    return items


_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_NULL = b"null"
# Mixpanel writes some flags as 0/1 (a cohort's is_visible); a boolean column holds them as JSON booleans.
_BOOLEANS = {b"1": b"true", b"0": b"false"}


def members(item: bytes) -> dict[str, msgspec.Raw]:
    """The members of one JSON object, each value's text exactly as sent."""
    return _object.decode(item)


def members_line(
    item: bytes | Mapping[str, msgspec.Raw | None], columns: Iterable[Column], renamed: Mapping[str, str] | None = None
) -> bytes:
    """A normalized record's JSONL line: for each of ``columns``, the member of ``item`` of that
    name (or of ``renamed[name]``), byte for byte as sent; ``null`` when it is missing; a boolean
    column's ``0``/``1`` as ``false``/``true``."""
    source = members(item) if isinstance(item, bytes) else item
    values = []
    for column in columns:
        raw = source.get(renamed.get(column.name, column.name) if renamed else column.name)
        value = bytes(raw) if raw else _NULL
        if column.kind == BOOLEAN:
            value = _BOOLEANS.get(value, value)
        values.append(b'"%b":%b' % (column.name.encode(), value))
    return b"{" + b",".join(values) + b"}\n"
