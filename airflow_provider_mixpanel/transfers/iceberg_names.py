"""What an Iceberg output needs before pyiceberg is imported: the table name checked, and the
part names of one attempt.

Each attempt writes its parts under names of its own (a token in the file name), so a part a
snapshot references is never overwritten by a re-run: time travel keeps reading the old window,
and a killed attempt's parts stay apart until a later run finds no snapshot referencing them.

The token says who wrote the parts and when (:class:`AttemptToken`), so a run deletes another
attempt's unreferenced parts only when that attempt cannot still commit them: an earlier try of
the same task instance (Airflow runs one try at a time), or a part written more than
:data:`ORPHAN_MIN_AGE_SECONDS` ago. A concurrent task writing the same window keeps its parts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.schemas import record_columns
from airflow_provider_mixpanel.transfers.storage import PART_DIGITS, PART_PLACEHOLDER

#: the column whose UTC day partitions an events table, and whose window a commit replaces
TIME_COLUMN = "event_time"
#: hex digits of an attempt's token: 8 of its start (epoch seconds), 6 of its task instance's hash,
#: 2 of its try number (mod 256)
ATTEMPT_TOKEN_DIGITS = 16
_IDENTITY_DIGITS = 6
_TRY_MODULUS = 256
#: another task's unreferenced part is deleted once it was written this long ago: a part waits for
#: its commit only while the rest of its window is exported (a backfill's earlier windows do not
#: count), and a daily run still finds a killed attempt's parts
ORPHAN_MIN_AGE_SECONDS = 12 * 60 * 60
ICEBERG_EXTRA_HINT = 'install the iceberg extra: pip install "airflow-provider-mixpanel[iceberg]"'
_TABLE_NAME = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)+\Z")


#: the apache-iceberg provider's default connection id (``IcebergHook.default_conn_name``)
ICEBERG_DEFAULT_CONN_ID = "iceberg_default"


def check_iceberg_arguments(
    output_format: str, raw: bool, window_days: int | None, *, stream: str, dated: bool, where: str = ""
) -> None:
    """What an Iceberg table needs of the stream, the other arguments and the installation, checked
    when the DAG is parsed."""
    check_iceberg_installed(where=where)
    if dated and TIME_COLUMN not in {column.name for column in record_columns(stream, raw=False)}:
        raise MixpanelConfigError(
            f"{where}iceberg_table with stream={stream!r}: a dated kind's window is replaced by its rows' "
            f"{TIME_COLUMN}, which {stream} records do not have. Write {stream} as files (without iceberg_table); "
            "events and the snapshot kinds (profiles, cohorts, cohort_members, lexicon) go into tables."
        )
    if output_format != "parquet":
        raise MixpanelConfigError(
            f"{where}iceberg_table needs output_format='parquet': the table's data files are the Parquet parts."
        )
    if raw:
        raise MixpanelConfigError(
            f"{where}iceberg_table needs normalized records (raw=False): a table's rows are replaced by "
            f"{TIME_COLUMN}, which raw records do not have as a column."
        )
    if window_days not in (None, 1):
        raise MixpanelConfigError(
            f"{where}iceberg_table with window_days={window_days}: each day is committed on its own (a table "
            "partition is a day), so use window_days=1 or None, or window_hours."
        )


def check_table_name(value: Any, argument: str = "iceberg_table", *, where: str = "") -> str:
    """``namespace.table`` (or ``a.b.table``): letters, digits, ``_`` and ``-`` between dots."""
    if not isinstance(value, str) or not _TABLE_NAME.match(value):
        raise MixpanelConfigError(
            f"{where}{argument}={value!r}: give the table as 'namespace.table', e.g. 'mixpanel.events' "
            "(the namespace and the table are created when missing)."
        )
    return value


def check_iceberg_installed(*, where: str = "") -> None:
    """pyiceberg and the apache-iceberg provider (its ``iceberg`` connection and hook) are importable."""
    for module in ("pyiceberg", "airflow.providers.apache.iceberg"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            raise MixpanelConfigError(f"{where}iceberg_table needs {module}: {ICEBERG_EXTRA_HINT}.")


def split_table_name(value: str) -> tuple[str, ...]:
    """``"a.b.t"`` -> ``("a", "b", "t")``: the namespace's levels, then the table."""
    return tuple(value.split("."))


class AttemptToken(NamedTuple):
    """Who wrote a set of parts, and when."""

    started: int
    identity: str
    try_number: int

    def __str__(self) -> str:
        return f"{self.started:08x}{self.identity}{self.try_number % _TRY_MODULUS:02x}"

    @classmethod
    def parse(cls, text: str) -> AttemptToken:
        return cls(int(text[:8], 16), text[8 : 8 + _IDENTITY_DIGITS], int(text[8 + _IDENTITY_DIGITS :], 16))

    def may_still_commit(self, other: AttemptToken, written: float | None = None) -> bool:
        """Whether ``other``'s attempt may still commit a part it wrote at ``written`` (epoch
        seconds, as the store says; ``None``: unknown, then the attempt's start, which is earlier):
        not an earlier try of this task instance, and the part younger than
        :data:`ORPHAN_MIN_AGE_SECONDS` when this attempt started. Judged by the part, not by its
        attempt's start: a long backfill's attempt is old, but the parts its window waits to
        commit are not."""
        if other.identity == self.identity and other.try_number < self.try_number % _TRY_MODULUS:
            return False
        written_at = other.started if written is None else written
        return self.started - written_at < ORPHAN_MIN_AGE_SECONDS


def new_attempt_token(context: Mapping[str, Any] | None) -> AttemptToken:
    """This attempt's token, from the task instance in the Airflow context (dag, task, run, map index, try)."""
    context = context or {}
    ti = context.get("ti") or context.get("task_instance")
    fields = [getattr(ti, name, None) for name in ("dag_id", "task_id", "run_id", "map_index")]
    identity = "/".join(str(f) for f in fields) if ti is not None else str(context.get("run_id"))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:_IDENTITY_DIGITS]
    try_number = getattr(ti, "try_number", 0) or 0
    return AttemptToken(int(time.time()), digest, int(try_number))


def attempt_template(template: str, token: str) -> str:
    """The name template of one attempt's parts: the token after ``{part}``, or before the
    extensions of the file name: ``e/{window}/part-{part}.parquet`` -> ``e/{window}/part-{part}-TOKEN.parquet``."""
    if PART_PLACEHOLDER in template:
        return template.replace(PART_PLACEHOLDER, f"{PART_PLACEHOLDER}-{token}", 1)
    directory, slash, filename = template.rpartition("/")
    stem, dot, extensions = filename.partition(".")
    return f"{directory}{slash}{stem}-{token}{dot}{extensions}"


def earlier_tries_pattern(template: str, token: AttemptToken) -> re.Pattern[str]:
    """Matches the names ``template`` (holding ``token``) makes for the earlier tries of the same
    task instance only: the attempts known dead, whose open uploads may be aborted (another task's
    upload in flight never is)."""
    tries = "|".join(f"{n:02x}" for n in range(token.try_number % _TRY_MODULUS)) or "(?!)"
    any_attempt = attempt_pattern(template, str(token)).pattern
    return re.compile(
        any_attempt.replace(
            f"(?P<token>[0-9a-f]{{{ATTEMPT_TOKEN_DIGITS}}})", f"(?P<token>[0-9a-f]{{8}}{token.identity}(?:{tries}))"
        )
    )


def attempt_pattern(template: str, token: str) -> re.Pattern[str]:
    """Matches the names an attempt's ``template`` (holding ``token``) makes, with any attempt's
    token (the group ``token``)."""
    pieces = []
    for piece in template.split(token):
        head, _, tail = piece.partition(PART_PLACEHOLDER)
        escaped = re.escape(head) + (rf"\d{{{PART_DIGITS}}}" + re.escape(tail) if PART_PLACEHOLDER in piece else "")
        pieces.append(escaped)
    first, second, *more = pieces  # the template holds the token once (a second time: the same token)
    group = f"(?P<token>[0-9a-f]{{{ATTEMPT_TOKEN_DIGITS}}})"
    return re.compile(first + group + second + "".join(f"(?P=token){piece}" for piece in more) + r"\Z")
