"""Checks of the operators' arguments: each returns the checked value or raises
:class:`~airflow_provider_mixpanel.errors.MixpanelConfigError` naming the task, the argument and
the fix.

The operators call the checks of arguments that are not templated from ``__init__`` (a bad DAG
fails when it is parsed) and those of templated arguments from ``execute`` (after rendering,
before any request).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.kinds import KINDS, StreamKind, get_kind
from airflow_provider_mixpanel.schemas import OUTPUT_FORMATS
from airflow_provider_mixpanel.transfers.manifest import MANIFEST_FILENAME, manifest_folder, manifest_name
from airflow_provider_mixpanel.transfers.storage import (
    PART_PLACEHOLDER,
    WINDOW_PLACEHOLDER,
    output_pattern,
    part_name,
    with_part,
)
from airflow_provider_mixpanel.transfers.windows import HOURS_PER_DAY

if TYPE_CHECKING:
    from airflow_provider_mixpanel.transfers.base import Destination
    from airflow_provider_mixpanel.transfers.windows import Unit

# Mixpanel allows 100 concurrent export queries per project.
MAX_ACTIVE_WINDOWS = 100
# Smallest part size accepted for rotation: smaller parts only multiply requests.
MIN_FILE_SIZE_BYTES = 64 * 1024
# The operators' arguments that split a dated kind's days into windows (only dated kinds read them).
DAY_ARGUMENTS = ("from_date", "to_date", "window_days", "window_hours", "lookback_days")
# An example object name for the hint when a name needs ``{window}``.
WINDOW_EXAMPLE = f"mixpanel/events/{WINDOW_PLACEHOLDER}/part-{PART_PLACEHOLDER}.jsonl.gz"
# An example object name for the identity mappings beside the events of WINDOW_EXAMPLE.
IDENTITY_WINDOW_EXAMPLE = f"mixpanel/identity/{WINDOW_PLACEHOLDER}/part-{PART_PLACEHOLDER}.jsonl.gz"
# Hour windows split every day evenly: their length divides a day.
WINDOW_HOURS = tuple(h for h in range(1, HOURS_PER_DAY + 1) if HOURS_PER_DAY % h == 0)


def task_prefix(task_id: str) -> str:
    """The start of every message about a task's arguments."""
    return f"Task {task_id!r}: "


def check_stream(stream: Any, *, where: str = "") -> str:
    return get_kind(stream, where=where).name


def accepts(kind: StreamKind, name: str) -> bool:
    """Whether ``kind`` reads the operator argument ``name`` (its query's, or a window argument)."""
    if name == "window_hours":
        return kind.hour_windows
    if name in DAY_ARGUMENTS:
        return kind.dated
    return name in kind.query_type.arguments()


def check_flag(value: Any, name: str, *, where: str = "") -> bool:
    if not isinstance(value, bool):
        raise MixpanelConfigError(f"{where}{name}={value!r}: use True or False.")
    return value


def check_count(value: Any, name: str, *, minimum: int, maximum: int | None = None, where: str = "", fix: str) -> int:
    """A whole number from ``minimum`` to ``maximum``; ``fix`` says what to use instead."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise MixpanelConfigError(f"{where}{name}={value!r}: {fix}")
    return value


def check_optional_count(value: Any, name: str, *, minimum: int, where: str = "", fix: str) -> int | None:
    """``None``, or a whole number of at least ``minimum``."""
    return None if value is None else check_count(value, name, minimum=minimum, where=where, fix=fix)


def check_stream_arguments(stream: str, given: Mapping[str, Any], *, where: str = "") -> None:
    """Refuse arguments the kind does not read (they would be ignored silently), and one date
    without the other.

    :param given: the kind-specific arguments by name, ``None`` where not given.
    """
    kind = get_kind(stream, where=where)
    misplaced = [name for name, value in given.items() if value is not None and not accepts(kind, name)]
    if misplaced:
        others = [k.name for k in KINDS.values() if all(accepts(k, name) for name in misplaced)]
        fix = f"use stream={others[0]!r} in a task of its own" if others else "split them over tasks of their own"
        raise MixpanelConfigError(
            f"{where}{', '.join(misplaced)} select {' or '.join(others) or 'other kinds'}, but stream={stream!r}: "
            f"remove them, or {fix}."
        )
    if kind.dated and (given.get("from_date") is None) != (given.get("to_date") is None):
        raise MixpanelConfigError(
            f"{where}give both from_date and to_date (e.g. '{{{{ ds }}}}' for both), or neither: the task then "
            "exports the complete days of the run's data interval (or the day before the run, when the "
            "interval is empty)."
        )


def check_window_hours(window_hours: Any, window_days: int | None, *, where: str = "") -> int | None:
    """``None``, or a number of hours that divides a day; not with ``window_days``."""
    if window_hours is None:
        return None
    check_count(
        window_hours,
        "window_hours",
        minimum=1,
        where=where,
        fix=f"use a number of hours that divides a day: one of {', '.join(map(str, WINDOW_HOURS))}, or None.",
    )
    if window_hours not in WINDOW_HOURS:
        raise MixpanelConfigError(
            f"{where}window_hours={window_hours!r} does not divide a day: use one of "
            f"{', '.join(map(str, WINDOW_HOURS))}."
        )
    if window_days is not None:
        raise MixpanelConfigError(
            f"{where}window_days={window_days!r} and window_hours={window_hours!r}: a window is either several "
            "days or some hours of one day. Give one of them."
        )
    return window_hours


def check_lookback_days(lookback_days: Any, window_days: int | None, *, where: str = "") -> int:
    """A whole number of days >= 0; re-exported days are replaced one by one, so not with
    windows of several days."""
    check_count(
        lookback_days,
        "lookback_days",
        minimum=0,
        where=where,
        fix="use a whole number of days >= 0 (e.g. 5: Mixpanel's /track accepts events up to 5 days late).",
    )
    if lookback_days and window_days is not None and window_days > 1:
        raise MixpanelConfigError(
            f"{where}lookback_days={lookback_days} replaces each day in objects of its own, but "
            f"window_days={window_days} writes several days into one: remove window_days (or use window_hours)."
        )
    return lookback_days


def check_bucket(bucket: Any, argument: str, *, where: str = "") -> str:
    if not isinstance(bucket, str) or not bucket.strip():
        raise MixpanelConfigError(f"{where}{argument} is empty: name the bucket to write to.")
    return bucket


def check_name_template(template: Any, argument: str, *, where: str = "") -> str:
    """An object name that holds each placeholder at most once."""
    if not isinstance(template, str) or not template.strip():
        raise MixpanelConfigError(f"{where}{argument} is empty: give the object name to write to.")
    for placeholder in (PART_PLACEHOLDER, WINDOW_PLACEHOLDER):
        if template.count(placeholder) > 1:
            raise MixpanelConfigError(f"{where}{argument}={template!r} holds {placeholder} more than once.")
    return template


def check_placeholders(
    template: str,
    argument: str,
    *,
    where: str = "",
    rotating: bool,
    max_active_windows: int,
    lookback_days: int = 0,
) -> None:
    """The placeholders ``template`` needs: ``{part}`` with part rotation, ``{window}`` when several
    windows are written at once or days are looked back at."""
    if rotating and PART_PLACEHOLDER not in template:
        raise MixpanelConfigError(
            f"{where}max_file_size_bytes is set, so {argument} must hold the placeholder {PART_PLACEHOLDER} for the "
            f"part number: e.g. {with_part(template)!r}."
        )
    if max_active_windows > 1 and WINDOW_PLACEHOLDER not in template:
        raise MixpanelConfigError(
            f"{where}max_active_windows={max_active_windows} writes every window separately, so {argument} must hold "
            f"{WINDOW_PLACEHOLDER}: e.g. {WINDOW_EXAMPLE!r}."
        )
    if lookback_days and WINDOW_PLACEHOLDER not in template:
        raise MixpanelConfigError(
            f"{where}lookback_days={lookback_days} re-exports each day and replaces it in objects of its own, so "
            f"{argument} must hold {WINDOW_PLACEHOLDER} (the day): e.g. {WINDOW_EXAMPLE!r}."
        )


def check_manifest_folders(templates: list[str], argument: str, *, where: str = "") -> None:
    """Each window's parts in a folder of their own, for its ``_manifest.json``: a folder shared
    by two windows, or a window's parts spread over folders, would make a manifest lie.

    :param templates: the name templates of the run's windows (``{window}`` replaced).
    """
    owners: dict[str, str] = {}
    for template in dict.fromkeys(templates):
        folder = manifest_folder(template)
        if PART_PLACEHOLDER in folder:
            raise MixpanelConfigError(
                f"{where}{argument}={template!r} puts {PART_PLACEHOLDER} in the folder, so a window's parts would be "
                f"spread over several folders and its {MANIFEST_FILENAME} could list none of them: put "
                f"{PART_PLACEHOLDER} in the file name, e.g. {WINDOW_EXAMPLE!r}, or pass write_manifest=False."
            )
        if part_name(template.rpartition("/")[2], 0) == MANIFEST_FILENAME:
            raise MixpanelConfigError(
                f"{where}{argument}={template!r} names the parts like the window's manifest: choose another name."
            )
        other = owners.setdefault(folder, template)
        if other != template:
            raise MixpanelConfigError(
                f"{where}{argument}: the windows {other!r} and {template!r} would share one "
                f"{manifest_name(template)!r}, since their objects are in one folder. Put {WINDOW_PLACEHOLDER} in "
                f"the folder, e.g. {WINDOW_EXAMPLE!r}, or pass write_manifest=False."
            )


def check_output_format(value: Any, *, where: str = "") -> str:
    if value not in OUTPUT_FORMATS:
        raise MixpanelConfigError(f"{where}output_format={value!r}: use 'jsonl' or 'parquet'.")
    return value


def check_schema_object_name(name: Any, argument: str, *, where: str = "") -> str:
    """The name of the schema object: a fixed name, written once per run."""
    if not isinstance(name, str) or not name.strip():
        raise MixpanelConfigError(f"{where}{argument}={name!r}: give the object name of the BigQuery schema, or None.")
    for placeholder in (PART_PLACEHOLDER, WINDOW_PLACEHOLDER):
        if placeholder in name:
            raise MixpanelConfigError(
                f"{where}{argument}={name!r} holds {placeholder}: one schema describes every part, so give it a "
                "fixed name, e.g. 'mixpanel/events/schema.json'."
            )
    return name.lstrip("/")


def check_identity_template(destination: Destination, *, where: str = "") -> None:
    """The identity mappings' objects are split into windows as the events' are (``{window}`` in
    both names or in neither), and never share a name with them."""
    events, identity = destination.name_template, destination.identity_template
    assert identity is not None
    if (WINDOW_PLACEHOLDER in events) != (WINDOW_PLACEHOLDER in identity):
        has, lacks = (
            (destination.name_argument, destination.identity_argument)
            if WINDOW_PLACEHOLDER in events
            else (destination.identity_argument, destination.name_argument)
        )
        raise MixpanelConfigError(
            f"{where}{has} holds {WINDOW_PLACEHOLDER} but {lacks} does not: each window's identity mappings are "
            f"written beside its events, so put {WINDOW_PLACEHOLDER} in both names (e.g. {WINDOW_EXAMPLE!r} and "
            f"{IDENTITY_WINDOW_EXAMPLE!r}) or in neither."
        )
    if output_pattern(events).match(part_name(identity, 0)) or output_pattern(identity).match(part_name(events, 0)):
        raise MixpanelConfigError(
            f"{where}{destination.identity_argument}={identity!r} names objects like {destination.name_argument}="
            f"{events!r}: give the identity mappings objects of their own, e.g. {IDENTITY_WINDOW_EXAMPLE!r}."
        )


def check_identity_folders(
    units: Sequence[Unit], destination: Destination, *, manifests: bool, where: str = ""
) -> None:
    """With manifests, each window's identity mappings in a folder of their own, apart from every
    window's events: each folder's ``_manifest.json`` lists one output."""
    if not manifests:
        return
    templates = [unit.identity_template for unit in units if unit.identity_template is not None]
    check_manifest_folders(templates, destination.identity_argument, where=where)
    event_folders = {manifest_folder(unit.name_template) for unit in units}
    shared = sorted({manifest_folder(t) for t in templates} & event_folders)
    if shared:
        raise MixpanelConfigError(
            f"{where}{destination.identity_argument} and {destination.name_argument} write into the same folder "
            f"{shared[0]!r}, whose {MANIFEST_FILENAME} can list only one of them: give the identity mappings a "
            f"folder of their own, e.g. {IDENTITY_WINDOW_EXAMPLE!r}, or pass write_manifest=False."
        )
