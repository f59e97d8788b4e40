"""The bodies of the metadata endpoints: cohorts, funnels, annotations and the Lexicon.

Each answer checks its parameters the way Mixpanel's OpenAPI specs declare them, and returns the
body as an iterator of byte pieces (never built whole: a year of annotations or a Lexicon of
100,000 events streams as it is computed), or raises :class:`ApiError`. HTTP itself (auth, quotas,
faults, sending) is :mod:`.handler`'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import TYPE_CHECKING

from airflow_provider_mixpanel.testing.funnels import UNITS, buckets
from airflow_provider_mixpanel.testing.lexicon import ENTITY_TYPES

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing.server import MixpanelTestServer

#: The longest funnel conversion window Mixpanel accepts ("May not be greater than 90 days").
MAX_FUNNEL_LENGTH_DAYS = 90
_SECONDS_PER_UNIT = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}


class ApiError(Exception):
    """An error answer: ``status`` and the message of its ``error`` field."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def cohorts_list(owner: MixpanelTestServer, args: dict[str, str], path: dict[str, str]) -> Iterator[bytes]:
    """``POST /api/query/cohorts/list``: a JSON array of the project's cohorts."""
    return _array(owner, owner.cohort_model().records())


def funnels_list(owner: MixpanelTestServer, args: dict[str, str], path: dict[str, str]) -> Iterator[bytes]:
    """``GET /api/query/funnels/list``: a JSON array of ``{"funnel_id", "name"}``."""
    return _array(owner, owner.funnel_model().saved())


def funnel_query(owner: MixpanelTestServer, args: dict[str, str], path: dict[str, str]) -> Iterator[bytes]:
    """``GET /api/query/funnels``: one saved funnel's steps per date bucket of ``[from_date, to_date]``."""
    model = owner.funnel_model()
    funnel_id = _required_int(args, "funnel_id")
    if funnel_id not in model.ids():
        raise ApiError(400, f"funnel_id {funnel_id} does not exist in project {owner.config.project_id}")
    first, last = _required_range(args, "from_date", "to_date")
    for refused in ("on", "where"):
        if args.get(refused):
            raise ApiError(400, f"the test server does not model funnels segmented or filtered by {refused!r}")
    length_unit = args.get("length_unit") or "day"
    if length_unit not in _SECONDS_PER_UNIT:
        raise ApiError(400, f"length_unit must be one of {', '.join(_SECONDS_PER_UNIT)}, not {length_unit!r}")
    if args.get("length"):
        length = _required_int(args, "length")
        if length < 1 or length * _SECONDS_PER_UNIT[length_unit] > MAX_FUNNEL_LENGTH_DAYS * 86_400:
            raise ApiError(400, f"length must be at least 1 and may not be greater than {MAX_FUNNEL_LENGTH_DAYS} days")
    unit = args.get("unit") or None
    if unit is not None and unit not in UNITS:
        raise ApiError(400, f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    interval = _required_int(args, "interval") if args.get("interval") else 1
    if interval < 1:
        raise ApiError(400, "interval must be at least 1")
    if args.get("limit"):
        _required_int(args, "limit")  # "does nothing if on is not specified", but must be a number
    plan = buckets(first, last, unit=unit, interval=interval)
    dates = [bucket.start.isoformat() for bucket in plan]
    dumps = _dumps(owner)
    yield b'{"meta": {"dates": ' + dumps(dates) + b'}, "data": {'
    separator = b""
    for bucket in plan:  # one bucket at a time: a long range never sits in memory whole
        yield separator + dumps(bucket.start.isoformat()) + b": " + dumps(model.result(funnel_id, bucket))
        separator = b", "
    yield b"}}"


def annotations_list(owner: MixpanelTestServer, args: dict[str, str], path: dict[str, str]) -> Iterator[bytes]:
    """``GET /api/app/projects/{projectId}/annotations``: ``{"status": "ok", "results": [...]}``.

    Without ``fromDate`` the list starts at the project's creation; without ``toDate`` it ends
    today (the server's clock).
    """
    first = _date(args, "fromDate") if args.get("fromDate") else owner.config.project_created
    last = _date(args, "toDate") if args.get("toDate") else owner.clock.now().date()
    if first > last:
        raise ApiError(400, f"fromDate {first} is after toDate {last}")
    return _array(owner, owner.annotation_model().between(first, last), head=b'{"status": "ok", "results": ', tail=b"}")


def lexicon_schemas(owner: MixpanelTestServer, args: dict[str, str], path: dict[str, str]) -> Iterator[bytes]:
    """``GET /api/app/projects/{projectId}/schemas[/{entityType}[/{name}]]``."""
    model = owner.lexicon_model()
    entity_type = path.get("entity_type")
    if entity_type is not None and entity_type not in ENTITY_TYPES:
        raise ApiError(400, f"entityType must be one of {', '.join(ENTITY_TYPES)}, not {entity_type!r}")
    if "name" in path:
        assert entity_type is not None  # the route has no name without an entity type
        schema = model.schema(entity_type, path["name"])
        if schema is None:
            raise ApiError(404, f"no schema for {entity_type} {path['name']!r}")
        return iter((_dumps(owner)(schema),))
    name = (args.get("entity_name") or None) if entity_type is not None else None
    entries = model.entries(entity_type, name)
    return _array(owner, entries, head=b'{"results": ', tail=b', "status": "ok"}')


Answer = Callable[["MixpanelTestServer", dict[str, str], dict[str, str]], Iterator[bytes]]
#: The answer of each metadata endpoint, by route name (:mod:`.routes`).
ANSWERS: dict[str, Answer] = {
    "cohorts": cohorts_list,
    "funnels_list": funnels_list,
    "funnels": funnel_query,
    "annotations": annotations_list,
    "lexicon": lexicon_schemas,
}


# ---------------------------------------------------------------------------- helpers


def _dumps(owner: MixpanelTestServer) -> Callable[[object], bytes]:
    ensure_ascii = owner.config.ascii_escape

    def dumps(value: object) -> bytes:
        return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8")

    return dumps


def _array(
    owner: MixpanelTestServer, items: Iterable[object], *, head: bytes = b"", tail: bytes = b""
) -> Iterator[bytes]:
    """``head [item, item, ...] tail``, one item per piece."""
    dumps = _dumps(owner)
    yield head + b"["
    separator = b""
    for item in items:
        yield separator + dumps(item)
        separator = b", "
    yield b"]" + tail


def _required_int(args: dict[str, str], name: str) -> int:
    value = args.get(name)
    if not value:
        raise ApiError(400, f"{name} is required")
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, not {value!r}") from None


def _date(args: dict[str, str], name: str) -> date:
    value = args.get(name, "")
    try:
        return date.fromisoformat(value) if len(value) == 10 else date.fromisoformat("invalid")
    except ValueError:
        raise ApiError(400, f"{name} must be a date in yyyy-mm-dd format, not {value!r}") from None


def _required_range(args: dict[str, str], first_name: str, last_name: str) -> tuple[date, date]:
    for name in (first_name, last_name):
        if not args.get(name):
            raise ApiError(400, f"{name} is required")
    first, last = _date(args, first_name), _date(args, last_name)
    if first > last:
        raise ApiError(400, f"{first_name} {first} is after {last_name} {last}")
    return first, last
