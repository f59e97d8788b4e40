"""MixpanelClient: Mixpanel's Raw Event Export, Query (Engage, cohorts, funnels) and App
(annotations, Lexicon) APIs over plain ``requests``.

No Airflow here: the hook turns a connection into a client. The client owns regions, auth,
timeouts, retries, pacing within Mixpanel's limits (one pacer per quota class), gzip and engage
pagination, and yields raw records lazily. Every endpoint goes through one request loop
(:meth:`MixpanelClient._records`); the endpoint methods only say what to send and how to read the
answer. What each dataset asks for is declared by its kind (:mod:`airflow_provider_mixpanel.kinds`).

Retry rule: a request is retried (429, 5xx, connection errors, timeouts) only while none of its
records has been yielded, so a retry never delivers a record twice. An export that breaks after
that raises :class:`~airflow_provider_mixpanel.errors.MixpanelStreamInterruptedError`; an engage
page that breaks is asked for again and resumes after the profiles already yielded.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import http.client
import json
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Unpack
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
from airflow_provider_mixpanel.kinds.events import EventsArguments, EventsQuery
from airflow_provider_mixpanel.kinds.profiles import ProfilesArguments, ProfilesQuery
from airflow_provider_mixpanel.pacing import QUOTAS, Quota, RequestPacer, shared_pacer
from airflow_provider_mixpanel.retry import RetryPolicy, RetryState, is_retryable

__all__ = ["REGIONS", "MixpanelClient"]

log = logging.getLogger(__name__)

EXPORT_PATH = "/api/2.0/export"
ENGAGE_PATH = "/api/query/engage"

# Socket reads of this size keep per-chunk overhead low without holding much memory.
READ_CHUNK_BYTES = 256 * 1024
# A gzip read of READ_CHUNK_BYTES can inflate to 5 MB of JSON: handed over in pieces of this size.
DECOMPRESSED_PIECE_BYTES = 64 * 1024
# Error bodies are short JSON; never read more than this of one.
MAX_ERROR_BODY_BYTES = 64 * 1024
# Large exports can take minutes before the first byte (peers use 600-1200 s).
DEFAULT_READ_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
TERMINATED_EARLY = b"terminated early"
TERMINATED_EARLY_MAX_LINE = len(TERMINATED_EARLY) + 8  # room for surrounding whitespace
# Mixpanel allows 100 concurrent export queries per project; keep a connection for each.
CONNECTION_POOL_SIZE = QUOTAS[Quota.EXPORT].limits.concurrent

_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    zlib.error,
)


class _TruncatedBody(Exception):
    """The body ended before its gzip end marker, or Mixpanel sent ``terminated early``."""


@dataclass(frozen=True)
class _Call:
    """One request, as the request loop sends it, and how a break of its body is reported."""

    method: str
    quota: Quota
    path: str
    #: names the request in messages, e.g. ``engage page 3``
    what: str
    params: Mapping[str, Any]
    form: Mapping[str, Any] | None = None
    #: asked again, the request gives the same answer: a broken body resumes after what was yielded
    resumable: bool = False
    noun: str = "records"
    #: said of a break that cannot resume, after the count
    unresumed: str = ""
    again: str = "re-run the whole window"


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
        hosts = REGIONS[region]
        #: the base URL of each quota class's requests
        self.hosts = {quota: base or getattr(hosts, facts.host) for quota, facts in QUOTAS.items()}
        self.export_url = self.hosts[Quota.EXPORT] + EXPORT_PATH
        self.engage_url = self.hosts[Quota.QUERY] + ENGAGE_PATH
        self.timeout = (connect_timeout, read_timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._pacers = (
            {q: shared_pacer(f"{self.hosts[q]}#{q.value}", project_id, f.limits) for q, f in QUOTAS.items()}
            if pacing
            else {}
        )
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

    # ---------------------------------------------------------------- endpoints

    def export_lines(
        self, from_date: date | str, to_date: date | str, **arguments: Unpack[EventsArguments]
    ) -> Iterator[bytes]:
        """Yield each line of ``GET /api/2.0/export`` as bytes, exactly as Mixpanel sent it
        (without its ``\\n``). ``from_date`` and ``to_date`` are inclusive days (a ``datetime``
        counts as its date).

        :param arguments: ``events``, ``where``, ``limit``, ``time_in_ms``: see
            :class:`~airflow_provider_mixpanel.kinds.events.EventsQuery`.
        """
        days = parse_date(from_date, "from_date"), parse_date(to_date, "to_date")
        return self.export(EventsQuery.build(arguments).params(*days))

    def export_line_batches(
        self, from_date: date | str, to_date: date | str, **arguments: Unpack[EventsArguments]
    ) -> Generator[list[bytes], None, None]:
        """:meth:`export_lines`, a list at a time: the lines each read of the body completed (one
        step of Python per read instead of one per line, for a consumer that can take them so)."""
        days = parse_date(from_date, "from_date"), parse_date(to_date, "to_date")
        return self.export_batches(EventsQuery.build(arguments).params(*days))

    def export_events(
        self,
        from_date: date | str,
        to_date: date | str,
        *,
        on_malformed: Callable[[bytes, MixpanelMalformedRecordError], None] | None = None,
        **arguments: Unpack[EventsArguments],
    ) -> Iterator[dict[str, Any]]:
        """Yield each exported event as parsed, ``{"event": ..., "properties": {...}}``.

        :param arguments: ``events``, ``where``, ``limit``, ``time_in_ms``, as :meth:`export_lines` takes them.
        :param on_malformed: called with a line that is not a JSON object and the error, which
            then is skipped; ``None`` (the default) raises
            :class:`~airflow_provider_mixpanel.errors.MixpanelMalformedRecordError` instead.
        """
        return convert_lines(self.export_lines(from_date, to_date, **arguments), loads_object, on_malformed)

    def query_profiles(self, **arguments: Unpack[ProfilesArguments]) -> Iterator[dict[str, Any]]:
        """Yield each profile of ``POST /api/query/engage``, ``{"$distinct_id": ..., "$properties": {...}}``,
        page after page, each page parsed as it arrives (never held whole).

        :param arguments: ``where``, ``cohort_id``, ``output_properties``, ``distinct_ids``,
            ``data_group_id``, ``include_all_users``, ``page_size``: see
            :class:`~airflow_provider_mixpanel.kinds.profiles.ProfilesQuery`.
        """
        return convert_lines(self.query_profile_lines(**arguments), loads_object, None)

    def query_profile_lines(self, **arguments: Unpack[ProfilesArguments]) -> Iterator[bytes]:
        """Like :meth:`query_profiles`, but yield each profile as bytes: the engage result's own
        JSON text, compact (no whitespace outside strings) and otherwise exactly as Mixpanel sent
        it (number forms, escapes, integers of any width, key order); a control character left
        unescaped inside a string is written back escaped."""
        return self.engage(ProfilesQuery.build(arguments).form())

    def export(self, params: Mapping[str, Any]) -> Iterator[bytes]:
        """The lines of ``GET /api/2.0/export`` with these parameters (``from_date``, ``to_date``...).

        Export requests are retried only before their first line: a stream that breaks later
        raises :class:`~airflow_provider_mixpanel.errors.MixpanelStreamInterruptedError`."""
        return _each(self.export_batches(params))

    def export_batches(self, params: Mapping[str, Any]) -> Generator[list[bytes], None, None]:
        """:meth:`export`, a list of lines at a time (those each read of the body completed)."""
        what = f"export {params['from_date']}..{params['to_date']} stream"
        call = _Call("GET", Quota.EXPORT, EXPORT_PATH, what, params={**params, **self._project_params(Quota.EXPORT)})
        return self._record_batches(call, _export_batches)

    def engage(self, form: Mapping[str, Any]) -> Iterator[bytes]:
        """The results of ``POST /api/query/engage`` with this form, page after page.

        Paging stops on an empty page, on a missing ``session_id``, or on a page shorter than the
        page size the server itself reported; never on a short page alone, since a server that
        ignores the requested size would otherwise end the export early. ``total`` is never
        trusted: it is missing on later pages and wrong in Mixpanel's own example. A page whose
        body breaks is asked for again (same ``session_id`` and page) and resumes after the
        profiles already yielded.
        """
        params = self._project_params(Quota.QUERY)
        page = 0
        session_id: str | None = None
        reported_page_size: int | None = None
        while True:
            body = dict(form)
            if session_id is not None:
                body.update(session_id=session_id, page=page)
            call = _Call(
                "POST",
                Quota.QUERY,
                ENGAGE_PATH,
                f"engage page {page}",
                params=params,
                form=body,
                # Page 0 asked again opens a new session, whose order nothing promises to be the
                # same: skipping what was yielded could lose or repeat profiles.
                resumable=session_id is not None,
                noun="profiles",
                unresumed=", before Mixpanel named its session",
                again="stream the profiles again",
            )
            result: EngagePage = yield from _each(self._record_batches(call, _engage_batches))
            if page == 0:
                reported_page_size = result.page_size
            session_id = result.session_id
            count = result.profiles
            if not count or session_id is None:
                return
            if reported_page_size is not None and count < reported_page_size:
                return
            page += 1

    def fetch_json(
        self,
        quota: Quota,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
        items: Callable[[bytes, str], list[bytes]] | None = None,
    ) -> Iterator[bytes]:
        """One JSON answer (a list of cohorts, annotations, Lexicon schemas...), read whole (these
        answers are small): its body, or the records ``items`` finds in it (``items(body, what)``;
        raising :class:`~airflow_provider_mixpanel.errors.MixpanelServerError` for a body that is
        not the answer asks for it again). The project's parameters are added.

        :param path: below the quota's host, e.g. ``/api/query/cohorts/list``; ``{project_id}``
            is replaced by the connection's project id.
        """
        if quota in (Quota.APP, Quota.LEXICON) and not self.username:
            raise MixpanelConfigError(
                f"Mixpanel {what} is read through the App API, which accepts only a service account, and "
                f"{self.source} authenticates with a project secret: set its login to a service account's username "
                "and its password to that account's secret (Mixpanel: Organization settings > Service accounts)."
            )
        if "{project_id}" in path:
            if self.project_id is None:
                raise MixpanelConfigError(
                    f"Mixpanel {what} is asked for by project id: set extra 'project_id' in {self.source}."
                )
            path = path.replace("{project_id}", str(self.project_id))
        call = _Call(method, quota, path, what, params={**(params or {}), **self._project_params(quota)}, form=form)
        return _each(self._record_batches(call, functools.partial(_whole_body, items=items)))

    # ---------------------------------------------------------------- the request loop

    def _record_batches(
        self, call: _Call, read: Callable[[Iterator[bytes], str], Generator[list[bytes], None, Any]]
    ) -> Generator[list[bytes], None, Any]:
        """The one request loop: send ``call`` (paced, retried by the policy, Retry-After and the
        hourly quota honoured), read its body with ``read`` (batches of records), and yield the
        batches (never an empty one).

        A body that breaks before any record was yielded is asked for again; after, it is asked
        for again only when ``call.resumable`` (the same answer comes back), skipping the records
        already yielded, and otherwise raises
        :class:`~airflow_provider_mixpanel.errors.MixpanelStreamInterruptedError`.
        Returns what ``read`` returned (an engage page's envelope).
        """
        state = RetryState(self.retry_policy)
        pacer = self._pacers.get(call.quota)
        yielded = 0
        while True:
            response = self._send(call, state, pacer)
            seen = 0
            try:
                batches = read(_body_chunks(response), call.what)
                while True:
                    try:
                        batch = next(batches)
                    except StopIteration as done:
                        return done.value
                    skip = yielded - seen  # delivered before the body broke: never twice
                    seen += len(batch)
                    if skip > 0:
                        batch = batch[skip:]
                    if batch:
                        delivered = len(batch)  # counted first: a consumer may extend the list it is given
                        yield batch
                        yielded += delivered
            except (_TruncatedBody, MixpanelServerError, *_TRANSPORT_ERRORS) as err:
                self._check_not_cancelled(call.what)
                # A body cut short, or not the answer at all (a proxy's error page): ask again.
                reason = err.message if isinstance(err, MixpanelServerError) else _describe_transport_error(err)
                if yielded and not call.resumable:
                    raise MixpanelStreamInterruptedError(
                        f"The Mixpanel {call.what} broke after {yielded} {call.noun}{call.unresumed}: {reason}. "
                        f"{call.noun.capitalize()} already delivered were not repeated; {call.again} (the operators "
                        "do this by themselves, replacing the partial output).",
                        records_yielded=yielded,
                    ) from err
                if yielded:
                    log.warning(
                        "Mixpanel %s broke after %d %s (%s); asking for it again.", call.what, seen, call.noun, reason
                    )
                broken = (reason, err)
            finally:
                self._done_with(response, pacer)
            # Waited out after the response and its pacer slot are let go, not while holding them.
            reason, cause = broken
            self._wait_or_raise(state, MixpanelServerError(reason), what=call.what, cause=cause, quota=call.quota)

    def _project_params(self, quota: Quota) -> dict[str, Any]:
        """The parameters that name the project: service accounts send ``project_id`` (the query
        API also ``workspace_id``); the App API names it in its path instead."""
        if not self.username or quota in (Quota.APP, Quota.LEXICON):
            return {}  # legacy project-secret auth identifies the project by the secret
        params: dict[str, Any] = {"project_id": self.project_id}
        if quota is Quota.QUERY and self.workspace_id is not None:
            params["workspace_id"] = self.workspace_id
        return params

    def _send(self, call: _Call, state: RetryState, pacer: RequestPacer | None) -> requests.Response:
        """Send one request within Mixpanel's limits, retrying 429, 5xx and connection errors
        by ``state``'s policy; return a 2xx response, holding a pacer slot that the caller
        releases when done with it."""
        headers = {"Accept-Encoding": "gzip"}
        what = call.what
        url = self.hosts[call.quota] + call.path
        while True:
            if pacer is not None:
                pacer.acquire()
            try:
                self._check_not_cancelled(what)
                response = self._session.request(
                    call.method,
                    url,
                    params=call.params,
                    data=call.form,
                    headers=headers,
                    timeout=self.timeout,
                    stream=True,
                )
            except requests.RequestException as err:
                self._release(pacer)
                broken = MixpanelServerError(_describe_transport_error(err, urlsplit(url).netloc))
                self._wait_or_raise(state, broken, what=what, cause=err, quota=call.quota)
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
            self._wait_or_raise(state, error, what=what, cause=None, quota=call.quota)

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
        self,
        state: RetryState,
        error: MixpanelError,
        *,
        what: str,
        cause: BaseException | None,
        quota: Quota = Quota.EXPORT,
    ) -> None:
        """Sleep before the next attempt, or raise ``error``'s kind with what to do."""
        wait, give_up = state.next_wait(error)
        reason = error.message.rstrip(". ")
        if give_up is not None:
            message = f"Mixpanel {what}: {reason}. {give_up.capitalize()}. "
            raise self._final_error(error, message, quota) from cause
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
                state.policy.for_error(error).max_retries,
            )
        self._sleep(wait)
        self._check_not_cancelled(what)

    def _final_error(self, error: MixpanelError, message: str, quota: Quota) -> MixpanelError:
        if isinstance(error, MixpanelRateLimitError):
            # A 429 of an API limited per minute (the Lexicon's 5) is its minute spent, whatever its text.
            per_minute = QUOTAS[quota].limits.requests_per_minute is not None
            spent = (
                per_minute or error.hourly_quota_spent or (error.retry_after or 0) > self.retry_policy.max_retry_after
            )
            advice = (
                QUOTAS[quota].when_spent if spent else "Lower request concurrency (an Airflow pool) or retry later."
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


def _each(batches: Generator[list[bytes], None, Any]) -> Generator[bytes, None, Any]:
    """The records of ``batches`` one by one (a ``for`` loop resumes this generator directly, no
    call per record); returns what ``batches`` returned. Closing it closes ``batches`` (the request)."""
    try:
        while True:
            try:
                batch = next(batches)
            except StopIteration as done:
                return done.value
            yield from batch
    finally:
        batches.close()


def _export_batches(chunks: Iterator[bytes], what: str) -> Generator[list[bytes], None, None]:
    """An export body's lines, in batches; Mixpanel's ``terminated early`` line ends it as a break."""
    for lines in split_line_batches(chunks):
        # Only a short line can be the marker: no strip() on every event line.
        marker = _terminated_early_at(lines) if min(map(len, lines)) < TERMINATED_EARLY_MAX_LINE else -1
        if marker >= 0:
            yield lines[:marker]
            raise _TruncatedBody("Mixpanel sent 'terminated early'")
        yield lines


def _engage_batches(chunks: Iterator[bytes], what: str) -> Generator[list[bytes], None, EngagePage]:
    """An engage page's results (their compact JSON text), one at a time; returns the page's envelope."""
    page_reader = read_engage_page(chunks, what=what)
    for profile in page_reader:
        if profile[:1] != b"{":
            raise MixpanelMalformedRecordError(
                f"Mixpanel {what} holds a result that is not an object: {profile[:100].decode('utf-8', 'replace')!r}"
            )
        yield [profile]
    assert page_reader.result is not None  # set once the page is read to its end
    return page_reader.result


def _whole_body(
    chunks: Iterator[bytes], what: str, *, items: Callable[[bytes, str], list[bytes]] | None
) -> Generator[list[bytes], None, None]:
    """A small JSON answer, whole: its body, or the records ``items`` finds in it."""
    body = b"".join(chunks)
    yield [body] if items is None else items(body, what)


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
