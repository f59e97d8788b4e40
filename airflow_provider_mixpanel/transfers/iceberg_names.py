"""What an Iceberg output needs before pyiceberg is imported: the table name checked, and the
part names of one attempt.

Each attempt writes its parts under names of its own (a token in the file name), so a part a
snapshot references is never overwritten by a re-run: time travel keeps reading the old window,
and a killed attempt's parts stay apart until the next run finds no snapshot referencing them.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
from typing import Any

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.transfers.storage import PART_DIGITS, PART_PLACEHOLDER

#: the column whose UTC day partitions an events table, and whose window a commit replaces
TIME_COLUMN = "event_time"
#: hex digits of an attempt's token: 48 random bits, never the same for two attempts of a window
ATTEMPT_TOKEN_DIGITS = 12
ICEBERG_EXTRA_HINT = 'install the iceberg extra: pip install "airflow-provider-mixpanel[iceberg]"'
_TABLE_NAME = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)+\Z")


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


def new_attempt_token() -> str:
    return secrets.token_hex(ATTEMPT_TOKEN_DIGITS // 2)


def attempt_template(template: str, token: str) -> str:
    """The name template of one attempt's parts: the token after ``{part}``, or before the
    extensions of the file name: ``e/{window}/part-{part}.parquet`` -> ``e/{window}/part-{part}-TOKEN.parquet``."""
    if PART_PLACEHOLDER in template:
        return template.replace(PART_PLACEHOLDER, f"{PART_PLACEHOLDER}-{token}", 1)
    directory, slash, filename = template.rpartition("/")
    stem, dot, extensions = filename.partition(".")
    return f"{directory}{slash}{stem}-{token}{dot}{extensions}"


def attempt_pattern(template: str, token: str) -> re.Pattern[str]:
    """Matches the names an attempt's ``template`` (holding ``token``) makes, with any attempt's token."""
    pieces = []
    for piece in template.split(token):
        head, _, tail = piece.partition(PART_PLACEHOLDER)
        escaped = re.escape(head) + (rf"\d{{{PART_DIGITS}}}" + re.escape(tail) if PART_PLACEHOLDER in piece else "")
        pieces.append(escaped)
    return re.compile(f"[0-9a-f]{{{ATTEMPT_TOKEN_DIGITS}}}".join(pieces) + r"\Z")
