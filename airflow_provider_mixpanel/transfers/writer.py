"""The commit-or-abort interface between the operators and object storage.

An :class:`ObjectUpload` receives bytes and either commits them as one complete object or aborts,
leaving nothing behind. Nothing is visible at the destination before :meth:`ObjectUpload.commit`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable


class ObjectUpload(ABC):
    """One object being written."""

    def __init__(self, name: str):
        self.name = name

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Append bytes; memory stays bounded by the writer's part or chunk size."""

    @abstractmethod
    def commit(self) -> None:
        """Make the object visible, complete. Raises if that fails (after aborting)."""

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
    def open(self, name: str, content_type: str) -> ObjectUpload:
        """Start writing object ``name``."""

    @abstractmethod
    def list_names(self, prefix: str) -> Iterable[str]:
        """Names of the objects under ``prefix``."""

    @abstractmethod
    def delete(self, names: list[str]) -> None:
        """Delete these objects."""

    def is_transient(self, error: BaseException) -> bool:
        """Whether a failure of this service may pass if the object is written again."""
        return isinstance(error, ConnectionError | TimeoutError)


PART_PLACEHOLDER = "{part}"
WINDOW_PLACEHOLDER = "{window}"


def part_name(template: str, number: int) -> str:
    """The object name of part ``number``: ``{part}`` becomes the zero-padded 5-digit number."""
    return template.replace(PART_PLACEHOLDER, f"{number:05d}")


def part_pattern(template: str) -> re.Pattern[str]:
    """Matches exactly the names :func:`part_name` makes from ``template``."""
    prefix, _, suffix = template.partition(PART_PLACEHOLDER)
    return re.compile(re.escape(prefix) + r"\d{5}" + re.escape(suffix) + r"\Z")
