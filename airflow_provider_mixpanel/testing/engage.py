"""Engage pages of synthetic profiles: any count, any size, streamed piece by piece.

A page is a slice of profile indexes found by arithmetic (``page * page_size`` onwards), never by
listing or filtering every profile, and its body is yielded one profile at a time, so the server's
memory does not grow with the page. Keys come in the order Mixpanel's documented responses use:
``page``, ``page_size``, ``results``, ``session_id``, ``status``, ``total`` (``page_size`` and
``total`` on the first page only, as Mixpanel does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from airflow_provider_mixpanel.testing.data import synthetic_profile

_SENTINEL_I = 1_234_567_890_123  # becomes %(i)d: the profile's index
_SENTINEL_TEXT = "@@I@@"  # becomes %(i)d inside a string
_SENTINEL_FLAG = 9_876_543_210_987  # becomes %(b)s: true or false by index
_SENTINEL_HASH = "@@H@@"  # becomes %(h)s: a 16-hex-digit hash of the index
_SEPARATOR = b", "


def extra_properties_template(count: int) -> bytes:
    """``count`` extra properties as a bytes template with ``%(i)d``, ``%(b)s``, ``%(h)s`` slots.

    Property ``k`` is named ``prop_<k>`` and cycles through the JSON types (text with non-ASCII,
    integer, float, boolean, list, nested object), so a profile of 300 properties looks like a
    real, heavy one. Rendering costs one ``%`` per profile.
    """
    properties: dict[str, object] = {}
    width = max(3, len(str(count - 1)))
    for k in range(count):
        kind = k % 6
        name = f"prop_{k:0{width}d}"
        if kind == 0:
            properties[name] = f"Zürich text {k} of {_SENTINEL_TEXT}"
        elif kind == 1:
            properties[name] = _SENTINEL_I
        elif kind == 2:
            properties[name] = k + 0.25
        elif kind == 3:
            properties[name] = _SENTINEL_FLAG
        elif kind == 4:
            properties[name] = [f"tag-{k}", _SENTINEL_TEXT, k]
        else:
            properties[name] = {"k": k, "hash": _SENTINEL_HASH, "nested": {"ok": True}}
    text = json.dumps(properties)[1:-1]  # ensure_ascii, like the rest of the page
    text = text.replace("%", "%%")
    text = text.replace(str(_SENTINEL_I), "%(i)d").replace(_SENTINEL_TEXT, "%(i)d")
    text = text.replace(str(_SENTINEL_FLAG), "%(b)s").replace(_SENTINEL_HASH, "%(h)s")
    return text.encode("ascii")


class ProfileRenderer:
    """Renders synthetic profile ``index`` as engage JSON bytes.

    :param extra_properties: properties added to every profile beyond the base ones.
    """

    def __init__(self, extra_properties: int = 0):
        self.extra_properties = extra_properties
        self._extra = extra_properties_template(extra_properties) if extra_properties > 0 else b""

    def render(self, index: int, *, group: bool = False, keep: frozenset[str] | None = None) -> bytes:
        """One profile; ``keep`` limits ``$properties`` to these names (``output_properties``)."""
        profile = synthetic_profile(index, group=group)
        if keep is None and not self._extra:
            return json.dumps(profile).encode("ascii")
        properties = profile["$properties"]
        if self._extra:
            extra = self._extra % {
                b"i": index,
                b"b": b"true" if index % 2 else b"false",
                b"h": b"%016x" % ((index * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF),
            }
            if keep is not None:
                properties.update(json.loads(b"{" + extra + b"}"))
            else:  # splice the extra properties in before $properties' closing brace
                base = json.dumps(profile).encode("ascii")
                return base[:-2] + _SEPARATOR + extra + b"}}"
        if keep is not None:
            profile["$properties"] = {k: v for k, v in properties.items() if k in keep}
        return json.dumps(profile).encode("ascii")


@dataclass(frozen=True)
class EngagePage:
    """What one engage request asked for, after defaults and the page-size cap."""

    page: int
    page_size: int
    session_id: str
    group: bool
    keep: frozenset[str] | None
    echo_page_size: bool


def page_indexes(profiles: int, wanted: Sequence[int] | None, page: int, page_size: int) -> tuple[Iterable[int], int]:
    """The profile indexes of one page and the query's total, by slicing (never listing everything)."""
    if wanted is not None:
        return wanted[page * page_size : (page + 1) * page_size], len(wanted)
    start = min(profiles, page * page_size)
    return range(start, min(profiles, start + page_size)), profiles


def wanted_indexes(distinct_ids: Iterable[object], profiles: int, *, group: bool) -> list[int]:
    """The indexes of the synthetic profiles named in ``distinct_ids`` (others do not exist), in order."""
    prefix = "company-" if group else "user-"
    found = set()
    for distinct_id in distinct_ids:
        if isinstance(distinct_id, str) and distinct_id.startswith(prefix):
            number = distinct_id[len(prefix) :]
            if number.isdigit() and str(int(number)) == number and int(number) < profiles:
                found.add(int(number))
    return sorted(found)


def page_header(request: EngagePage) -> bytes:
    head = b'{"page": %d, ' % request.page
    if request.page == 0 and request.echo_page_size:
        head += b'"page_size": %d, ' % request.page_size
    return head + b'"results": ['


def page_footer(request: EngagePage, total: int) -> bytes:
    foot = b'], "session_id": %s, "status": "ok"' % json.dumps(request.session_id).encode("ascii")
    if request.page == 0:
        foot += b', "total": %d' % total
    return foot + b"}"


def profile_pieces(renderer: ProfileRenderer, indexes: Iterable[int], request: EngagePage) -> Iterator[bytes]:
    """Each profile of the page, with the separator before all but the first."""
    separator = b""
    for index in indexes:
        yield separator + renderer.render(index, group=request.group, keep=request.keep)
        separator = _SEPARATOR
