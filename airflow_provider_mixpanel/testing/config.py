"""The test server's settings and its record of requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_mixpanel.testing.annotations import MAX_PER_DAY
from airflow_provider_mixpanel.testing.clock import SimClock

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing.faults import Fault
    from airflow_provider_mixpanel.testing.identity import IdentityMerge
    from airflow_provider_mixpanel.testing.lateness import LateArrival
    from airflow_provider_mixpanel.testing.quota import Quotas

DEFAULT_PAGE_SIZE = 1000
# Mixpanel documents no maximum engage page size; peers ask for 40,000 (Airbyte) to 50,000
# (Estuary). 100,000 lets them all through and, like the export's documented `limit`, stops there.
DEFAULT_MAX_PAGE_SIZE = 100_000


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    form: dict[str, str]
    user: str | None
    fault: str | None = None  # a Fault's kind, or quota:hourly / quota:per-second / quota:concurrent
    at: datetime | None = None  # the server's (simulated) time when the request arrived
    endpoint: str | None = None  # the route's name (testing.routes), None for an unknown path


@dataclass
class ServerConfig:
    username: str = "test-user"
    secret: str = "test-secret"
    project_id: int = 12345
    project_secret: str | None = None
    foreign_project_ids: tuple[int, ...] = ()
    expired: bool = False
    events_per_day: int = 100
    ascii_escape: bool = False
    gzip: bool = True
    profiles: int = 250
    page_size: int = DEFAULT_PAGE_SIZE
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE
    echo_page_size: bool = True
    profile_properties: int = 0
    cohorts: int = 4
    cohort_size: int = 100
    funnels: int = 3
    annotations_per_day: int = 1
    lexicon_events: int = 0
    project_created: date = date(2023, 1, 1)
    export_file: Path | None = None
    engage_files: tuple[Path, ...] = ()
    bytes_per_second: float | None = None
    cache_bodies: bool = False
    quotas: Quotas | None = None
    late_arrival: LateArrival | None = None
    identity: IdentityMerge | None = None
    clock: SimClock = field(default_factory=SimClock)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("page_size", "max_page_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        for name in (
            "profile_properties",
            "cohorts",
            "cohort_size",
            "funnels",
            "annotations_per_day",
            "lexicon_events",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)!r}")
        if self.annotations_per_day > MAX_PER_DAY:
            raise ValueError(f"annotations_per_day must be at most {MAX_PER_DAY}, not {self.annotations_per_day!r}")
