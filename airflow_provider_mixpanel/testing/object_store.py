"""An object store in memory, for millisecond tests of the transfer machinery: part rotation,
restarts, stale parts, manifests, abort on failure, cancellation, and two writers racing for one
window.

:class:`InMemoryObjectStore` implements the storage contract
(:class:`~airflow_provider_mixpanel.transfers.storage.ObjectStore`) as S3 and GCS behave: nothing is
visible before a commit, an upload neither committed nor aborted stays open (as a killed task's
multipart upload does) until :meth:`~InMemoryObjectStore.abort_incomplete_uploads`, and conditional
writes (``if_absent``, ``if_version``) are checked atomically. Every call can be made to fail
(:meth:`~InMemoryObjectStore.fail`), or to take effect and then fail as a call whose reply was lost
does (``applied=True``: an SDK that resends it then finds its own write), or to run a function of the test first
(:meth:`~InMemoryObjectStore.before`: pause a writer, let another one in, kill a task), at each of
:data:`STORE_OPERATIONS`.

It stands beside the emulator tests (moto's S3, fake-gcs-server), never in their place::

    store = InMemoryObjectStore("bucket", part_size=1024)
    store.fail("commit", match=r"part-00001", error=ConnectionError("reset"))
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from airflow_provider_mixpanel.transfers.storage import (
    ObjectStore,
    ObjectUpload,
    PreconditionFailed,
    StoredObject,
    VersionedObject,
    precondition_text,
)

__all__ = ["STORE_OPERATIONS", "InMemoryObjectStore", "StoreFault"]

log = logging.getLogger(__name__)

#: The calls a fault or a hook can be attached to: ``create`` (an upload opened), ``upload_part``
#: (a full part of an upload sent), ``commit``, ``abort`` (an upload, or a leftover one aborted),
#: ``list``, ``delete``, ``read``, ``put`` (a small object written whole).
STORE_OPERATIONS = ("create", "upload_part", "commit", "abort", "list", "delete", "read", "put")
#: The calls a fault can let take effect before it raises (``applied``): those that change the store.
APPLIED_OPERATIONS = ("create", "commit", "delete", "put")
#: Bytes an upload gathers before it sends a part (S3 sends 5 MiB and more; tests want many parts).
DEFAULT_PART_SIZE = 64 * 1024


@dataclass
class StoreFault:
    """Makes the next ``times`` calls of ``operation`` whose object name matches ``match`` raise
    ``error``, after letting ``after`` of them pass. With ``applied`` the call takes effect first
    (its reply was lost). ``hits`` counts the failures raised."""

    operation: str
    error: BaseException
    match: str | None = None
    times: int = 1
    after: int = 0
    hits: int = 0
    applied: bool = False

    def applies(self, operation: str, name: str) -> bool:
        if operation != self.operation or self.hits >= self.times:
            return False
        if self.match is not None and re.search(self.match, name) is None:
            return False
        if self.after > 0:
            self.after -= 1
            return False
        return True


@dataclass
class _Object:
    data: bytes
    version: str
    content_type: str
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))


class InMemoryObjectStore(ObjectStore):
    """A bucket in memory. Safe to use from several threads (tasks racing share one store).

    :param bucket: the bucket's name (URIs read ``mem://bucket/name``).
    :param part_size: bytes an upload gathers before it sends a part (an ``upload_part`` call).
    """

    scheme = "mem"

    def __init__(self, bucket: str = "bucket", *, part_size: int = DEFAULT_PART_SIZE):
        super().__init__(bucket)
        self.part_size = part_size
        #: every call, in order: ``(operation, name)`` (``list``: the prefix)
        self.calls: list[tuple[str, str]] = []
        self._objects: dict[str, _Object] = {}
        self._uploads: dict[int, MemoryUpload] = {}
        self._faults: list[StoreFault] = []
        self._hooks: list[tuple[str, str | None, Callable[[str], None]]] = []
        self._versions = itertools.count(1)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    # ------------------------------------------------------------ what a test arranges and reads

    def fail(
        self,
        operation: str,
        *,
        match: str | None = None,
        error: BaseException | None = None,
        times: int = 1,
        after: int = 0,
        applied: bool = False,
    ) -> StoreFault:
        """Make calls of ``operation`` fail (see :class:`StoreFault`); by default with a
        ``ConnectionError``, a failure the operators take for transient. With ``applied`` each
        such call takes effect, then raises ``error``: a reply lost (``PreconditionFailed`` as
        ``error``: the SDK resent the write and found its own)."""
        if operation not in STORE_OPERATIONS:
            raise ValueError(f"operation={operation!r}: use one of {', '.join(STORE_OPERATIONS)}.")
        if applied and operation not in APPLIED_OPERATIONS:
            raise ValueError(f"applied=True is for {', '.join(APPLIED_OPERATIONS)}: {operation} changes nothing.")
        error = error or ConnectionError(f"injected {operation} failure")
        fault = StoreFault(operation, error, match, times, after, applied=applied)
        with self._lock:
            self._faults.append(fault)
        return fault

    def before(self, operation: str, hook: Callable[[str], None], *, match: str | None = None) -> None:
        """Call ``hook(name)`` before every call of ``operation`` on a matching name, outside the
        store's lock (it may block, wait for another thread, or raise)."""
        if operation not in STORE_OPERATIONS:
            raise ValueError(f"operation={operation!r}: use one of {', '.join(STORE_OPERATIONS)}.")
        with self._lock:
            self._hooks.append((operation, match, hook))

    @property
    def objects(self) -> dict[str, bytes]:
        """The committed objects' content, by name, in name order."""
        with self._lock:
            return {name: self._objects[name].data for name in sorted(self._objects)}

    def version(self, name: str) -> str | None:
        with self._lock:
            found = self._objects.get(name)
            return found.version if found is not None else None

    @property
    def open_uploads(self) -> list[str]:
        """Names of the uploads opened and neither committed nor aborted (a killed writer's)."""
        with self._lock:
            return sorted(upload.name for upload in self._uploads.values())

    def operations(self, operation: str) -> list[str]:
        """The names the calls of ``operation`` were made on, in order."""
        with self._lock:
            return [name for op, name in self.calls if op == operation]

    # ------------------------------------------------------------ the storage contract

    def open(self, name: str, content_type: str, *, if_absent: bool = False) -> ObjectUpload:
        lost_reply = self._call("create", name)
        with self._lock:
            upload = MemoryUpload(self, next(self._ids), name, content_type, if_absent=if_absent)
            self._uploads[upload.id] = upload
        _raise_lost(lost_reply)
        return upload

    def read(self, name: str) -> VersionedObject | None:
        self._call("read", name)
        with self._lock:
            found = self._objects.get(name)
            return VersionedObject(found.data, found.version) if found is not None else None

    def put(
        self, name: str, data: bytes, content_type: str, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        lost_reply = self._call("put", name)
        with self._lock:
            self._check(name, if_absent=if_absent, if_version=if_version)
            version = self._store(name, data, content_type)
        _raise_lost(lost_reply)
        return version

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        self._call("list", prefix)
        with self._lock:
            listed = [
                StoredObject(name, len(o.data), hashlib.md5(o.data).hexdigest(), "etag", o.modified)
                for name, o in sorted(self._objects.items())
                if name.startswith(prefix)
            ]
        return iter(listed)

    def delete(self, names: list[str]) -> None:
        for name in names:
            lost_reply = self._call("delete", name)
            with self._lock:
                self._objects.pop(name, None)
            _raise_lost(lost_reply)

    def abort_incomplete_uploads(self, prefix: str, pattern: re.Pattern[str]) -> list[str]:
        with self._lock:
            leftovers = [u for u in self._uploads.values() if u.name.startswith(prefix) and pattern.match(u.name)]
        aborted = []
        for upload in leftovers:
            self._call("abort", upload.name)
            with self._lock:
                if self._uploads.pop(upload.id, None) is not None:
                    upload.discarded = True
                    aborted.append(upload.name)
        return sorted(aborted)

    # ------------------------------------------------------------ inside

    def _call(self, operation: str, name: str) -> StoreFault | None:
        """Record the call, run the test's hooks, raise an injected fault; return one to raise once
        the call took effect (``applied``: its reply lost), for the calls that take effect."""
        with self._lock:
            self.calls.append((operation, name))
            hooks = [hook for op, match, hook in self._hooks if op == operation and _matches(match, name)]
        for hook in hooks:
            hook(name)
        with self._lock:
            fault = next((f for f in self._faults if f.applies(operation, name)), None)
            if fault is not None:
                fault.hits += 1
        if fault is not None and not fault.applied:
            raise fault.error
        return fault

    def _check(self, name: str, *, if_absent: bool, if_version: str | None) -> None:
        """Under the lock: the condition of a write, as S3 and GCS check it."""
        found = self._objects.get(name)
        if (if_absent and found is not None) or (
            if_version is not None and (found is None or found.version != if_version)
        ):
            raise PreconditionFailed(self.uri(name), precondition_text(if_absent=if_absent, if_version=if_version))

    def _store(self, name: str, data: bytes, content_type: str) -> str:
        version = str(next(self._versions))
        self._objects[name] = _Object(data, version, content_type)
        return version

    def _finish(self, upload: MemoryUpload) -> None:
        """Commit ``upload``: atomically, with its condition."""
        with self._lock:
            if upload.discarded or self._uploads.pop(upload.id, None) is None:
                raise RuntimeError(f"The upload of {self.uri(upload.name)} was aborted.")
            upload.discarded = True
            self._check(upload.name, if_absent=upload.if_absent, if_version=None)
            self._store(upload.name, b"".join(upload.parts) + bytes(upload.buffer), upload.content_type)

    def _discard(self, upload: MemoryUpload) -> None:
        with self._lock:
            self._uploads.pop(upload.id, None)
            upload.discarded = True


def _raise_lost(fault: StoreFault | None) -> None:
    """After a call took effect: raise the error of its lost reply, if a test injected one."""
    if fault is not None:
        raise fault.error


def _matches(match: str | None, name: str) -> bool:
    return match is None or re.search(match, name) is not None


class MemoryUpload(ObjectUpload):
    """One object being written into an :class:`InMemoryObjectStore`."""

    def __init__(self, store: InMemoryObjectStore, upload_id: int, name: str, content_type: str, *, if_absent: bool):
        super().__init__(name)
        self.id = upload_id
        self.content_type = content_type
        self.if_absent = if_absent
        self.parts: list[bytes] = []
        self.buffer = bytearray()
        self.discarded = False
        self._store = store

    def write(self, data: bytes) -> None:
        if self.discarded:
            raise RuntimeError(f"The upload of {self._store.uri(self.name)} was aborted.")
        self.buffer += data
        size = self._store.part_size
        while len(self.buffer) >= size:
            self._store._call("upload_part", self.name)
            self.parts.append(bytes(self.buffer[:size]))
            del self.buffer[:size]

    def commit(self) -> None:
        try:
            lost_reply = self._store._call("commit", self.name)
            self._store._finish(self)
        except BaseException:
            self.abort()
            raise
        _raise_lost(lost_reply)

    def abort(self) -> None:
        if self.discarded:
            return
        try:
            self._store._call("abort", self.name)
        except Exception as err:  # as S3's: the upload stays open, for the next run to abort
            log.error("Could not abort the upload of %s (%s).", self._store.uri(self.name), err)
            return
        self._store._discard(self)
