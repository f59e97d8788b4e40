"""Reading the small JSON answers of the Query and App APIs (cohorts, annotations, the Lexicon...):
the items of their list, each as its own compact JSON text, values byte for byte as sent."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from airflow_provider_mixpanel.engage import _NotJson, compact
from airflow_provider_mixpanel.errors import MixpanelServerError

_list = msgspec.json.Decoder(list[msgspec.Raw])
_envelope = msgspec.json.Decoder(dict[str, msgspec.Raw])


def list_items(key: str | None = None) -> Callable[[bytes, str], list[bytes]]:
    """A reader of an answer that is a JSON list (``key=None``) or an object holding the list in
    ``key`` (``{"status": "ok", "results": [...]}``): each item's compact JSON text. An answer of
    another shape raises :class:`MixpanelServerError`, so the request is asked for again."""

    def items(body: bytes, what: str) -> list[bytes]:
        try:
            if key is None:
                raws = _list.decode(body)
            else:
                inner = _envelope.decode(body).get(key)
                if inner is None:
                    raise MixpanelServerError(f"Mixpanel {what} answered without a {key!r} list: {body[:200]!r}")
                raws = _list.decode(inner)
            return [compact(bytes(raw)) for raw in raws]
        except (msgspec.DecodeError, _NotJson) as err:
            raise MixpanelServerError(
                f"Mixpanel {what} answered with a body that is not its JSON list ({err})."
            ) from None

    return items
