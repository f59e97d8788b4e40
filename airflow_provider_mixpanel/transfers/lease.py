"""One writer per window: a lease object beside the window's objects, taken and renewed with the
store's own conditional writes.

Two tasks can export the same window at once: a zombie task Airflow has already rescheduled, a
backfill overlapping the scheduled run, a manual trigger. Before a task touches a window's objects
it creates the window's lease (``_lease.json`` beside the manifest) with a create-only write (S3
``If-None-Match: *``, GCS ``ifGenerationMatch=0``). The store lets exactly one of two such writes
succeed; the other task reads the lease and fails with :class:`WindowLockedError`, which names
the holder (its DAG run and try, host, process, when it started) and when its lease expires.

The holder renews its lease every :data:`RENEW_SECONDS` with a write conditional on the version it
holds (S3 ``If-Match`` on the ETag, GCS ``ifGenerationMatch``), and marks it released when the
window is done (or failed). A lease is taken over, with a write conditional on the version read:

- when it is released (the window was written, or its writer failed and said so);
- when it expired: not renewed for :data:`LEASE_SECONDS`, so its holder is dead (``kill -9``, a
  lost node); the new writer then aborts what the dead one left and rewrites the window;
- when its holder is this very task attempt (same DAG run, task, map index and try), started again
  in a new process (a worker lost and the same try handed out again);
- when its holder is an earlier try of this task instance: Airflow starts a later try only once it
  has failed the earlier one, so a retry after a worker died goes on at once.

A holder that cannot renew in time stops committing (:meth:`Leases.check`, before every part) a
margin (:data:`SAFETY_SECONDS`) before its lease expires, so a task that takes over an expired
lease never writes beside it. Hosts' clocks must agree within that margin (NTP).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_mixpanel.transfers.storage import (
    PART_PLACEHOLDER,
    PreconditionFailed,
    StorageConflictError,
)

if TYPE_CHECKING:
    from airflow_provider_mixpanel.transfers.storage import ObjectStore

__all__ = [
    "LEASE_FILENAME",
    "LEASE_SECONDS",
    "RENEW_SECONDS",
    "SAFETY_SECONDS",
    "Lease",
    "LeaseLostError",
    "Leases",
    "WindowLockedError",
    "Writer",
    "lease_name",
]

log = logging.getLogger(__name__)

#: The lease's name beside a window's ``_manifest.json`` (the leading underscore keeps it out of
#: Spark / Hive / Athena scans, as the manifest's).
LEASE_FILENAME = "_lease.json"
LEASE_CONTENT_TYPE = "application/json"
#: Bumped when a field changes meaning or goes away.
LEASE_FORMAT_VERSION = 1
#: A lease not renewed for this long is its holder's death: long against a renewal's retries (the
#: holder has four tries), short against Airflow's retry delay (300 s by default), so a retry after
#: a crash takes the window over at once.
LEASE_SECONDS = 120.0
#: How often the holder renews: four renewals fit in one lease.
RENEW_SECONDS = 30.0
#: The holder stops committing this long before its lease would expire: a part's commit in flight,
#: and clocks of two hosts that differ by up to this much.
SAFETY_SECONDS = 15.0
#: How long closing waits for a renewal in flight (seconds); the thread is a daemon anyway.
CLOSE_JOIN_SECONDS = 5.0
#: How often a create-only or conditional write is tried again when a competitor changed the lease
#: between our read and our write (each time the competitor won: then we read who it is).
TAKE_OVER_TRIES = 3


@dataclass(frozen=True)
class Writer:
    """Who writes a window: an Airflow task attempt, or a process outside Airflow."""

    hostname: str
    pid: int
    started_at: str
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None

    @classmethod
    def of_task(cls, context: Mapping[str, Any] | None, task_id: str | None = None) -> Writer:
        """This process, as the task instance in ``context`` (Airflow's execute context) names it."""
        ti = (context or {}).get("ti") or (context or {}).get("task_instance")
        map_index = getattr(ti, "map_index", None)
        try_number = getattr(ti, "try_number", None)
        return cls(
            hostname=socket.gethostname(),
            pid=os.getpid(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            dag_id=getattr(ti, "dag_id", None),
            task_id=getattr(ti, "task_id", None) or task_id,
            run_id=getattr(ti, "run_id", None) or (context or {}).get("run_id"),
            map_index=map_index if isinstance(map_index, int) else None,
            try_number=try_number if isinstance(try_number, int) else None,
        )

    def same_attempt(self, other: Writer) -> bool:
        """Whether ``other`` is this task attempt (one DAG run, task, map index and try)."""
        if self.run_id is None or self.try_number is None:
            return False
        key = (self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number)
        return key == (other.dag_id, other.task_id, other.run_id, other.map_index, other.try_number)

    def earlier_try_of(self, other: Writer) -> bool:
        """Whether this is an earlier try of ``other``'s task instance (one DAG run, task, map index).

        Airflow starts a later try only once it has failed this one (its worker died, its
        heartbeats stopped, or it raised), so this one is dead, or a zombie that loses the lease at
        its next renewal and whose parts and manifest are refused by the store's conditional writes.
        """
        if self.run_id is None or self.try_number is None or other.try_number is None:
            return False
        instance = (self.dag_id, self.task_id, self.run_id, self.map_index)
        return instance == (other.dag_id, other.task_id, other.run_id, other.map_index) and (
            self.try_number < other.try_number
        )

    def __str__(self) -> str:
        task = ".".join(p for p in (self.dag_id, self.task_id) if p) or "a task outside Airflow"
        if self.map_index is not None and self.map_index >= 0:
            task += f"[{self.map_index}]"
        run = f"run {self.run_id!r} try {self.try_number} of " if self.run_id is not None else ""
        return f"{run}{task} on host {self.hostname} (pid {self.pid}), started {self.started_at}"


class LeaseRecord(TypedDict):
    """The content of ``_lease.json``."""

    lease_format_version: int
    #: ``"writing"`` while the window is written, ``"released"`` once its writer is done with it
    state: str
    writer: dict[str, Any]
    #: unique to one taking of the lease
    token: str
    renewed_at: str
    #: the holder's clock: past this instant, another task may take the window over
    expires_at: str


@dataclass
class Lease:
    """A lease this task holds."""

    name: str
    uri: str
    version: str
    token: str
    #: ``time.monotonic()`` after which this task may no longer commit (the lease may be lost)
    deadline: float
    released: bool = False
    #: one conditional write of the lease at a time (the renewing thread, the window's end, its
    #: release): two at once would name the same version, and the second would look like a loss
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class WindowLockedError(StorageConflictError):
    """Another task is writing this window; this one stopped before touching its objects."""

    def __init__(self, lease_uri: str, holder: Writer, expires_at: str):
        super().__init__(
            f"Another task is writing the objects beside {lease_uri}: {holder}. Its lease expires at "
            f"{expires_at} unless it renews it. This task stopped before touching them, so the window stays "
            "whole. If that task is alive, let it finish (and let one task at a time write a window, e.g. "
            "max_active_runs=1 or an Airflow pool of 1 slot); if it is dead, retry this task after that time."
        )
        self.lease_uri = lease_uri
        self.holder = holder
        self.expires_at = expires_at


class LeaseLostError(StorageConflictError):
    """This task's lease was taken over or could not be renewed in time: it must stop writing."""


def lease_name(template: str, *, own_folder: bool) -> str:
    """The lease object of the output named by ``template`` (a window's, ``{window}`` filled in):
    ``_lease.json`` in the folder of a window that has one to itself (``own_folder``, as manifests
    need); else named after the template's parts, e.g. ``ev/_lease.2024-03-01.json`` for
    ``ev/2024-03-01-{part}.jsonl``, and ``ev/_lease.part-2024-03-01.jsonl.json`` for
    ``ev/part-{part}-2024-03-01.jsonl``: one lease per window, the same for every attempt."""
    prefix, _, suffix = template.partition(PART_PLACEHOLDER)
    folder, slash, stem = prefix.rpartition("/")
    stem = stem.rstrip("-_.")
    if _may_name_a_window(suffix):
        # The window may be after {part}: the prefix alone would give every window one lease.
        stem = f"{stem}{suffix}".lstrip("-_.").replace("/", ".")
    filename = LEASE_FILENAME if own_folder or not stem else f"_lease.{stem}.json"
    return f"{folder}{slash}{filename}"


def _may_name_a_window(suffix: str) -> bool:
    """Whether the text after ``{part}`` may hold the window's label: every label holds a digit (a
    date), an extension such as ``.jsonl.gz`` or ``.parquet`` rarely does, and then the lease keeps
    the name it had before windows were looked for there."""
    return any(character.isdigit() for character in suffix)


def _iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).isoformat(timespec="seconds")


class Leases:
    """Takes, renews (on a thread of its own) and releases the leases of one task's windows.

    :param store: where the windows' objects and their leases are.
    :param writer: this task attempt, as leases name it.
    :param on_lost: called (from the renewing thread) with the reason when a held lease is lost:
        the run aborts.
    :param lease_seconds: a lease not renewed for this long may be taken over (:data:`LEASE_SECONDS`).
    :param renew_seconds: renew this often (:data:`RENEW_SECONDS`).
    :param safety_seconds: stop committing this long before the lease would expire (:data:`SAFETY_SECONDS`).
    :param clock: wall-clock seconds (leases' expiry, compared across hosts).
    :param monotonic: this process's steady clock (its own deadline).
    """

    def __init__(
        self,
        store: ObjectStore,
        writer: Writer,
        *,
        lease_seconds: float | None = None,
        renew_seconds: float | None = None,
        safety_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.writer = writer
        # The module's numbers unless given, read now (a test may shorten them for a process).
        self.lease_seconds = LEASE_SECONDS if lease_seconds is None else lease_seconds
        self.renew_seconds = RENEW_SECONDS if renew_seconds is None else renew_seconds
        self.safety_seconds = SAFETY_SECONDS if safety_seconds is None else safety_seconds
        self.clock = clock
        self.monotonic = monotonic
        self.on_lost: Callable[[str], None] | None = None
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ taking

    def acquire(self, name: str) -> Lease:
        """Take the lease ``name``, or raise :class:`WindowLockedError` naming its live holder."""
        token = uuid.uuid4().hex
        uri = self.store.uri(name)
        for _ in range(TAKE_OVER_TRIES):
            sent = self.monotonic()
            data = self._encode("writing", token)
            version: str | None
            try:
                version = self.store.put(name, data, LEASE_CONTENT_TYPE, if_absent=True)
            except PreconditionFailed:
                version = self._take_over(name, uri, token, sent)
            if version is None:
                continue  # it changed between our read and our write: look again
            lease = Lease(name, uri, version, token, self._deadline(sent))
            self._confirm(lease)
            with self._lock:
                self._held[name] = lease
            self._start_renewing()
            return lease
        current = self._read(name)
        if current is not None:
            raise WindowLockedError(uri, *current)
        raise LeaseLostError(f"Could not take the lease {uri}: other tasks kept changing it. Retry this task.")

    def _take_over(self, name: str, uri: str, token: str, sent: float) -> str | None:
        """Replace an existing lease that is released, expired or this attempt's own; ``None`` when
        it changed meanwhile. Raises :class:`WindowLockedError` when its holder is alive."""
        found = self.store.read(name)
        if found is None:
            return None  # deleted meanwhile: create it
        record = _decode(found.data)
        if record is not None and record["token"] == token:
            # Our own write: it landed, its reply was lost, and the SDK's resend was refused.
            return found.version
        holder = Writer(**record["writer"]) if record else None
        if record is not None and holder is not None and record["state"] != "released":
            expires = datetime.fromisoformat(record["expires_at"]).timestamp()
            if holder.same_attempt(self.writer):
                log.warning("Taking over %s from this same task attempt, started again: %s.", uri, holder)
            elif holder.earlier_try_of(self.writer):
                # Without this a retry after a worker died would be refused until the lease expired,
                # and with a short retry_delay spend every retry on that.
                log.warning("Taking over %s from an earlier try of this task, which Airflow failed: %s.", uri, holder)
            elif expires > self.clock():
                raise WindowLockedError(uri, holder, record["expires_at"])
            else:
                log.warning(
                    "Taking over %s: its holder (%s) has not renewed it since %s, so it is taken for dead. "
                    "What it left is cleaned up before the window is written again.",
                    uri,
                    holder,
                    record["renewed_at"],
                )
        elif record is None:
            newer = _newer_format(found.data)
            if newer is not None:  # a newer provider's lease may well be alive: never taken for junk
                raise StorageConflictError(
                    f"{uri} is a window lease of format {newer}, newer than this provider reads "
                    f"({LEASE_FORMAT_VERSION}): a newer airflow-provider-mixpanel writes this window. Upgrade the "
                    "provider on this worker (all workers should run one version), then retry this task."
                )
            log.warning("Taking over %s: it is not a lease this provider wrote.", uri)
        try:
            return self.store.put(name, self._encode("writing", token), LEASE_CONTENT_TYPE, if_version=found.version)
        except PreconditionFailed:
            return None

    def _confirm(self, lease: Lease) -> None:
        """Read the lease back: a store that checks conditions without atomicity (an emulator) may
        have let two create-only writes through; the one whose token is not there lost."""
        found = self.store.read(lease.name)
        record = _decode(found.data) if found is not None else None
        if record is None or record["token"] != lease.token:
            if record is not None:
                raise WindowLockedError(lease.uri, Writer(**record["writer"]), record["expires_at"])
            raise LeaseLostError(f"The lease {lease.uri} vanished as this task took it. Retry this task.")
        lease.version = found.version if found is not None else lease.version

    # ------------------------------------------------------------ holding

    def renew(self, lease: Lease) -> None:
        """Extend the lease (conditional on the version held); raises :class:`LeaseLostError` when
        another task took it over."""
        with lease.lock:
            if lease.released:
                return
            sent = self.monotonic()
            self._write_held(lease, "writing")
            lease.deadline = self._deadline(sent)

    def _write_held(self, lease: Lease, state: str) -> None:
        """Write the lease held (conditional on its version; the caller holds ``lease.lock``).

        A refused write is read back before it counts as lost: an SDK resends a write whose reply
        was lost (botocore, google-cloud-storage), and the resend is refused by our own new
        version; S3 also refuses a write that raced another (409, to be retried). Only another
        task's token there means the lease is lost: raises :class:`LeaseLostError`."""
        for _ in range(TAKE_OVER_TRIES):
            try:
                lease.version = self.store.put(
                    lease.name, self._encode(state, lease.token), LEASE_CONTENT_TYPE, if_version=lease.version
                )
                return
            except PreconditionFailed:
                found = self.store.read(lease.name)
            record = _decode(found.data) if found is not None else None
            if found is None or record is None or record["token"] != lease.token:
                raise self._lost(lease)
            landed = found.version != lease.version and record["state"] == state
            lease.version = found.version
            if landed:
                return
        raise LeaseLostError(
            f"The store kept refusing this task's writes of its lease {lease.uri}, though the lease is still "
            "this task's: it stopped writing the window. Retry this task."
        )

    def check(self, lease: Lease) -> None:
        """Before a commit: raise :class:`LeaseLostError` if the lease may have expired (it could
        not be renewed in time), so this task commits nothing beside a task that took it over."""
        if self.monotonic() > lease.deadline:
            raise LeaseLostError(
                f"This task could not renew its lease {lease.uri} in time, so another task may have taken the "
                "window over: it stopped before committing more. Retry this task."
            )

    def release(self, lease: Lease) -> None:
        """Mark the lease released (conditional on the version held), so the next writer of the
        window takes it at once. Never raises: an unreleased lease only expires."""
        with self._lock:
            self._held.pop(lease.name, None)
        with lease.lock:
            if lease.released:
                return
            lease.released = True
            try:
                self._write_held(lease, "released")
            except LeaseLostError:
                log.warning("%s was taken over by another task before this one released it.", lease.uri)
            except Exception as err:
                log.warning(
                    "Could not release %s (%s); it expires %.0f s after its last renewal.",
                    lease.uri,
                    err,
                    self.lease_seconds,
                )

    def close(self) -> None:
        """Stop renewing (the leases still held are left to expire)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=CLOSE_JOIN_SECONDS)

    # ------------------------------------------------------------ the renewing thread

    def _start_renewing(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._keep, name="mixpanel-lease-renewal", daemon=True)
            self._thread.start()

    def _keep(self) -> None:
        """Until :meth:`close`: renew every lease held (it never ends early, so a lease taken
        just as the last one was released is never left without a thread to renew it)."""
        while not self._stop.wait(self.renew_seconds):
            with self._lock:
                held = list(self._held.values())
            for lease in held:
                self._renew_quietly(lease)

    def _renew_quietly(self, lease: Lease) -> None:
        try:
            self.renew(lease)
        except LeaseLostError as err:
            with self._lock:
                self._held.pop(lease.name, None)
            log.error("%s", err)
            if self.on_lost is not None:
                self.on_lost(str(err))
        except Exception as err:  # a failed renewal is tried again; check() stops commits in time
            log.warning(
                "Could not renew %s (%s: %s); trying again in %.0f s.",
                lease.uri,
                type(err).__name__,
                err,
                self.renew_seconds,
            )

    # ------------------------------------------------------------ records

    def _deadline(self, sent: float) -> float:
        return sent + self.lease_seconds - self.safety_seconds

    def _encode(self, state: str, token: str) -> bytes:
        now = self.clock()
        record = LeaseRecord(
            lease_format_version=LEASE_FORMAT_VERSION,
            state=state,
            writer=asdict(self.writer),
            token=token,
            renewed_at=_iso(now),
            expires_at=_iso(now + self.lease_seconds),
        )
        return json.dumps(record, indent=2).encode() + b"\n"

    def _read(self, name: str) -> tuple[Writer, str] | None:
        found = self.store.read(name)
        record = _decode(found.data) if found is not None else None
        return (Writer(**record["writer"]), record["expires_at"]) if record is not None else None

    def _lost(self, lease: Lease) -> LeaseLostError:
        current = self._read(lease.name)
        by = f"by {current[0]}" if current is not None else "(it is gone)"
        return LeaseLostError(
            f"This task's lease {lease.uri} was taken over {by}: another task writes the window now, so this one "
            "stopped. Let one task at a time write a window."
        )


def _newer_format(data: bytes) -> int | None:
    """The format version of a lease written by a newer provider, or ``None``."""
    try:
        version = json.loads(data).get("lease_format_version")
    except (ValueError, AttributeError):
        return None
    return version if type(version) is int and version > LEASE_FORMAT_VERSION else None


def _decode(data: bytes) -> LeaseRecord | None:
    """The lease record, or ``None`` when ``data`` is not one."""
    try:
        record = json.loads(data)
        Writer(**record["writer"])
        datetime.fromisoformat(record["expires_at"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(record, dict) or record.get("state") not in ("writing", "released"):
        return None
    return record  # type: ignore[return-value]
