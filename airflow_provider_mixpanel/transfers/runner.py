"""One export's units written into parts: restarted after transient failures, several at once, and
aborted together, at once, when the task is killed or one of them fails.

Units that share a name template form one output (a window's objects): before its first unit the
output is claimed (its lease taken, its manifest, leftover uploads and old parts removed) and after
its last one finished (lease confirmed, parts checked, manifest written) by
:class:`~.outputs.WindowOutputs`; its lease is released whatever happened. Losing a lease aborts
the run.

An :class:`ExportRun` is made by ``execute`` and lives as long as it: it holds the threads' shared
state (a lock and the writers in flight), which an operator must not hold, since Airflow copies
operators with ``copy.deepcopy``.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

from airflow_provider_mixpanel.errors import MixpanelError, MixpanelServerError, MixpanelStreamInterruptedError
from airflow_provider_mixpanel.transfers.identity_parts import IdentityParts
from airflow_provider_mixpanel.transfers.parts import (
    AirflowTaskAborted,
    BackgroundPartWriter,
    PartFormat,
    PartWriter,
    WrittenPart,
    write_batches,
)

if TYPE_CHECKING:
    from airflow_provider_mixpanel.streams import RecordStream
    from airflow_provider_mixpanel.transfers.identity_parts import IdentityOutput
    from airflow_provider_mixpanel.transfers.outputs import Claim, Completed, WindowOutputs
    from airflow_provider_mixpanel.transfers.progress import Progress
    from airflow_provider_mixpanel.transfers.storage import ObjectStore
    from airflow_provider_mixpanel.transfers.windows import Unit

log = logging.getLogger(__name__)


class UnitResult(NamedTuple):
    """What one unit wrote."""

    parts: list[WrittenPart]
    skipped_malformed: int
    #: when the attempt that wrote the parts started (its export requests were sent after it)
    exported_at: datetime
    #: the parts of its identity mappings (none without ``identity``)
    identity_parts: list[WrittenPart] = []


class OutputResult(NamedTuple):
    """What one output (the units of one name template) wrote, and what finishing it did."""

    units: list[UnitResult]
    completed: Completed
    #: what finishing the identity mappings' objects did (``None`` without ``identity``)
    identity_completed: Completed | None = None


class ExportRun:
    """Writes units of windows into parts of one store.

    :param store: where the parts go.
    :param open_stream: the JSONL lines of a window, as a :class:`~airflow_provider_mixpanel.streams.RecordStream`;
        with ``identity``, called as ``open_stream(window, mappings)`` to derive them from the same lines.
    :param part_format: compression and part rotation.
    :param max_stream_restarts: how often a unit is written again from scratch after a transient failure.
    :param progress: counts and logs what passed.
    :param outputs: prepares and finishes each output's objects (manifest, stale parts, leftovers).
    :param cancel_streams: stops every Mixpanel stream of the run at once, from any thread (reads
        blocked in a socket and requests waiting for their turn alike); called by :meth:`abort`.
    :param identity: also write each unit's identity mappings, derived from its lines, into the
        objects of its ``identity_template`` (``None``: none are written).
    """

    def __init__(
        self,
        *,
        store: ObjectStore,
        open_stream: Callable[..., RecordStream],
        part_format: PartFormat,
        max_stream_restarts: int,
        progress: Progress,
        outputs: WindowOutputs,
        cancel_streams: Callable[[], None] | None = None,
        identity: IdentityOutput | None = None,
    ):
        self.identity = identity
        self.store = store
        self.open_stream = open_stream
        self.part_format = part_format
        self.max_stream_restarts = max_stream_restarts
        self.progress = progress
        self.outputs = outputs
        outputs.leases.on_lost = self.abort  # another task took a window over: stop everything
        if identity is not None:
            identity.outputs.leases.on_lost = self.abort
        self.cancel_streams = cancel_streams
        self._lock = threading.Lock()
        self._writers: set[BackgroundPartWriter] = set()
        self._abort_reason: str | None = None

    # ------------------------------------------------------------ abort

    @property
    def aborted(self) -> bool:
        return self._abort_reason is not None

    def abort(self, reason: str) -> None:
        """Stop every unit at once: uploads in flight are aborted, no unit starts or restarts, and
        each unit still writing raises :class:`AirflowTaskAborted` with ``reason``. Any thread may
        call it; the first reason stays."""
        with self._lock:
            if self._abort_reason is None:
                self._abort_reason = reason
            writers = list(self._writers)
        for writer in writers:
            writer.abort()
        if self.cancel_streams is not None:
            self.cancel_streams()

    def _start_writer(
        self, claim: Claim, first_part: int, part_format: PartFormat | None = None, outputs: WindowOutputs | None = None
    ) -> BackgroundPartWriter:
        """A writer of ``claim``'s parts; each commit first checks the claim's lease (with the
        ``outputs`` that took it: the identity mappings' own)."""
        claimed_by = outputs or self.outputs
        with self._lock:
            if self._abort_reason is not None:
                raise AirflowTaskAborted(self._abort_reason)
            writer = BackgroundPartWriter(
                PartWriter(
                    self.store,
                    claim.template,
                    first_part=first_part,
                    part_format=part_format or self.part_format,
                    progress=self.progress,  # bytes written count the identity parts too
                    before_commit=lambda: claimed_by.check(claim),
                )
            )
            self._writers.add(writer)
        return writer

    def _start_identity(self, claim: Claim | None, first_part: int) -> IdentityParts | None:
        """The writer of the unit's identity mappings, when it has any to write."""
        if self.identity is None or claim is None:
            return None
        writer = self._start_writer(claim, first_part, self.identity.part_format, self.identity.outputs)
        identity = self.identity
        return IdentityParts(writer, project_timezone=identity.project_timezone, time_in_ms=identity.time_in_ms)

    def _forget(self, writer: BackgroundPartWriter) -> None:
        with self._lock:
            self._writers.discard(writer)

    # ------------------------------------------------------------ writing

    def write_units(self, units: list[Unit], *, max_active: int = 1) -> list[OutputResult]:
        """Write every output (consecutive units sharing a name template), ``max_active`` at once;
        the first failure aborts the others and is raised."""
        outputs = [list(group) for _, group in itertools.groupby(units, key=lambda unit: unit.name_template)]
        try:
            if max_active > 1 and len(outputs) > 1:
                return self._write_concurrently(outputs, max_active)
            return [self.write_output(output) for output in outputs]
        finally:
            self.outputs.close()
            if self.identity is not None:
                self.identity.outputs.close()

    def write_output(self, units: list[Unit]) -> OutputResult:
        """Claim the output's objects (and its identity mappings'), write its units (continuing
        their part numbers), finish them, release them."""
        self._refuse_if_aborted()
        claim = self.outputs.begin(units[0].name_template)
        identity_claim: Claim | None = None
        try:
            identity_template = units[0].identity_template if self.identity is not None else None
            if identity_template is not None:
                assert self.identity is not None
                identity_claim = self.identity.outputs.begin(identity_template)
            results: list[UnitResult] = []
            next_part = next_identity_part = 0
            for unit in units:
                results.append(
                    self.write_unit(
                        unit, claim, identity_claim, first_part=next_part, first_identity_part=next_identity_part
                    )
                )
                next_part += len(results[-1].parts)
                next_identity_part += len(results[-1].identity_parts)
            self._refuse_if_aborted()  # aborted meanwhile: the output is not declared complete
            windows = [window for unit in units for window in unit.windows]
            parts = [part for result in results for part in result.parts]
            exported_at = min(result.exported_at for result in results)
            identity_completed = None
            if identity_claim is not None:  # finished first: the events' manifest, written last, is the signal
                assert self.identity is not None
                identity_parts = [part for result in results for part in result.identity_parts]
                identity_completed = self.identity.outputs.end(identity_claim, windows, identity_parts, exported_at)
            return OutputResult(results, self.outputs.end(claim, windows, parts, exported_at), identity_completed)
        finally:
            if identity_claim is not None:
                assert self.identity is not None
                self.identity.outputs.release(identity_claim)
            self.outputs.release(claim)

    def _refuse_if_aborted(self) -> None:
        reason = self._abort_reason
        if reason is not None:
            raise AirflowTaskAborted(reason)

    def _write_concurrently(self, outputs: list[list[Unit]], max_active: int) -> list[OutputResult]:
        """Up to ``max_active`` outputs at once, on daemon threads: a window aborted while its read is
        blocked ends on its own later, and never holds up the task's exit (a ThreadPoolExecutor's
        threads would, until that read returns)."""
        log.info("Streaming %d windows, %d at a time.", len(outputs), max_active)
        futures: list[Future[OutputResult]] = [Future() for _ in outputs]
        pending: queue.SimpleQueue[tuple[list[Unit], Future[OutputResult]]] = queue.SimpleQueue()
        for output, future in zip(outputs, futures, strict=True):
            pending.put((output, future))
        for number in range(min(max_active, len(outputs))):
            threading.Thread(target=self._work, args=(pending,), name=f"mixpanel-window-{number}", daemon=True).start()
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = _first_failure(futures, done)
            if failed is not None:
                error = failed.exception()
                assert error is not None
                which = ", ".join(str(unit) for unit in outputs[futures.index(failed)])
                self.abort(f"Window {which} failed ({type(error).__name__}), so this window was aborted.")
                log.error("Window %s failed: aborted the other windows at once.", which)
                raise error
            return [future.result() for future in futures]
        except BaseException:
            self.abort("The export failed, so this window was aborted.")  # e.g. interrupted while waiting
            for future in futures:
                future.cancel()  # windows not started yet never start
            raise

    def _work(self, pending: queue.SimpleQueue[tuple[list[Unit], Future[OutputResult]]]) -> None:
        """A window thread: write outputs from ``pending`` until none is left."""
        while True:
            try:
                output, future = pending.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self.write_output(output))
            except BaseException as err:
                future.set_exception(err)

    def write_unit(
        self,
        unit: Unit,
        claim: Claim,
        identity_claim: Claim | None = None,
        *,
        first_part: int,
        first_identity_part: int = 0,
    ) -> UnitResult:
        """Write one unit (and, with ``identity_claim``, its identity mappings); after a transient
        failure abort its uploads, delete the parts they committed, and write it again from scratch."""
        attempt = 0
        while True:
            writer = self._start_writer(claim, first_part)
            identity: IdentityParts | None = None
            started = datetime.now(UTC)
            try:
                identity = self._start_identity(identity_claim, first_identity_part)
                skipped = 0
                for window in unit.windows:
                    if self._abort_reason is not None:  # aborted before its request: never send it
                        raise AirflowTaskAborted(self._abort_reason)
                    lines = (
                        self.open_stream(window) if identity is None else self.open_stream(window, identity.mappings)
                    )
                    try:
                        write_batches(lines, writer, self.progress)
                    finally:
                        lines.close()
                    skipped += lines.skipped_malformed
                identity_parts = identity.finish() if identity is not None else []
                return UnitResult(writer.finish(), skipped, started, identity_parts)
            except BaseException as err:
                writer.abort()
                if identity is not None:
                    identity.abort()
                if self._abort_reason is not None:
                    raise AirflowTaskAborted(self._abort_reason) from err
                if attempt >= self.max_stream_restarts or not self._is_transient(err):
                    raise
                self._delete_attempt(writer, identity, claim, identity_claim)
                attempt += 1
                log.warning(
                    "Writing %s failed mid-stream (%s: %s); its upload was aborted. Streaming %s again from "
                    "scratch (restart %d of %d).",
                    unit,
                    type(err).__name__,
                    err,
                    "the window" if len(unit.windows) == 1 else "all windows",
                    attempt,
                    self.max_stream_restarts,
                )
            finally:
                self._forget(writer)
                if identity is not None:
                    self._forget(identity.writer)

    def _delete_attempt(
        self,
        writer: BackgroundPartWriter,
        identity: IdentityParts | None,
        claim: Claim,
        identity_claim: Claim | None,
    ) -> None:
        """Before a restart: delete every part the failed attempt opened (parts are created, never
        overwritten, and the next try writes them anew; a commit whose reply was lost landed all
        the same), once its leases are proven still held: a task whose window was taken over
        meanwhile must not delete the parts of the task that took it."""
        names = writer.opened_names
        if identity is not None:
            names += identity.writer.opened_names
        if not names:
            return
        self.outputs.prove_held(claim)
        if identity_claim is not None and self.identity is not None:
            self.identity.outputs.prove_held(identity_claim)
        self.store.delete(names)

    def _is_transient(self, err: BaseException) -> bool:
        if isinstance(err, MixpanelStreamInterruptedError | MixpanelServerError):
            return True
        if isinstance(err, MixpanelError) or not isinstance(err, Exception):
            return False
        return self.store.is_transient(err)


def _first_failure(futures: list[Future[OutputResult]], done: set[Future[OutputResult]]) -> Future[OutputResult] | None:
    """The failed future to report: a real failure before an abort it caused."""
    failed = [f for f in futures if f in done and not f.cancelled() and f.exception() is not None]
    return next((f for f in failed if not isinstance(f.exception(), AirflowTaskAborted)), None) or next(
        iter(failed), None
    )
