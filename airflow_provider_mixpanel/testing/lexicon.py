"""A synthetic Lexicon: one schema per synthetic event, and the user profile's schema (``$user``).

``GET /api/app/projects/{projectId}/schemas`` answers ``{"results": [{"entityType": "event",
"name": ..., "schemaJson": {...}}, ...], "status": "ok"}`` (``openapi/lexicon-schemas.openapi.yaml``,
``ListSchemasResponse`` / ``SchemaEntry``); ``/schemas/{entityType}`` the entries of one type
(``?entity_name=`` narrows to one name); ``/schemas/{entityType}/{name}`` the bare ``Schema``. The
profile schema's name is ``$user``, as Mixpanel's docs say (``reference/upload-schemas-for-project.mdx``).

The schemas describe what the synthetic export and engage actually send: the properties of the
events in :mod:`.data` and of the profiles engage serves, with JSON-schema types, descriptions and
Mixpanel metadata (``displayName``, ``hidden``, ``dropped``, ``tags``, ``contacts``,
``teamContacts``). ``extra_events`` adds that many more event schemas (``Synthetic Event 00001``...),
computed as they are sent, for a Lexicon of any size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from airflow_provider_mixpanel.testing.data import EVENT_NAMES

ENTITY_TYPES = ("event", "profile")
PROFILE_ENTITY_NAME = "$user"
JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema"

# (name, JSON-schema type, description, display name or None) of properties the synthetic events carry.
_EVENT_PROPERTIES = (
    ("$city", "string", "City, from the IP address", None),
    ("plan", "string", "Billing plan at the time of the event", "Plan"),
    ("amount", "number", "Order value in EUR", "Amount (€)"),
    ("is_trial", "boolean", "Whether the account is on a free trial", None),
    ("coupon", "null", "Always null: coupons were retired", None),
    ("items", "array", "Items of the cart", "Cart items"),
    ("experiment", "object", "The running experiment and its variant", None),
    ("$screen_width", "integer", "Screen width in pixels", None),
)
_PROFILE_PROPERTIES = (
    ("$name", "string", "Full name", "Name"),
    ("$email", "string", "E-mail address", "E-mail"),
    ("$city", "string", "City of the last seen IP address", None),
    ("plan", "string", "Current billing plan", "Plan"),
    ("lifetime_value", "number", "Revenue to date in EUR", "LTV (€)"),
    ("tags", "array", "Free-form labels", None),
)
_EVENT_DESCRIPTIONS = {
    "Page View": "A page of the shop was shown.",
    "Sign Up": "Tracked when a user creates an account.",
    "Purchase": "Tracked when a payment succeeds – the revenue event.",
    "Add To Cart": "Tracked when a user adds an item to their cart.",
    "Search": "A search was run in the shop (hidden: noisy).",
}


def _property(index: int, name: str, kind: str, description: str, display: str | None) -> dict:
    prop: dict = {"type": kind, "description": description}
    mixpanel: dict = {}
    if display is not None:
        mixpanel["displayName"] = display
    if index % 5 == 4:
        mixpanel["hidden"] = True
    if mixpanel:
        prop["metadata"] = {"com.mixpanel": mixpanel}
    return prop


def event_schema(k: int, name: str, description: str) -> dict:
    """The ``Schema`` of event number ``k`` (``schemaJson``)."""
    count = 3 + k % (len(_EVENT_PROPERTIES) - 2)
    chosen = [_EVENT_PROPERTIES[(k + i) % len(_EVENT_PROPERTIES)] for i in range(count)]
    mixpanel: dict = {"displayName": name.title(), "hidden": name == "Search", "dropped": False}
    if k % 2 == 0:
        mixpanel["tags"] = ["KPIs"] if name == "Purchase" else ["Shop"]
    if k % 3 == 0:
        mixpanel["contacts"] = ["analytics@example.com"]
        mixpanel["teamContacts"] = ["Analytics Team"]
    return {
        "$schema": JSON_SCHEMA_DRAFT,
        "description": description,
        "required": [chosen[0][0]],
        "additionalProperties": True,
        "metadata": {"com.mixpanel": mixpanel},
        "properties": {
            name: _property(i, name, kind, text, display) for i, (name, kind, text, display) in enumerate(chosen)
        },
    }


def profile_schema() -> dict:
    """The ``Schema`` of the user profile (``$user``)."""
    return {
        "$schema": JSON_SCHEMA_DRAFT,
        "description": "The user profile.",
        "additionalProperties": True,
        "metadata": {"com.mixpanel": {"displayName": "User", "$source": "airflow-provider-mixpanel test server"}},
        "properties": {
            name: _property(i, name, kind, text, display)
            for i, (name, kind, text, display) in enumerate(_PROFILE_PROPERTIES)
        },
    }


@dataclass(frozen=True)
class SyntheticLexicon:
    """The project's Lexicon schemas.

    :param extra_events: event schemas beyond the synthetic events' own.
    """

    extra_events: int = 0

    def entries(self, entity_type: str | None = None, name: str | None = None) -> Iterator[dict]:
        """The ``SchemaEntry`` items, events first (the synthetic ones, then the extra ones), then ``$user``."""
        if entity_type in (None, "event"):
            for k, event in enumerate(EVENT_NAMES):
                if name is None or name == event:
                    yield _entry("event", event, event_schema(k, event, _EVENT_DESCRIPTIONS[event]))
            for n in range(1, self.extra_events + 1):
                event = f"Synthetic Event {n:05d}"
                if name is None or name == event:
                    k = len(EVENT_NAMES) + n - 1
                    yield _entry("event", event, event_schema(k, event, f"Extra event number {n}."))
        if entity_type in (None, "profile") and name in (None, PROFILE_ENTITY_NAME):
            yield _entry("profile", PROFILE_ENTITY_NAME, profile_schema())

    def schema(self, entity_type: str, name: str) -> dict | None:
        """The bare ``Schema`` of one entity, or ``None`` if it has none."""
        for entry in self.entries(entity_type, name):
            return entry["schemaJson"]
        return None


def _entry(entity_type: str, name: str, schema: dict) -> dict:
    return {"entityType": entity_type, "name": name, "schemaJson": schema}
