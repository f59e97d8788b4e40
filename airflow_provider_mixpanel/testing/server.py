"""A Mixpanel-compatible HTTP server for offline tests, the demo and the benchmarks.

Standard library only, threaded, bound to 127.0.0.1. It serves ``GET /api/2.0/export`` (JSONL,
chunked, gzipped above 1400 bytes like Mixpanel, never built whole in memory) and
``POST /api/query/engage`` (JSON pages with ``session_id``), checks HTTP Basic auth and the
``project_id``, serves synthetic data of any size or given fixture files, and injects faults::

    with MixpanelTestServer(events_per_day=1000) as server:
        server.add_fault("status", status=429, retry_after="1")
        server.add_fault("drop", after_records=500)
        os.environ["AIRFLOW_CONN_MIXPANEL_DEFAULT"] = server.connection_json()
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_mixpanel.testing.data import SyntheticEvents, synthetic_profile

FAULT_KINDS = ("status", "drop", "terminated_early", "malformed", "truncated_gzip", "slow", "stall")
# Mixpanel gzips an export body only when it is larger than this many bytes.
GZIP_MIN_BYTES = 1400
# Lines are batched into HTTP chunks of about this size.
CHUNK_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 1000


@dataclass
class Fault:
    """One injected fault, applied to the next ``times`` matching requests.

    :param kind: ``status`` (answer ``status`` with ``body`` and an optional ``Retry-After``),
        ``drop`` (close the socket after ``after_records`` records), ``terminated_early`` (send the
        ``terminated early`` line after ``after_records``), ``malformed`` (insert ``line`` after
        ``after_records``), ``truncated_gzip`` (end a gzip body without its end marker after
        ``after_records``), ``slow`` (wait ``delay`` seconds before answering), ``stall`` (wait
        ``delay`` seconds after ``after_records`` records).
    :param endpoint: ``export``, ``engage`` or ``any``.
    """

    kind: str
    endpoint: str = "export"
    times: int = 1
    status: int = 500
    body: str | None = None
    retry_after: str | None = None
    after_records: int = 0
    delay: float = 0.0
    line: bytes = b'{"event":"broken","properties":{"time":'


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    form: dict[str, str]
    user: str | None
    fault: str | None = None


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
    export_file: Path | None = None
    engage_files: tuple[Path, ...] = ()
    bytes_per_second: float | None = None
    cache_bodies: bool = False
    faults: list[Fault] = field(default_factory=list)


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
    :param profiles: how many synthetic profiles engage holds.
    :param page_size: engage's page size when the request does not set one.
    :param export_file: serve this JSONL file's bytes, verbatim, for every export request.
    :param engage_files: serve these JSON files as engage pages 0, 1, ... verbatim.
    :param bytes_per_second: throttle each export response to about this rate (per connection).
    :param cache_bodies: keep each gzip export response in memory and replay it for the same
        request, so the server costs almost no CPU (benchmarks).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **config: Any):
        if "export_file" in config and config["export_file"] is not None:
            config["export_file"] = Path(config["export_file"])
        config["engage_files"] = tuple(Path(p) for p in config.get("engage_files", ()))
        config["foreign_project_ids"] = tuple(config.get("foreign_project_ids", ()))
        self.config = ServerConfig(**config)
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._synthetic: dict[tuple[int, bool], SyntheticEvents] = {}
        self._body_cache: dict[tuple, list[bytes]] = {}
        self._httpd = _Server((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault {kind!r}: use one of {', '.join(FAULT_KINDS)}")
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

    def export_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/export")]

    def engage_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/engage")]

    def synthetic(self, ascii_escape: bool) -> SyntheticEvents:
        key = (self.config.events_per_day, ascii_escape)  # events_per_day may be changed between requests
        if key not in self._synthetic:
            self._synthetic[key] = SyntheticEvents(self.config.events_per_day, ascii_escape=ascii_escape)
        return self._synthetic[key]

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self.config.faults:
                if fault.endpoint in (endpoint, "any"):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.config.faults.remove(fault)
                    return fault
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: MixpanelTestServer


class _DropConnection(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # ------------------------------------------------------------ routing

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        form: dict[str, str] = {}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length)
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        user, password = self._basic_auth()
        endpoint = (
            "export"
            if split.path == "/api/2.0/export"
            else "engage"
            if split.path
            in (
                "/api/query/engage",
                "/api/2.0/engage",
            )
            else None
        )
        record = RecordedRequest(self.command, split.path, params, form, user)
        with owner._lock:
            owner.requests.append(record)
        if endpoint is None:
            return self._send_json(404, {"error": f"unknown path {split.path}"})
        denied = self._check_auth(owner.config, user, password, params)
        if denied is not None:
            return self._send_json(*denied)
        fault = owner._take_fault(endpoint)
        record.fault = fault.kind if fault else None
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            return self._send_fault_status(fault)
        try:
            if endpoint == "export":
                self._export(owner, params, fault)
            else:
                self._engage(owner, {**params, **form})
        except _DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
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
        self, config: ServerConfig, user: str | None, password: str | None, params: dict[str, str]
    ) -> tuple[int, dict] | None:
        if config.expired:
            return 400, {"error": "Unable to authenticate request"}
        if config.project_secret and user == config.project_secret and not password:
            return None
        if user != config.username or password != config.secret:
            return 401, {"error": "Invalid credentials"}
        project = params.get("project_id")
        if not project:
            return 400, {"error": "project_id is required for service account authentication"}
        if not project.isdigit():
            return 400, {"error": f"invalid project_id: {project}"}
        if int(project) in config.foreign_project_ids:
            return 400, {"error": "request failed with error: invalid project id for cluster."}
        if int(project) != config.project_id:
            return 403, {"error": "Permission denied: the service account is not a member of this project"}
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

    def _send_fault_status(self, fault: Fault) -> None:
        body = fault.body if fault.body is not None else HTTPStatus(fault.status).phrase
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        payload: Any = {"error": body}
        if fault.status == 429:
            payload = {"request": self.path.split("?")[0], "error": body}
        self._send_json(fault.status, payload, headers)

    def _export(self, owner: MixpanelTestServer, params: dict[str, str], fault: Fault | None) -> None:
        config = owner.config
        try:
            first = date.fromisoformat(params["from_date"])
            last = date.fromisoformat(params["to_date"])
        except (KeyError, ValueError) as err:
            return self._send_json(400, {"error": f"invalid from_date/to_date: {err}"})
        if first > last:
            return self._send_json(400, {"error": "from_date cannot be later than to_date"})
        names = None
        if params.get("event"):
            try:
                names = frozenset(json.loads(params["event"]))
            except ValueError:
                return self._send_json(400, {"error": "event must be a JSON array of event names"})
        limit = int(params["limit"]) if params.get("limit") else None
        time_in_ms = params.get("time_in_ms", "").lower() == "true"
        if config.export_file is not None:
            lines: Iterator[bytes] = _file_lines(config.export_file)
        else:
            lines = _range_lines(owner.synthetic(config.ascii_escape), first, last, names, time_in_ms)
        if limit is not None:
            lines = _take(lines, limit)
        if fault is not None and fault.kind in ("drop", "terminated_early", "malformed", "truncated_gzip", "stall"):
            lines = _with_fault(lines, fault)
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        gzip = (config.gzip and accepts_gzip) or (fault is not None and fault.kind == "truncated_gzip")
        if not (config.cache_bodies and gzip and fault is None):
            self._stream_body(lines, gzip=gzip, throttle=config.bytes_per_second)
            return
        key = (first, last, names, limit, time_in_ms, config.events_per_day, config.ascii_escape)
        cached = owner._body_cache.get(key)
        if cached is None:
            recorder = _Recorder(self.wfile)
            self.wfile = recorder  # type: ignore[assignment]
            try:
                self._stream_body(lines, gzip=gzip, throttle=config.bytes_per_second)
            finally:
                self.wfile = recorder.inner
            owner._body_cache[key] = recorder.parts
            return
        for part in cached:
            self.wfile.write(part)

    def _stream_body(self, lines: Iterator[bytes], *, gzip: bool, throttle: float | None) -> None:
        """Send the lines chunked; gzip only when the body turns out larger than 1400 bytes.

        A ``drop`` or ``truncated_gzip`` fault raised by ``lines`` is applied after everything
        before it has been sent.
        """
        batch: list[bytes] = []
        size = 0
        stop: Exception | None = None
        exhausted = False
        try:
            for line in lines:
                batch.append(line)
                size += len(line)
                if size > GZIP_MIN_BYTES:
                    break
            else:
                exhausted = True
        except (_DropConnection, _TruncateGzip) as err:
            stop = err
        if exhausted and stop is None:
            body = b"".join(batch)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        gzip = gzip or isinstance(stop, _TruncateGzip)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if gzip else None
        started = time.monotonic()
        sent = 0
        while True:
            if not exhausted and stop is None:
                try:
                    for line in lines:
                        batch.append(line)
                        size += len(line)
                        if size >= CHUNK_BYTES:
                            break
                    else:
                        exhausted = True
                except (_DropConnection, _TruncateGzip) as err:
                    stop = err
            data = b"".join(batch)
            batch, size = [], 0
            if compressor is not None:
                data = compressor.compress(data)
                if exhausted:
                    data += compressor.flush()
                elif stop is not None:  # everything so far, but no gzip end marker
                    data += compressor.flush(zlib.Z_SYNC_FLUSH)
            if data:
                self._write_chunk(data)
                sent += len(data)
                if throttle:
                    ahead = sent / throttle - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            if isinstance(stop, _DropConnection):
                self.wfile.flush()
                raise stop
            if exhausted or stop is not None:
                break
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _engage(self, owner: MixpanelTestServer, args: dict[str, str]) -> None:
        config = owner.config
        page = int(args.get("page") or 0)
        if page > 0 and not args.get("session_id"):
            return self._send_json(400, {"error": "page > 0 requires session_id"})
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
        page_size = int(args.get("page_size") or config.page_size)
        group = bool(args.get("data_group_id"))
        if args.get("distinct_ids"):
            wanted = set(json.loads(args["distinct_ids"]))
            indexes = [i for i in range(config.profiles) if synthetic_profile(i, group=group)["$distinct_id"] in wanted]
        else:
            indexes = list(range(config.profiles))
        chunk = indexes[page * page_size : (page + 1) * page_size]
        results = [synthetic_profile(i, group=group) for i in chunk]
        if args.get("output_properties"):
            keep = set(json.loads(args["output_properties"]))
            for result in results:
                result["$properties"] = {k: v for k, v in result["$properties"].items() if k in keep}
        payload: dict[str, Any] = {
            "page": page,
            "session_id": args.get("session_id") or secrets.token_hex(8),
            "status": "ok",
            "results": results,
        }
        if page == 0:  # like Mixpanel, total and page_size come only with the first page
            payload["total"] = len(indexes)
            payload["page_size"] = page_size
        self._send_json(200, payload)


class _TruncateGzip(Exception):
    pass


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
    synthetic: SyntheticEvents, first: date, last: date, names: frozenset[str] | None, time_in_ms: bool
) -> Iterator[bytes]:
    day = first
    while day <= last:
        yield from synthetic.day_lines(day, names=names, time_in_ms=time_in_ms)
        day += timedelta(days=1)


def _file_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle  # binary files split on b"\n" only


def _take(lines: Iterator[bytes], limit: int) -> Iterator[bytes]:
    for count, line in enumerate(lines):
        if count >= limit:
            return
        yield line


def _with_fault(lines: Iterator[bytes], fault: Fault) -> Iterator[bytes]:
    for count, line in enumerate(lines):
        if count == fault.after_records:
            if fault.kind == "drop":
                raise _DropConnection
            if fault.kind == "terminated_early":
                yield b"terminated early\n"
                return
            if fault.kind == "malformed":
                yield fault.line.rstrip(b"\n") + b"\n"
            if fault.kind == "truncated_gzip":
                raise _TruncateGzip
            if fault.kind == "stall":
                time.sleep(fault.delay)
        yield line
    # fewer records than after_records: break at the end instead
    if fault.kind == "drop":
        raise _DropConnection
    if fault.kind == "truncated_gzip":
        raise _TruncateGzip
