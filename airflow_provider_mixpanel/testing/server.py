"""A Mixpanel-compatible HTTP server for offline tests, the demo and the benchmarks.

Standard library only, threaded, bound to 127.0.0.1. It serves ``GET /api/2.0/export`` (JSONL,
chunked, gzipped above 1400 bytes like Mixpanel, never built whole in memory),
``POST /api/query/engage`` (JSON pages with ``session_id``, streamed; ``filter_by_cohort`` for a
cohort's members), the query API's ``POST /cohorts/list``, ``GET /funnels/list`` and ``GET
/funnels``, and the app API's ``GET /projects/{id}/annotations`` and ``GET /projects/{id}/schemas``
(the Lexicon), each as Mixpanel's OpenAPI specs describe it (:mod:`.routes`, :mod:`.answers`). It
checks HTTP Basic auth and the project id, serves synthetic data of any size or given fixture files,
and injects faults::

    with MixpanelTestServer(events_per_day=1000) as server:
        server.add_fault("status", status=429, retry_after="1")
        server.add_fault("drop", after_records=500)
        os.environ["AIRFLOW_CONN_MIXPANEL_DEFAULT"] = server.connection_json()

Off by default, it can be as hard as Mixpanel: ``quotas=True`` enforces the rate limits
(:mod:`.quota`), ``late_arrival=True`` processes events late (:mod:`.lateness`), and ``clock=``
runs both on simulated time (:mod:`.clock`).
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from airflow_provider_mixpanel.testing.annotations import SyntheticAnnotations
from airflow_provider_mixpanel.testing.body import CHUNK_BYTES, GZIP_MIN_BYTES
from airflow_provider_mixpanel.testing.clock import SimClock
from airflow_provider_mixpanel.testing.cohorts import SyntheticCohorts
from airflow_provider_mixpanel.testing.config import (
    DEFAULT_MAX_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    RecordedRequest,
    ServerConfig,
)
from airflow_provider_mixpanel.testing.data import SyntheticEvents
from airflow_provider_mixpanel.testing.engage import ProfileRenderer
from airflow_provider_mixpanel.testing.faults import FAULT_KINDS, Fault
from airflow_provider_mixpanel.testing.funnels import SyntheticFunnels, buckets
from airflow_provider_mixpanel.testing.handler import RequestHandler
from airflow_provider_mixpanel.testing.identity import IdentityMerge
from airflow_provider_mixpanel.testing.lateness import LateArrival
from airflow_provider_mixpanel.testing.lexicon import SyntheticLexicon
from airflow_provider_mixpanel.testing.quota import ENGAGE_ALIAS, POOLS, QuotaKeeper, Quotas, QuotaStats

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_MAX_PAGE_SIZE",
    "DEFAULT_PAGE_SIZE",
    "FAULT_KINDS",
    "GZIP_MIN_BYTES",
    "Fault",
    "LateArrival",
    "MixpanelTestServer",
    "QuotaStats",
    "Quotas",
    "RecordedRequest",
    "ServerConfig",
    "SimClock",
]


class MixpanelTestServer:
    """A local Mixpanel-compatible server. Use it as a context manager, or ``start()`` / ``stop()``.

    :param port: 0 picks a free port.
    :param username: the service-account username it accepts.
    :param secret: the service-account secret it accepts.
    :param project_id: the project it serves; another id answers 403.
    :param project_secret: a legacy project secret it also accepts (``secret:`` Basic auth).
    :param foreign_project_ids: projects that "live in another region": 400 invalid project id for cluster.
    :param expired: answer every request 400 "Unable to authenticate request" (expired credentials).
    :param events_per_day: synthetic events each UTC day.
    :param ascii_escape: write non-ASCII as ``\\uXXXX`` instead of raw UTF-8.
    :param gzip: gzip export bodies above 1400 bytes when the client accepts gzip.
    :param profiles: how many synthetic profiles engage holds (any number: pages are sliced by arithmetic).
    :param page_size: engage's page size when the request does not set one.
    :param max_page_size: the largest ``page_size`` engage honours; a larger request gets this many.
    :param echo_page_size: report the page size used on page 0, as Mixpanel does. ``False``
        simulates a server that does not.
    :param profile_properties: extra properties on every synthetic profile (e.g. 300 for heavy profiles).
    :param cohorts: saved cohorts (ids 1000, 1001, ...): ``/cohorts/list`` and engage's ``filter_by_cohort``.
    :param cohort_size: members of each cohort, all of them synthetic profiles (at most ``profiles``).
    :param funnels: saved funnels (ids 7500, 7501, ...): ``/funnels/list`` and ``/funnels``.
    :param annotations_per_day: annotations on three days in four (at most 100).
    :param lexicon_events: Lexicon event schemas beyond the synthetic events' own five.
    :param project_created: the project's first day: the first cohort's creation, and where an
        annotation list without ``fromDate`` starts.
    :param export_file: serve this JSONL file's bytes, verbatim, for every export request.
    :param engage_files: serve these JSON files as engage pages 0, 1, ... verbatim.
    :param bytes_per_second: throttle each streamed response (export, engage) to about this rate.
    :param cache_bodies: keep each gzip export response in memory and replay it for the same
        request, so the server costs almost no CPU (benchmarks; not with ``late_arrival``).
    :param quotas: enforce Mixpanel's rate limits: ``True`` for Mixpanel's numbers, or a
        :class:`~.quota.Quotas`. Off (``None``) by default.
    :param late_arrival: process events late: ``True`` for the default shape, or a
        :class:`~.lateness.LateArrival`. An export then returns only events processed by the
        clock's now. Off by default (every event processed 1.5 s after its time, always visible).
    :param identity: visitors on Simplified ID Merge: ``True`` for the defaults, or an
        :class:`~.identity.IdentityMerge`. Each export then answers an event's ``distinct_id`` as
        resolved at the clock's now (``$device:<id>`` before the device's login is processed, the
        user id after). Off by default (``distinct_id`` is ``user-<n>``, no ``$user_id``).
    :param clock: a :class:`~.clock.SimClock` for quotas, late arrival and identity (default: the wall clock).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **config: Any):
        if "export_file" in config and config["export_file"] is not None:
            config["export_file"] = Path(config["export_file"])
        config["engage_files"] = tuple(Path(p) for p in config.get("engage_files", ()))
        config["foreign_project_ids"] = tuple(config.get("foreign_project_ids", ()))
        if config.get("quotas") is True:
            config["quotas"] = Quotas()
        elif config.get("quotas") is False:
            config["quotas"] = None
        if config.get("late_arrival") is True:
            config["late_arrival"] = LateArrival()
        elif config.get("late_arrival") is False:
            config["late_arrival"] = None
        if config.get("identity") is True:
            config["identity"] = IdentityMerge()
        elif config.get("identity") is False:
            config["identity"] = None
        if config.get("clock") is None:
            config.pop("clock", None)
        self.config = ServerConfig(**config)
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._synthetic: dict[tuple, SyntheticEvents] = {}
        self._renderers: dict[int, ProfileRenderer] = {}
        self._body_cache: dict[tuple, list[bytes]] = {}
        self._keeper: QuotaKeeper | None = None
        self._sessions = itertools.count(1)
        self._httpd = _Server((host, port), RequestHandler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def clock(self) -> SimClock:
        """The server's clock: ``server.clock.advance(timedelta(hours=1))`` on a manual one."""
        return self.config.clock

    def start(self) -> MixpanelTestServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="mixpanel-test-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> MixpanelTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ configuration

    def add_fault(self, kind: str, **options: Any) -> Fault:
        """Inject a fault into the next matching request(s); see :class:`Fault`."""
        fault = Fault(kind=kind, **options)
        with self._lock:
            self.config.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.config.faults.clear()

    def connection_extra(self, **overrides: Any) -> dict[str, Any]:
        return {"project_id": self.config.project_id, "host": self.url, **overrides}

    def connection_json(self, **extra_overrides: Any) -> str:
        """A ``mixpanel`` connection for this server, as the JSON an ``AIRFLOW_CONN_*`` variable takes."""
        return json.dumps(
            {
                "conn_type": "mixpanel",
                "login": self.config.username,
                "password": self.config.secret,
                "extra": self.connection_extra(**extra_overrides),
            }
        )

    # ------------------------------------------------------------ what happened

    def export_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/export")]

    def engage_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/engage")]

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The requests to one endpoint (``cohorts``, ``funnels``, ``lexicon``...: :mod:`.routes`)."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def quota_stats(self) -> dict[str, QuotaStats]:
        """Per quota pool (``export``; ``query``, also under its old name ``engage``; ``lexicon``;
        ``app``): requests admitted, 429s by limit, running now, counted in the last (simulated)
        hour. All zero when quotas are off."""
        keeper = self._quota_keeper()
        if keeper is None:
            empty = {pool: QuotaStats() for pool in POOLS}
            return {**empty, ENGAGE_ALIAS: empty["query"]}
        return keeper.stats()

    def reset_quotas(self) -> None:
        """Forget the requests counted so far (e.g. between benchmark phases)."""
        keeper = self._quota_keeper()
        if keeper is not None:
            keeper.reset()

    # ------------------------------------------------------------ what the data is

    def synthetic(self, ascii_escape: bool) -> SyntheticEvents:
        config = self.config  # events_per_day / late_arrival may be changed between requests
        key = (config.events_per_day, ascii_escape, config.late_arrival, config.identity)
        with self._lock:
            if key not in self._synthetic:
                self._synthetic[key] = SyntheticEvents(
                    config.events_per_day,
                    ascii_escape=ascii_escape,
                    late_arrival=config.late_arrival,
                    identity=config.identity,
                )
            return self._synthetic[key]

    def final_day_count(self, day: date, events: Iterable[str] | None = None) -> int:
        """How many events ``day`` holds once every late event has arrived."""
        return self.synthetic(self.config.ascii_escape).day_count(names=_names(events))

    def final_day_lines(self, day: date, events: Iterable[str] | None = None) -> Iterator[bytes]:
        """The export lines ``day`` holds once every late event has arrived (its final content)."""
        return self.synthetic(self.config.ascii_escape).day_lines(day, names=_names(events))

    def expected_insert_ids(self, day: date, events: Iterable[str] | None = None) -> Iterator[str]:
        """The ``$insert_id`` of every event in ``day``'s final content."""
        return self.synthetic(self.config.ascii_escape).insert_ids(day, names=_names(events))

    def visible_count(self, day: date, at: datetime | None = None, events: Iterable[str] | None = None) -> int:
        """How many of ``day``'s events an export at ``at`` (default: the clock's now) returns."""
        when = self.clock.now() if at is None else at
        return self.synthetic(self.config.ascii_escape).visible_count(day, _ms(when), names=_names(events))

    def visible_lines(
        self, day: date, at: datetime | None = None, events: Iterable[str] | None = None
    ) -> Iterator[bytes]:
        """The lines of ``day`` an export at ``at`` (default: the clock's now) returns."""
        when = self.clock.now() if at is None else at
        visible_ms = _ms(when) if self.config.late_arrival is not None else None
        synthetic = self.synthetic(self.config.ascii_escape)
        resolve = synthetic.visitors.resolved_at(_ms(when)) if synthetic.visitors is not None else None
        return synthetic.day_lines(day, names=_names(events), visible_at_ms=visible_ms, resolve=resolve)

    def resolved_distinct_ids(self, first: date, last: date, at: datetime | None = None) -> set[str]:
        """The distinct ids of the days' final content as Mixpanel resolves them at ``at``
        (default: the clock's now): a device merged by then counts as its user. Needs ``identity``."""
        synthetic = self.synthetic(self.config.ascii_escape)
        if synthetic.visitors is None:
            raise ValueError("resolved_distinct_ids needs a server started with identity=...")
        resolve = synthetic.visitors.resolved_at(_ms(self.clock.now() if at is None else at))
        ids: set[str] = set()
        day = first
        while day <= last:
            for line in synthetic.day_lines(day, resolve=resolve):
                ids.add(line.split(b'"distinct_id":"', 1)[1].split(b'"', 1)[0].decode())
            day += timedelta(days=1)
        return ids

    def day_complete_at(self, day: date) -> datetime:
        """From when an export of ``day`` returns its final content (its last event's latest processing)."""
        late = self.config.late_arrival
        lag = late.max_lag if late is not None else timedelta(milliseconds=1500)
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) + lag

    # ------------------------------------------------------------ what the metadata is
    # Each returns exactly what the server sends (as parsed JSON), for tests to compare against.

    def cohorts(self) -> list[dict]:
        """The entries ``/cohorts/list`` answers."""
        return list(self.cohort_model().records())

    def cohort_member_ids(self, cohort_id: int) -> list[str]:
        """The ``$distinct_id`` of every member engage's ``filter_by_cohort`` answers, in order."""
        members = self.cohort_model().members(cohort_id)
        if members is None:
            raise KeyError(f"the project has no cohort {cohort_id}")
        return [f"user-{index}" for index in members[:]]

    def funnels(self) -> list[dict]:
        """The entries ``/funnels/list`` answers."""
        return list(self.funnel_model().saved())

    def funnel_data(
        self, funnel_id: int, from_date: date, to_date: date, *, unit: str | None = None, interval: int = 1
    ) -> dict:
        """The body ``/funnels`` answers for one funnel and range: ``{"meta": ..., "data": ...}``."""
        plan = buckets(from_date, to_date, unit=unit, interval=interval)
        model = self.funnel_model()
        return {
            "meta": {"dates": [bucket.start.isoformat() for bucket in plan]},
            "data": {bucket.start.isoformat(): model.result(funnel_id, bucket) for bucket in plan},
        }

    def annotations(self, from_date: date, to_date: date) -> list[dict]:
        """The ``results`` the annotations endpoint answers for ``[from_date, to_date]``."""
        return list(self.annotation_model().between(from_date, to_date))

    def lexicon_schemas(self, entity_type: str | None = None) -> list[dict]:
        """The ``results`` of ``/schemas`` (or of ``/schemas/{entity_type}``)."""
        return list(self.lexicon_model().entries(entity_type))

    def cohort_model(self) -> SyntheticCohorts:
        config = self.config
        return SyntheticCohorts(
            config.cohorts, config.cohort_size, config.profiles, config.project_id, config.project_created
        )

    def funnel_model(self) -> SyntheticFunnels:
        return SyntheticFunnels(self.config.funnels)

    def annotation_model(self) -> SyntheticAnnotations:
        return SyntheticAnnotations(self.config.annotations_per_day)

    def lexicon_model(self) -> SyntheticLexicon:
        return SyntheticLexicon(self.config.lexicon_events)

    # ------------------------------------------------------------ internals

    def _quota_keeper(self) -> QuotaKeeper | None:
        quotas = self.config.quotas
        with self._lock:
            if quotas is None:
                self._keeper = None
            elif self._keeper is None or self._keeper.quotas is not quotas or self._keeper.clock is not self.clock:
                self._keeper = QuotaKeeper(quotas, self.clock, self.config.project_id)
            return self._keeper

    def _renderer(self) -> ProfileRenderer:
        count = self.config.profile_properties
        if count not in self._renderers:
            self._renderers[count] = ProfileRenderer(count)
        return self._renderers[count]

    def _new_session_id(self) -> str:
        """Deterministic: the n-th session of a server always has the same id."""
        n = next(self._sessions)
        return "%016x" % ((n * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self.config.faults:
                if fault.endpoint in (endpoint, "any"):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.config.faults.remove(fault)
                    return fault
        return None


def _names(events: Iterable[str] | None) -> frozenset[str] | None:
    return None if events is None else frozenset(events)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: MixpanelTestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up, as Mixpanel's servers do.

        A client that stops reading a broken body closes its connection while this server waits
        for its next request; the base class prints that reset as a traceback on stderr, where it
        lands in the middle of the client's own error message.
        """
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
