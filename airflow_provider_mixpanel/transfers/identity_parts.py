"""A window's identity mappings written into parts of their own, beside its events.

The mappings come from the lines the window's events are made of (:mod:`airflow_provider_mixpanel.identity`,
no request of their own). :class:`IdentityParts` gathers their JSONL lines into batches of
:data:`~.parts.BATCH_BYTES` and hands them to a writer of their own (the same encoding as the
events' parts: JSONL compressed, or Parquet with the identity columns), so memory stays a batch
and a part in flight however many devices the window has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_mixpanel.identity import IdentityMapping, IdentityMappings
from airflow_provider_mixpanel.transfers.parts import BATCH_BYTES

if TYPE_CHECKING:
    from datetime import tzinfo

    from airflow_provider_mixpanel.transfers.outputs import WindowOutputs
    from airflow_provider_mixpanel.transfers.parts import BackgroundPartWriter, PartFormat, WrittenPart


class IdentityParts:
    """The identity mappings of one unit (its windows), into ``writer``'s parts.

    :param writer: the writer of the unit's identity parts.
    :param project_timezone: the connection's ``project_timezone``, as the events read ``time``.
    :param time_in_ms: the events were asked for with ``time_in_ms`` (their ``time`` in milliseconds).
    """

    def __init__(
        self, writer: BackgroundPartWriter, *, project_timezone: str | tzinfo | None, time_in_ms: bool = False
    ):
        self.writer = writer
        self.mappings = IdentityMappings(self._add, project_timezone=project_timezone, time_in_ms=time_in_ms)
        self._batch: list[bytes] = []
        self._size = 0

    def _add(self, mapping: IdentityMapping) -> None:
        line = mapping.jsonl()
        self._batch.append(line)
        self._size += len(line)
        if self._size >= BATCH_BYTES:
            self._send()

    def _send(self) -> None:
        if self._batch:
            self.writer.write(b"".join(self._batch), len(self._batch))
            self._batch = []
            self._size = 0

    def finish(self) -> list[WrittenPart]:
        """Write what is gathered and commit the last part (an empty window writes one empty part,
        so a re-run replaces the mappings of a window that has none left)."""
        self._send()
        return self.writer.finish()

    def abort(self) -> None:
        self._batch = []
        self.writer.abort()


@dataclass(frozen=True)
class IdentityOutput:
    """How a run writes the identity mappings of its windows.

    :param part_format: the encoding of their parts (the events', with the identity columns for Parquet).
    :param outputs: prepares and finishes their objects (manifest, stale parts, leftovers).
    :param project_timezone: the connection's ``project_timezone``, as the events read ``time``.
    :param time_in_ms: the events are asked for with ``time_in_ms``: the mappings read ``time`` so too.
    """

    part_format: PartFormat
    outputs: WindowOutputs
    project_timezone: str | None
    time_in_ms: bool = False
