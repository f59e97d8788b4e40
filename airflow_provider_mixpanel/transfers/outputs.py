"""What happens in the store around a window's parts (the objects of one name template).

Before its first part (:meth:`WindowOutputs.begin`): the window's lease is taken (:mod:`.lease`:
one writer per window; another task writing it fails this one, naming that task), then its
``_manifest.json`` is deleted, so no reader takes the window for complete while it is rewritten,
uploads a killed attempt left open under its part names are aborted, and the parts an earlier run
wrote are deleted. Parts are then created with create-only writes, so a part of another writer is
never overwritten: a commit that finds one fails. After its last part (:meth:`WindowOutputs.end`):
the lease is renewed (proving it is still held, with a whole lease ahead), the parts are checked
against the listing, and the manifest is written, last, create-only. :meth:`~WindowOutputs.release`
then hands the lease back.

A window that fails in between never reaches :meth:`~WindowOutputs.end`, so it keeps no manifest:
a manifest is only ever beside the complete parts it lists, all of one writer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from airflow_provider_mixpanel.transfers.lease import Lease, Leases, Writer, lease_name
from airflow_provider_mixpanel.transfers.manifest import (
    MANIFEST_CONTENT_TYPE,
    RequestParameters,
    build_manifest,
    encode_manifest,
    manifest_name,
)
from airflow_provider_mixpanel.transfers.run_log import window_line
from airflow_provider_mixpanel.transfers.storage import (
    PART_PLACEHOLDER,
    PreconditionFailed,
    StorageConflictError,
    output_pattern,
    output_prefix,
)
from airflow_provider_mixpanel.transfers.windows import window_where

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_mixpanel.transfers.iceberg_table import IcebergTable
    from airflow_provider_mixpanel.transfers.parts import WrittenPart
    from airflow_provider_mixpanel.transfers.storage import ObjectStore, StoredObject
    from airflow_provider_mixpanel.transfers.windows import Window

log = logging.getLogger(__name__)


__all__ = ["Claim", "Completed", "ManifestContext", "StorageConflictError", "WindowOutputs"]


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


class Claim(NamedTuple):
    """A window this task is writing: its lease, and the parts an earlier run left there."""

    template: str
    #: ``None`` for a table window: Iceberg's own optimistic commits and per-attempt part names let
    #: two tasks on one day both land (the table keeps one of them whole)
    lease: Lease | None
    #: the names of the parts an earlier run wrote, deleted before this run's first part
    replaced: list[str]


class WindowOutputs:
    """Prepares and finishes the objects of each window in ``store``.

    :param manifest: what manifests say; ``None`` writes none (``write_manifest=False``).
    :param table: an Iceberg table each window is committed into once its parts are written (and
        before its manifest, which then names the snapshot); ``None``: files only.
    :param writer: this task attempt, as the windows' leases name it (``None``: this process).
    :param leases: takes and renews the leases (made from ``store`` and ``writer`` when not given).
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        manifest: ManifestContext | None,
        table: IcebergTable | None = None,
        writer: Writer | None = None,
        leases: Leases | None = None,
    ):
        self.store = store
        self.manifest = manifest
        self.table = table
        self.leases = leases if leases is not None else Leases(store, writer or Writer.of_task(None))

    def begin(self, template: str) -> Claim:
        """Before the window's first part: take its lease, delete its manifest, abort uploads left
        open, delete the parts an earlier run wrote. Raises
        :class:`~.lease.WindowLockedError` when another task holds the window."""
        own_folder = self.manifest is not None
        lease = self.leases.acquire(lease_name(template, own_folder=own_folder)) if self.table is None else None
        try:
            if self.manifest is not None:
                self.store.delete([manifest_name(template)])
            # With a table each attempt names its parts apart: abort the uploads of this task instance's
            # earlier (killed) tries only, never those of another task writing the same window now.
            pattern = self.table.earlier_tries_pattern(template) if self.table is not None else output_pattern(template)
            aborted = self.store.abort_incomplete_uploads(output_prefix(template), pattern)
            if aborted:
                log.warning(
                    "Aborted %d incomplete upload(s) an earlier, killed attempt left open: %s",
                    len(aborted),
                    ", ".join(aborted),
                )
            # Parts are created, never overwritten, so the old ones go first; one fixed object (no
            # {part}) is replaced in place by its commit, so readers of it never see it missing. A
            # table's old parts stay until its commit no longer references them (delete_unreferenced).
            replaced = self._names(template) if PART_PLACEHOLDER in template and self.table is None else []
            if replaced:
                log.info("Deleting the %d part(s) an earlier run wrote: %s", len(replaced), ", ".join(replaced))
                self.store.delete(replaced)
        except BaseException:
            if lease is not None:
                self.leases.release(lease)
            raise
        return Claim(template, lease, replaced)

    def check(self, claim: Claim) -> None:
        """Before each part's commit: raise if the window's lease may be lost."""
        if claim.lease is not None:
            self.leases.check(claim.lease)

    def prove_held(self, claim: Claim) -> None:
        """Before deleting objects between :meth:`begin` and :meth:`end` (a failed attempt's parts):
        renew the window's lease, a conditional write, so a task whose window was taken over
        meanwhile raises :class:`~.lease.LeaseLostError` instead of deleting the new writer's parts."""
        if claim.lease is not None:
            self.leases.renew(claim.lease)

    def release(self, claim: Claim) -> None:
        """Hand the window's lease back (after :meth:`end`, or after a failure)."""
        if claim.lease is not None:
            self.leases.release(claim.lease)

    def close(self) -> None:
        """Stop renewing leases (the run is over)."""
        self.leases.close()

    def _names(self, template: str) -> list[str]:
        pattern = output_pattern(template)
        return sorted(o.name for o in self.store.list_objects(output_prefix(template)) if pattern.match(o.name))

    def end(
        self, claim: Claim, windows: Sequence[Window], parts: Sequence[WrittenPart], exported_at: datetime
    ) -> Completed:
        """After the window's last part: confirm the lease, check the parts, delete any foreign
        part, then write the manifest.

        :param windows: the windows written into the claimed template's objects, in order.
        :param parts: the parts written, in order.
        :param exported_at: when the (earliest) export request of these windows was sent.
        """
        if claim.lease is not None:
            self.leases.renew(claim.lease)  # raises if another task took the window over
        completed = self._finish(claim, windows, parts, exported_at)
        log.info("%s", window_line(windows, parts))
        return completed

    def _finish(
        self, claim: Claim, windows: Sequence[Window], parts: Sequence[WrittenPart], exported_at: datetime
    ) -> Completed:
        template = claim.template
        written = {p.name for p in parts}
        replaced = [self.store.uri(name) for name in claim.replaced if name not in written]
        if PART_PLACEHOLDER not in template and self.manifest is None and self.table is None:
            return Completed(replaced, None)  # one fixed object: nothing stale, nothing to list
        pattern = output_pattern(template)
        listed = {o.name: o for o in self.store.list_objects(output_prefix(template)) if pattern.match(o.name)}
        # Checked before anything is deleted: the manifest lists the parts as the store has them.
        stored = [self._stored(part, listed) for part in parts] if self.manifest is not None else []
        stale = sorted(name for name in listed if name not in written)
        if stale:
            log.warning("Deleting %d part(s) this task did not write: %s", len(stale), ", ".join(stale))
            self.store.delete(stale)
        deleted = sorted({*replaced, *(self.store.uri(name) for name in stale)})
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
        uri = self.store.uri(name)
        try:
            # Create-only under a lease; a table's window may be finished by two tasks, the last one's
            # manifest naming the snapshot that holds it.
            self.store.put(name, encode_manifest(manifest), MANIFEST_CONTENT_TYPE, if_absent=self.table is None)
        except PreconditionFailed as err:
            raise StorageConflictError(
                f"{uri} appeared while this task wrote the window: a task that takes no lease (an older "
                "version of this provider?) wrote it meanwhile. Let one task at a time write a window, then run "
                "this one again."
            ) from err
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
