"""MixpanelClient: Mixpanel's Raw Event Export and Engage APIs over plain ``requests``.

No Airflow here: the hook turns a connection into a client. The client owns regions, auth,
timeouts, retries, pacing within Mixpanel's limits, gzip and engage pagination, and yields raw
records lazily.

Retry rule: a request is retried (429, 5xx, connection errors, timeouts) only while none of its
records has been yielded, so a retry never delivers a record twice. An export that breaks after
that raises :class:`~airflow_provider_mixpanel.errors.MixpanelStreamInterruptedError`; an engage
page that breaks is asked for again and resumes after the profiles already yielded.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3.exceptions

from airflow_provider_mixpanel import __version__
from airflow_provider_mixpanel.connection import REGIONS, MixpanelConnectionSettings, check_credentials
from airflow_provider_mixpanel.dates import parse_date
from airflow_provider_mixpanel.engage import EngagePage, read_engage_page
from airflow_provider_mixpanel.errors import (
    MixpanelCancelledError,
    MixpanelConfigError,
    MixpanelError,
    MixpanelMalformedRecordError,
    MixpanelRateLimitError,
    MixpanelServerError,
    MixpanelStreamInterruptedError,
    error_for_status,
)
from airflow_provider_mixpanel.jsonl import convert_lines, loads_object, split_line_batches
from airflow_provider_mixpanel.pacing import EXPORT_LIMITS, QUERY_LIMITS, RequestPacer, shared_pacer
from airflow_provider_mixpanel.retry import RetryPolicy, RetryState, is_retryable

__all__ = ["REGIONS", "MixpanelClient"]

log = logging.getLogger(__name__)

EXPORT_PATH = "/api/2.0/export"
ENGAGE_PATH = "/api/query/engage"

# Socket reads of this size keep per-chunk overhead low without holding much memory.
READ_CHUNK_BYTES = 256 * 1024
# A gzip read of READ_CHUNK_BYTES can inflate to 5 MB of JSON: handed over in pieces of this size.
DECOMPRESSED_PIECE_BYTES = 64 * 1024
# Mixpanel caps one export request's `limit` at this many events.
MAX_EXPORT_LIMIT = 100_000
# Error bodies are short JSON; never read more than this of one.
MAX_ERROR_BODY_BYTES = 64 * 1024
# Large exports can take minutes before the first byte (peers use 600-1200 s).
DEFAULT_READ_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
# Profiles asked for per engage page when the caller does not say: 1,000,000 profiles in 21
# queries (20 pages, then the empty one that ends paging) of the query API's 60 per hour
# (Mixpanel's own default, 1,000, would need 1,000 queries, about 17 hours of quota). Pages are
# parsed as they arrive, so a large page costs no memory.
DEFAULT_ENGAGE_PAGE_SIZE = 50_000
TERMINATED_EARLY = b"terminated early"
TERMINATED_EARLY_MAX_LINE = len(TERMINATED_EARLY) + 8  # room for surrounding whitespace
# Mixpanel allows 100 concurrent export queries per project; keep a connection for each.
CONNECTION_POOL_SIZE = EXPORT_LIMITS.concurrent

_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    zlib.error,
)


class _TruncatedBody(Exception):
    """The body ended before its gzip end marker, or Mixpanel sent ``terminated early``."""


class MixpanelClient:
    """A client for Mixpanel's Raw Event Export and Engage (profiles) APIs.

    :param username: service-account username; ``None`` or ``""`` with a legacy project secret.
    :param secret: service-account secret, or the legacy project API secret.
    :param project_id: numeric project id, sent with every service-account request.
    :param region: data residency, ``us``, ``eu`` or ``in``; picks the export and query hosts.
    :param workspace_id: the global Data View's workspace id, sent to the query API when given.
    :param base_url: replaces Mixpanel's hosts for both APIs (a proxy or the bundled test server).
    :param connect_timeout: seconds to wait for a TCP connection.
    :param read_timeout: seconds to wait for the next bytes of a response.
    :param retry_policy: how 429s, 5xx answers and connection errors are retried.
    :param source: how errors name where the credentials came from, e.g. ``connection 'mixpanel_default'``.
    :param pacing: keep Mixpanel's per-second and concurrency limits (shared by every client of
        the same project in this process); off only for tests.
    """

    def __init__(
        self,
        *,
        username: str | None,
        secret: str,
        project_id: int | None,
        region: str = "us",
        workspace_id: int | None = None,
        base_url: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        source: str = "Mixpanel connection",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacing: bool = True,
    ):
        check_credentials(username=username, secret=secret, project_id=project_id, region=region, where=source)
        self.username = username or None
        self.project_id = project_id
        self.region = region
        self.workspace_id = workspace_id
        self.source = source
        base = base_url.rstrip("/") if base_url else None
        self.export_url = (base or REGIONS[region].export) + EXPORT_PATH
        self.engage_url = (base or REGIONS[region].query) + ENGAGE_PATH
        self.timeout = (connect_timeout, read_timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._export_pacer = shared_pacer(self.export_url, project_id, EXPORT_LIMITS) if pacing else None
        self._query_pacer = shared_pacer(self.engage_url, project_id, QUERY_LIMITS) if pacing else None
        if session is None:
            session = requests.Session()
            # Room for every export stream an operator may run at once (max_active_windows).
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=CONNECTION_POOL_SIZE)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        self._cancelled = threading.Event()
        self._open_lock = threading.Lock()
        self._open_responses: set[requests.Response] = set()
        # Legacy project secrets authenticate as "<secret>:" (secret as the Basic-auth user).
        self._session.auth = (self.username, secret) if self.username else (secret, "")
        self._session.headers["User-Agent"] = f"airflow-provider-mixpanel/{__version__}"

    @classmethod
    def from_settings(cls, settings: MixpanelConnectionSettings, **client_kwargs: Any) -> MixpanelClient:
        """A client for a read and validated connection (timeouts, retry policy... as keywords)."""
        return cls(
            username=settings.username,
            secret=settings.secret,
            project_id=settings.project_id,
            region=settings.region,
            workspace_id=settings.workspace_id,
            base_url=settings.base_url,
            source=f"connection {settings.conn_id!r}",
            **client_kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"MixpanelClient(project_id={self.project_id!r}, region={self.region!r}, "
            f"export_url={self.export_url!r}, auth={'service-account' if self.username else 'project-secret'})"
        )

    def close(self) -> None:
        self._session.close()

    def cancel(self) -> None:
        """Stop every stream of this client now, from any thread: reads in progress end (their
        sockets are shut down), requests waiting for their turn are never sent, and each stream
        raises :class:`~airflow_provider_mixpanel.errors.MixpanelCancelledError`. The client
        refuses requests from then on; build a new one to start again."""
        self._cancelled.set()
        with self._open_lock:
            responses = list(self._open_responses)
        for response in responses:
            _interrupt(response)

    def _check_not_cancelled(self, what: str) -> None:
        if self._cancelled.is_set():
            raise MixpanelCancelledError(
                f"Mixpanel {what} was cancelled: the task was killed or another window failed."
            )

    # ---------------------------------------------------------------- export

    def export_lines(
        self,
        from_date: date | str,
        to_date: date | str,
        *,
        events: Iterable[str] | str | None = None,
        where: str | None = None,
        limit: int | None = None,
        time_in_ms: bool = False,
    ) -> Iterator[bytes]:
        """Yield each line of ``GET /api/2.0/export`` as bytes, exactly as Mixpanel sent it
        (without its ``\\n``). ``from_date`` and ``to_date`` are inclusive days (a ``datetime``
        counts as its date)."""
        params = self._export_params(from_date, to_date, events, where, limit, time_in_ms)
        return _Lines(self._stream_export(params))

    def export_line_batches(
        self,
        from_date: date | str,
        to_date: date | str,
        *,
        events: Iterable[str] | str | None = None,
        where: str | None = None,
        limit: int | None = None,
        time_in_ms: bool = False,
    ) -> Generator[list[bytes], None, None]:
        """:meth:`export_lines`, a list at a time: the lines each read of the body completed (one
        step of Python per read instead of one per line, for a consumer that can take them so)."""
        return self._stream_export(self._export_params(from_date, to_date, events, where, limit, time_in_ms))

    def _export_params(
        self,
        from_date: date | str,
        to_date: date | str,
        events: Iterable[str] | str | None,
        where: str | None,
        limit: int | None,
        time_in_ms: bool,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "from_date": parse_date(from_date, "from_date").isoformat(),
            "to_date": parse_date(to_date, "to_date").isoformat(),
        }
        if events:
            names = [events] if isinstance(events, str) else list(events)
            params["event"] = json.dumps(names, ensure_ascii=False)
        if where:
            params["where"] = where
        if limit is not None:
            if not 0 < limit <= MAX_EXPORT_LIMIT:
                raise MixpanelConfigError(f"limit={limit!r}: Mixpanel accepts 1 to {MAX_EXPORT_LIMIT}.")
            params["limit"] = limit
        if time_in_ms:
            params["time_in_ms"] = "true"
        params.update(self._project_params(query_api=False))
        return params

    def export_events(
        self,
        from_date: date | str,
        to_date: date | str,
        *,
        on_malformed: Callable[[bytes, MixpanelMalformedRecordError], None] | None = None,
        **filters: Any,
    ) -> Iterator[dict[str, Any]]:
        """Yield each exported event as parsed, ``{"event": ..., "properties": {...}}``.

        :param filters: ``events``, ``where``, ``limit``, ``time_in_ms``, as :meth:`export_lines` takes them.
        :param on_malformed: called with a line that is not a JSON object and the error, which
            then is skipped; ``None`` (the default) raises
            :class:`~airflow_provider_mixpanel.errors.MixpanelMalformedRecordError` instead.
        """
        return convert_lines(self.export_lines(from_date, to_date, **filters), loads_object, on_malformed)

    def _stream_export(self, params: dict[str, Any]) -> Generator[list[bytes], None, None]:
        what = f"export {params['from_date']}..{params['to_date']}"
        state = RetryState(self.retry_policy)
        while True:
            response = self._send("GET", self.export_url, what=what, state=state, params=params)
            yielded = 0
            try:
                for lines in split_line_batches(_body_chunks(response)):
                    # Only a short line can be the marker: no strip() on every event line.
                    marker = _terminated_early_at(lines) if min(map(len, lines)) < TERMINATED_EARLY_MAX_LINE else -1
                    if marker >= 0:
                        if marker:
                            yield lines[:marker]
                        yielded += marker
                        raise _TruncatedBody("Mixpanel sent 'terminated early'")
                    yield lines
                    yielded += len(lines)
                return
            except (_TruncatedBody, *_TRANSPORT_ERRORS) as err:
                self._check_not_cancelled(what)
                reason = _describe_transport_error(err)
                if yielded:
                    raise MixpanelStreamInterruptedError(
                        f"The Mixpanel {what} stream broke after {yielded} records: {reason}. "
                        "Records already delivered were not repeated; re-run the whole window "
                        "(the operators do this by themselves, replacing the partial output).",
                        records_yielded=yielded,
                    ) from err
                broken = (reason, err)
            finally:
                self._done_with(response, self._export_pacer)
            # Waited out after the response and its pacer slot are let go, not while holding them.
            reason, cause = broken
            self._wait_or_raise(state, MixpanelServerError(reason), what=what, cause=cause)

    # ---------------------------------------------------------------- engage

    def query_profiles(
        self,
        *,
        where: str | None = None,
        output_properties: Iterable[str] | str | None = None,
        cohort_id: int | None = None,
        distinct_ids: Iterable[str] | str | None = None,
        data_group_id: str | None = None,
        include_all_users: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each profile of ``POST /api/query/engage``, ``{"$distinct_id": ..., "$properties": {...}}``,
        page after page, each page parsed as it arrives (never held whole).

        Paging stops on an empty page, on a missing ``session_id``, or on a page shorter than the
        page size the server itself reported; never on a short page alone, since a server that
        ignores the requested size would otherwise end the export early. ``total`` is never
        trusted: it is missing on later pages and wrong in Mixpanel's own example. A page whose
        body breaks is asked for again (same ``session_id`` and page) and resumes after the
        profiles already yielded.
        """
        lines = self.query_profile_lines(
            where=where,
            output_properties=output_properties,
            cohort_id=cohort_id,
            distinct_ids=distinct_ids,
            data_group_id=data_group_id,
            include_all_users=include_all_users,
            page_size=page_size,
        )
        return convert_lines(lines, loads_object, None)

    def query_profile_lines(
        self,
        *,
        where: str | None = None,
        output_properties: Iterable[str] | str | None = None,
        cohort_id: int | None = None,
        distinct_ids: Iterable[str] | str | None = None,
        data_group_id: str | None = None,
        include_all_users: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[bytes]:
        """Like :meth:`query_profiles`, but yield each profile as bytes: the engage result's own
        JSON text, compact (no whitespace outside strings) and otherwise exactly as Mixpanel sent
        it (number forms, escapes, integers of any width, key order); a control character left
        unescaped inside a string is written back escaped."""
        form: dict[str, Any] = {}
        if where:
            form["where"] = where
        if output_properties is not None:
            names = [output_properties] if isinstance(output_properties, str) else list(output_properties)
            form["output_properties"] = json.dumps(names, ensure_ascii=False)
        if cohort_id is not None:
            form["filter_by_cohort"] = json.dumps({"id": cohort_id})
        if include_all_users is not None:
            if cohort_id is None:
                raise MixpanelConfigError("include_all_users applies only with cohort_id: set cohort_id or drop it.")
            form["include_all_users"] = "true" if include_all_users else "false"
        if distinct_ids is not None:
            ids = [distinct_ids] if isinstance(distinct_ids, str) else list(distinct_ids)
            form["distinct_ids"] = json.dumps(ids, ensure_ascii=False)
        if data_group_id is not None:
            form["data_group_id"] = str(data_group_id)
        if page_size is None:
            page_size = DEFAULT_ENGAGE_PAGE_SIZE
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise MixpanelConfigError(f"page_size={page_size!r}: it must be a positive number of profiles.")
        form["page_size"] = page_size
        return self._paginate_engage(form)

    def _paginate_engage(self, form: dict[str, Any]) -> Iterator[bytes]:
        params = self._project_params(query_api=True)
        page = 0
        session_id: str | None = None
        reported_page_size: int | None = None
        while True:
            body = dict(form)
            if session_id is not None:
                body.update(session_id=session_id, page=page)
            result = yield from self._engage_page(params, body, page)
            if page == 0:
                reported_page_size = result.page_size
            session_id = result.session_id
            count = result.profiles
            if not count or session_id is None:
                return
            if reported_page_size is not None and count < reported_page_size:
                return
            page += 1

    def _engage_page(
        self, params: dict[str, Any], body: dict[str, Any], page: int
    ) -> Generator[bytes, None, EngagePage]:
        """Yield the profiles of one page (their compact JSON text); asked again after a break,
        skipping those yielded.
        Returns what the page said (session id, page size, how many profiles it held)."""
        what = f"engage page {page}"
        state = RetryState(self.retry_policy)
        yielded = 0
        while True:
            response = self._send("POST", self.engage_url, what=what, state=state, params=params, data=body)
            seen = 0
            try:
                page_reader = read_engage_page(_body_chunks(response), what=what)
                for profile in page_reader:
                    seen += 1
                    if seen <= yielded:  # delivered before the page broke: never twice
                        continue
                    if profile[:1] != b"{":
                        raise MixpanelMalformedRecordError(
                            f"Mixpanel {what} holds a result that is not an object: "
                            f"{profile[:100].decode('utf-8', 'replace')!r}"
                        )
                    yield profile
                    yielded += 1
                assert page_reader.result is not None  # set once the page is read to its end
                return page_reader.result
            except (_TruncatedBody, MixpanelServerError, *_TRANSPORT_ERRORS) as err:
                self._check_not_cancelled(what)
                # A body cut short, or not an engage page at all (a proxy's error page): ask again.
                reason = err.message if isinstance(err, MixpanelServerError) else _describe_transport_error(err)
                if yielded and "session_id" not in body:
                    # Page 0 asked again opens a new session, whose order nothing promises to be
                    # the same: skipping what was yielded could lose or repeat profiles.
                    raise MixpanelStreamInterruptedError(
                        f"The Mixpanel {what} broke after {yielded} profiles, before Mixpanel named its "
                        f"session: {reason}. Profiles already delivered were not repeated; stream the "
                        "profiles again (the operators do this by themselves, replacing the partial output).",
                        records_yielded=yielded,
                    ) from err
                log.warning("Mixpanel %s broke after %d profiles (%s); asking for it again.", what, seen, reason)
                broken = (reason, err)
            finally:
                self._done_with(response, self._query_pacer)
            reason, cause = broken
            self._wait_or_raise(state, MixpanelServerError(reason), what=what, cause=cause)

    # ---------------------------------------------------------------- HTTP

    def _project_params(self, *, query_api: bool) -> dict[str, Any]:
        if not self.username:  # legacy project-secret auth identifies the project by the secret
            return {}
        params: dict[str, Any] = {"project_id": self.project_id}
        if query_api and self.workspace_id is not None:
            params["workspace_id"] = self.workspace_id
        return params

    def _send(self, method: str, url: str, *, what: str, state: RetryState, **kwargs: Any) -> requests.Response:
        """Send one request within Mixpanel's limits, retrying 429, 5xx and connection errors
        by ``state``'s policy; return a 2xx response, holding a pacer slot that the caller
        releases when done with it."""
        headers = {"Accept-Encoding": "gzip"}
        pacer = self._export_pacer if url == self.export_url else self._query_pacer
        while True:
            if pacer is not None:
                pacer.acquire()
            try:
                self._check_not_cancelled(what)
                response = self._session.request(
                    method, url, headers=headers, timeout=self.timeout, stream=True, **kwargs
                )
            except requests.RequestException as err:
                self._release(pacer)
                reason = _describe_transport_error(err, urlsplit(url).netloc)
                self._wait_or_raise(state, MixpanelServerError(reason), what=what, cause=err)
                continue
            except BaseException:  # cancelled, or anything unexpected: never keep the slot
                self._release(pacer)
                raise
            if response.status_code < 400:
                with self._open_lock:
                    self._open_responses.add(response)
                if self._cancelled.is_set():  # cancelled while the request was in flight
                    _interrupt(response)
                return response
            error = self._error_for(response, what)
            response.close()
            self._release(pacer)
            if not is_retryable(error):
                raise error
            self._wait_or_raise(state, error, what=what, cause=None)

    def _done_with(self, response: requests.Response, pacer: RequestPacer | None) -> None:
        with self._open_lock:
            self._open_responses.discard(response)
        response.close()
        self._release(pacer)

    @staticmethod
    def _release(pacer: RequestPacer | None) -> None:
        if pacer is not None:
            pacer.release()

    def _wait_or_raise(
        self, state: RetryState, error: MixpanelError, *, what: str, cause: BaseException | None
    ) -> None:
        """Sleep before the next attempt, or raise ``error``'s kind with what to do."""
        wait, give_up = state.next_wait(error)
        reason = error.message.rstrip(". ")
        if give_up is not None:
            raise self._final_error(error, f"Mixpanel {what}: {reason}. {give_up.capitalize()}. ") from cause
        if isinstance(error, MixpanelRateLimitError) and error.hourly_quota_spent:
            log.warning(
                "Mixpanel %s: the hourly quota (60 queries per rolling hour) is spent. Waiting %.0f s for a "
                "query to free up (%.0f s of waiting in all, of at most %.0f s: max_retry_after).",
                what,
                wait,
                state.quota_waited,
                state.policy.max_retry_after,
            )
        else:
            log.warning(
                "Mixpanel %s: %s. Retrying in %.1f s (retry %d of %d).",
                what,
                reason,
                wait,
                state.retries,
                state.policy.max_retries,
            )
        self._sleep(wait)
        self._check_not_cancelled(what)

    def _final_error(self, error: MixpanelError, message: str) -> MixpanelError:
        if isinstance(error, MixpanelRateLimitError):
            advice = (
                "The quota (60 queries per rolling hour) is spent: let the task retry later (Airflow's "
                "retry_delay), spend fewer requests (wider windows, a larger page_size), or cap "
                "concurrent tasks with an Airflow pool."
                if error.hourly_quota_spent or (error.retry_after or 0) > self.retry_policy.max_retry_after
                else "Lower request concurrency (an Airflow pool) or retry later."
            )
            return MixpanelRateLimitError(
                message + advice,
                retry_after=error.retry_after,
                http_status=429,
                api_message=error.api_message,
            )
        advice = f"Mixpanel or the network is failing; retry later, and check the host and region of {self.source}."
        return type(error)(message + advice, http_status=error.http_status, api_message=error.api_message)

    def _error_for(self, response: requests.Response, what: str) -> MixpanelError:
        return error_for_status(
            response.status_code,
            _api_error_message(response),
            what=what,
            source=self.source,
            project_id=self.project_id,
            region=self.region,
            url=response.url,
            retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
        )


class _Lines(Iterator[bytes]):
    """The lines of an export one by one, from its batches. Closing it closes the request."""

    def __init__(self, batches: Generator[list[bytes], None, None]):
        self._batches = batches
        self._lines = self._each(batches)

    @staticmethod
    def _each(batches: Iterator[list[bytes]]) -> Generator[bytes, None, None]:
        for lines in batches:
            yield from lines

    def __iter__(self) -> Iterator[bytes]:
        return self._lines  # the generator itself: a for loop resumes it without a method call per line

    def __next__(self) -> bytes:
        return next(self._lines)

    def close(self) -> None:
        self._lines.close()
        self._batches.close()


def _terminated_early_at(lines: list[bytes]) -> int:
    """The index of Mixpanel's "terminated early" marker among ``lines``, or -1."""
    for index, line in enumerate(lines):
        if len(line) < TERMINATED_EARLY_MAX_LINE and line.strip() == TERMINATED_EARLY:
            return index
    return -1


def _body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The response body in chunks, gunzipped when it was sent with ``Content-Encoding: gzip``.

    Decompression is done here rather than by urllib3 so a gzip body cut short (no end marker) is
    detected instead of passing as a shorter, complete-looking body.
    """
    raw_chunks = response.raw.stream(READ_CHUNK_BYTES, decode_content=False)
    if response.headers.get("Content-Encoding", "").strip().lower() != "gzip":
        yield from raw_chunks
        return
    decompressor = zlib.decompressobj(wbits=31)
    for chunk in raw_chunks:
        pending = chunk
        while pending:
            # At most DECOMPRESSED_PIECE_BYTES at a time: each call lets go of the GIL, so a part
            # writer thread waiting for it is not kept waiting while thousands of lines are read.
            data = decompressor.decompress(pending, DECOMPRESSED_PIECE_BYTES)
            pending = decompressor.unconsumed_tail
            if decompressor.eof and decompressor.unused_data:  # a further gzip member follows
                pending = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
            if data:
                yield data
    if not decompressor.eof:
        raise _TruncatedBody("the gzip body ended before its end marker (truncated)")


def _interrupt(response: requests.Response) -> None:
    """Wake a read blocked on this response's socket, from another thread (close() alone does
    not wake a blocked recv on Linux; shutdown() does)."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:  # urllib3 lets go of the socket once the headers are read: reach it through the body
        body = getattr(getattr(response.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(body, "raw", None), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to wake
            sock.shutdown(socket.SHUT_RDWR)


def _describe_transport_error(err: BaseException, host: str | None = None) -> str:
    if isinstance(err, _TruncatedBody):
        return str(err)
    if isinstance(err, requests.Timeout | urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return f"timed out ({type(err).__name__})"
    cause = _connect_failure(err)
    if cause is not None:  # the one line that matters, not urllib3's nested reprs
        return f"connection failed ({host}: {cause})" if host else f"connection failed ({cause})"
    return f"connection failed ({type(err).__name__}: {err})"


def _connect_failure(err: BaseException) -> str | None:
    """Why no connection could be made (``[Errno 111] Connection refused``, ``Failed to resolve
    'host' (...)``), or ``None`` when the failure is of another kind."""
    reason = getattr(err.args[0], "reason", None) if err.args else None
    if not isinstance(reason, urllib3.exceptions.NewConnectionError):  # NameResolutionError included
        return None
    text = str(reason).split("): ", 1)[-1]  # without "HTTPConnection(host=..., port=...)"
    return text.removeprefix("Failed to establish a new connection: ")


def _api_error_message(response: requests.Response) -> str | None:
    try:
        raw = next(response.iter_content(MAX_ERROR_BODY_BYTES), b"")
    except Exception:  # an unreadable error body must not hide the status code
        return None
    text = raw.decode("utf-8", errors="replace").strip() if raw else ""
    if not text:
        return None
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return payload["error"]
    return text[:300]


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
