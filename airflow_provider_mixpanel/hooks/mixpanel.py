"""MixpanelHook: an Airflow ``mixpanel`` connection in, lazy streams of Mixpanel records out."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_mixpanel._compat import AirflowProviderDeprecationWarning, BaseHook, mask_secret
from airflow_provider_mixpanel.client import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_READ_TIMEOUT,
    REGIONS,
    MixpanelClient,
)
from airflow_provider_mixpanel.encoding import check_object, convert_lines, dumps_line, loads_object
from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelError, MixpanelMalformedRecordError
from airflow_provider_mixpanel.get_provider_info import get_provider_info
from airflow_provider_mixpanel.records import jsonl_event_normalizer, normalize_event, normalize_profile

log = logging.getLogger(__name__)

# Mixpanel retires legacy project secrets on this day (reference/project-secret in Mixpanel's docs).
PROJECT_SECRET_RETIREMENT = date(2027, 3, 3)


@dataclass(frozen=True)
class MixpanelConnectionSettings:
    """A ``mixpanel`` connection, read and validated. ``repr`` never shows the secret."""

    conn_id: str
    username: str | None
    secret: str = field(repr=False)
    project_id: int | None
    region: str = "us"
    workspace_id: int | None = None
    project_timezone: str | None = None
    base_url: str | None = None


class RecordStream(Iterator[Any]):
    """A lazy iterator of records that counts what passed.

    :ivar records: records yielded so far.
    :ivar skipped_malformed: malformed lines skipped (only with ``skip_malformed=True``).
    """

    def __init__(self, make_records: Callable[[RecordStream], Iterator[Any]]):
        self.records = 0
        self.skipped_malformed = 0
        self._records = make_records(self)

    def __iter__(self) -> RecordStream:
        return self

    def __next__(self) -> Any:
        record = next(self._records)
        self.records += 1
        return record

    def close(self) -> None:
        """Stop the stream early and release its HTTP connection."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()


class MixpanelHook(BaseHook):
    """Stream Mixpanel raw events and user/group profiles through an Airflow ``mixpanel`` connection.

    .. seealso::
        :ref:`howto/hook:MixpanelHook` and :ref:`howto/connection:mixpanel`

    :param mixpanel_conn_id: the :ref:`Mixpanel connection <howto/connection:mixpanel>` to use.
    :param connect_timeout: seconds to wait for a TCP connection to Mixpanel.
    :param read_timeout: seconds to wait for the next bytes of a response; large exports can take
        minutes before the first byte.
    :param max_retries: retries of one request after a 429, a 5xx or a connection error, made only
        before the request's first record was yielded.
    :param backoff_base: seconds before the first retry; doubles every retry, with jitter.
    :param backoff_max: longest single backoff wait, in seconds.
    :param max_retry_after: longest ``Retry-After`` (seconds) honoured; a longer one fails at once.
    """

    conn_name_attr = "mixpanel_conn_id"
    default_conn_name = "mixpanel_default"
    conn_type = "mixpanel"
    hook_name = "Mixpanel"

    def __init__(
        self,
        mixpanel_conn_id: str = default_conn_name,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mixpanel_conn_id = mixpanel_conn_id
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after

    def __repr__(self) -> str:
        return f"MixpanelHook(mixpanel_conn_id={self.mixpanel_conn_id!r})"

    # Airflow 3.2+ builds the connection form from get_provider_info() without importing the hook;
    # these two give Airflow 2.11 to 3.1 the same form, from the same declaration.

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        behaviour = _connection_type()["ui-field-behaviour"]
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {
            name: StringField(
                lazy_gettext(field["label"]), widget=BS3TextFieldWidget(), description=field["description"]
            )
            for name, field in _connection_type()["conn-fields"].items()
        }

    # ------------------------------------------------------------ connection

    @cached_property
    def settings(self) -> MixpanelConnectionSettings:
        """The connection, read once and validated."""
        conn = self.get_connection(self.mixpanel_conn_id)
        settings = settings_from_connection(
            conn_id=self.mixpanel_conn_id,
            login=conn.login,
            password=conn.password,
            host=conn.host,
            port=conn.port,
            extra=conn.extra_dejson,
        )
        mask_secret(settings.secret)
        if settings.username is None:
            warnings.warn(
                f"Connection {self.mixpanel_conn_id!r} authenticates with a legacy project secret, which "
                f"Mixpanel retires on {PROJECT_SECRET_RETIREMENT:%Y-%m-%d}. Create a service account and set "
                "its username as login and its secret as password.",
                AirflowProviderDeprecationWarning,
                stacklevel=2,
            )
        return settings

    def get_conn(self) -> MixpanelClient:
        """The :class:`~airflow_provider_mixpanel.client.MixpanelClient` for this connection."""
        return self.client

    @cached_property
    def client(self) -> MixpanelClient:
        settings = self.settings
        return MixpanelClient(
            username=settings.username,
            secret=settings.secret,
            project_id=settings.project_id,
            region=settings.region,
            workspace_id=settings.workspace_id,
            base_url=settings.base_url,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            max_retry_after=self.max_retry_after,
            source=f"connection {self.mixpanel_conn_id!r}",
        )

    # ------------------------------------------------------------ streams

    def stream_events(
        self,
        *,
        from_date: date | str,
        to_date: date | str,
        events: Iterable[str] | str | None = None,
        where: str | None = None,
        raw: bool = False,
        time_in_ms: bool = False,
        limit: int | None = None,
        skip_malformed: bool = False,
    ) -> RecordStream:
        """Stream raw events of an inclusive date range, lazily, with flat memory.

        Arguments are checked at once, before any request; the request is sent on the first ``next()``.

        :param from_date: first day, ``YYYY-MM-DD`` or a ``date``.
        :param to_date: last day (inclusive), ``YYYY-MM-DD`` or a ``date``.
        :param events: only these event names.
        :param where: a Mixpanel segmentation expression, e.g. ``properties["plan"] == "pro"``.
        :param raw: yield each export line as parsed (``{"event", "properties"}``) instead of the
            normalized record (``event_name``, ``event_time``, ``distinct_id``, ``insert_id``, ``properties``).
        :param time_in_ms: ask Mixpanel for millisecond timestamps (``event_time`` keeps them).
        :param limit: at most this many events (Mixpanel allows up to 100000).
        :param skip_malformed: skip lines that are not JSON objects, logging and counting them in
            ``skipped_malformed``, instead of raising
            :class:`~airflow_provider_mixpanel.errors.MixpanelMalformedRecordError`.
        """
        return self._event_stream(from_date, to_date, events, where, raw, time_in_ms, limit, skip_malformed, False)

    def stream_events_jsonl(
        self,
        *,
        from_date: date | str,
        to_date: date | str,
        events: Iterable[str] | str | None = None,
        where: str | None = None,
        raw: bool = False,
        time_in_ms: bool = False,
        limit: int | None = None,
        skip_malformed: bool = False,
    ) -> RecordStream:
        """Like :meth:`stream_events`, but yield each record as the JSONL line (bytes, ending in
        ``\\n``) that the operators and ``mixpanel-stream`` write. With ``raw=True`` the line is the
        export line exactly as Mixpanel sent it, checked to be a JSON object."""
        return self._event_stream(from_date, to_date, events, where, raw, time_in_ms, limit, skip_malformed, True)

    def _event_stream(
        self,
        from_date: date | str,
        to_date: date | str,
        events: Iterable[str] | str | None,
        where: str | None,
        raw: bool,
        time_in_ms: bool,
        limit: int | None,
        skip_malformed: bool,
        encode: bool,
    ) -> RecordStream:
        first = parse_date(from_date, "from_date")
        last = parse_date(to_date, "to_date")
        if first > last:
            raise MixpanelConfigError(
                f"from_date {first} is after to_date {last}: swap them, or set to_date to {first} or later."
            )
        names = _event_names(events)
        client = self.client
        timezone = self.settings.project_timezone

        def records(stream: RecordStream) -> Iterator[Any]:
            lines = client.export_lines(first, last, names, where, limit, time_in_ms)
            convert = _event_converter(raw=raw, encode=encode, time_in_ms=time_in_ms, timezone=timezone)
            return convert_lines(lines, convert, _skipper(stream) if skip_malformed else None)

        return RecordStream(records)

    def stream_profiles(
        self,
        *,
        where: str | None = None,
        raw: bool = False,
        cohort_id: int | str | None = None,
        output_properties: Iterable[str] | str | None = None,
        distinct_ids: Iterable[str] | None = None,
        data_group_id: str | None = None,
        include_all_users: bool | None = None,
        page_size: int | None = None,
    ) -> RecordStream:
        """Stream user profiles (or group profiles, with ``data_group_id``), lazily, page by page.

        :param where: a Mixpanel selector expression, e.g. ``properties["plan"] == "pro"``.
        :param raw: yield each engage result as sent (``{"$distinct_id", "$properties"}``) instead
            of the normalized record (``distinct_id``, ``last_seen``, ``properties``).
        :param cohort_id: only members of this cohort.
        :param output_properties: only these properties (much smaller pages).
        :param distinct_ids: only these profiles.
        :param data_group_id: group profiles of this group key (Project Settings > Group Keys).
        :param include_all_users: with ``cohort_id``: include members without a profile (Mixpanel's default).
        :param page_size: profiles per page; Mixpanel's default is 1000.
        """
        return self._profile_stream(
            where, raw, cohort_id, output_properties, distinct_ids, data_group_id, include_all_users, page_size, False
        )

    def stream_profiles_jsonl(
        self,
        *,
        where: str | None = None,
        raw: bool = False,
        cohort_id: int | str | None = None,
        output_properties: Iterable[str] | str | None = None,
        distinct_ids: Iterable[str] | None = None,
        data_group_id: str | None = None,
        include_all_users: bool | None = None,
        page_size: int | None = None,
    ) -> RecordStream:
        """Like :meth:`stream_profiles`, but yield each record as the JSONL line (bytes) that the
        operators and ``mixpanel-stream`` write."""
        return self._profile_stream(
            where, raw, cohort_id, output_properties, distinct_ids, data_group_id, include_all_users, page_size, True
        )

    def _profile_stream(
        self,
        where: str | None,
        raw: bool,
        cohort_id: int | str | None,
        output_properties: Iterable[str] | str | None,
        distinct_ids: Iterable[str] | None,
        data_group_id: str | None,
        include_all_users: bool | None,
        page_size: int | None,
        encode: bool,
    ) -> RecordStream:
        cohort = _optional_int(cohort_id, "cohort_id")
        # The client checks its arguments now; the first request waits for the first next().
        profiles = self.client.query_profiles(
            where, output_properties, cohort, distinct_ids, data_group_id, include_all_users, page_size
        )
        shaped = profiles if raw else (normalize_profile(p) for p in profiles)
        return RecordStream(lambda _: (dumps_line(p) for p in shaped) if encode else shaped)

    # ------------------------------------------------------------ test_connection

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap real call (one event of yesterday) and say what is wrong, if anything:
        a bad or expired secret, a wrong region, or a project the account cannot read."""
        try:
            settings = self.settings
            yesterday = datetime.now(UTC).date() - timedelta(days=1)
            lines = self.client.export_lines(yesterday, yesterday, limit=1)
            try:
                next(lines, None)
            finally:
                lines.close()  # type: ignore[attr-defined]
        except MixpanelError as err:
            return False, str(err)
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        who = f"service account {settings.username!r}" if settings.username else "a legacy project secret"
        return True, (f"Connected to Mixpanel project {settings.project_id} in region {settings.region!r} as {who}.")


def _connection_type() -> dict[str, Any]:
    (connection_type,) = get_provider_info()["connection-types"]
    return connection_type


def settings_from_connection(
    *,
    conn_id: str,
    login: str | None,
    password: str | None,
    host: str | None,
    port: int | None,
    extra: dict[str, Any],
) -> MixpanelConnectionSettings:
    """Read and validate the fields of a ``mixpanel`` connection.

    URI-form extras arrive as strings (``?project_id=123``); they are converted here, and every
    error names the field and the connection id.
    """
    where = f"connection {conn_id!r}"
    if not password:
        raise MixpanelConfigError(
            f"The {where} has no password: set it to the service account's secret "
            "(and login to the service account's username)."
        )
    username = (login or "").strip() or None
    project_id = _int_field(_extra(extra, "project_id"), "project_id", where)
    if username is not None and project_id is None:
        raise MixpanelConfigError(
            f"The {where} has no extra 'project_id': set it to the numeric Mixpanel project id "
            '(Project Settings > Overview), e.g. {"project_id": 123456}.'
        )
    region_value = _extra(extra, "region")
    region = str(region_value).strip().lower() if region_value is not None else "us"
    if region not in REGIONS:
        raise MixpanelConfigError(
            f"The {where} has extra 'region'={region_value!r}: use one of {', '.join(REGIONS)} "
            "(the data residency region of the project)."
        )
    timezone = _extra(extra, "project_timezone")
    if timezone is not None:
        timezone = str(timezone).strip()
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise MixpanelConfigError(
                f"The {where} has extra 'project_timezone'={timezone!r}, which is not an IANA time zone: "
                "use a name like 'America/New_York' or 'Europe/Berlin', or remove it for projects created "
                "in 2023 or later."
            ) from None
    return MixpanelConnectionSettings(
        conn_id=conn_id,
        username=username,
        secret=password,
        project_id=project_id,
        region=region,
        workspace_id=_int_field(_extra(extra, "workspace_id"), "workspace_id", where),
        project_timezone=timezone,
        base_url=_base_url(_extra(extra, "host") or host, port, where),
    )


def parse_date(value: date | str, name: str) -> date:
    """A ``date`` from a ``date``, a ``datetime`` or a ``YYYY-MM-DD`` string, or a clear error."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
        except ValueError:
            pass
    raise MixpanelConfigError(
        f"{name}={value!r} is not a date: use YYYY-MM-DD (e.g. '2024-01-31'), a datetime.date, "
        "or a template such as '{{ ds }}'."
    )


def _extra(extra: dict[str, Any], name: str) -> Any:
    for key in (name, f"extra__mixpanel__{name}"):
        value = extra.get(key)
        if value is not None and value != "":
            return value
    return None


def _int_field(value: Any, name: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    raise MixpanelConfigError(
        f"The {where} has extra {name!r}={value!r}: it must be a positive whole number "
        f"(the numeric Mixpanel {name.replace('_', ' ')})."
    )


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise MixpanelConfigError(f"{name}={value!r}: it must be a whole number (the id shown in Mixpanel).")


def _base_url(value: Any, port: int | None, where: str) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().rstrip("/")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MixpanelConfigError(
            f"The {where} has host={value!r}: use a base URL like 'https://proxy.example.com' or leave "
            "it empty for Mixpanel's own hosts."
        )
    if port and parts.port is None:
        text = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return text


def _event_names(events: Iterable[str] | str | None) -> list[str] | None:
    if events is None:
        return None
    names = [events] if isinstance(events, str) else list(events)
    if not all(isinstance(n, str) and n for n in names):
        raise MixpanelConfigError(f"events={names!r}: give a list of non-empty event names.")
    return names or None


def _event_converter(*, raw: bool, encode: bool, time_in_ms: bool, timezone: str | None) -> Callable[[bytes], Any]:
    """What one export line becomes: parsed (raw), normalized, or either as a JSONL line."""
    if raw and encode:

        def passthrough(line: bytes) -> bytes:  # the line's own bytes, checked to be an object
            check_object(line)
            return line + b"\n"

        return passthrough
    if raw:
        return loads_object
    if encode:
        to_jsonl = jsonl_event_normalizer(time_in_ms=time_in_ms, project_timezone=timezone)
        return lambda line: dumps_line(to_jsonl(loads_object(line)))
    return lambda line: normalize_event(loads_object(line), time_in_ms=time_in_ms, project_timezone=timezone)


def _skipper(stream: RecordStream) -> Callable[[bytes, MixpanelMalformedRecordError], None]:
    def skip(line: bytes, error: MixpanelMalformedRecordError) -> None:
        stream.skipped_malformed += 1
        log.warning("Skipped malformed Mixpanel line #%d: %s", stream.skipped_malformed, error)

    return skip
