"""MixpanelClient: Mixpanel's Raw Event Export and Engage APIs over plain ``requests``.

No Airflow here: the hook turns a connection into a client. The client owns regions, auth,
timeouts, retries, gzip and engage pagination, and yields raw records (dicts) lazily.

Retry rule: a request is retried (429, 5xx, connection errors, timeouts) only while none of its
records has been yielded, so a retry never delivers a record twice. A failure after that raises
:class:`~airflow_provider_mixpanel.errors.MixpanelStreamInterruptedError`.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

import requests
import requests.adapters
import urllib3.exceptions

from airflow_provider_mixpanel import __version__
from airflow_provider_mixpanel.encoding import convert_lines, loads_object
from airflow_provider_mixpanel.errors import (
    MixpanelAuthError,
    MixpanelConfigError,
    MixpanelError,
    MixpanelMalformedRecordError,
    MixpanelQueryError,
    MixpanelRateLimitError,
    MixpanelServerError,
    MixpanelStreamInterruptedError,
)
from airflow_provider_mixpanel.jsonl import split_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionHosts:
    export: str
    query: str


REGIONS: dict[str, RegionHosts] = {
    "us": RegionHosts(export="https://data.mixpanel.com", query="https://mixpanel.com"),
    "eu": RegionHosts(export="https://data-eu.mixpanel.com", query="https://eu.mixpanel.com"),
    "in": RegionHosts(export="https://data-in.mixpanel.com", query="https://in.mixpanel.com"),
}
EXPORT_PATH = "/api/2.0/export"
ENGAGE_PATH = "/api/query/engage"

# Socket reads of this size keep per-chunk overhead low without holding much memory.
READ_CHUNK_BYTES = 256 * 1024
# Mixpanel caps one export request's `limit` at this many events.
MAX_EXPORT_LIMIT = 100_000
# Error bodies are short JSON; never read more than this of one.
MAX_ERROR_BODY_BYTES = 64 * 1024
# Large exports can take minutes before the first byte (peers use 600-1200 s).
DEFAULT_READ_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 5
# First backoff wait; it doubles each retry (2, 4, 8, 16, 32 s: about a minute in all), with jitter.
DEFAULT_BACKOFF_BASE = 2.0
DEFAULT_BACKOFF_MAX = 60.0
# A Retry-After longer than this (the hourly quota) fails the call instead of parking a worker.
DEFAULT_MAX_RETRY_AFTER = 300.0
TERMINATED_EARLY = b"terminated early"
TERMINATED_EARLY_MAX_LINE = len(TERMINATED_EARLY) + 8  # room for surrounding whitespace
# Mixpanel allows 100 concurrent export queries per project; keep a connection for each.
CONNECTION_POOL_SIZE = 100

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
    :param max_retries: retries of one request after a 429, a 5xx or a connection error.
    :param backoff_base: seconds before the first retry; doubles each retry, with jitter.
    :param backoff_max: cap of one backoff wait, in seconds.
    :param max_retry_after: longest ``Retry-After`` honoured; a longer one fails the call at once.
    :param source: how errors name where the credentials came from, e.g. ``connection 'mixpanel_default'``.
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
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        source: str = "the Mixpanel credentials",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if region not in REGIONS:
            raise MixpanelConfigError(
                f"Unknown Mixpanel region {region!r} in {source}: use one of {', '.join(REGIONS)}."
            )
        if not secret:
            raise MixpanelConfigError(f"No Mixpanel secret in {source}: set the service account secret.")
        if username and project_id is None:
            raise MixpanelConfigError(f"No project_id in {source}: service accounts need the numeric project id.")
        self.username = username or None
        self.project_id = project_id
        self.region = region
        self.workspace_id = workspace_id
        self.source = source
        base = base_url.rstrip("/") if base_url else None
        self.export_url = (base or REGIONS[region].export) + EXPORT_PATH
        self.engage_url = (base or REGIONS[region].query) + ENGAGE_PATH
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        if session is None:
            session = requests.Session()
            # Room for every export stream an operator may run at once (max_active_windows).
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=CONNECTION_POOL_SIZE)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        # Legacy project secrets authenticate as "<secret>:" (secret as the Basic-auth user).
        self._session.auth = (self.username, secret) if self.username else (secret, "")
        self._session.headers["User-Agent"] = f"airflow-provider-mixpanel/{__version__}"

    def __repr__(self) -> str:
        return (
            f"MixpanelClient(project_id={self.project_id!r}, region={self.region!r}, "
            f"export_url={self.export_url!r}, auth={'service-account' if self.username else 'project-secret'})"
        )

    def close(self) -> None:
        self._session.close()

    # ---------------------------------------------------------------- export

    def export_lines(
        self,
        from_date: date | str,
        to_date: date | str,
        events: Iterable[str] | None = None,
        where: str | None = None,
        limit: int | None = None,
        time_in_ms: bool = False,
    ) -> Iterator[bytes]:
        """Yield each line of ``GET /api/2.0/export`` as bytes, exactly as Mixpanel sent it
        (without its ``\\n``). ``from_date`` and ``to_date`` are inclusive days."""
        params: dict[str, Any] = {"from_date": str(from_date), "to_date": str(to_date)}
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
        return self._stream_export(params)

    def export_events(
        self,
        from_date: date | str,
        to_date: date | str,
        events: Iterable[str] | None = None,
        where: str | None = None,
        limit: int | None = None,
        time_in_ms: bool = False,
        on_malformed: Callable[[bytes, MixpanelMalformedRecordError], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each exported event as parsed, ``{"event": ..., "properties": {...}}``.

        :param on_malformed: called with a line that is not a JSON object and the error, which
            then is skipped; ``None`` (the default) raises
            :class:`~airflow_provider_mixpanel.errors.MixpanelMalformedRecordError` instead.
        """
        lines = self.export_lines(from_date, to_date, events, where, limit, time_in_ms)
        return convert_lines(lines, loads_object, on_malformed)

    def _stream_export(self, params: dict[str, Any]) -> Iterator[bytes]:
        what = f"export {params['from_date']}..{params['to_date']}"
        attempt = 0
        while True:
            response, attempt = self._send("GET", self.export_url, what, attempt, params=params, stream=True)
            yielded = 0
            try:
                for line in split_lines(_body_chunks(response)):
                    # Only a short line can be the marker: no strip() on every event line.
                    if len(line) < TERMINATED_EARLY_MAX_LINE and line.strip() == TERMINATED_EARLY:
                        raise _TruncatedBody("Mixpanel sent 'terminated early'")
                    yield line
                    yielded += 1
                return
            except (_TruncatedBody, *_TRANSPORT_ERRORS) as err:
                reason = _describe_transport_error(err)
                if yielded:
                    raise MixpanelStreamInterruptedError(
                        f"The Mixpanel {what} stream broke after {yielded} records: {reason}. "
                        "Records already delivered were not repeated; re-run the whole window "
                        "(the operators do this by themselves, replacing the partial output).",
                        records_yielded=yielded,
                    ) from err
                attempt = self._backoff_or_raise(
                    attempt, what, reason, MixpanelServerError, retry_after=None, cause=err
                )
            finally:
                response.close()

    # ---------------------------------------------------------------- engage

    def query_profiles(
        self,
        where: str | None = None,
        output_properties: Iterable[str] | None = None,
        cohort_id: int | None = None,
        distinct_ids: Iterable[str] | None = None,
        data_group_id: str | None = None,
        include_all_users: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each profile of ``POST /api/query/engage``, ``{"$distinct_id": ..., "$properties": {...}}``,
        page after page. Each page is fetched (and retried) whole before its profiles are yielded.

        Paging stops on an empty page, on a page shorter than the page size (the size the server
        reported on the first page, else the one requested), or when no ``session_id`` comes back.
        ``total`` is never trusted: it is missing on later pages and wrong in Mixpanel's own example.
        """
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
        if page_size is not None:
            if page_size < 1:
                raise MixpanelConfigError(f"page_size={page_size!r}: it must be a positive number of profiles.")
            form["page_size"] = page_size
        return self._paginate_engage(form, page_size)

    def _paginate_engage(self, form: dict[str, Any], requested_page_size: int | None) -> Iterator[dict[str, Any]]:
        params = self._project_params(query_api=True)
        page = 0
        session_id: str | None = None
        page_size = requested_page_size
        while True:
            body = dict(form)
            if session_id is not None:
                body.update(session_id=session_id, page=page)
            what = f"engage page {page}"
            response, _ = self._send("POST", self.engage_url, what, 0, params=params, data=body)
            try:
                payload = response.json()
            except ValueError:
                raise MixpanelServerError(
                    f"Mixpanel {what} answered {response.status_code} with a body that is not JSON: "
                    f"{response.text[:200]!r}. Check the region and host of {self.source}."
                ) from None
            finally:
                response.close()
            results = payload.get("results") if isinstance(payload, dict) else None
            if not isinstance(results, list):
                raise MixpanelServerError(
                    f"Mixpanel {what} answered without a 'results' list ({str(payload)[:200]!r})."
                )
            if page == 0 and isinstance(payload.get("page_size"), int) and payload["page_size"] > 0:
                page_size = payload["page_size"]
            for profile in results:
                if not isinstance(profile, dict):
                    raise MixpanelMalformedRecordError(
                        f"Mixpanel {what} holds a result that is not an object: {str(profile)[:100]!r}"
                    )
                yield profile
            session_id = payload.get("session_id") or None
            if not results or session_id is None or (page_size is not None and len(results) < page_size):
                return
            page += 1

    # ---------------------------------------------------------------- HTTP

    def _project_params(self, *, query_api: bool) -> dict[str, Any]:
        if not self.username:  # legacy project-secret auth identifies the project by the secret
            return {}
        params: dict[str, Any] = {"project_id": self.project_id}
        if query_api and self.workspace_id is not None:
            params["workspace_id"] = self.workspace_id
        return params

    def _send(self, method: str, url: str, what: str, attempt: int, **kwargs: Any) -> tuple[requests.Response, int]:
        """Send one request, retrying 429, 5xx and connection errors; return a 2xx response and
        the attempts used so far."""
        headers = {"Accept-Encoding": "gzip"} if kwargs.get("stream") else None
        while True:
            try:
                response = self._session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except requests.RequestException as err:
                attempt = self._backoff_or_raise(
                    attempt, what, _describe_transport_error(err), MixpanelServerError, None, err
                )
                continue
            if response.status_code < 400:
                return response, attempt
            error = self._error_for(response, what)
            response.close()
            if not isinstance(error, MixpanelRateLimitError | MixpanelServerError):
                raise error
            retry_after = error.retry_after if isinstance(error, MixpanelRateLimitError) else None
            attempt = self._backoff_or_raise(attempt, what, error.message, type(error), retry_after, None)

    def _backoff_or_raise(
        self,
        attempt: int,
        what: str,
        reason: str,
        error_class: type[MixpanelError],
        retry_after: float | None,
        cause: BaseException | None,
    ) -> int:
        """Sleep before the next attempt and return its number, or raise when none is left."""
        attempt += 1
        if retry_after is not None and retry_after > self.max_retry_after:
            self._give_up(
                error_class,
                f"Mixpanel {what}: {reason.rstrip('. ')}. Mixpanel asked to wait {retry_after:.0f} s, longer than "
                f"max_retry_after={self.max_retry_after:.0f} s: the quota (60 queries/hour) is spent; "
                "let the task retry later or lower concurrency with an Airflow pool.",
                retry_after,
                cause,
            )
        if attempt > self.max_retries:
            self._give_up(
                error_class,
                f"Mixpanel {what} failed after {attempt} attempts: {reason.rstrip('. ')}. "
                + (
                    "Lower request concurrency (an Airflow pool) or retry later."
                    if error_class is MixpanelRateLimitError
                    else "Mixpanel or the network is failing; retry later, and check the host and region "
                    f"of {self.source}."
                ),
                retry_after,
                cause,
            )
        if retry_after is not None:
            wait = retry_after
        else:
            wait = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        log.warning(
            "Mixpanel %s: %s. Retrying in %.1f s (retry %d of %d).",
            what,
            reason.rstrip(". "),
            wait,
            attempt,
            self.max_retries,
        )
        self._sleep(wait)
        return attempt

    @staticmethod
    def _give_up(
        error_class: type[MixpanelError], message: str, retry_after: float | None, cause: BaseException | None
    ) -> NoReturn:
        if error_class is MixpanelRateLimitError:
            raise MixpanelRateLimitError(message, http_status=429, retry_after=retry_after) from cause
        raise error_class(message) from cause

    def _error_for(self, response: requests.Response, what: str) -> MixpanelError:
        """The exception for an error response, with Mixpanel's message and what to do."""
        status = response.status_code
        api_message = _api_error_message(response)
        said = f" Mixpanel said: {api_message!r}." if api_message else ""
        project = f"project {self.project_id}" if self.project_id is not None else "the project"
        lowered = (api_message or "").lower()
        kwargs: dict[str, Any] = {"http_status": status, "api_message": api_message}
        if status == 429:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            return MixpanelRateLimitError(f"Rate limited (429).{said}", retry_after=retry_after, **kwargs)
        if status >= 500:
            return MixpanelServerError(f"Mixpanel server error {status}.{said}", **kwargs)
        if status == 401 or (status == 400 and "unable to authenticate" in lowered):
            return MixpanelAuthError(
                f"Mixpanel {what}: authentication failed ({status}).{said} The service account "
                f"username or secret in {self.source} is wrong or has expired: create a new secret "
                "in Mixpanel (Organization Settings > Service Accounts) and update the connection.",
                **kwargs,
            )
        if status == 400 and "invalid project id for cluster" in lowered:
            return MixpanelAuthError(
                f"Mixpanel {what}: {project} is not in the {self.region!r} data residency region "
                f"({status}).{said} Set the connection extra 'region' of {self.source} to the region "
                "the project lives in (us, eu or in).",
                **kwargs,
            )
        if status == 402:
            return MixpanelAuthError(
                f"Mixpanel {what}: payment required (402).{said} The project's plan has no API access "
                "for this endpoint; upgrade the plan or ask Mixpanel support.",
                **kwargs,
            )
        if status == 403:
            return MixpanelAuthError(
                f"Mixpanel {what}: access denied (403).{said} Check that project_id in {self.source} "
                f"is right ({project}) and that the service account is a member of that project with "
                "a role that may export data (and classified-data access where the project has it).",
                **kwargs,
            )
        if status == 404:
            return MixpanelQueryError(
                f"Mixpanel {what}: not found (404) at {response.url.split('?')[0]}.{said} Check the host "
                f"and region of {self.source}.",
                **kwargs,
            )
        return MixpanelQueryError(
            f"Mixpanel {what}: request rejected ({status}).{said} Fix the request's parameters "
            "(dates, event names, where expression).",
            **kwargs,
        )


def _body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The response body in chunks, gunzipped when it was sent with ``Content-Encoding: gzip``.

    Decompression is done here rather than by urllib3 so a gzip body cut short (no end marker) is
    detected instead of passing as a shorter, complete-looking export.
    """
    raw_chunks = response.raw.stream(READ_CHUNK_BYTES, decode_content=False)
    if response.headers.get("Content-Encoding", "").strip().lower() != "gzip":
        yield from raw_chunks
        return
    decompressor = zlib.decompressobj(wbits=31)
    for chunk in raw_chunks:
        data = decompressor.decompress(chunk)
        while decompressor.eof and decompressor.unused_data:  # a further gzip member follows
            rest = decompressor.unused_data
            decompressor = zlib.decompressobj(wbits=31)
            data += decompressor.decompress(rest)
        if data:
            yield data
    if not decompressor.eof:
        raise _TruncatedBody("the gzip body ended before its end marker (truncated)")


def _describe_transport_error(err: BaseException) -> str:
    if isinstance(err, _TruncatedBody):
        return str(err)
    if isinstance(err, requests.Timeout | urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return f"timed out ({type(err).__name__})"
    return f"connection failed ({type(err).__name__}: {err})"


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
