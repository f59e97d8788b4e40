"""What a stream kind is: the contract every kind module fills in, and the query value it builds.

A kind (events, profiles, cohorts...) says everything the rest of the package would otherwise
re-derive from its name: the arguments it accepts (its :class:`Query`, one frozen dataclass whose
fields declare them once: type, default, help, CLI flag, templated or not, check), how it asks
Mixpanel (through the client's thin endpoint methods), whether it is dated or a snapshot, its
records raw and normalized and their columns, its quota class and lineage name.

The operators, the hook and ``mixpanel-stream`` read all of this from the kind; none of them
lists a kind's arguments. No Airflow here.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self

from airflow_provider_mixpanel.dates import date_range
from airflow_provider_mixpanel.errors import MixpanelConfigError

if TYPE_CHECKING:
    from airflow_provider_mixpanel.client import MixpanelClient
    from airflow_provider_mixpanel.identity import IdentityMappings
    from airflow_provider_mixpanel.pacing import Quota
    from airflow_provider_mixpanel.schemas import Column
    from airflow_provider_mixpanel.streams import RecordStream

_ARGUMENT = "argument"


@dataclasses.dataclass(frozen=True)
class Argument:
    """How one query argument is given and checked, said once for the operator, hook and CLI.

    :param help: one phrase for the docs and ``--help``.
    :param check: turns the given value into the query's (or raises :class:`MixpanelConfigError`):
        ``check(value, name, where)``; not called for ``None``.
    :param templated: the operators render it with Jinja (checked in ``execute``, not ``__init__``).
    :param flag: the ``mixpanel-stream`` option; a list argument repeats it (``--event A --event B``).
    :param metavar: what the option's value is called in ``--help``; ``None`` for a switch.
    :param cli_type: what argparse converts the option's text to.
    """

    help: str
    check: Callable[[Any, str, str], Any]
    templated: bool = False
    flag: str | None = None
    metavar: str | None = "VALUE"
    repeat: bool = False
    cli_type: Callable[[str], Any] = str


def argument(spec: Argument, default: Any = None) -> Any:
    """A :class:`Query` field declared by ``spec``."""
    return dataclasses.field(default=default, metadata={_ARGUMENT: spec})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Query:
    """A kind's arguments, checked: one frozen value built once and passed whole down to the client.

    Subclasses declare their fields with :func:`argument`.
    """

    @classmethod
    def arguments(cls) -> dict[str, Argument]:
        """The arguments this query accepts, by name, in declaration order."""
        return {f.name: f.metadata[_ARGUMENT] for f in dataclasses.fields(cls) if _ARGUMENT in f.metadata}

    @classmethod
    def build(cls, given: Mapping[str, Any], *, where: str = "") -> Self:
        """The query of ``given`` (arguments by name; ``None`` means not given), each checked.

        :param where: prefix of error messages, e.g. ``"Task 'export': "``.
        """
        accepted = cls.arguments()
        unknown = [name for name in given if name not in accepted]
        if unknown:
            raise MixpanelConfigError(f"{where}unknown argument(s) {', '.join(unknown)}: use {', '.join(accepted)}.")
        checked = cls._checked(given, accepted, where)
        try:
            return cls(**checked)
        except MixpanelConfigError as err:  # arguments that only fit together (__post_init__)
            raise MixpanelConfigError(f"{where}{err}") from None

    @classmethod
    def check_given(cls, given: Mapping[str, Any], *, templated: bool, where: str = "") -> None:
        """Check the arguments that are (or are not) templated: the operators check those that are
        not when the DAG is parsed, the others once rendered."""
        accepted = {n: a for n, a in cls.arguments().items() if a.templated == templated}
        cls._checked({n: v for n, v in given.items() if n in accepted}, accepted, where)

    @staticmethod
    def _checked(given: Mapping[str, Any], accepted: Mapping[str, Argument], where: str) -> dict[str, Any]:
        return {
            name: accepted[name].check(value, name, where)
            for name, value in given.items()
            if value is not None and name in accepted
        }


class Opening(NamedTuple):
    """What to open: a kind's query, its days, and the form its records take."""

    query: Any
    #: the first and last day, for a dated kind; ``None`` for a snapshot
    days: tuple[date, date] | None
    #: records as Mixpanel sent them, instead of normalized
    raw: bool
    #: each record as its JSONL line (bytes ending in ``\n``) instead of a dict
    encode: bool
    #: the connection's ``project_timezone`` (projects created before 2023)
    project_timezone: str | None
    #: events as JSONL lines only: also derive the identity mappings (Simplified ID Merge) from
    #: the lines streamed (:mod:`~airflow_provider_mixpanel.identity`)
    identity: IdentityMappings | None = None


class Records(NamedTuple):
    """What a kind opens: the items Mixpanel sends, and what one item becomes."""

    source: Iterator[Any]
    convert: Callable[[Any], Any]


class StreamKind(ABC):
    """One Mixpanel dataset: the contract each module of :mod:`airflow_provider_mixpanel.kinds` fills in."""

    #: the name users write: ``stream="cohorts"``, ``hook.stream("cohorts")``, ``mixpanel-stream cohorts``
    name: ClassVar[str]
    #: one line for ``--help`` and the docs: what is exported, from which API
    summary: ClassVar[str]
    #: what one normalized record holds, for the docs
    records: ClassVar[str]
    #: dated kinds export days (``from_date`` / ``to_date``, windows, look-back; ``{window}`` = the
    #: day); the others are a snapshot, one per run (``{window}`` = the run's date)
    dated: ClassVar[bool]
    #: dated kinds only: whether a day can be split into hour windows (``window_hours``)
    hour_windows: ClassVar[bool] = False
    quota: ClassVar[Quota]
    query_type: ClassVar[type[Query]]

    @property
    def lineage_name(self) -> str:
        """The OpenLineage input dataset's name within the project: ``project/<id>/<lineage_name>``."""
        return self.name

    @abstractmethod
    def columns(self, *, raw: bool) -> tuple[Column, ...]:
        """The columns of this kind's records (Parquet, BigQuery), raw or normalized."""

    @abstractmethod
    def open(self, client: MixpanelClient, opening: Opening) -> Records:
        """The records of ``opening.query`` (lazily: no request before the first ``next()``)."""

    def days(self, from_date: date | str | None, to_date: date | str | None) -> tuple[date, date] | None:
        """The checked days of a dated kind (both given); ``None`` for a snapshot (neither given)."""
        if self.dated:
            if from_date is None or to_date is None:
                raise MixpanelConfigError(f"{self.name} are dated: give from_date and to_date (YYYY-MM-DD).")
            return date_range(from_date, to_date)
        if from_date is not None or to_date is not None:
            raise MixpanelConfigError(
                f"{self.name} are a snapshot of the project now, not of days: drop from_date and to_date."
            )
        return None

    def raw_chunks(self, client: MixpanelClient, opening: Opening, *, skip_malformed: bool) -> RecordStream | None:
        """Raw JSONL many records at a time (a faster road for the command's ``--raw``), or
        ``None`` when the kind has none."""
        return None

    def narrow(self, query: Any, time_bounds: str | None) -> Any:
        """The query of one hour window (only kinds with :attr:`hour_windows`)."""
        return query
