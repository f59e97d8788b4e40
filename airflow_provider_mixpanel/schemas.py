"""Column kinds, the columns of each stream kind's records (declared by the kind), and their BigQuery schema.

Parquet parts hold these columns (:mod:`~airflow_provider_mixpanel.transfers.parquet`), and an
operator's ``schema_object_name`` receives the BigQuery JSON schema made from them. Pure data and
functions: no Airflow, no pyarrow.

Column kinds:

* ``text``: a string. A JSON string is stored as its value, ``null`` as NULL, and any other JSON
  value (Mixpanel may send ``distinct_id`` as a number) as its JSON text, exactly as sent (``12345``).
* ``timestamp``: an instant in UTC, to the microsecond (``event_time``).
* ``json``: the JSON text of the value, byte for byte as Mixpanel sent it (``properties``).
* ``integer``: a whole number (64 bits), ``null`` as NULL (a cohort's ``count``).
* ``boolean``: ``true`` or ``false``, ``null`` as NULL.
"""

from __future__ import annotations

from typing import NamedTuple

from airflow_provider_mixpanel.errors import MixpanelConfigError

TEXT = "text"
TIMESTAMP = "timestamp"
JSON = "json"
INTEGER = "integer"
BOOLEAN = "boolean"
OUTPUT_FORMATS = ("jsonl", "parquet")


class Column(NamedTuple):
    """One column of a record format."""

    name: str
    kind: str
    description: str


#: Data Pipelines' identity mappings table (``distinct_id``, ``resolved_distinct_id``), then the
#: mapping event's time and id; raw or normalized events give the same records.
IDENTITY_COLUMNS = (
    Column("distinct_id", TEXT, "The device's distinct_id before the merge: '$device:' and its $device_id."),
    Column("resolved_distinct_id", TEXT, "The $user_id the device is mapped to: the canonical distinct_id."),
    Column("event_time", TIMESTAMP, "When the mapping event (the device's first with both ids) happened, in UTC."),
    Column("insert_id", TEXT, "The mapping event's $insert_id."),
)

# BigQuery's batch loads read the JSON type from JSONL (and CSV, Avro), not from Parquet, whose JSON
# columns load as STRING (JSON_VALUE and PARSE_JSON read them).
_BIGQUERY_TYPES = {
    "jsonl": {TEXT: "STRING", TIMESTAMP: "TIMESTAMP", JSON: "JSON", INTEGER: "INT64", BOOLEAN: "BOOL"},
    "parquet": {TEXT: "STRING", TIMESTAMP: "TIMESTAMP", JSON: "STRING", INTEGER: "INT64", BOOLEAN: "BOOL"},
}


def record_columns(stream: str, *, raw: bool) -> tuple[Column, ...]:
    """The columns of ``stream``'s records (a kind's name: ``"events"``, ``"profiles"``..., or
    ``"identity"``), raw or normalized, as the kind declares them."""
    if stream == "identity":  # derived from the events, not a kind of its own
        return IDENTITY_COLUMNS
    from airflow_provider_mixpanel.kinds import get_kind  # the kinds import Column from here

    return get_kind(stream).columns(raw=raw)


def check_bigquery_columns(stream: str, *, raw: bool, where: str = "") -> None:
    """Raise :class:`MixpanelConfigError` when BigQuery cannot name these records' columns: raw
    profiles have ``$distinct_id`` and ``$properties``, and a BigQuery column name starts with a
    letter or an underscore."""
    bad = [c.name for c in record_columns(stream, raw=raw) if not (c.name[:1].isalpha() or c.name[:1] == "_")]
    if bad:
        raise MixpanelConfigError(
            f"{where}schema_object_name: BigQuery refuses the column names {', '.join(bad)} of raw {stream}: "
            "use raw=False (normalized records) to load them into BigQuery, or leave schema_object_name None."
        )


def bigquery_schema(stream: str, *, raw: bool, output_format: str) -> list[dict[str, str]]:
    """The BigQuery JSON schema of the records written (``schema_fields`` / a ``schema_object``).

    Every field is ``NULLABLE``: Mixpanel may send ``null`` for any of them. ``properties`` is
    ``JSON`` for JSONL parts and ``STRING`` (JSON text) for Parquet parts.
    """
    types = _BIGQUERY_TYPES.get(output_format)
    if types is None:
        raise ValueError(f"output_format={output_format!r}: use one of {OUTPUT_FORMATS}.")
    return [
        {"name": column.name, "type": types[column.kind], "mode": "NULLABLE", "description": column.description}
        for column in record_columns(stream, raw=raw)
    ]
