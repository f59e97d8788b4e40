"""MixpanelHook: an Airflow ``mixpanel`` connection in, lazy streams of Mixpanel records out."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Unpack

from airflow_provider_mixpanel._compat import AirflowProviderDeprecationWarning, BaseHook, mask_secret
from airflow_provider_mixpanel.client import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, MixpanelClient
from airflow_provider_mixpanel.connection import (
    MixpanelConnectionSettings,
    legacy_secret_notice,
    settings_from_connection,
)
from airflow_provider_mixpanel.errors import MixpanelError
from airflow_provider_mixpanel.get_provider_info import get_provider_info
from airflow_provider_mixpanel.kinds import Opening, Query, StreamKind, get_kind, open_stream
from airflow_provider_mixpanel.retry import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    RetryPolicy,
)
from airflow_provider_mixpanel.streams import RecordStream, open_identity_stream

if TYPE_CHECKING:
    from airflow_provider_mixpanel.kinds.events import EventsArguments
    from airflow_provider_mixpanel.kinds.profiles import ProfilesArguments

if TYPE_CHECKING:
    from airflow_provider_mixpanel.identity import IdentityMappings

__all__ = ["MixpanelConnectionSettings", "MixpanelHook", "RecordStream"]

log = logging.getLogger(__name__)

# The Test button answers within seconds: an unreachable host fails after this long, not minutes.
TEST_CONNECT_TIMEOUT = 5.0


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
        self.retry_policy = RetryPolicy(
            max_retries=max_retries, backoff_base=backoff_base, backoff_max=backoff_max, max_retry_after=max_retry_after
        )
        self._connection: Any = None

    @classmethod
    def from_connection(cls, connection: Any, **hook_kwargs: Any) -> MixpanelHook:
        """A hook on a connection object already at hand (the CLI resolves connections itself,
        from every store), instead of one looked up by id."""
        hook = cls(connection.conn_id or cls.default_conn_name, **hook_kwargs)
        hook._connection = connection
        return hook

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
                lazy_gettext(field["label"]),
                widget=BS3TextFieldWidget(),
                description=field["description"],
                default=field["schema"].get("default") or None,
            )
            for name, field in _connection_type()["conn-fields"].items()
        }

    # ------------------------------------------------------------ connection

    @cached_property
    def settings(self) -> MixpanelConnectionSettings:
        """The connection, read once and validated."""
        return self._read_settings(f"connection {self.mixpanel_conn_id!r}")

    def _read_settings(self, where: str) -> MixpanelConnectionSettings:
        conn = self._connection or self.get_connection(self.mixpanel_conn_id)
        settings = settings_from_connection(
            conn_id=self.mixpanel_conn_id,
            login=conn.login,
            password=conn.password,
            host=conn.host,
            port=conn.port,
            extra=conn.extra_dejson,
            where=where,
        )
        mask_secret(settings.secret)
        if settings.username is None:
            warnings.warn(legacy_secret_notice(where), AirflowProviderDeprecationWarning, stacklevel=3)
        return settings

    def get_conn(self) -> MixpanelClient:
        """The :class:`~airflow_provider_mixpanel.client.MixpanelClient` for this connection."""
        return self.client

    @cached_property
    def client(self) -> MixpanelClient:
        """The client, built once; threads sharing the hook share it (and its connection pool)."""
        return self._make_client(self.settings, retry_policy=self.retry_policy, connect_timeout=self.connect_timeout)

    def _make_client(
        self, settings: MixpanelConnectionSettings, *, retry_policy: RetryPolicy, connect_timeout: float
    ) -> MixpanelClient:
        return MixpanelClient.from_settings(
            settings, retry_policy=retry_policy, connect_timeout=connect_timeout, read_timeout=self.read_timeout
        )

    # ------------------------------------------------------------ streams

    def stream(self, kind: str, *, raw: bool = False, **arguments: Any) -> RecordStream:
        """Stream the records of one kind (``"events"``, ``"profiles"``, ``"cohorts"``...; see
        :ref:`howto/kinds`), lazily, with flat memory.

        Arguments are checked at once, before any request; the first request is sent on the first ``next()``.

        :param kind: the stream kind's name.
        :param raw: yield each record as Mixpanel sent it, parsed, instead of the normalized record.
        :param arguments: ``from_date`` and ``to_date`` (dated kinds: first and last day,
            ``YYYY-MM-DD`` or a ``date``); ``skip_malformed`` (skip records that are not JSON
            objects, logging and counting them in ``skipped_malformed``, instead of raising
            :class:`~airflow_provider_mixpanel.errors.MixpanelMalformedRecordError`); and the
            kind's own arguments (its query), e.g. ``where=...``.
        """
        return self._stream(kind, encode=False, raw=raw, **arguments)

    def stream_jsonl(self, kind: str, *, raw: bool = False, **arguments: Any) -> RecordStream:
        """Like :meth:`stream`, but yield each record as the JSONL line (bytes, ending in ``\\n``)
        that the operators and ``mixpanel-stream`` write, every value byte for byte as Mixpanel sent it."""
        return self._stream(kind, encode=True, raw=raw, **arguments)

    def open_query(
        self,
        kind: StreamKind,
        query: Query,
        days: tuple[date, date] | None,
        *,
        raw: bool,
        encode: bool,
        skip_malformed: bool = False,
        identity: IdentityMappings | None = None,
    ) -> RecordStream:
        """The records of a query built already (the operators build theirs once per task); events
        as JSONL lines can also derive their ``identity`` mappings (see :meth:`stream_events_jsonl`)."""
        opening = Opening(
            query,
            days,
            raw=raw,
            encode=encode,
            project_timezone=self.settings.project_timezone,
            identity=identity,
        )
        return open_stream(self.client, kind, opening, skip_malformed=skip_malformed)

    def _stream(
        self,
        name: str,
        *,
        encode: bool,
        raw: bool,
        from_date: date | str | None = None,
        to_date: date | str | None = None,
        skip_malformed: bool = False,
        identity: IdentityMappings | None = None,
        **arguments: Any,
    ) -> RecordStream:
        kind = get_kind(name)
        query = kind.query_type.build(arguments)
        days = kind.days(from_date, to_date)
        return self.open_query(
            kind, query, days, raw=raw, encode=encode, skip_malformed=skip_malformed, identity=identity
        )

    def stream_events(
        self,
        *,
        from_date: date | str,
        to_date: date | str,
        raw: bool = False,
        skip_malformed: bool = False,
        **arguments: Unpack[EventsArguments],
    ) -> RecordStream:
        """Stream raw events of an inclusive date range, lazily, with flat memory: :meth:`stream`
        of ``"events"``.

        :param from_date: first day, ``YYYY-MM-DD`` or a ``date``.
        :param to_date: last day (inclusive), ``YYYY-MM-DD`` or a ``date``.
        :param raw: yield each export line as parsed (``{"event", "properties"}``) instead of the
            normalized record (``event_name``, ``event_time``, ``distinct_id``, ``insert_id``, ``properties``).
        :param skip_malformed: skip lines that are not JSON objects, logging and counting them in
            ``skipped_malformed``, instead of raising
            :class:`~airflow_provider_mixpanel.errors.MixpanelMalformedRecordError`.
        :param arguments: ``events``, ``where``, ``limit``, ``time_in_ms``: see
            :class:`~airflow_provider_mixpanel.kinds.events.EventsQuery`.
        """
        return self.stream(
            "events", raw=raw, from_date=from_date, to_date=to_date, skip_malformed=skip_malformed, **arguments
        )

    def stream_events_jsonl(
        self,
        *,
        from_date: date | str,
        to_date: date | str,
        raw: bool = False,
        identity: IdentityMappings | None = None,
        **options: Any,
    ) -> RecordStream:
        """Like :meth:`stream_events` (the same keywords), but yield each record as the JSONL line
        (bytes, ending in ``\\n``) that the operators and ``mixpanel-stream`` write. With ``raw=True``
        the line is the export line exactly as Mixpanel sent it, checked to be a JSON object.

        :param identity: also derive the identity mappings (Simplified ID Merge) from the lines
            streamed, with the values their conversion reads anyway: each one goes to its
            ``on_mapping`` (see :meth:`stream_identity_mappings` and :ref:`howto/identity`). Make
            it with the ``time_in_ms`` of this call and the connection's ``project_timezone``.
        """
        return self._stream(
            "events", encode=True, raw=raw, from_date=from_date, to_date=to_date, identity=identity, **options
        )

    def stream_identity_mappings(
        self,
        from_date: date | str,
        to_date: date | str,
        *,
        time_in_ms: bool = False,
        skip_malformed: bool = False,
        encode: bool = False,
    ) -> RecordStream:
        """Stream the identity mappings (Simplified ID Merge) that the events of a date range
        create: one export request, as :meth:`stream_events`, and one record per device, its
        earliest mapping event in the range: ``{"distinct_id": "$device:<$device_id>",
        "resolved_distinct_id": <$user_id>, "event_time": ..., "insert_id": ...}``, the columns of
        Data Pipelines' identity mappings table plus the mapping event's time and ``$insert_id``.

        Memory stays bounded: the devices already given out are remembered up to
        :data:`~airflow_provider_mixpanel.identity.MAX_REMEMBERED_DEVICES`. A range with more
        devices than that, or a device whose mapping events come out of time order, may give a
        device twice; the resolution rule (earliest mapping per device) makes the repeat harmless.
        See :ref:`howto/identity`.

        :param from_date: first day, ``YYYY-MM-DD`` or a ``date``.
        :param to_date: last day (inclusive).
        :param time_in_ms: ask Mixpanel for millisecond timestamps.
        :param skip_malformed: skip lines that are not JSON objects (counted in ``skipped_malformed``).
        :param encode: yield JSONL lines (bytes) instead of dicts (``event_time`` a UTC ``datetime``).
        """
        return open_identity_stream(
            self.client,
            from_date,
            to_date,
            timezone=self.settings.project_timezone,
            time_in_ms=time_in_ms,
            skip_malformed=skip_malformed,
            encode=encode,
        )

    def stream_profiles(self, *, raw: bool = False, **arguments: Unpack[ProfilesArguments]) -> RecordStream:
        """Stream user profiles (or group profiles, with ``data_group_id``), lazily, page by page:
        :meth:`stream` of ``"profiles"``.

        :param raw: yield each engage result as sent (``{"$distinct_id", "$properties"}``) instead
            of the normalized record (``distinct_id``, ``last_seen``, ``properties``).
        :param arguments: ``where``, ``cohort_id``, ``output_properties``, ``distinct_ids``,
            ``data_group_id``, ``include_all_users``, ``page_size``: see
            :class:`~airflow_provider_mixpanel.kinds.profiles.ProfilesQuery`.
        """
        return self.stream("profiles", raw=raw, **arguments)

    def stream_profiles_jsonl(self, *, raw: bool = False, **arguments: Unpack[ProfilesArguments]) -> RecordStream:
        """Like :meth:`stream_profiles`, but yield each record as the JSONL line (bytes, ending in
        ``\\n``) that the operators and ``mixpanel-stream`` write, every value byte for byte as
        Mixpanel sent it. With ``raw=True`` the line is the engage result itself, made compact
        (whitespace outside strings removed)."""
        return self.stream_jsonl("profiles", raw=raw, **arguments)

    # ------------------------------------------------------------ test_connection

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap real call (one event of yesterday) and say what is wrong, if anything:
        a bad or expired secret, a wrong region, or a project the account cannot read.

        It answers within seconds: no retries and a short connect timeout, unlike the streams.
        Messages say "the connection", never the id: the UI's Test button tests a connection
        under a temporary id that the user never saw.
        """
        try:
            settings = self._read_settings("connection")
            client = self._make_client(
                replace(settings, conn_id="the connection"),
                retry_policy=self.retry_policy.without_retries(),
                connect_timeout=TEST_CONNECT_TIMEOUT,
            )
            yesterday = datetime.now(UTC).date() - timedelta(days=1)
            lines = client.export_lines(yesterday, yesterday, limit=1)
            try:
                next(lines, None)
            finally:
                lines.close()  # type: ignore[attr-defined]
                client.close()
        except MixpanelError as err:
            return False, str(err).replace("connection 'the connection'", "the connection")
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        who = f"service account {settings.username!r}" if settings.username else "a legacy project secret"
        return True, (f"Connected to Mixpanel project {settings.project_id} in region {settings.region!r} as {who}.")


def _connection_type() -> dict[str, Any]:
    (connection_type,) = get_provider_info()["connection-types"]
    return connection_type
