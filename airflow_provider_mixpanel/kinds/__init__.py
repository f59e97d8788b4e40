"""Stream kinds: every Mixpanel dataset the package exports, registered in one place.

Each kind is one module (see :class:`~.base.StreamKind`); :data:`KINDS` is the registry the
operators, the hook and ``mixpanel-stream`` read. Adding a dataset: a module, one line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.kinds.annotations import AnnotationsKind
from airflow_provider_mixpanel.kinds.base import Argument, Opening, Query, Records, StreamKind
from airflow_provider_mixpanel.kinds.cohort_members import CohortMembersKind
from airflow_provider_mixpanel.kinds.cohorts import CohortsKind
from airflow_provider_mixpanel.kinds.events import EventsKind
from airflow_provider_mixpanel.kinds.funnels import FunnelsKind
from airflow_provider_mixpanel.kinds.lexicon import LexiconKind
from airflow_provider_mixpanel.kinds.profiles import ProfilesKind
from airflow_provider_mixpanel.streams import RecordStream

if TYPE_CHECKING:
    from airflow_provider_mixpanel.client import MixpanelClient

__all__ = [
    "KINDS",
    "KIND_ARGUMENTS",
    "Argument",
    "Opening",
    "Query",
    "Records",
    "StreamKind",
    "get_kind",
    "kinds_accepting",
    "open_stream",
    "register",
]

#: Every kind by name, in the order the docs and ``mixpanel-stream --help`` list them.
KINDS: dict[str, StreamKind] = {}


def register(kind: StreamKind) -> StreamKind:
    """Add ``kind`` to :data:`KINDS` (a kind's name is taken once)."""
    if kind.name in KINDS:
        raise ValueError(f"A stream kind named {kind.name!r} is registered already.")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: object, *, where: str = "") -> StreamKind:
    """The kind called ``name``, or a :class:`MixpanelConfigError` listing the kinds there are."""
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise MixpanelConfigError(f"{where}stream={name!r}: use one of {', '.join(map(repr, KINDS))}.")
    return kind


def open_stream(
    client: MixpanelClient, kind: StreamKind, opening: Opening, *, skip_malformed: bool = False
) -> RecordStream:
    """The records of ``opening`` as a :class:`~airflow_provider_mixpanel.streams.RecordStream`
    (lazily: the first request waits for the first ``next()``; closing it closes the request)."""
    if opening.identity is not None and kind.name != "events":
        raise ValueError(f"identity mappings are derived from events, not from {kind.name}")
    records = kind.open(client, opening)
    return RecordStream(records.source, records.convert, skip_malformed=skip_malformed)


def kinds_accepting(name: str) -> list[str]:
    """The kinds that accept the argument ``name``."""
    return [kind.name for kind in KINDS.values() if name in kind.query_type.arguments()]


for _new in (
    EventsKind(),
    ProfilesKind(),
    CohortsKind(),
    CohortMembersKind(),
    AnnotationsKind(),
    LexiconKind(),
    FunnelsKind(),
):
    register(_new)

#: Every kind's arguments by name (a name means one thing in every kind that takes it): the
#: operators accept these keywords and template those that say so.
KIND_ARGUMENTS: dict[str, Argument] = {}
for _kind in KINDS.values():
    for _name, _spec in _kind.query_type.arguments().items():
        KIND_ARGUMENTS.setdefault(_name, _spec)
