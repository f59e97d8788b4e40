"""An Apache Iceberg table fed by the operators' Parquet parts: each window committed in one
Iceberg transaction that deletes the window's rows and adds the window's new parts as data files.

The parts are written first, as for ``output_format="parquet"``, under names of their own for each
attempt (:func:`attempt_template`), so a part a snapshot references is never overwritten. Then
:meth:`IcebergTable.commit` deletes the rows of the window (its UTC day or hours of ``event_time``;
profiles: every row) and adds the parts, with pyiceberg's ``Transaction.delete`` and
``Transaction.add_files``: the parts' footers are read for their statistics, no row passes
through Python, and the delete drops whole data files (each part holds one window's rows only).
Readers see the old window or the new one, never half. A commit that loses a race with another
writer (windows of one task, several tasks, two DAGs) is made again from the table as it then is,
so no window is lost or doubled.

A task killed between writing parts and committing leaves the table as it was; its retry commits
its own parts and deletes the parts of the window no snapshot references and no running attempt
may still commit (:meth:`IcebergTable.delete_unreferenced`), the killed try's among them.

The connection is the ``iceberg`` connection of Airflow's apache-iceberg provider: its extra holds
pyiceberg's catalog properties (``type``, ``uri``, ``warehouse``, ``s3.endpoint``...).

Imports pyiceberg: only an operator with ``iceberg_table`` loads this module.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, ValidationException
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, LessThan
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import TableProperties
from pyiceberg.table.snapshots import IsolationLevel
from pyiceberg.transforms import DayTransform, MonthTransform, VoidTransform, YearTransform
from pyiceberg.types import BooleanType, LongType, NestedField, StringType, TimestamptzType

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.schemas import BOOLEAN, INTEGER, JSON, TEXT, TIMESTAMP, Column
from airflow_provider_mixpanel.transfers.iceberg_names import (
    TIME_COLUMN,
    AttemptToken,
    attempt_pattern,
    earlier_tries_pattern,
    split_table_name,
)
from airflow_provider_mixpanel.transfers.storage import output_prefix

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from airflow_provider_mixpanel.transfers.parts import WrittenPart
    from airflow_provider_mixpanel.transfers.storage import ObjectStore
    from airflow_provider_mixpanel.transfers.windows import Window

log = logging.getLogger(__name__)

# Iceberg types of the column kinds: Iceberg has no JSON type, so JSON text is a string (as in
# BigQuery's Parquet loads); event_time is an instant in UTC, to the microsecond; integers are
# 64 bits and booleans booleans, as in the parts.
ICEBERG_TYPES = {
    TEXT: StringType(),
    TIMESTAMP: TimestamptzType(),
    JSON: StringType(),
    INTEGER: LongType(),
    BOOLEAN: BooleanType(),
}
# Iceberg reserves partition field ids from 1000 (the spec's PARTITION_DATA_ID_START).
FIRST_PARTITION_FIELD_ID = 1000
# A lost race is made again this many times: each retry follows a commit of another writer, so
# this many writers committing the same table at the same instant still all land.
MAX_COMMIT_ATTEMPTS = 12
# The wait before a retry grows from this (seconds, with jitter so racing writers spread out)...
COMMIT_RETRY_BASE_SECONDS = 0.1
# ...up to this.
COMMIT_RETRY_MAX_SECONDS = 5.0
# A table made by the operator drops its oldest metadata files after each commit (pyiceberg honours
# these), so a daily table with look-back keeps this many metadata.json files, not one per commit.
TABLE_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
# The partition transforms of event_time that a day's parts fill whole: one value per part.
DATE_TRANSFORMS = (DayTransform, MonthTransform, YearTransform)
# The isolation properties of the window's delete (and of its overwrite, should one be needed).
ISOLATION_PROPERTIES = (TableProperties.WRITE_DELETE_ISOLATION_LEVEL, TableProperties.WRITE_UPDATE_ISOLATION_LEVEL)
# Snapshot summary properties that say which run and window a commit holds.
SUMMARY_RUN_ID = "mixpanel.run-id"
SUMMARY_WINDOW = "mixpanel.window"
SUMMARY_COMMIT_ID = "mixpanel.commit-id"
SUMMARY_STREAM = "mixpanel.stream"

# pyiceberg warns when a delete matches nothing: the first export of a window always does.
warnings.filterwarnings("ignore", message="Delete operation did not match any records")


def iceberg_schema(columns: Sequence[Column]) -> Schema:
    """The Iceberg schema of a record format's columns (every field optional: Mixpanel may send
    ``null`` for any of them)."""
    return Schema(
        *(
            NestedField(number, column.name, ICEBERG_TYPES[column.kind], required=False, doc=column.description)
            for number, column in enumerate(columns, start=1)
        )
    )


def partition_spec(schema: Schema, *, dated: bool) -> PartitionSpec:
    """Events: by day of ``event_time``; profiles (replaced whole each run): unpartitioned."""
    if not dated:
        return UNPARTITIONED_PARTITION_SPEC
    source = schema.find_field(TIME_COLUMN)
    return PartitionSpec(
        PartitionField(
            source_id=source.field_id,
            field_id=FIRST_PARTITION_FIELD_ID,
            transform=DayTransform(),
            name=f"{TIME_COLUMN}_day",
        )
    )


def window_filter(window: Window) -> BooleanExpression:
    """The rows a window replaces: its event times ``[start, end)``; every row for profiles."""
    if window.start is None or window.end is None:
        return AlwaysTrue()
    return And(
        # pyiceberg's predicates take (term, literal); its pydantic models hide that from mypy
        GreaterThanOrEqual(TIME_COLUMN, window.start.isoformat()),  # type: ignore[call-arg,arg-type]
        LessThan(TIME_COLUMN, window.end.isoformat()),  # type: ignore[call-arg,arg-type]
    )


def check_table_fits(table_name: str, table: Table, columns: Sequence[Column], *, dated: bool) -> None:
    """Raise :class:`MixpanelConfigError` naming the table, and the column, partition field or
    property, when an existing table cannot take the parts (checked before any Mixpanel request,
    so a table that would fail inside ``add_files`` costs no export)."""
    check_columns_fit(table_name, table.schema(), columns)
    check_partitions_fit(table_name, table.schema(), table.spec(), dated=dated)
    check_isolation_fits(table_name, table.properties)


def check_columns_fit(table_name: str, schema: Schema, columns: Sequence[Column]) -> None:
    """Every column of the records, of the records' type, and no required column: the parts'
    columns are all optional (Mixpanel may send ``null``), which ``add_files`` refuses for a
    required column, and a required column the records lack has no value at all."""
    names = {column.name for column in columns}
    for column in columns:
        expected = ICEBERG_TYPES[column.kind]
        try:
            field = schema.find_field(column.name)
        except ValueError:
            raise MixpanelConfigError(
                f"Iceberg table {table_name!r} has no column {column.name!r} ({expected}), which the "
                f"{'/'.join(c.name for c in columns)} records need: add it (ALTER TABLE ... ADD COLUMN), or "
                "write into another table (a missing table is created with the right columns)."
            ) from None
        if field.field_type != expected:
            raise MixpanelConfigError(
                f"Iceberg table {table_name!r}: column {column.name!r} is {field.field_type}, but the records "
                f"write {expected}: write into another table, or change the column's type."
            )
    for field in schema.fields:
        if field.required:
            why = "the records may hold null in it" if field.name in names else "the records have no such column"
            raise MixpanelConfigError(
                f"Iceberg table {table_name!r}: column {field.name!r} is required, but {why}: make it optional "
                "(ALTER TABLE ... ALTER COLUMN ... DROP NOT NULL), or write into another table."
            )


def check_partitions_fit(table_name: str, schema: Schema, spec: PartitionSpec, *, dated: bool) -> None:
    """Partitions ``add_files`` can fill from the parts' statistics, whole files per window:
    events by day, month or year of ``event_time`` (a part holds one day); a snapshot kind's
    table unpartitioned (a part holds any values of every column)."""
    for field in spec.fields:
        if isinstance(field.transform, VoidTransform):  # a dropped partition field of a v1 table
            continue
        source = schema.find_column_name(field.source_id)
        if dated and source == TIME_COLUMN and isinstance(field.transform, DATE_TRANSFORMS):
            continue
        wanted = (
            f"partition by day, month or year of {TIME_COLUMN} only (a window is one UTC day or part of one)"
            if dated
            else "leave the table unpartitioned (each run replaces the whole table)"
        )
        raise MixpanelConfigError(
            f"Iceberg table {table_name!r}: partition field {field.name!r} ({field.transform}({source})) cannot be "
            f"filled from the parts: {wanted}; change the table's partitioning, or write into another table."
        )


def check_isolation_fits(table_name: str, properties: Mapping[str, str]) -> None:
    """Serializable isolation for the window's delete: under ``snapshot`` isolation pyiceberg's own
    commit retry reuses the delete it planned, so two tasks committing the same new window would
    both add their rows."""
    for name in ISOLATION_PROPERTIES:
        level = properties.get(name, TableProperties.WRITE_ISOLATION_LEVEL_DEFAULT)
        if level != IsolationLevel.SERIALIZABLE.value:
            raise MixpanelConfigError(
                f"Iceberg table {table_name!r} sets {name}={level!r}: a window committed by two tasks at once "
                f"could land twice. Set it to 'serializable' (ALTER TABLE ... SET TBLPROPERTIES "
                f"('{name}'='serializable')), or write into another table."
            )


class IcebergTable:
    """One Iceberg table that a task commits its windows into.

    :param table_name: ``namespace.table`` (the namespace may have several levels).
    :param conn_id: the ``iceberg`` connection: its extra holds the catalog's properties.
    :param columns: the records' columns (:func:`airflow_provider_mixpanel.schemas.record_columns`).
    :param stream: the kind of records (``events``, ``profiles``, ``cohorts``...), kept in each
        snapshot's summary.
    :param dated: events (a window's rows are replaced) or a snapshot kind such as profiles (the
        whole table is).
    :param run_id: the Airflow run's id, kept in each snapshot's summary.
    :param attempt: the token in this attempt's part names (:func:`~.iceberg_names.attempt_template`).
    """

    def __init__(
        self,
        table_name: str,
        conn_id: str,
        columns: Sequence[Column],
        *,
        stream: str,
        dated: bool,
        run_id: str,
        attempt: AttemptToken,
    ):
        self.table_name = table_name
        self.identifier = split_table_name(table_name)
        self.conn_id = conn_id
        self.columns = tuple(columns)
        self.stream = stream
        self.dated = dated
        self.run_id = run_id
        self.attempt = attempt
        self._catalog: Catalog | None = None
        self._catalog_lock = threading.Lock()
        # The windows of one task commit one at a time: racing each other would only make them
        # retry (each commit rewrites the table's one metadata pointer). Other tasks still race.
        self._commit_lock = threading.Lock()
        # manifest path -> the data files it lists: manifests never change, so each is read once a run
        self._manifest_files: dict[str, frozenset[str]] = {}

    # ------------------------------------------------------------ catalog and table

    @property
    def catalog(self) -> Catalog:
        with self._catalog_lock:
            if self._catalog is None:
                from airflow.providers.apache.iceberg.hooks.iceberg import IcebergHook

                self._catalog = IcebergHook(iceberg_conn_id=self.conn_id).catalog
            return self._catalog

    def prepare(self) -> None:
        """Create the namespace and the table when missing, or check that the existing table fits.
        Called before any Mixpanel request."""
        # The namespace is touched only for a missing table: a catalog's credentials may read and
        # write tables but not create namespaces (REST, Glue: ForbiddenError), and need not.
        if not self.catalog.table_exists(self.identifier):
            schema = iceberg_schema(self.columns)
            self._create_namespace()
            self.catalog.create_table_if_not_exists(
                self.identifier,
                schema=schema,
                partition_spec=partition_spec(schema, dated=self.dated),
                properties=TABLE_PROPERTIES,
            )
            log.info("Iceberg table %s is ready (created when missing).", self.table_name)
        check_table_fits(self.table_name, self._load(), self.columns, dated=self.dated)

    def _create_namespace(self) -> None:
        namespace = self.identifier[:-1]
        try:
            self.catalog.create_namespace(namespace)
            log.info("Created the Iceberg namespace %s.", ".".join(namespace))
        except NamespaceAlreadyExistsError:
            pass

    def _load(self) -> Table:
        return self.catalog.load_table(self.identifier)

    # ------------------------------------------------------------ commit

    def commit(self, window: Window, parts: Sequence[WrittenPart]) -> int | None:
        """Replace the window's rows by the parts' rows in one transaction; the id of the snapshot
        that holds the new window (``None``: an empty window of a table with no snapshot yet). A
        lost race is made again from the table as it then is."""
        commit_id = uuid.uuid4().hex
        # A snapshot kind's window label is its run date, as in the XCom result and the manifest.
        summary = {
            SUMMARY_RUN_ID: self.run_id,
            SUMMARY_STREAM: self.stream,
            SUMMARY_WINDOW: window.label,
            SUMMARY_COMMIT_ID: commit_id,
        }
        files = [part.uri for part in parts if part.records]  # an empty part has no statistics to place it
        with self._commit_lock:
            return self._commit(window, files, summary, commit_id)

    def _commit(self, window: Window, files: list[str], summary: dict[str, str], commit_id: str) -> int | None:
        started = time.monotonic()
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            table = self._load()
            if not files and not self._holds_rows_of(table, window):
                return self._nothing_to_commit(table, window)
            transaction = table.transaction()
            transaction.delete(window_filter(window), snapshot_properties=summary)
            if files:
                transaction.add_files(files, snapshot_properties=summary, check_duplicate_files=False)
            try:
                committed = transaction.commit_transaction()
            except (CommitFailedException, ValidationException) as err:
                if attempt == MAX_COMMIT_ATTEMPTS:
                    raise
                delay = min(COMMIT_RETRY_MAX_SECONDS, COMMIT_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                log.info(
                    "Iceberg commit of %s lost a race with another writer (%s); committing again in %.2fs.",
                    window.label,
                    type(err).__name__,
                    delay,
                )
                time.sleep(delay)
                continue
            snapshot_id = self._snapshot_of(committed, commit_id)
            if snapshot_id is None:  # the window's rows went between our look and the delete's plan
                return self._nothing_to_commit(committed, window)
            log.info(
                "Committed %s into Iceberg table %s: %d file(s), snapshot %d (%.2fs).",
                window.label if self.dated else f"the {self.stream}",
                self.table_name,
                len(files),
                snapshot_id,
                time.monotonic() - started,
            )
            return snapshot_id
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _holds_rows_of(table: Table, window: Window) -> bool:
        """Whether any data file of the table may hold rows of the window (planned from the
        manifests' partitions and column bounds: no data file is read)."""
        return any(True for _ in table.scan(row_filter=window_filter(window)).plan_files())

    def _nothing_to_commit(self, table: Table, window: Window) -> int | None:
        """An empty window of a table without rows in it: no snapshot is made (there is nothing to
        change), and the window's snapshot is the table's current one, ``None`` when it has none."""
        current = table.current_snapshot()
        snapshot_id = current.snapshot_id if current is not None else None
        log.info(
            "No records for %s and none in Iceberg table %s: nothing to commit; the table stays at snapshot %s.",
            window.label if self.dated else f"the {self.stream}",
            self.table_name,
            snapshot_id,
        )
        return snapshot_id

    @staticmethod
    def _snapshot_of(table: Table, commit_id: str) -> int | None:
        """The last snapshot this commit made (the append after the delete); ``None`` when it made
        none (pyiceberg commits no snapshot for a delete that matched nothing and no files added)."""
        ours = [s for s in table.metadata.snapshots if s.summary and s.summary.get(SUMMARY_COMMIT_ID) == commit_id]
        if not ours:
            return None
        return max(ours, key=lambda s: s.sequence_number or 0).snapshot_id

    # ------------------------------------------------------------ leftovers

    def referenced_files(self) -> set[str]:
        """Every data file any snapshot of the table references."""
        table = self._load()
        referenced: set[str] = set()
        for snapshot in table.metadata.snapshots:
            for manifest in snapshot.manifests(table.io):
                files = self._manifest_files.get(manifest.manifest_path)
                if files is None:
                    entries = manifest.fetch_manifest_entry(table.io, discard_deleted=False)
                    files = frozenset(entry.data_file.file_path for entry in entries)
                    self._manifest_files[manifest.manifest_path] = files
                referenced.update(files)
        return referenced

    def earlier_tries_pattern(self, template: str) -> re.Pattern[str]:
        """Matches the part names of ``template`` written by earlier tries of this task instance."""
        return earlier_tries_pattern(template, self.attempt)

    def sibling_pattern(self, template: str) -> re.Pattern[str]:
        """Matches the part names of ``template`` (this attempt's) with any attempt's token."""
        return attempt_pattern(template, str(self.attempt))

    def delete_unreferenced(self, store: ObjectStore, template: str, parts: Sequence[WrittenPart]) -> list[str]:
        """Delete the window's parts of other attempts that no snapshot references and that no
        running attempt may still commit (a killed try's, or written long ago: a killed run's, or
        those of snapshots expired since);
        the URIs deleted."""
        pattern = self.sibling_pattern(template)
        written = {part.name for part in parts}
        candidates = []
        for stored in store.list_objects(output_prefix(template)):
            match = pattern.match(stored.name)
            if match is None or stored.name in written:
                continue
            written_at = stored.modified.timestamp() if stored.modified is not None else None
            if not self.attempt.may_still_commit(AttemptToken.parse(match.group("token")), written_at):
                candidates.append(stored.name)
        if not candidates:
            return []
        referenced = self.referenced_files()
        orphans = [name for name in candidates if store.uri(name) not in referenced]
        if orphans:
            log.info(
                "Deleting %d part(s) no snapshot of %s references (a killed attempt's, or expired): %s",
                len(orphans),
                self.table_name,
                ", ".join(orphans),
            )
            store.delete(orphans)
        return [store.uri(name) for name in orphans]


__all__ = [
    "ICEBERG_TYPES",
    "IcebergTable",
    "check_columns_fit",
    "check_isolation_fits",
    "check_partitions_fit",
    "check_table_fits",
    "iceberg_schema",
    "partition_spec",
    "window_filter",
]
