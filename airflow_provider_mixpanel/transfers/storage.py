"""The commit-or-abort interface between the operators and object storage, and the placeholders
that name objects.

An :class:`ObjectUpload` receives bytes and either commits them as one complete object or aborts,
leaving nothing behind. Nothing is visible at the destination before :meth:`ObjectUpload.commit`.
Object names come from a template that may hold ``{part}`` (the part number) and ``{window}`` (the
window's days).

Writes can be conditional, as the stores themselves check them, atomically: ``if_absent`` (S3
``If-None-Match: *``, GCS ``ifGenerationMatch=0``) creates an object only where none exists, and
``if_version`` (S3 ``If-Match`` on the ETag, GCS ``ifGenerationMatch``) replaces an object only if
it is still the version read. A condition that does not hold raises :class:`PreconditionFailed`.
This is what keeps two tasks from writing one window at once (:mod:`.lease`).
"""

from __future__ import annotations

import posixpath
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

PART_PLACEHOLDER = "{part}"
WINDOW_PLACEHOLDER = "{window}"
# Part numbers are zero-padded to this many digits, so names sort in part order.
PART_DIGITS = 5


class StorageConflictError(RuntimeError):
    """The objects of a window are not as this task left them: another writer replaced, created
    or deleted some meanwhile (two tasks writing the same window at once)."""


class PreconditionFailed(StorageConflictError):
    """A conditional write found the object otherwise than required: it exists (``if_absent``) or
    is another version than the one read (``if_version``)."""

    def __init__(self, uri: str, condition: str):
        super().__init__(f"{uri}: {condition}; another writer wrote it meanwhile.")
        self.uri = uri
        self.condition = condition


def precondition_text(*, if_absent: bool, if_version: str | None) -> str:
    """What a failed condition required, for :class:`PreconditionFailed`."""
    return "was to be created but exists" if if_absent else f"was to replace version {if_version} but changed"


class VersionedObject(NamedTuple):
    """An object's content and the version a conditional write names (S3's ETag, GCS's generation)."""

    data: bytes
    version: str


class StoredObject(NamedTuple):
    """An object as the store lists it."""

    name: str
    size: int
    #: what the store reports to check the content: S3's ETag (quotes removed), GCS's crc32c
    checksum: str | None
    #: ``"etag"`` or ``"crc32c"``
    checksum_type: str
    #: when the object was written, as the store reports it (``None``: the store does not say)
    modified: datetime | None = None


class ObjectUpload(ABC):
    """One object being written."""

    def __init__(self, name: str):
        self.name = name

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Append bytes; memory stays bounded by the writer's part or chunk size."""

    @abstractmethod
    def commit(self) -> None:
        """Make the object visible, complete. Raises if that fails (after aborting), and
        :class:`PreconditionFailed` when it was opened ``if_absent`` and the object exists."""

    @abstractmethod
    def abort(self) -> None:
        """Discard everything written; never raises."""


class ObjectStore(ABC):
    """A bucket of one storage service, reached through that service's Airflow hook."""

    scheme: str

    def __init__(self, bucket: str):
        self.bucket = bucket

    def uri(self, name: str) -> str:
        return f"{self.scheme}://{self.bucket}/{name}"

    @abstractmethod
    def open(self, name: str, content_type: str, *, if_absent: bool = False) -> ObjectUpload:
        """Start writing object ``name``; with ``if_absent`` its commit creates it only if no
        object of that name exists then (checked by the store, atomically)."""

    @abstractmethod
    def read(self, name: str) -> VersionedObject | None:
        """The object's content and version; ``None`` when there is none."""

    @abstractmethod
    def put(
        self, name: str, data: bytes, content_type: str, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        """Write a small object whole; returns its new version. ``if_absent``: only if no object
        of that name exists; ``if_version``: only if it is still that version. Raises
        :class:`PreconditionFailed` when the condition does not hold."""

    @abstractmethod
    def list_objects(self, prefix: str) -> Iterable[StoredObject]:
        """The objects under ``prefix``, with their sizes and checksums."""

    @abstractmethod
    def delete(self, names: list[str]) -> None:
        """Delete these objects (names that do not exist are no error)."""

    def abort_incomplete_uploads(self, prefix: str, pattern: re.Pattern[str]) -> list[str]:
        """Abort uploads under ``prefix`` whose names match ``pattern`` that were started and
        never completed (left by a killed attempt); returns their names. Stores whose unfinished
        uploads expire by themselves (GCS resumable sessions, after a week) do nothing."""
        return []

    def is_transient(self, error: BaseException) -> bool:
        """Whether a failure of this service may pass if the object is written again."""
        return isinstance(error, ConnectionError | TimeoutError)


def part_name(template: str, number: int) -> str:
    """The object name of part ``number``: ``{part}`` becomes the zero-padded 5-digit number."""
    return template.replace(PART_PLACEHOLDER, f"{number:0{PART_DIGITS}d}")


def part_pattern(template: str) -> re.Pattern[str]:
    """Matches exactly the names :func:`part_name` makes from ``template``."""
    prefix, _, suffix = template.partition(PART_PLACEHOLDER)
    return re.compile(re.escape(prefix) + rf"\d{{{PART_DIGITS}}}" + re.escape(suffix) + r"\Z")


def output_prefix(template: str) -> str:
    """The listing prefix of every name :func:`part_name` makes from ``template``: the template
    itself when it names one fixed object."""
    return template.split(PART_PLACEHOLDER, 1)[0]


def output_pattern(template: str) -> re.Pattern[str]:
    """Matches the names of ``template``'s objects: its parts, or the one object it names."""
    if PART_PLACEHOLDER in template:
        return part_pattern(template)
    return re.compile(re.escape(template) + r"\Z")


def with_window(template: str, label: str) -> str:
    """The template of one window's objects: ``{window}`` replaced by the window's label."""
    return template.replace(WINDOW_PLACEHOLDER, label)


def with_part(template: str) -> str:
    """``template`` with ``{part}`` added before the extensions of its last path segment, as a hint:
    ``exports/v1.2/events.jsonl.gz`` becomes ``exports/v1.2/events-{part}.jsonl.gz``."""
    directory, slash, filename = template.rpartition("/")
    stem, dot, extensions = filename.partition(".")
    return f"{directory}{slash}{stem}-{PART_PLACEHOLDER}{dot}{extensions}"


def common_directory(template: str) -> str:
    """The "directory" every object of ``template`` is written under (lineage names it), e.g.
    ``mixpanel/events`` for ``mixpanel/events/{window}/part-{part}.jsonl.gz``; the template itself
    when it names one fixed object."""
    head = template.split(PART_PLACEHOLDER, 1)[0].split(WINDOW_PLACEHOLDER, 1)[0]
    if head == template:
        return template
    return posixpath.dirname(head) or "/"
