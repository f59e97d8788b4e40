"""Asset events for the windows a task wrote: which days changed, for downstream DAGs.

Each outlet asset of the operator (``outlets=[Asset(...)]``) receives, in its event's ``extra``,
every window written, look-back days included, keyed by the window (``2024-03-01``, or
``2024-03-01T06`` for hour windows): records, bytes, the window's ``_manifest.json`` and the
Iceberg snapshot id. On Airflow 3.3+ the event is partitioned: each window is a partition key
(``outlet_events[asset].add_partitions``), so a DAG scheduled on
``PartitionedAssetTimetable(assets=...)`` runs once per window written, and reads its own
window's details from ``extra["windows"][dag_run.partition_key]`` (Airflow keeps one ``extra``
for all the partition keys of an asset in one task). On Airflow 2.11 and 3.0-3.2 the one event of
the asset carries the same ``extra``, without partition keys.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_mixpanel.transfers.windows import PROFILES

if TYPE_CHECKING:
    from airflow_provider_mixpanel.transfers.runner import OutputResult
    from airflow_provider_mixpanel.transfers.windows import Unit

log = logging.getLogger(__name__)

#: the key of ``extra`` that holds each window's details, by window
WINDOWS_KEY = "windows"


class WindowEvent(TypedDict):
    """What one window's asset event says about it."""

    window: str
    records: int
    bytes: int
    #: the window's ``_manifest.json`` (``None`` with ``write_manifest=False``)
    manifest: str | None
    #: the Iceberg snapshot holding the window (``None`` without ``iceberg_table``)
    snapshot_id: int | None


def outlet_assets(outlets: Iterable[Any]) -> list[Any]:
    """The concrete assets among a task's outlets (Airflow 3 ``Asset``, Airflow 2 ``Dataset``);
    aliases and references name no asset to give an event to. A subclass of ``Asset`` is one too
    (by name along its classes: no Airflow import here)."""
    return [o for o in outlets if any(c.__name__ in ("Asset", "Dataset") for c in type(o).__mro__)]


def emit_window_events(context: Mapping[str, Any], outlets: Iterable[Any], windows: list[WindowEvent]) -> list[str]:
    """Give each outlet asset the written windows (see the module's docstring); the partition
    keys added (none before Airflow 3.3)."""
    assets = outlet_assets(outlets)
    outlet_events = context.get("outlet_events") if hasattr(context, "get") else None
    if not assets or not windows or outlet_events is None:
        return []
    details = {event["window"]: dict(event) for event in windows}
    keys = list(details)
    partitioned = False
    for asset in assets:
        accessor = outlet_events[asset]
        accessor.extra[WINDOWS_KEY] = details
        add_partitions = getattr(accessor, "add_partitions", None)
        if add_partitions is not None:  # Airflow 3.3+
            add_partitions(keys)
            partitioned = True
    names = ", ".join(str(getattr(a, "name", None) or getattr(a, "uri", "?")) for a in assets)
    if partitioned:
        log.info("Asset events for %s: %d partition(s) %s", names, len(keys), ", ".join(keys))
    else:
        log.info("Asset event for %s: window(s) %s (partition keys need Airflow 3.3+)", names, ", ".join(keys))
    return keys if partitioned else []


def context_date(context: Any) -> str:
    """The run's date (``ds``): the window label of a snapshot kind (profiles) in asset events."""
    ds = (context or {}).get("ds") if hasattr(context, "get") else None
    return str(ds) if ds else "profiles"


def window_events(units: list[Unit], outputs: list[OutputResult], *, run_label: str) -> list[WindowEvent]:
    """Each output's window as its asset event tells it: the units of one name template, as
    :meth:`~.runner.ExportRun.write_units` groups them, zipped with what writing them did."""
    groups = [list(group) for _, group in itertools.groupby(units, key=lambda unit: unit.name_template)]
    events = []
    for group, output in zip(groups, outputs, strict=True):
        windows = [window for unit in group for window in unit.windows]
        parts = [part for result in output.units for part in result.parts]
        first, last = windows[0], windows[-1]
        if first is PROFILES:
            label = run_label
        else:
            label = first.label if first == last else f"{first.label}_{last.label}"
        events.append(
            WindowEvent(
                window=label,
                records=sum(p.records for p in parts),
                bytes=sum(p.bytes for p in parts),
                manifest=output.completed.manifest,
                snapshot_id=output.completed.snapshot_id,
            )
        )
    return events
