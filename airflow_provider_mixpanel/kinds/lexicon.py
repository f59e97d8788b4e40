"""``lexicon``: the project's data dictionary, from the Lexicon Schemas API
(``GET /api/app/projects/{project_id}/schemas``): one record per event definition and one for
the user profile's properties (``$user``), each with its JSON schema and Mixpanel's metadata
(display name, hidden, dropped, tags, owners). A snapshot: one request per run, of the API's 5 a
minute (the client paces them)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from airflow_provider_mixpanel.jsonl import loads_object
from airflow_provider_mixpanel.kinds.answers import list_items, members, members_line
from airflow_provider_mixpanel.kinds.base import Opening, Query, Records, StreamKind
from airflow_provider_mixpanel.pacing import Quota
from airflow_provider_mixpanel.schemas import JSON, TEXT, Column

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mixpanel.client import MixpanelClient

SCHEMAS_PATH = "/api/app/projects/{project_id}/schemas"

LEXICON_COLUMNS = (
    Column("entity_type", TEXT, "'event', or 'profile' for the user profile's schema."),
    Column("name", TEXT, "The event's name, or '$user' for the user profile."),
    Column("description", TEXT, "The entity's description (the schema's 'description')."),
    Column("metadata", JSON, "Mixpanel's metadata of the entity ('com.mixpanel': displayName, hidden, tags...)."),
    Column("schema_json", JSON, "The whole JSON schema, its property definitions included, as sent."),
)
RAW_LEXICON_COLUMNS = (
    Column("entityType", TEXT, LEXICON_COLUMNS[0].description),
    Column("name", TEXT, LEXICON_COLUMNS[1].description),
    Column("schemaJson", JSON, LEXICON_COLUMNS[4].description),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LexiconQuery(Query):
    """The Lexicon takes no arguments: every schema of the project."""


def schema_line(item: bytes) -> bytes:
    """The normalized schema entry's JSONL line: the schema's description and metadata lifted
    beside the entity's type and name, every value byte for byte as sent."""
    entry = members(item)
    schema = entry.get("schemaJson")
    inner = members(bytes(schema)) if schema is not None and bytes(schema)[:1] == b"{" else {}
    source = {
        "entity_type": entry.get("entityType"),
        "name": entry.get("name"),
        "description": inner.get("description"),
        "metadata": inner.get("metadata"),
        "schema_json": schema,
    }
    return members_line(source, LEXICON_COLUMNS)


class LexiconKind(StreamKind):
    name = "lexicon"
    summary = "the data dictionary: every event's and the user profile's schema (Lexicon Schemas API)"
    records = (
        "``entity_type`` (``event`` or ``profile``), ``name`` (``$user`` for the profile), ``description``, "
        "``metadata`` (JSON), ``schema_json`` (JSON); raw: the entry, ``{entityType, name, schemaJson}``"
    )
    dated = False
    quota = Quota.LEXICON
    query_type = LexiconQuery

    def columns(self, *, raw: bool) -> tuple[Column, ...]:
        return RAW_LEXICON_COLUMNS if raw else LEXICON_COLUMNS

    def open(self, client: MixpanelClient, opening: Opening) -> Records:
        return Records(list_schemas(client), _converter(raw=opening.raw, encode=opening.encode))


def list_schemas(client: MixpanelClient) -> Iterator[bytes]:
    """Each schema entry of the project, its compact JSON text (one Lexicon request)."""
    return client.fetch_json(Quota.LEXICON, "GET", SCHEMAS_PATH, "Lexicon schemas", items=list_items("results"))


def _converter(*, raw: bool, encode: bool) -> Any:
    if raw:
        return (lambda item: item + b"\n") if encode else loads_object
    return schema_line if encode else (lambda item: loads_object(schema_line(item)))
