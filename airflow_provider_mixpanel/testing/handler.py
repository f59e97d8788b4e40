"""The test server's HTTP side: routing, auth, quotas, faults, and the export and engage answers
(the metadata endpoints' bodies are :mod:`.answers`')."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_mixpanel.testing.answers import ANSWERS, ApiError
from airflow_provider_mixpanel.testing.body import CHUNK_BYTES, send_stream
from airflow_provider_mixpanel.testing.config import RecordedRequest, ServerConfig
from airflow_provider_mixpanel.testing.engage import (
    EngagePage,
    page_footer,
    page_header,
    page_indexes,
    profile_pieces,
    wanted_indexes,
)
from airflow_provider_mixpanel.testing.faults import MID_BODY_KINDS, DropConnection, Fault, with_fault
from airflow_provider_mixpanel.testing.routes import Route, find_route
from airflow_provider_mixpanel.testing.where import time_bounds

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from airflow_provider_mixpanel.testing.cohorts import CohortMembers
    from airflow_provider_mixpanel.testing.data import SyntheticEvents
    from airflow_provider_mixpanel.testing.identity import Who
    from airflow_provider_mixpanel.testing.server import MixpanelTestServer


class _BadRequest(Exception):
    pass


class RequestHandler(BaseHTTPRequestHandler):
    """One connection to the test server; ``server.owner`` is the :class:`MixpanelTestServer`."""

    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # ------------------------------------------------------------ routing

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        owner: MixpanelTestServer = self.server.owner  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        form: dict[str, str] = {}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length)
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        user, password = self._basic_auth()
        found = find_route(split.path)
        route, path_params = found if found is not None else (None, {})
        record = RecordedRequest(
            self.command, split.path, params, form, user, at=owner.clock.now(), endpoint=route.name if route else None
        )
        with owner._lock:
            owner.requests.append(record)
        if route is None:
            return self._send_json(404, {"error": f"unknown path {split.path}"})
        if self.command not in route.methods:
            allowed = {"Allow": ", ".join(route.methods)}
            return self._send_error(
                route, 405, f"{self.command} is not allowed here: use {' or '.join(route.methods)}", allowed
            )
        project = path_params["project_id"] if route.api == "app" else params.get("project_id")
        denied = self._check_auth(owner.config, route, user, password, project)
        if denied is not None:
            return self._send_error(route, *denied)
        if route.api == "query" and params.get("workspace_id") and not params["workspace_id"].isdigit():
            return self._send_error(route, 400, f"invalid workspace_id: {params['workspace_id']}")
        keeper = owner._quota_keeper()
        if keeper is not None:
            refusal = keeper.admit(route.pool, split.path)
            if refusal is not None:
                record.fault = refusal.fault
                headers = {"Retry-After": refusal.retry_after} if refusal.retry_after is not None else None
                return self._send_json(429, refusal.body, headers)
        try:  # the concurrency slot is held until the response ends, or the client goes away
            args = {**params, **form} if route.name in _FORM_ENDPOINTS else params
            self._answer(owner, route, record, args, path_params)
        finally:
            if keeper is not None:
                keeper.release(route.pool)

    def _answer(
        self,
        owner: MixpanelTestServer,
        route: Route,
        record: RecordedRequest,
        args: dict[str, str],
        path_params: dict[str, str],
    ) -> None:
        fault = owner._take_fault(route.name)
        record.fault = fault.kind if fault else None
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            return self._send_fault_status(route, fault)
        mid_body = fault if fault is not None and fault.kind in MID_BODY_KINDS else None
        try:
            if route.name == "export":
                self._export(owner, args, mid_body)
            elif route.name == "engage":
                self._engage(owner, args, mid_body)
            else:
                pieces = ANSWERS[route.name](owner, args, path_params)
                first = next(pieces, b"")  # parameters are checked before the first piece: an error is whole
                self._send_pieces(owner, itertools.chain((first,), pieces), mid_body)
        except _BadRequest as err:
            self._send_json(400, {"error": str(err)})
        except ApiError as err:
            self._send_error(route, err.status, err.message)
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except ConnectionError:  # the client went away mid-body
            self.close_connection = True

    def _basic_auth(self) -> tuple[str | None, str | None]:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, None
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except ValueError:
            return None, None
        return user, password

    def _check_auth(
        self, config: ServerConfig, route: Route, user: str | None, password: str | None, project: str | None
    ) -> tuple[int, str] | None:
        """``(status, message)`` of the refusal, or ``None``: the request may go on."""
        if config.expired:
            return 400, "Unable to authenticate request"
        if config.project_secret and user == config.project_secret and not password:
            if route.api == "app":  # the app API's specs list only ServiceAccount under `security`
                return 401, "This API does not accept a project secret: authenticate with a service account"
            return None
        if user != config.username or password != config.secret:
            return 401, "Invalid credentials"
        if not project:
            return 400, "project_id is required for service account authentication"
        if not project.isdigit():
            return 400, f"invalid project_id: {project}"
        if int(project) in config.foreign_project_ids:
            return 400, "request failed with error: invalid project id for cluster."
        if int(project) != config.project_id:
            return 403, "Permission denied: the service account is not a member of this project"
        return None

    # ------------------------------------------------------------ responses

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, route: Route, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        """An error in the envelope of ``route``'s API: ``{"error"}``, or the app API's ``{"error", "status"}``."""
        payload = {"error": message, "status": "error"} if route.api == "app" else {"error": message}
        self._send_json(status, payload, headers)

    def _send_fault_status(self, route: Route, fault: Fault) -> None:
        body = fault.body if fault.body is not None else HTTPStatus(fault.status).phrase
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        if fault.status == 429 and route.api == "query":
            return self._send_json(fault.status, {"request": self.path.split("?")[0], "error": body}, headers)
        self._send_error(route, fault.status, body, headers)

    def _send_pieces(self, owner: MixpanelTestServer, pieces: Iterator[bytes], fault: Fault | None) -> None:
        """A JSON body of ``pieces``: whole with ``Content-Length`` when small, else chunked."""
        if fault is not None:
            pieces = with_fault(pieces, fault)
        send_stream(
            self,
            pieces,
            content_type="application/json",
            gzip=False,
            throttle=owner.config.bytes_per_second,
            plain_up_to=CHUNK_BYTES,
        )

    def _export(self, owner: MixpanelTestServer, params: dict[str, str], fault: Fault | None) -> None:
        config = owner.config
        try:
            first = date.fromisoformat(params["from_date"])
            last = date.fromisoformat(params["to_date"])
        except (KeyError, ValueError) as err:
            raise _BadRequest(f"invalid from_date/to_date: {err}") from None
        if first > last:
            raise _BadRequest("from_date cannot be later than to_date")
        names = None
        if params.get("event"):
            try:
                names = frozenset(json.loads(params["event"]))
            except ValueError:
                raise _BadRequest("event must be a JSON array of event names") from None
        try:
            bounds = time_bounds(params.get("where"))
        except ValueError as err:
            raise _BadRequest(str(err)) from None
        limit = _int_arg(params, "limit", -1)  # -1: no limit
        time_in_ms = params.get("time_in_ms", "").lower() == "true"
        late = config.late_arrival is not None
        now_ms = int(owner.clock.now().timestamp() * 1000)
        visible_ms = now_ms if late else None
        if config.export_file is not None:
            lines: Iterator[bytes] = _file_lines(config.export_file)
        else:
            synthetic = owner.synthetic(config.ascii_escape)
            # Simplified ID Merge: each distinct id as resolved now, when the request arrives.
            resolve = synthetic.visitors.resolved_at(now_ms) if synthetic.visitors is not None else None
            lines = _range_lines(
                synthetic,
                first,
                last,
                names=names,
                time_in_ms=time_in_ms,
                since=bounds.since,
                until=bounds.until,
                visible_ms=visible_ms,
                resolve=resolve,
            )
        if limit >= 0:
            lines = itertools.islice(lines, limit)
        if fault is not None:
            lines = with_fault(lines, fault)
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        gzip = (config.gzip and accepts_gzip) or (fault is not None and fault.kind == "truncated_gzip")
        if not (config.cache_bodies and gzip and fault is None and not late and config.identity is None):
            send_stream(self, lines, content_type=_JSONL, gzip=gzip, throttle=config.bytes_per_second)
            return
        key = (first, last, names, limit, time_in_ms, bounds, config.events_per_day, config.ascii_escape)
        cached = owner._body_cache.get(key)
        if cached is None:
            recorder = _Recorder(self.wfile)
            self.wfile = recorder  # type: ignore[assignment]
            try:
                send_stream(self, lines, content_type=_JSONL, gzip=gzip, throttle=config.bytes_per_second)
            finally:
                self.wfile = recorder.inner
            owner._body_cache[key] = recorder.parts
            return
        for part in cached:
            self.wfile.write(part)

    def _engage(self, owner: MixpanelTestServer, args: dict[str, str], fault: Fault | None) -> None:
        config = owner.config
        page = _int_arg(args, "page", 0)
        if page < 0:
            raise _BadRequest("page must be >= 0")
        if page > 0 and not args.get("session_id"):
            raise _BadRequest("page > 0 requires session_id")
        if config.engage_files:
            if page >= len(config.engage_files):
                return self._send_json(200, {"page": page, "session_id": args.get("session_id"), "results": []})
            body = config.engage_files[page].read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        page_size = _int_arg(args, "page_size", config.page_size)
        if page_size < 1:
            raise _BadRequest("page_size must be >= 1")
        group = bool(args.get("data_group_id"))
        request = EngagePage(
            page=page,
            page_size=min(page_size, config.max_page_size),
            session_id=args.get("session_id") or owner._new_session_id(),
            group=group,
            keep=frozenset(_json_arg(args, "output_properties")) if args.get("output_properties") else None,
            echo_page_size=config.echo_page_size,
        )
        wanted: Sequence[int] | None = None
        if args.get("distinct_ids"):
            wanted = wanted_indexes(_json_arg(args, "distinct_ids"), config.profiles, group=group)
        if args.get("filter_by_cohort"):
            members = _cohort_members(owner, args)
            wanted = members if wanted is None else [index for index in wanted if index in members]
        indexes, total = page_indexes(config.profiles, wanted, request.page, request.page_size)
        profiles = profile_pieces(owner._renderer(), indexes, request)
        if fault is not None:
            profiles = with_fault(profiles, fault)
        pieces = itertools.chain((page_header(request),), profiles, (page_footer(request, total),))
        send_stream(
            self,
            pieces,
            content_type="application/json",
            gzip=False,
            throttle=config.bytes_per_second,
            plain_up_to=CHUNK_BYTES,
        )


_JSONL = "text/plain; charset=utf-8"
# The POST endpoints whose form body carries parameters (project_id stays in the query string).
_FORM_ENDPOINTS = ("engage", "cohorts")


def _int_arg(args: dict[str, str], name: str, default: int) -> int:
    try:
        return int(args[name]) if args.get(name) else default
    except ValueError:
        raise _BadRequest(f"{name} must be an integer, not {args[name]!r}") from None


def _cohort_members(owner: MixpanelTestServer, args: dict[str, str]) -> CohortMembers:
    """The members ``filter_by_cohort={"id": N}`` selects (``openapi/query.openapi.yaml``, ``/engage``)."""
    if args.get("behaviors"):
        raise _BadRequest("behaviors and filter_by_cohort are mutually exclusive")
    include_all = args.get("include_all_users", "true").lower()
    if include_all not in ("true", "false"):
        raise _BadRequest(f"include_all_users must be true or false, not {args['include_all_users']!r}")
    try:
        selector = json.loads(args["filter_by_cohort"])
    except ValueError:
        selector = None
    cohort_id = selector.get("id") if isinstance(selector, dict) else None
    if not isinstance(cohort_id, int) or isinstance(cohort_id, bool):
        raise _BadRequest('filter_by_cohort must be a JSON object with an integer "id", e.g. {"id": 12345}')
    members = owner.cohort_model().members(cohort_id)
    if members is None:
        raise _BadRequest(f"cohort {cohort_id} does not exist in project {owner.config.project_id}")
    # Every synthetic member has a profile, so include_all_users=true and false select the same ids.
    return members


def _json_arg(args: dict[str, str], name: str) -> list:
    try:
        value = json.loads(args[name])
    except ValueError:
        raise _BadRequest(f"{name} must be a JSON array") from None
    if not isinstance(value, list):
        raise _BadRequest(f"{name} must be a JSON array")
    return value


class _Recorder:
    """Passes writes through and keeps a copy of them."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()


def _range_lines(
    synthetic: SyntheticEvents,
    first: date,
    last: date,
    *,
    names: frozenset[str] | None,
    time_in_ms: bool,
    since: int | None,
    until: int | None,
    visible_ms: int | None,
    resolve: Callable[[Who], str] | None,
) -> Iterator[bytes]:
    day = first
    while day <= last:
        yield from synthetic.day_lines(
            day, names=names, time_in_ms=time_in_ms, since=since, until=until, visible_at_ms=visible_ms, resolve=resolve
        )
        day += timedelta(days=1)


def _file_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle  # binary files split on b"\n" only
