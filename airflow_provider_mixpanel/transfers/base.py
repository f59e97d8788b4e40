"""The shared base of the Mixpanel-to-object-storage operators.

It owns what both operators do the same way: argument checks, date windows, encoding and
compression, part rotation, restarts after transient failures, stale-part cleanup, progress logs,
the manifest returned to XCom, and lineage. A subclass only says how to reach its storage.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel._compat import BaseOperator
from airflow_provider_mixpanel.encoding import COMPRESSIONS, CONTENT_TYPES, Compressor
from airflow_provider_mixpanel.errors import (
    MixpanelConfigError,
    MixpanelError,
    MixpanelServerError,
    MixpanelStreamInterruptedError,
)
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook, parse_date
from airflow_provider_mixpanel.transfers.writer import (
    PART_PLACEHOLDER,
    WINDOW_PLACEHOLDER,
    ObjectStore,
    ObjectUpload,
    part_name,
    part_pattern,
)

if TYPE_CHECKING:
    from airflow_provider_mixpanel.hooks.mixpanel import RecordStream

STREAMS = ("events", "profiles")
# Lines are gathered into batches of about this size before compression: one compressor call per
# batch instead of one per record.
BATCH_BYTES = 256 * 1024
# Batches waiting for the writer thread; bounds memory to about QUEUE_DEPTH * BATCH_BYTES.
QUEUE_DEPTH = 4
# A progress line at most this often (seconds).
PROGRESS_INTERVAL = 10.0
# Mixpanel allows 100 concurrent export queries per project.
MAX_ACTIVE_WINDOWS = 100
# ... and 3 per second: export requests start at least this far apart.
MIN_SECONDS_BETWEEN_REQUESTS = 0.34
# Smallest part size accepted for rotation: smaller parts only multiply requests.
MIN_FILE_SIZE_BYTES = 64 * 1024

log = logging.getLogger(__name__)


@dataclass
class AirflowTaskAborted(RuntimeError):
    """The operator's uploads were aborted by ``on_kill``."""


@dataclass
class WrittenPart:
    name: str
    uri: str
    records: int
    bytes: int


@dataclass(frozen=True)
class Window:
    """An inclusive range of days sent as one export request (profiles: one query)."""

    first: date | None
    last: date | None

    def __str__(self) -> str:
        return "profiles" if self.first is None else f"{self.first}..{self.last}"

    @property
    def label(self) -> str:
        """What ``{window}`` becomes in object names: the day, or ``FIRST_LAST`` for longer windows."""
        return str(self.first) if self.first == self.last else f"{self.first}_{self.last}"


@dataclass(frozen=True)
class Unit:
    """Windows written and restarted together, into objects named from one template."""

    windows: list[Window]
    name_template: str


class RequestPacer:
    """Spaces the starts of requests made from several threads at least ``interval`` seconds apart."""

    def __init__(self, interval: float):
        self.interval = interval
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class Progress:
    """Counts what passed and logs it every :data:`PROGRESS_INTERVAL` seconds."""

    def __init__(self, what: str):
        self.what = what
        self.records = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.monotonic()
        self._next_log = self.started + PROGRESS_INTERVAL
        self._lock = threading.Lock()  # windows may stream concurrently

    def add(self, records: int, bytes_in: int) -> None:
        with self._lock:
            self.records += records
            self.bytes_in += bytes_in

    def add_written(self, bytes_out: int) -> None:
        with self._lock:
            self.bytes_out += bytes_out

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + PROGRESS_INTERVAL
            self.log()

    def log(self, final: bool = False) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        log.info(
            "%s %s: %s records, %.1f MB encoded, %.1f MB written, %s records/s, %.1f MB/s",
            self.what,
            "done" if final else "progress",
            f"{self.records:,}",
            self.bytes_in / 1e6,
            self.bytes_out / 1e6,
            f"{self.records / elapsed:,.0f}",
            self.bytes_in / 1e6 / elapsed,
        )


class PartWriter:
    """Compresses JSONL batches into parts and commits each part when it is complete.

    Parts are numbered from ``first_part``; with ``max_file_size_bytes`` a part is committed once
    its compressed size passes that many bytes and the next batch starts a new one. Every
    committed part is complete; :meth:`abort` discards the part in flight.
    """

    def __init__(
        self,
        store: ObjectStore,
        name_template: str,
        first_part: int,
        compression: str | None,
        compression_level: int | None,
        max_file_size_bytes: int | None,
        progress: Progress,
    ):
        self.store = store
        self.name_template = name_template
        self.next_part = first_part
        self.compression = compression
        self.compression_level = compression_level
        self.max_file_size_bytes = max_file_size_bytes
        self.progress = progress
        self.parts: list[WrittenPart] = []
        self._upload: ObjectUpload | None = None
        self._compressor: Compressor | None = None
        self._part_records = 0
        self._part_bytes = 0
        self._aborted = False

    def write(self, data: bytes, records: int) -> None:
        """Append a batch of ``records`` JSONL lines."""
        if self._aborted:
            raise AirflowTaskAborted("The upload was aborted (the task was killed).")
        if self._upload is None:
            self._open_part()
        assert self._upload is not None and self._compressor is not None
        self._part_records += records
        self._send(self._compressor.compress(data))
        if self.max_file_size_bytes is not None and self._part_bytes >= self.max_file_size_bytes:
            self._commit_part()

    def finish(self) -> list[WrittenPart]:
        """Commit the part in flight; an empty stream still writes one (empty) part, so a re-run
        of an interval that became empty replaces its old data."""
        if self._upload is None and not self.parts:
            self._open_part()
        if self._upload is not None:
            self._commit_part()
        return self.parts

    @property
    def stopped(self) -> bool:
        return self._aborted

    def stop(self) -> None:
        """Refuse further batches (another thread then calls :meth:`abort`)."""
        self._aborted = True

    def abort(self) -> None:
        self._aborted = True
        upload, self._upload = self._upload, None
        if upload is not None:
            upload.abort()

    def _open_part(self) -> None:
        name = part_name(self.name_template, self.next_part)
        self._upload = self.store.open(name, CONTENT_TYPES[self.compression])
        self._compressor = Compressor(self.compression, self.compression_level)
        self._part_bytes = 0
        self._part_records = 0

    def _send(self, compressed: bytes) -> None:
        if compressed:
            assert self._upload is not None
            self._upload.write(compressed)
            self._part_bytes += len(compressed)
            self.progress.add_written(len(compressed))

    def _commit_part(self) -> None:
        assert self._upload is not None and self._compressor is not None
        self._send(self._compressor.flush())
        upload, self._upload = self._upload, None
        upload.commit()
        uri = self.store.uri(upload.name)
        self.parts.append(WrittenPart(upload.name, uri, self._part_records, self._part_bytes))
        log.info("Committed %s (%s records, %s bytes)", uri, self._part_records, self._part_bytes)
        self.next_part += 1


class BackgroundPartWriter:
    """Runs a :class:`PartWriter` on a worker thread, so compression and upload (which release
    the GIL) overlap with reading and encoding records on the task's thread. The queue between
    them is bounded, so memory is too; a failure on either side stops both."""

    _STOP = object()

    def __init__(self, writer: PartWriter, depth: int = QUEUE_DEPTH):
        self._writer = writer
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mixpanel-part-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self._error is None:
                try:
                    self._writer.write(*item)
                except BaseException as err:
                    self._error = err

    def write(self, data: bytes, records: int) -> None:
        while True:
            if self._error is not None:
                raise self._error
            if self._writer.stopped:
                raise AirflowTaskAborted("The upload was aborted (the task was killed).")
            try:
                self._queue.put((data, records), timeout=1.0)
                return
            except queue.Full:
                continue

    def finish(self) -> list[WrittenPart]:
        """Wait until every batch is written, then commit the last part."""
        self._queue.put(self._STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._writer.finish()

    def abort(self) -> None:
        """Drop the batches not yet written, stop the worker, abort the part in flight."""
        self._writer.stop()  # the worker stops at its next batch
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        with contextlib.suppress(queue.Full):
            self._queue.put(self._STOP, timeout=30)
        self._thread.join(30)
        self._writer.abort()


class BaseMixpanelStreamOperator(BaseOperator):
    """Stream Mixpanel events or profiles into object storage as JSONL parts, with flat memory.

    :param stream: ``"events"`` (Raw Event Export) or ``"profiles"`` (Engage).
    :param from_date: first day of events, ``YYYY-MM-DD`` (templated), e.g. ``"{{ ds }}"``.
    :param to_date: last day of events, inclusive (templated).
    :param events: only these event names (templated).
    :param where: a Mixpanel expression filtering events or profiles (templated).
    :param cohort_id: profiles only: members of this cohort (templated).
    :param output_properties: profiles only: only these properties (templated).
    :param raw: write records as Mixpanel sent them instead of normalized.
    :param compression: ``"gzip"`` (default), ``"zstd"`` (needs the ``zstd`` extra) or ``None``.
    :param compression_level: level of that compression; ``None`` takes its default.
    :param max_file_size_bytes: start a new part once the current one passes this many bytes
        (compressed); the object name must then hold ``{part}``, which becomes ``00000``, ``00001``...
        An object name may also hold ``{window}``: the window's day (``2024-03-01``), or
        ``FIRST_LAST`` for windows of several days, so every window writes objects of its own.
    :param window_days: split the date range into requests of this many days (``None``: one
        request). With part rotation each window is restarted on its own after a transient failure.
    :param max_active_windows: stream this many windows at once (each into parts of its own; the
        object name must then hold ``{window}``). Mixpanel serves one export slowly, so a long
        range is network-bound: 4 windows at once fetch it several times faster. Export requests
        start at most 3 per second, within Mixpanel's limits (at most 100 at once).
    :param max_stream_restarts: how often a window (or, without rotation, the whole object) is
        streamed again from scratch after a transient failure mid-stream, its upload aborted first.
    :param skip_malformed: skip and count lines that are not JSON objects instead of failing.
    :param mixpanel_conn_id: the :ref:`Mixpanel connection <howto/connection:mixpanel>`.
    :param mixpanel_hook_kwargs: more :class:`~airflow_provider_mixpanel.hooks.mixpanel.MixpanelHook`
        arguments (timeouts, retry budget).
    """

    template_fields: Sequence[str] = ("from_date", "to_date", "events", "where", "cohort_id", "output_properties")
    template_fields_renderers = {"events": "json", "output_properties": "json"}
    ui_color = "#7856ff"

    def __init__(
        self,
        *,
        stream: str = "events",
        from_date: str | date | None = None,
        to_date: str | date | None = None,
        events: list[str] | str | None = None,
        where: str | None = None,
        cohort_id: int | str | None = None,
        output_properties: list[str] | str | None = None,
        raw: bool = False,
        compression: str | None = "gzip",
        compression_level: int | None = None,
        max_file_size_bytes: int | None = None,
        window_days: int | None = None,
        max_active_windows: int = 1,
        max_stream_restarts: int = 2,
        skip_malformed: bool = False,
        mixpanel_conn_id: str = MixpanelHook.default_conn_name,
        mixpanel_hook_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stream = stream
        self.from_date = from_date
        self.to_date = to_date
        self.events = events
        self.where = where
        self.cohort_id = cohort_id
        self.output_properties = output_properties
        self.raw = raw
        self.compression = compression
        self.compression_level = compression_level
        self.max_file_size_bytes = max_file_size_bytes
        self.window_days = window_days
        self.max_active_windows = max_active_windows
        self.max_stream_restarts = max_stream_restarts
        self.skip_malformed = skip_malformed
        self.mixpanel_conn_id = mixpanel_conn_id
        self.mixpanel_hook_kwargs = mixpanel_hook_kwargs
        self._active_writers: set[BackgroundPartWriter] = set()
        self._pacer = RequestPacer(MIN_SECONDS_BETWEEN_REQUESTS)
        self._killed = False

    @cached_property
    def hook(self) -> MixpanelHook:
        return MixpanelHook(self.mixpanel_conn_id, **(self.mixpanel_hook_kwargs or {}))

    # ------------------------------------------------------------ subclass API

    def _destination(self) -> tuple[str, str, str, str]:
        """(bucket, object name template, bucket argument name, name argument name), as rendered."""
        raise NotImplementedError

    def _object_store(self, bucket: str) -> ObjectStore:
        raise NotImplementedError

    # ------------------------------------------------------------ execute

    def execute(self, context: Any) -> dict[str, Any]:
        windows, name_template, bucket = self._checked_arguments()
        self.hook.settings  # noqa: B018 - reads and checks the connection before any request
        store = self._object_store(bucket)
        what = f"Mixpanel {self.stream}" + (
            f" {windows[0].first}..{windows[-1].last}" if self.stream == "events" else ""
        )
        progress = Progress(what)
        units = self._units(windows, name_template)
        if self.max_active_windows > 1 and len(units) > 1:
            results = self._write_concurrently(store, units, progress)
        else:
            results = []
            next_part = 0
            for unit in units:
                # Windows sharing one name template continue its part numbers.
                first = 0 if WINDOW_PLACEHOLDER in name_template else next_part
                results.append(self._write_unit(store, unit, first, progress))
                next_part = first + len(results[-1][0])
        parts = [part for unit_parts, _ in results for part in unit_parts]
        skipped = sum(unit_skipped for _, unit_skipped in results)
        progress.log(final=True)
        deleted: list[str] = []
        for template in dict.fromkeys(unit.name_template for unit in units):
            deleted += self._delete_stale_parts(store, template, {p.name for p in parts})
        manifest = {
            "stream": self.stream,
            "from_date": str(windows[0].first) if self.stream == "events" else None,
            "to_date": str(windows[-1].last) if self.stream == "events" else None,
            "raw": self.raw,
            "compression": self.compression,
            "files": [p.uri for p in parts],
            "records": sum(p.records for p in parts),
            "bytes": sum(p.bytes for p in parts),
            "parts": [{"uri": p.uri, "records": p.records, "bytes": p.bytes} for p in parts],
            "skipped_malformed": skipped,
            "deleted_stale_files": [store.uri(n) for n in deleted],
        }
        self._lineage = (store.scheme, bucket, name_template)
        return manifest

    def on_kill(self) -> None:
        self._killed = True
        for writer in list(self._active_writers):
            log.warning("Task killed: aborting the upload in flight.")
            writer.abort()

    def _units(self, windows: list[Window], name_template: str) -> list[Unit]:
        """With ``{window}`` or part rotation every window writes parts of its own and restarts
        alone; otherwise the whole range is one object, and a restart rewrites all of it."""
        if WINDOW_PLACEHOLDER in name_template:
            return [Unit([w], name_template.replace(WINDOW_PLACEHOLDER, w.label)) for w in windows]
        if self.max_file_size_bytes is not None:
            return [Unit([w], name_template) for w in windows]
        return [Unit(windows, name_template)]

    def _write_concurrently(
        self, store: ObjectStore, units: list[Unit], progress: Progress
    ) -> list[tuple[list[WrittenPart], int]]:
        log.info("Streaming %d windows, %d at a time.", len(units), self.max_active_windows)
        with ThreadPoolExecutor(self.max_active_windows, thread_name_prefix="mixpanel-window") as pool:
            futures = [pool.submit(self._write_unit, store, unit, 0, progress) for unit in units]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:  # windows not started yet; those in flight finish or fail
                    future.cancel()
                raise

    def _write_unit(
        self, store: ObjectStore, unit: Unit, first_part: int, progress: Progress
    ) -> tuple[list[WrittenPart], int]:
        windows = unit.windows
        attempt = 0
        while True:
            writer = BackgroundPartWriter(
                PartWriter(
                    store,
                    unit.name_template,
                    first_part,
                    self.compression,
                    self.compression_level,
                    self.max_file_size_bytes,
                    progress,
                )
            )
            self._active_writers.add(writer)
            skipped = 0
            try:
                for window in windows:
                    self._pacer.wait()
                    lines = self._jsonl(window)
                    try:
                        _write_batches(lines, writer, progress)
                    finally:
                        lines.close()
                    skipped += lines.skipped_malformed
                return writer.finish(), skipped
            except BaseException as err:
                writer.abort()
                if self._killed or attempt >= self.max_stream_restarts or not self._is_transient(store, err):
                    raise
                attempt += 1
                log.warning(
                    "Writing %s failed mid-stream (%s: %s); its upload was aborted. Streaming %s again from "
                    "scratch (restart %d of %d).",
                    ", ".join(str(w) for w in windows),
                    type(err).__name__,
                    err,
                    "the window" if len(windows) == 1 else "all windows",
                    attempt,
                    self.max_stream_restarts,
                )
            finally:
                self._active_writers.discard(writer)

    @staticmethod
    def _is_transient(store: ObjectStore, err: BaseException) -> bool:
        if isinstance(err, MixpanelStreamInterruptedError | MixpanelServerError):
            return True
        if isinstance(err, MixpanelError) or not isinstance(err, Exception):
            return False
        return store.is_transient(err)

    def _jsonl(self, window: Window) -> RecordStream:
        if self.stream == "events":
            assert window.first is not None and window.last is not None
            return self.hook.stream_events_jsonl(
                from_date=window.first,
                to_date=window.last,
                events=self.events,
                where=self.where or None,
                raw=self.raw,
                skip_malformed=self.skip_malformed,
            )
        return self.hook.stream_profiles_jsonl(
            where=self.where or None,
            raw=self.raw,
            cohort_id=self.cohort_id,
            output_properties=self.output_properties,
        )

    def _delete_stale_parts(self, store: ObjectStore, name_template: str, written: set[str]) -> list[str]:
        """Delete parts of this name template that this run did not write (an earlier run wrote more)."""
        if PART_PLACEHOLDER not in name_template:
            return []
        prefix = name_template.split(PART_PLACEHOLDER, 1)[0]
        pattern = part_pattern(name_template)
        stale = sorted(n for n in store.list_names(prefix) if pattern.match(n) and n not in written)
        if stale:
            log.info("Deleting %d stale part(s) left by an earlier run: %s", len(stale), ", ".join(stale))
            store.delete(stale)
        return stale

    # ------------------------------------------------------------ checks

    def _checked_arguments(self) -> tuple[list[Window], str, str]:
        """Check every rendered argument; raise MixpanelConfigError before any request."""
        task = f"Task {self.task_id!r}"
        if self.stream not in STREAMS:
            raise MixpanelConfigError(f"{task}: stream={self.stream!r}: use 'events' or 'profiles'.")
        if self.compression == "none":
            self.compression = None
        if self.compression not in COMPRESSIONS:
            raise MixpanelConfigError(f"{task}: compression={self.compression!r}: use 'gzip', 'zstd' or None.")
        if self.compression_level is not None:
            limits = {"gzip": (0, 9), "zstd": (1, 22)}.get(self.compression or "")
            if limits is None or not limits[0] <= self.compression_level <= limits[1]:
                raise MixpanelConfigError(
                    f"{task}: compression_level={self.compression_level!r} does not fit compression="
                    f"{self.compression!r}" + (f": use {limits[0]} to {limits[1]}." if limits else ".")
                )
        Compressor(self.compression, self.compression_level)  # e.g. zstd without its extra installed
        bucket, template, bucket_arg, name_arg = self._destination()
        if not isinstance(bucket, str) or not bucket.strip():
            raise MixpanelConfigError(f"{task}: {bucket_arg} is empty: name the bucket to write to.")
        if not isinstance(template, str) or not template.strip():
            raise MixpanelConfigError(f"{task}: {name_arg} is empty: give the object name to write to.")
        if template.count(PART_PLACEHOLDER) > 1:
            raise MixpanelConfigError(f"{task}: {name_arg}={template!r} holds {PART_PLACEHOLDER} more than once.")
        if self.max_file_size_bytes is not None:
            if not isinstance(self.max_file_size_bytes, int) or self.max_file_size_bytes < MIN_FILE_SIZE_BYTES:
                raise MixpanelConfigError(
                    f"{task}: max_file_size_bytes={self.max_file_size_bytes!r}: use a whole number of at least "
                    f"{MIN_FILE_SIZE_BYTES}, or None for one object."
                )
            if PART_PLACEHOLDER not in template:
                raise MixpanelConfigError(
                    f"{task}: max_file_size_bytes is set, so {name_arg} must hold the placeholder {PART_PLACEHOLDER} "
                    f"for the part number: e.g. {_with_part(template)!r}."
                )
        if template.count(WINDOW_PLACEHOLDER) > 1:
            raise MixpanelConfigError(f"{task}: {name_arg}={template!r} holds {WINDOW_PLACEHOLDER} more than once.")
        if WINDOW_PLACEHOLDER in template and self.stream != "events":
            raise MixpanelConfigError(f"{task}: {WINDOW_PLACEHOLDER} in {name_arg} needs stream='events'.")
        if not isinstance(self.max_active_windows, int) or not 1 <= self.max_active_windows <= MAX_ACTIVE_WINDOWS:
            raise MixpanelConfigError(
                f"{task}: max_active_windows={self.max_active_windows!r}: use 1 to {MAX_ACTIVE_WINDOWS} "
                "(Mixpanel allows 100 concurrent export queries per project)."
            )
        if self.max_active_windows > 1 and WINDOW_PLACEHOLDER not in template:
            raise MixpanelConfigError(
                f"{task}: max_active_windows={self.max_active_windows} writes every window separately, so "
                f"{name_arg} must hold {WINDOW_PLACEHOLDER}: e.g. "
                f"'mixpanel/events/{WINDOW_PLACEHOLDER}/part-{PART_PLACEHOLDER}.jsonl.gz'."
            )
        if self.window_days is not None and (not isinstance(self.window_days, int) or self.window_days < 1):
            raise MixpanelConfigError(f"{task}: window_days={self.window_days!r}: use a whole number of days >= 1.")
        if not isinstance(self.max_stream_restarts, int) or self.max_stream_restarts < 0:
            raise MixpanelConfigError(f"{task}: max_stream_restarts={self.max_stream_restarts!r}: use 0 or more.")
        if self.stream == "profiles":
            return [Window(None, None)], template, bucket
        if self.from_date in (None, "") or self.to_date in (None, ""):
            raise MixpanelConfigError(
                f"{task}: stream='events' needs from_date and to_date, e.g. from_date='{{{{ ds }}}}', "
                "to_date='{{ ds }}'."
            )
        first = parse_date(self.from_date, "from_date")  # type: ignore[arg-type]
        last = parse_date(self.to_date, "to_date")  # type: ignore[arg-type]
        if first > last:
            raise MixpanelConfigError(f"{task}: from_date {first} is after to_date {last}.")
        return _windows(first, last, self.window_days), template, bucket

    # ------------------------------------------------------------ lineage

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the Mixpanel project in, the written objects out. ``None`` without the
        openlineage provider."""
        try:
            from airflow.providers.common.compat.openlineage.facet import Dataset
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        lineage = getattr(self, "_lineage", None)
        if lineage is None:
            return OperatorLineage()
        scheme, bucket, template = lineage
        settings = self.hook.settings
        source = self.hook.get_conn().export_url if self.stream == "events" else self.hook.get_conn().engage_url
        namespace = source.split("/api/", 1)[0]
        inputs = [Dataset(namespace=namespace, name=f"project/{settings.project_id}/{self.stream}")]
        # Several objects: their common "directory", as the official transfer operators name it.
        head = template.split(PART_PLACEHOLDER, 1)[0].split(WINDOW_PLACEHOLDER, 1)[0]
        name = head.rsplit("/", 1)[0] if head != template else template
        outputs = [Dataset(namespace=f"{scheme}://{bucket}", name=name or "/")]
        return OperatorLineage(inputs=inputs, outputs=outputs)


def _write_batches(lines: Iterator[bytes], writer: BackgroundPartWriter, progress: Progress) -> None:
    """Gather JSONL lines into batches of about :data:`BATCH_BYTES` and hand them to the writer."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= BATCH_BYTES:
            writer.write(b"".join(batch), len(batch))
            progress.add(len(batch), size)
            batch = []
            size = 0
            progress.maybe_log()
    if batch:
        writer.write(b"".join(batch), len(batch))
        progress.add(len(batch), size)


def _windows(first: date, last: date, window_days: int | None) -> list[Window]:
    if window_days is None:
        return [Window(first, last)]
    windows = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=window_days - 1))
        windows.append(Window(start, end))
        start = end + timedelta(days=1)
    return windows


def _with_part(template: str) -> str:
    head, dot, tail = template.partition(".")
    return f"{head}-{PART_PLACEHOLDER}{dot}{tail}"
