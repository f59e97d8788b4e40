"""The shared base of the Mixpanel-to-object-storage operators: their arguments and checks,
``execute`` (plan the windows, write them, return the manifest), ``on_kill`` and lineage. A
subclass only says where its objects go (:meth:`_destination`) and how to reach that storage
(:meth:`_object_store`).

The work itself is done elsewhere: :mod:`.windows` plans the days, :mod:`.runner` writes and
restarts windows, :mod:`.outputs` prepares and finishes each window's objects (leftover uploads,
stale parts, the ``_manifest.json`` of :mod:`.manifest`), :mod:`.parts` rotates parts on a writer
thread, :mod:`.storage` is the commit-or-abort interface the storage modules implement.
"""

from __future__ import annotations

import functools
import json
import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

from airflow_provider_mixpanel._compat import BaseOperator
from airflow_provider_mixpanel.compression import FORMAT_DEFAULT, check_output_compression
from airflow_provider_mixpanel.dates import date_range
from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.kinds import KIND_ARGUMENTS, Query, StreamKind, get_kind
from airflow_provider_mixpanel.schemas import bigquery_schema, check_bigquery_columns, record_columns
from airflow_provider_mixpanel.transfers.arguments import (
    MAX_ACTIVE_WINDOWS,
    MIN_FILE_SIZE_BYTES,
    check_bucket,
    check_count,
    check_flag,
    check_identity_folders,
    check_identity_template,
    check_lookback_days,
    check_manifest_folders,
    check_name_template,
    check_optional_count,
    check_output_format,
    check_placeholders,
    check_schema_object_name,
    check_stream,
    check_stream_arguments,
    check_window_hours,
    task_prefix,
)
from airflow_provider_mixpanel.transfers.asset_events import (
    WindowEvent,
    context_date,
    emit_window_events,
    window_events,
)
from airflow_provider_mixpanel.transfers.iceberg_names import (
    ICEBERG_DEFAULT_CONN_ID,
    attempt_template,
    check_iceberg_arguments,
    check_table_name,
    new_attempt_token,
)
from airflow_provider_mixpanel.transfers.identity_parts import IdentityOutput
from airflow_provider_mixpanel.transfers.lease import Writer
from airflow_provider_mixpanel.transfers.outputs import ManifestContext, WindowOutputs
from airflow_provider_mixpanel.transfers.parts import AirflowTaskAborted, PartFormat, WrittenPart
from airflow_provider_mixpanel.transfers.progress import Progress
from airflow_provider_mixpanel.transfers.run_log import plan_lines
from airflow_provider_mixpanel.transfers.runner import ExportRun, OutputResult
from airflow_provider_mixpanel.transfers.storage import WINDOW_PLACEHOLDER, common_directory
from airflow_provider_mixpanel.transfers.windows import (
    RunDays,
    Unit,
    Window,
    days_of_run,
    plan_units,
    plan_windows,
)

if TYPE_CHECKING:
    from airflow_provider_mixpanel.identity import IdentityMappings
    from airflow_provider_mixpanel.streams import RecordStream
    from airflow_provider_mixpanel.transfers.iceberg_table import IcebergTable
    from airflow_provider_mixpanel.transfers.storage import ObjectStore

__all__ = [
    "AirflowTaskAborted",
    "BaseMixpanelStreamOperator",
    "Destination",
    "IdentitySummary",
    "Manifest",
    "PartInfo",
]

log = logging.getLogger(__name__)


class Destination(NamedTuple):
    """Where a task writes, as rendered, and the names of the arguments that said so (for messages)."""

    bucket: str
    name_template: str
    bucket_argument: str
    name_argument: str
    #: where the identity mappings go (``None``: not written), and the argument that said so
    identity_template: str | None = None
    identity_argument: str = "identity_key"


class IdentitySummary(TypedDict):
    """The identity mappings a run wrote (see :ref:`howto/identity`)."""

    files: list[str]
    records: int
    bytes: int
    deleted_stale_files: list[str]
    manifests: list[str]


class PartInfo(TypedDict):
    """One committed object in the manifest."""

    uri: str
    records: int
    bytes: int


class Manifest(TypedDict):
    """What ``execute`` returns (to XCom): what was exported, and where."""

    stream: str
    #: the first and last day exported (events), ``None`` for profiles
    from_date: str | None
    to_date: str | None
    raw: bool
    #: ``"jsonl"`` or ``"parquet"``
    output_format: str
    compression: str | None
    #: the URIs of every object written, in order
    files: list[str]
    records: int
    bytes: int
    parts: list[PartInfo]
    skipped_malformed: int
    #: the BigQuery JSON schema written (``schema_object_name``), or ``None``
    schema_file: str | None
    #: parts an earlier run wrote beyond this run's last part, now deleted
    deleted_stale_files: list[str]
    #: the ``_manifest.json`` of every window written (none with ``write_manifest=False``)
    manifests: list[str]
    #: each window written: records, bytes, manifest and Iceberg snapshot id (its asset event's details)
    windows: list[WindowEvent]
    #: the Iceberg table committed into (``iceberg_table``), else ``None``
    iceberg_table: str | None
    #: the identity mappings written beside the events; ``None`` when none are asked for
    identity: IdentitySummary | None


class _Lineage(NamedTuple):
    scheme: str
    bucket: str
    name_template: str
    identity_template: str | None = None


class BaseMixpanelStreamOperator(BaseOperator):
    """Stream one kind of Mixpanel records (events, profiles, cohorts...) into object storage as
    JSONL or Parquet parts, with flat memory.

    Dated kinds (events...): with neither ``from_date`` nor ``to_date``, the task exports the
    complete UTC days of its run's data interval, or, when that interval is empty (Airflow 3's
    default cron timetable) or missing, the complete day before the run (see
    :ref:`howto/operator:dates`). Snapshot kinds (profiles, cohorts...) export the project as it is
    now, once per run; ``{window}`` in their object names is the run's date (that same day).

    :param stream: the kind of records (see :ref:`howto/kinds`): ``"events"`` (default), ``"profiles"``...
    :param from_date: dated kinds: first day, ``YYYY-MM-DD`` (templated); give both dates or neither.
    :param to_date: dated kinds: last day, inclusive (templated).
    :param arguments: the kind's own arguments, as keywords: e.g. ``events=["Purchase"]`` and
        ``where=...`` for events, ``cohort_id=...`` or ``data_group_id=...`` for profiles,
        ``cohort_ids=[...]`` for cohort members. Each kind's are listed in :ref:`howto/kinds`;
        those marked templated there are rendered (they are in ``template_fields``).
    :param raw: write records as Mixpanel sent them instead of normalized.
    :param output_format: ``"jsonl"`` (default): one record per line; or ``"parquet"`` (needs the
        ``parquet`` extra): typed columns, ``properties`` as JSON text (see :ref:`howto/lake`).
    :param compression: JSONL: ``"gzip"`` (default), ``"zstd"`` (needs the ``zstd`` extra) or ``None``.
        Parquet, inside the file: ``"zstd"`` (default), ``"snappy"`` or ``None``.
    :param compression_level: level of that compression; ``None`` takes its default.
    :param schema_object_name: also write the BigQuery JSON schema of the records to this object,
        next to the parts, for ``GCSToBigQueryOperator(schema_object=...)`` (templated).
    :param max_file_size_bytes: start a new part once the current one passes this many bytes
        (compressed); the object name must then hold ``{part}``, which becomes ``00000``, ``00001``...
        An object name may also hold ``{window}``: the window's day (``2024-03-01``), or
        ``FIRST_LAST`` for windows of several days, so every window writes objects of its own.
    :param window_days: dated kinds: split the days into requests of this many days (``None``: one
        request). With part rotation each window is restarted on its own after a transient failure.
    :param window_hours: events: split each day into windows of this many hours (a divisor of 24),
        each one export request of that day bounded by ``where`` on ``properties["$time"]``;
        ``{window}`` then reads ``2024-03-01T06``. Not with ``window_days``.
    :param lookback_days: dated kinds: also re-export the this many days before the first day (late
        events: Mixpanel accepts events days after their time), each day replaced as a unit in
        objects of its own, so the object name must hold ``{window}``. One more export request per
        day looked back at (per hour window with ``window_hours``); see :ref:`howto/late-events`.
    :param max_active_windows: stream this many windows at once (each into parts of its own; the
        object name must then hold ``{window}``); when one fails, the others are aborted at once.
        Mixpanel serves one export slowly, so a long range is network-bound: 4 windows at once
        fetch it several times faster. The hook's client paces requests within Mixpanel's limits.
    :param max_stream_restarts: how often a window (or, without rotation, the whole object) is
        streamed again from scratch after a transient failure mid-stream, its upload aborted first.
    :param skip_malformed: skip and count lines that are not JSON objects instead of failing.
    :param write_manifest: write ``_manifest.json`` beside each window's parts once they are all
        committed, and delete it before the window is rewritten: the completion signal for sensors
        and readers. Each window's parts then need a folder of their own.
    :param iceberg_table: also commit each window into this Apache Iceberg table, ``"namespace.table"``
        (templated; needs the ``iceberg`` extra and ``output_format="parquet"``): the window's rows
        are replaced in one transaction by its parts, which are written where the object name says,
        under names of their own for each attempt. The table is created when missing; see
        :ref:`howto/iceberg`.
    :param iceberg_conn_id: the ``iceberg`` connection (Airflow's apache-iceberg provider) whose extra
        holds the pyiceberg catalog properties (templated).
    :param mixpanel_conn_id: the :ref:`Mixpanel connection <howto/connection:mixpanel>` (templated).
    :param mixpanel_hook_kwargs: more :class:`~airflow_provider_mixpanel.hooks.mixpanel.MixpanelHook`
        arguments (timeouts, retry budget).
    """

    template_fields: Sequence[str] = (
        "from_date",
        "to_date",
        *(name for name, spec in KIND_ARGUMENTS.items() if spec.templated),
        "mixpanel_conn_id",
        "schema_object_name",
        "iceberg_table",
        "iceberg_conn_id",
    )
    template_fields_renderers = {name: "json" for name, spec in KIND_ARGUMENTS.items() if spec.repeat}
    # Shared, not copied, by copy.deepcopy (Airflow copies tasks when a user clears them): the hook
    # holds an HTTP session, the run the locks of an execute in progress.
    shallow_copy_attrs: Sequence[str] = ("hook", "_run")
    ui_color = "#7856ff"

    def __init__(
        self,
        *,
        stream: str = "events",
        from_date: str | date | None = None,
        to_date: str | date | None = None,
        raw: bool = False,
        output_format: str = "jsonl",
        compression: str | None = FORMAT_DEFAULT,
        compression_level: int | None = None,
        schema_object_name: str | None = None,
        max_file_size_bytes: int | None = None,
        window_days: int | None = None,
        window_hours: int | None = None,
        lookback_days: int = 0,
        max_active_windows: int = 1,
        max_stream_restarts: int = 2,
        skip_malformed: bool = False,
        write_manifest: bool = True,
        iceberg_table: str | None = None,
        iceberg_conn_id: str = ICEBERG_DEFAULT_CONN_ID,
        mixpanel_conn_id: str = MixpanelHook.default_conn_name,
        mixpanel_hook_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # The kind's own arguments (events=, where=, cohort_ids=...), declared by the kinds' queries.
        given = {name: kwargs.pop(name) for name in KIND_ARGUMENTS if name in kwargs}
        super().__init__(**kwargs)
        prefix = task_prefix(self.task_id)
        self.stream = check_stream(stream, where=prefix)
        kind = get_kind(self.stream)
        check_stream_arguments(
            self.stream,
            {
                "from_date": from_date,
                "to_date": to_date,
                "window_days": window_days,
                "window_hours": window_hours,
                "lookback_days": lookback_days or None,
                **given,
            },
            where=prefix,
        )
        kind.query_type.check_given(given, templated=False, where=prefix)  # the rest once rendered
        self.from_date = from_date
        self.to_date = to_date
        for name in KIND_ARGUMENTS:  # every templated field is an attribute, given or not
            setattr(self, name, given.get(name))
        self.raw = check_flag(raw, "raw", where=prefix)
        self.output_format = check_output_format(output_format, where=prefix)
        self.compression = check_output_compression(self.output_format, compression, compression_level, where=prefix)
        self.compression_level = compression_level
        if schema_object_name is not None:
            check_bigquery_columns(self.stream, raw=self.raw, where=prefix)
        self.schema_object_name = schema_object_name
        self.max_file_size_bytes = check_optional_count(
            max_file_size_bytes,
            "max_file_size_bytes",
            minimum=MIN_FILE_SIZE_BYTES,
            where=prefix,
            fix=f"use a whole number of bytes of at least {MIN_FILE_SIZE_BYTES}, or None for one object.",
        )
        self.window_days = check_optional_count(
            window_days, "window_days", minimum=1, where=prefix, fix="use a whole number of days >= 1, or None."
        )
        self.window_hours = check_window_hours(window_hours, self.window_days, where=prefix)
        self.lookback_days = check_lookback_days(lookback_days, self.window_days, where=prefix)
        self.max_active_windows = check_count(
            max_active_windows,
            "max_active_windows",
            minimum=1,
            maximum=MAX_ACTIVE_WINDOWS,
            where=prefix,
            fix=f"use 1 to {MAX_ACTIVE_WINDOWS} (Mixpanel allows 100 concurrent export queries per project).",
        )
        self.max_stream_restarts = check_count(
            max_stream_restarts, "max_stream_restarts", minimum=0, where=prefix, fix="use 0 or more."
        )
        self.skip_malformed = check_flag(skip_malformed, "skip_malformed", where=prefix)
        self.write_manifest = check_flag(write_manifest, "write_manifest", where=prefix)
        if iceberg_table is not None:
            check_iceberg_arguments(
                self.output_format, self.raw, self.window_days, stream=self.stream, dated=kind.dated, where=prefix
            )
        self.iceberg_table = iceberg_table
        self.iceberg_conn_id = iceberg_conn_id
        self.mixpanel_conn_id = mixpanel_conn_id
        self.mixpanel_hook_kwargs = mixpanel_hook_kwargs
        self._run: ExportRun | None = None  # made by execute: locks and threads live only as long as it
        self._run_days: RunDays | None = None  # the run's days, when no dates were given (render time)
        self._lineage: _Lineage | None = None

    @cached_property
    def hook(self) -> MixpanelHook:
        return MixpanelHook(self.mixpanel_conn_id, **(self.mixpanel_hook_kwargs or {}))

    # ------------------------------------------------------------ subclass contract

    @abstractmethod
    def _destination(self) -> Destination:
        """The bucket and object name template, as rendered."""

    @abstractmethod
    def _object_store(self, bucket: str) -> ObjectStore:
        """The store of ``bucket``, reached through the storage provider's hook."""

    # ------------------------------------------------------------ execute

    def _check_hours_fit_the_project_days(self) -> None:
        """Hour windows bound ``$time`` by UTC hours of a UTC day; a project created before 2023
        counts its days in its own time zone, so some hours would fall outside every request."""
        timezone = self.hook.settings.project_timezone
        if self.window_hours is not None and timezone not in (None, "UTC", "Etc/UTC"):
            raise MixpanelConfigError(
                f"{task_prefix(self.task_id)}window_hours={self.window_hours} needs a project whose days are "
                f"UTC days, but connection {self.mixpanel_conn_id!r} sets project_timezone={timezone!r} "
                "(a project created before 2023): export whole days (drop window_hours) for this project."
            )

    @property
    def kind(self) -> StreamKind:
        return get_kind(self.stream)

    def _query(self) -> Query:
        """The kind's query, built once from the rendered arguments (checked before any request)."""
        kind = self.kind
        given = {name: getattr(self, name) for name in kind.query_type.arguments()}
        return kind.query_type.build(given, where=task_prefix(self.task_id))

    def execute(self, context: Any) -> Manifest:
        destination = self._checked_destination()
        schema_name = self._checked_schema_object_name()
        query = self._query()
        windows = self._windows(context)
        units = self._units(windows, destination)
        if self.write_manifest:
            check_manifest_folders(
                [unit.name_template for unit in units], destination.name_argument, where=task_prefix(self.task_id)
            )
        if destination.identity_template is not None:
            check_identity_folders(units, destination, manifests=self.write_manifest, where=task_prefix(self.task_id))
        self.hook.client  # noqa: B018 - reads and checks the connection once, before any request or thread
        self._check_hours_fit_the_project_days()
        table = self._prepared_table(context, destination)
        if table is not None:  # each attempt's parts apart: a part a snapshot references is never overwritten
            template = attempt_template(destination.name_template, str(table.attempt))
            destination = destination._replace(name_template=template)
            units = self._units(windows, destination)
        store = self._object_store(destination.bucket)
        log.info("Writing to %s", store.uri(common_directory(destination.name_template)))
        progress = Progress()
        run = ExportRun(
            store=store,
            open_stream=functools.partial(self._open_stream, query),
            part_format=self._part_format(self.stream, json_logical_type=table is None),
            max_stream_restarts=self.max_stream_restarts,
            progress=progress,
            outputs=WindowOutputs(
                store,
                manifest=self._manifest_context(query) if self.write_manifest else None,
                table=table,
                writer=Writer.of_task(context, self.task_id),  # named by the windows' leases
            ),
            cancel_streams=self.hook.client.cancel,
            identity=self._identity_output(store, query, context)
            if destination.identity_template is not None
            else None,
        )
        self._run = run
        try:
            outputs = run.write_units(units, max_active=self.max_active_windows)
        finally:
            self._run = None
            if run.aborted:  # its client was cancelled: the next execute builds a fresh one
                self.hook.__dict__.pop("client", None)
        results = [result for output in outputs for result in output.units]
        parts = [part for result in results for part in result.parts]
        progress.log(final=True, windows=len(windows) if self.kind.dated else None)
        schema_file = self._write_schema_object(store, schema_name) if schema_name is not None else None
        deleted = [uri for output in outputs for uri in output.completed.deleted_stale]
        manifests = [output.completed.manifest for output in outputs if output.completed.manifest is not None]
        self._lineage = _Lineage(
            store.scheme, destination.bucket, destination.name_template, destination.identity_template
        )
        skipped = sum(r.skipped_malformed for r in results)
        events = window_events(units, outputs, run_label=context_date(context))
        emit_window_events(context or {}, self.outlets or [], events)
        manifest = self._manifest(
            windows,
            parts,
            skipped=skipped,
            deleted=deleted,
            schema_file=schema_file,
            manifests=manifests,
            written=events,
        )
        if destination.identity_template is not None:
            manifest["identity"] = _identity_summary(outputs)
        return manifest

    def on_kill(self) -> None:
        run = self._run
        if run is not None:
            log.warning("Task killed: aborting the uploads in flight.")
            run.abort("The task was killed: its uploads in flight were aborted.")

    # ------------------------------------------------------------ the steps of execute

    def _units(self, windows: list[Window], destination: Destination) -> list[Unit]:
        return plan_units(
            windows,
            destination.name_template,
            rotating=self.max_file_size_bytes is not None,
            identity_template=destination.identity_template,
        )

    def _part_format(self, stream: str, *, json_logical_type: bool = True) -> PartFormat:
        """The encoding of the parts of ``stream``'s records (the identity mappings: ``"identity"``).

        :param json_logical_type: Parquet: mark JSON columns with Parquet's JSON type (not for a table).
        """
        return PartFormat(
            self.compression,
            self.compression_level,
            self.max_file_size_bytes,
            parquet_columns=record_columns(stream, raw=self.raw) if self.output_format == "parquet" else None,
            json_logical_type=json_logical_type,
        )

    def _identity_output(self, store: ObjectStore, query: Query, context: Any) -> IdentityOutput:
        """How the identity mappings are written: the events' encoding, their own manifests and
        window leases (taken by this task attempt, as the events' are)."""
        manifest = replace(self._manifest_context(query), stream="identity") if self.write_manifest else None
        return IdentityOutput(
            part_format=self._part_format("identity"),
            outputs=WindowOutputs(store, manifest=manifest, writer=Writer.of_task(context, self.task_id)),
            project_timezone=self.hook.settings.project_timezone,
            time_in_ms=bool(getattr(query, "time_in_ms", False)),  # only events carry identity; their query says
        )

    def _check_identity_argument(self, template: Any, argument: str) -> None:
        """What can be checked of the identity objects' name when the DAG is parsed (it is
        templated: checked again, rendered, before any request)."""
        if template is None:
            return
        prefix = task_prefix(self.task_id)
        if self.stream != "events":
            raise MixpanelConfigError(
                f"{prefix}{argument} writes the identity mappings derived from events, but stream={self.stream!r}: "
                "remove it, or export events in a task of its own."
            )
        if isinstance(template, str):
            check_placeholders(
                template,
                argument,
                where=prefix,
                rotating=self.max_file_size_bytes is not None,
                max_active_windows=self.max_active_windows,
                lookback_days=self.lookback_days,
            )

    def _checked_destination(self) -> Destination:
        """The rendered destination, checked before any request."""
        prefix = task_prefix(self.task_id)
        destination = self._destination()
        check_bucket(destination.bucket, destination.bucket_argument, where=prefix)
        check_name_template(destination.name_template, destination.name_argument, where=prefix)
        check_placeholders(
            destination.name_template,
            destination.name_argument,
            where=prefix,
            rotating=self.max_file_size_bytes is not None,
            max_active_windows=self.max_active_windows,
            lookback_days=self.lookback_days,
        )
        if destination.identity_template is not None:
            self._check_identity_argument(destination.identity_template, destination.identity_argument)
            check_name_template(destination.identity_template, destination.identity_argument, where=prefix)
            check_identity_template(destination, where=prefix)
        return destination

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render as Airflow does, then, when no dates are given, fill in the run's days, so that
        Rendered Templates shows the days a run exports (Airflow keeps the rendered fields before
        ``execute`` runs)."""
        super().render_template_fields(context, jinja_env)
        if self.kind.dated and self.from_date is None and self.to_date is None:
            self._run_days = days_of_run(context, where=task_prefix(self.task_id))
            self.from_date, self.to_date = str(self._run_days.first), str(self._run_days.last)

    def _windows(self, context: Any) -> list[Window]:
        """The windows to export: the rendered dates, or the days of the run when neither is given;
        a snapshot kind's one window, named after the run's date."""
        prefix = task_prefix(self.task_id)
        if not self.kind.dated:
            windows = [Window(None, None, snapshot=_run_date(context, where=prefix))]
            for line in plan_lines(self.stream, windows, run_days=None, lookback_days=0):
                log.info("%s", line)
            return windows
        run_days = self._run_days
        if run_days is None and self.from_date is None and self.to_date is None:  # execute() called directly
            run_days = days_of_run(context or {}, where=prefix)
        if run_days is not None:
            first, last = run_days.first, run_days.last
        else:
            first, last = date_range(self.from_date, self.to_date, where=prefix)  # type: ignore[arg-type]
        # An Iceberg table is committed a day (or hour window) at a time.
        window_days = self.window_days or (1 if self.iceberg_table is not None else None)
        windows = plan_windows(
            first, last, window_days, window_hours=self.window_hours, lookback_days=self.lookback_days
        )
        for line in plan_lines(self.stream, windows, run_days=run_days, lookback_days=self.lookback_days):
            log.info("%s", line)
        return windows

    def _open_stream(self, query: Query, window: Window, identity: IdentityMappings | None = None) -> RecordStream:
        """The JSONL lines of one window (the request is sent on the first ``next()``); with
        ``identity`` (events only), its identity mappings are derived from the same lines."""
        kind = self.kind
        days = None
        if kind.dated:
            assert window.first is not None and window.last is not None
            days = (window.first, window.last)
            query = kind.narrow(query, window.time_bounds)
        return self.hook.open_query(
            kind, query, days, raw=self.raw, encode=True, skip_malformed=self.skip_malformed, identity=identity
        )

    def _prepared_table(self, context: Any, destination: Destination) -> IcebergTable | None:
        """The Iceberg table, created when missing or checked to fit, before any Mixpanel request."""
        if self.iceberg_table is None:
            return None
        prefix = task_prefix(self.task_id)
        name = check_table_name(self.iceberg_table, where=prefix)
        if self.kind.dated and WINDOW_PLACEHOLDER not in destination.name_template:
            raise MixpanelConfigError(
                f"{prefix}{destination.name_argument}={destination.name_template!r}: with iceberg_table each day "
                f"is committed from parts of its own, so the name needs {WINDOW_PLACEHOLDER}, e.g. "
                f"'mixpanel/events/{WINDOW_PLACEHOLDER}/part-{{part}}.parquet'."
            )
        timezone = self.hook.settings.project_timezone
        if self.kind.dated and timezone not in (None, "UTC", "Etc/UTC"):
            raise MixpanelConfigError(
                f"{prefix}iceberg_table needs a project whose days are UTC days, but connection "
                f"{self.mixpanel_conn_id!r} sets project_timezone={timezone!r} (a project created before 2023): its "
                "export days span two UTC days of the table's partitions. Write files for this project instead."
            )
        from airflow_provider_mixpanel.transfers.iceberg_table import IcebergTable

        table = IcebergTable(
            name,
            self.iceberg_conn_id,
            record_columns(self.stream, raw=self.raw),
            stream=self.stream,
            dated=self.kind.dated,
            run_id=str((context or {}).get("run_id") or "manual"),
            attempt=new_attempt_token(context),
        )
        table.prepare()
        return table

    def _checked_schema_object_name(self) -> str | None:
        if self.schema_object_name is None:
            return None
        return check_schema_object_name(self.schema_object_name, "schema_object_name", where=task_prefix(self.task_id))

    def _write_schema_object(self, store: ObjectStore, name: str) -> str:
        """Write the BigQuery JSON schema of the records, as ``BaseSQLToGCSOperator``'s ``schema_filename`` does."""
        schema = bigquery_schema(self.stream, raw=self.raw, output_format=self.output_format)
        store.put(name, json.dumps(schema, indent=2).encode(), "application/json")
        log.info("Wrote the BigQuery schema of the records to %s", store.uri(name))
        return store.uri(name)

    def _manifest_context(self, query: Query) -> ManifestContext:
        """What every window's ``_manifest.json`` of this run says besides its window and parts."""
        settings = self.hook.settings
        events = getattr(query, "events", None)  # the request's fields the manifest names, where the kind has them
        return ManifestContext(
            stream=self.stream,
            project_id=settings.project_id,
            region=settings.region,
            events=list(events) if events else None,
            where=getattr(query, "where", None),
            raw=self.raw,
            output_format=self.output_format,
            compression=self.compression,
        )

    def _manifest(
        self,
        windows: list[Window],
        parts: list[WrittenPart],
        *,
        skipped: int,
        deleted: list[str],
        schema_file: str | None = None,
        manifests: list[str],
        written: list[WindowEvent] | None = None,
    ) -> Manifest:
        dated = self.kind.dated
        return Manifest(
            stream=self.stream,
            from_date=str(windows[0].first) if dated else None,
            to_date=str(windows[-1].last) if dated else None,
            raw=self.raw,
            output_format=self.output_format,
            compression=self.compression,
            files=[p.uri for p in parts],
            records=sum(p.records for p in parts),
            bytes=sum(p.bytes for p in parts),
            parts=[PartInfo(uri=p.uri, records=p.records, bytes=p.bytes) for p in parts],
            skipped_malformed=skipped,
            schema_file=schema_file,
            deleted_stale_files=deleted,
            manifests=manifests,
            windows=written or [],
            iceberg_table=self.iceberg_table,
            identity=None,
        )

    # ------------------------------------------------------------ lineage

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the Mixpanel project in, the written objects out. ``None`` without the
        openlineage provider."""
        try:
            from airflow.providers.common.compat.openlineage.facet import Dataset
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        if self._lineage is None:
            return OperatorLineage()
        kind = self.kind
        namespace = self.hook.client.hosts[kind.quota]
        inputs = [Dataset(namespace=namespace, name=f"project/{self.hook.settings.project_id}/{kind.lineage_name}")]
        # Several objects: their common "directory", as the official transfer operators name it.
        scheme, bucket, template, identity = self._lineage
        outputs = [
            Dataset(namespace=f"{scheme}://{bucket}", name=common_directory(name))
            for name in (template, identity)
            if name is not None
        ]
        return OperatorLineage(inputs=inputs, outputs=outputs)


def _identity_summary(outputs: list[OutputResult]) -> IdentitySummary:
    parts = [part for output in outputs for result in output.units for part in result.identity_parts]
    completed = [output.identity_completed for output in outputs if output.identity_completed is not None]
    return IdentitySummary(
        files=[part.uri for part in parts],
        records=sum(part.records for part in parts),
        bytes=sum(part.bytes for part in parts),
        deleted_stale_files=[uri for c in completed for uri in c.deleted_stale],
        manifests=[c.manifest for c in completed if c.manifest is not None],
    )


def _run_date(context: Any, *, where: str) -> date:
    """The date a snapshot is named after: the day the run stands for (the last of the days a dated
    kind exports by default, ``{{ ds }}`` for a daily DAG on Airflow 2); outside a DAG run the
    context's ``ds``, or today (UTC)."""
    try:
        return days_of_run(context or {}, where=where).last
    except MixpanelConfigError:  # executed outside a run (no interval, logical date or run_after)
        ds = (context or {}).get("ds")
        return date.fromisoformat(str(ds)) if ds else datetime.now(UTC).date()
