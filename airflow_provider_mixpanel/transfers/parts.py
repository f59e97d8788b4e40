"""JSONL lines into compressed (or Parquet) parts: batching, part rotation by size, and the writer thread.

:func:`write_batches` gathers lines into batches; a :class:`BackgroundPartWriter` hands them to a
:class:`PartWriter` on a thread of its own, which compresses them into the part in flight and
commits each part once it is complete.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_mixpanel.compression import CONTENT_TYPES, PARQUET_CONTENT_TYPE, Compressor
from airflow_provider_mixpanel.transfers.storage import PART_PLACEHOLDER, part_name

if TYPE_CHECKING:
    from airflow_provider_mixpanel.schemas import Column
    from airflow_provider_mixpanel.transfers.progress import Progress
    from airflow_provider_mixpanel.transfers.storage import ObjectStore, ObjectUpload

# Lines are gathered into batches of about this size before compression: one compressor call per
# batch instead of one per record.
BATCH_BYTES = 256 * 1024
# Batches waiting for the writer thread; bounds memory to about QUEUE_DEPTH * BATCH_BYTES.
QUEUE_DEPTH = 4
# A full queue is retried this often (seconds), to notice an abort while waiting.
QUEUE_POLL_SECONDS = 1.0
# How long an abort waits for the writer thread to finish its current batch (seconds).
ABORT_JOIN_SECONDS = 30.0

log = logging.getLogger(__name__)


class AirflowTaskAborted(RuntimeError):
    """The export was aborted: the task was killed (``on_kill``), or another window failed."""


@dataclass(frozen=True)
class WrittenPart:
    """A committed part."""

    name: str
    uri: str
    records: int
    bytes: int


class PartEncoder(Protocol):
    """Turns a part's JSONL batches into its bytes: a :class:`~airflow_provider_mixpanel.compression.Compressor`
    (JSONL) or a :class:`~airflow_provider_mixpanel.transfers.parquet.ParquetEncoder`."""

    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass(frozen=True)
class PartFormat:
    """How parts are encoded and when they rotate.

    :param compression: JSONL: ``"gzip"``, ``"zstd"`` or ``None``; Parquet: ``"zstd"``, ``"snappy"``
        or ``None``; already checked.
    :param compression_level: its level; ``None`` takes the default.
    :param max_file_size_bytes: commit a part once it passes this many compressed bytes (``None``:
        one part).
    :param parquet_columns: write Parquet parts with these columns (``None``: JSONL parts).
    :param json_logical_type: Parquet: mark JSON columns with Parquet's JSON logical type; ``False``
        writes them as plain strings, the type Iceberg tables take (Iceberg has no JSON type).
    """

    compression: str | None
    compression_level: int | None
    max_file_size_bytes: int | None
    parquet_columns: tuple[Column, ...] | None = None
    json_logical_type: bool = True

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.compression] if self.parquet_columns is None else PARQUET_CONTENT_TYPE

    def encoder(self) -> PartEncoder:
        """A fresh encoder for one part."""
        if self.parquet_columns is None:
            return Compressor(self.compression, self.compression_level)
        from airflow_provider_mixpanel.transfers.parquet import ROW_GROUP_BYTES, ParquetEncoder

        # Parts rotate at row group boundaries: with a small part size, smaller row groups.
        row_group = min(ROW_GROUP_BYTES, self.max_file_size_bytes or ROW_GROUP_BYTES)
        return ParquetEncoder(
            self.parquet_columns,
            compression=self.compression,
            compression_level=self.compression_level,
            row_group_bytes=row_group,
            json_logical_type=self.json_logical_type,
        )


class PartWriter:
    """Compresses JSONL batches into parts and commits each part when it is complete.

    Parts are numbered from ``first_part``; with ``max_file_size_bytes`` a part is committed once
    its compressed size passes that many bytes and the next batch starts a new one. Every
    committed part is complete; a numbered part is created, never overwritten (a part of that name
    already there fails the commit: another writer's); ``before_commit`` runs before each commit (the window's
    lease check). :meth:`abort` discards the part in flight.
    """

    def __init__(
        self,
        store: ObjectStore,
        name_template: str,
        *,
        first_part: int,
        part_format: PartFormat,
        progress: Progress,
        before_commit: Callable[[], None] | None = None,
    ):
        self.store = store
        self.before_commit = before_commit
        self.name_template = name_template
        self.first_part = first_part
        self.next_part = first_part
        #: the number of the last part opened (``None`` before the first)
        self.last_opened: int | None = None
        self.format = part_format
        self.progress = progress
        self.parts: list[WrittenPart] = []
        self._upload: ObjectUpload | None = None
        self._compressor: PartEncoder | None = None
        self._part_records = 0
        self._part_bytes = 0
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def opened_names(self) -> list[str]:
        """The names of the numbered parts this writer opened, committed or not: a commit whose
        reply was lost landed all the same. One fixed object (no ``{part}``) is replaced in place,
        so only a committed one counts."""
        if PART_PLACEHOLDER not in self.name_template or self.last_opened is None:
            return [part.name for part in self.parts]
        return [part_name(self.name_template, number) for number in range(self.first_part, self.last_opened + 1)]

    def write(self, data: bytes, records: int) -> None:
        """Append a batch of ``records`` JSONL lines."""
        self.refuse_if_stopped()
        if self._upload is None:
            self._open_part()
        assert self._compressor is not None
        self._part_records += records
        self._send(self._compressor.compress(data))
        limit = self.format.max_file_size_bytes
        if limit is not None and self._part_bytes >= limit:
            self._commit_part()

    def finish(self) -> list[WrittenPart]:
        """Commit the part in flight; an empty stream still writes one (empty) part, so a re-run
        of an interval that became empty replaces its old data."""
        self.refuse_if_stopped()
        if self._upload is None and not self.parts:
            self._open_part()
        if self._upload is not None:
            self._commit_part()
        return self.parts

    def stop(self) -> None:
        """Refuse further batches (the part in flight is aborted by :meth:`abort`)."""
        self._stopped = True

    def abort(self) -> None:
        """Stop, and discard the part in flight."""
        self._stopped = True
        upload, self._upload = self._upload, None
        if upload is not None:
            upload.abort()

    def refuse_if_stopped(self) -> None:
        """Raise :class:`AirflowTaskAborted` once stopped."""
        if self._stopped:
            raise AirflowTaskAborted(f"The upload of {self.store.uri(self.name_template)} was aborted.")

    def _open_part(self) -> None:
        self.last_opened = self.next_part
        name = part_name(self.name_template, self.next_part)
        # Numbered parts are created, never overwritten (the window's old ones were deleted first);
        # one fixed object (no {part}) is replaced in place, under the window's lease.
        self._upload = self.store.open(name, self.format.content_type, if_absent=PART_PLACEHOLDER in self.name_template)
        self._compressor = self.format.encoder()
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
        if self.before_commit is not None:
            self.before_commit()
        upload, self._upload = self._upload, None
        upload.commit()
        uri = self.store.uri(upload.name)
        self.parts.append(WrittenPart(upload.name, uri, self._part_records, self._part_bytes))
        log.debug("Committed %s (%s records, %s bytes)", uri, self._part_records, self._part_bytes)
        self.next_part += 1


class BackgroundPartWriter:
    """Runs a :class:`PartWriter` on a worker thread, so compression and upload (which release
    the GIL) overlap with reading and encoding records on the window's thread. The queue between
    them is bounded, so memory is too; a failure on either side stops both. :meth:`abort` may be
    called from any thread, also while another thread writes."""

    _STOP = object()

    def __init__(self, writer: PartWriter, depth: int = QUEUE_DEPTH):
        self._writer = writer
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abort_lock = threading.Lock()
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
            self._writer.refuse_if_stopped()
            try:
                self._queue.put((data, records), timeout=QUEUE_POLL_SECONDS)
                return
            except queue.Full:
                continue

    @property
    def committed(self) -> list[WrittenPart]:
        """The parts committed so far."""
        return list(self._writer.parts)

    @property
    def opened_names(self) -> list[str]:
        """The names of the parts opened so far (see :attr:`PartWriter.opened_names`)."""
        return self._writer.opened_names

    def finish(self) -> list[WrittenPart]:
        """Wait until every batch is written, then commit the last part."""
        self._queue.put(self._STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._writer.finish()

    def abort(self) -> None:
        """Drop the batches not yet written, stop the worker, abort the part in flight. Idempotent."""
        with self._abort_lock:
            self._writer.stop()  # the worker refuses its next batch
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            with contextlib.suppress(queue.Full):
                self._queue.put(self._STOP, timeout=ABORT_JOIN_SECONDS)
            self._thread.join(ABORT_JOIN_SECONDS)
            self._writer.abort()


def write_batches(lines: Iterable[bytes], writer: BackgroundPartWriter, progress: Progress) -> None:
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
    if batch:
        writer.write(b"".join(batch), len(batch))
        progress.add(len(batch), size)
