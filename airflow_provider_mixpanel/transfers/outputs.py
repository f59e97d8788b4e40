"""What happens in the store around a window's parts (the objects of one name template).

Before its first part (:meth:`WindowOutputs.begin`): its ``_manifest.json`` is deleted, so no
reader takes the window for complete while it is rewritten, and uploads a killed attempt left open
under its part names are aborted. After its last part (:meth:`WindowOutputs.end`): the parts an
earlier run wrote beyond this run's last one are deleted, then the manifest is written, last.

A window that fails in between never reaches :meth:`~WindowOutputs.end`, so it keeps no manifest:
a manifest is only ever beside the complete parts it lists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from airflow_provider_mixpanel.transfers.manifest import (
    MANIFEST_CONTENT_TYPE,
    RequestParameters,
    build_manifest,
    encode_manifest,
    manifest_name,
)
from airflow_provider_mixpanel.transfers.run_log import window_line
from airflow_provider_mixpanel.transfers.storage import PART_PLACEHOLDER, output_pattern, output_prefix
from airflow_provider_mixpanel.transfers.windows import window_where

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_mixpanel.transfers.iceberg_table import IcebergTable
    from airflow_provider_mixpanel.transfers.parts import WrittenPart
    from airflow_provider_mixpanel.transfers.storage import ObjectStore, StoredObject
    from airflow_provider_mixpanel.transfers.windows import Window

log = logging.getLogger(__name__)


class StorageConflictError(RuntimeError):
    """A committed part is not in the store as it was written: another writer replaced or
    deleted it meanwhile (two tasks writing the same window at once)."""


@dataclass(frozen=True)
class ManifestContext:
    """What every manifest of a run says besides its window and parts.

    :param where: the user's ``where`` expression (hour windows add their bounds to it).
    :param output_format: ``"jsonl"`` or ``"parquet"``.
    """

    stream: str
    project_id: int | None
    region: str
    events: list[str] | None
    where: str | None
    raw: bool
    output_format: str
    compression: str | None


class Completed(NamedTuple):
    """What finishing a window did besides its parts."""

    #: URIs of the parts an earlier run wrote beyond this run's last part, now deleted
    deleted_stale: list[str]
    #: the URI of the ``_manifest.json`` written, ``None`` without one
    manifest: str | None
    #: the Iceberg snapshot that holds the window (``None`` without ``iceberg_table``)
    snapshot_id: int | None = None


class WindowOutputs:
    """Prepares and finishes the objects of each window in ``store``.

    :param manifest: what manifests say; ``None`` writes none (``write_manifest=False``).
    :param table: an Iceberg table each window is committed into once its parts are written (and
        before its manifest, which then names the snapshot); ``None``: files only.
    """

    def __init__(self, store: ObjectStore, *, manifest: ManifestContext | None, table: IcebergTable | None = None):
        self.store = store
        self.manifest = manifest
        self.table = table

    def begin(self, template: str) -> None:
        """Before the window's first part: delete its manifest, abort uploads left open."""
        if self.manifest is not None:
            self.store.delete([manifest_name(template)])
        # With a table each attempt names its parts apart: a killed attempt's uploads match any attempt's names.
        pattern = self.table.sibling_pattern(template) if self.table is not None else output_pattern(template)
        aborted = self.store.abort_incomplete_uploads(output_prefix(template), pattern)
        if aborted:
            log.warning(
                "Aborted %d incomplete upload(s) an earlier, killed attempt left open: %s",
                len(aborted),
                ", ".join(aborted),
            )

    def end(
        self, template: str, windows: Sequence[Window], parts: Sequence[WrittenPart], exported_at: datetime
    ) -> Completed:
        """After the window's last part: delete stale parts, then write the manifest.

        :param windows: the windows written into ``template``'s objects, in order.
        :param parts: the parts written, in order.
        :param exported_at: when the (earliest) export request of these windows was sent.
        """
        completed = self._finish(template, windows, parts, exported_at)
        log.info("%s", window_line(windows, parts))
        return completed

    def _finish(
        self, template: str, windows: Sequence[Window], parts: Sequence[WrittenPart], exported_at: datetime
    ) -> Completed:
        if PART_PLACEHOLDER not in template and self.manifest is None and self.table is None:
            return Completed([], None)  # one fixed object: nothing stale, nothing to list
        pattern = output_pattern(template)
        listed = {o.name: o for o in self.store.list_objects(output_prefix(template)) if pattern.match(o.name)}
        # Checked before anything is deleted: the manifest lists the parts as the store has them.
        stored = [self._stored(part, listed) for part in parts] if self.manifest is not None else []
        written = {p.name for p in parts}
        stale = sorted(name for name in listed if name not in written)
        if stale:
            log.info("Deleting %d stale part(s) left by an earlier run: %s", len(stale), ", ".join(stale))
            self.store.delete(stale)
        deleted = [self.store.uri(name) for name in stale]
        snapshot_id = self.table.commit(windows[0], parts) if self.table is not None else None
        uri = self._write_manifest(template, windows, parts, stored, exported_at, snapshot_id)
        if self.table is not None:  # after the commit: the parts it replaced may now be unreferenced
            deleted += self.table.delete_unreferenced(self.store, template, parts)
        return Completed(deleted, uri, snapshot_id)

    def _write_manifest(
        self,
        template: str,
        windows: Sequence[Window],
        parts: Sequence[WrittenPart],
        stored: list[StoredObject],
        exported_at: datetime,
        snapshot_id: int | None,
    ) -> str | None:
        if self.manifest is None:
            return None
        name = manifest_name(template)
        manifest = build_manifest(
            stream=self.manifest.stream,
            windows=windows,
            parts=[(p.uri, p.records, s) for p, s in zip(parts, stored, strict=True)],
            exported_at=exported_at,
            project_id=self.manifest.project_id,
            region=self.manifest.region,
            request=self._request(windows),
            snapshot_id=snapshot_id,
        )
        self.store.put(name, encode_manifest(manifest), MANIFEST_CONTENT_TYPE)
        uri = self.store.uri(name)
        log.debug("Wrote %s: %d part(s), %d records, %d bytes", uri, len(parts), manifest["records"], manifest["bytes"])
        return uri

    def _stored(self, part: WrittenPart, listed: dict[str, StoredObject]) -> StoredObject:
        """The part as the store lists it, checked against what was written."""
        stored = listed.get(part.name)
        if stored is None or stored.size != part.bytes:
            found = "is gone" if stored is None else f"holds {stored.size} bytes"
            raise StorageConflictError(
                f"{part.uri} was committed with {part.bytes} bytes but now {found}: another task wrote the same "
                "objects meanwhile. Let one task at a time write a window (e.g. max_active_tis_per_dag=1), "
                "then run this one again."
            )
        return stored

    def _request(self, windows: Sequence[Window]) -> RequestParameters:
        context = self.manifest
        assert context is not None
        # One window: the expression it sent. Several (one name template without {window}): each
        # sent its own bounds, which the manifest's window spans; the user's expression is common.
        where = window_where(context.where, windows[0]) if len(windows) == 1 else (context.where or None)
        return RequestParameters(
            events=context.events,
            where=where,
            raw=context.raw,
            format=context.output_format,
            compression=context.compression,
        )
