"""The test server's endpoints in one table: path, methods, quota pool, and which API's rules apply.

Two API families answer differently (Mixpanel's OpenAPI specs in the public ``mixpanel/docs``
repository, ``openapi/``):

- ``query`` (the raw export and the query API): ``project_id`` in the query string (required with
  a service account), service account or project secret, errors as ``{"error": ...}``;
- ``app`` (annotations, Lexicon schemas): the project id in the path, service account only (the
  specs' ``security`` lists only ``ServiceAccount``), errors as ``{"error": ..., "status": "error"}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class Route:
    """One endpoint: ``name`` is what faults and recorded requests call it."""

    name: str
    methods: tuple[str, ...]
    pattern: re.Pattern[str]
    pool: str  # the quota pool (testing.quota.POOLS)
    api: str  # "query" or "app"

    def match(self, path: str) -> dict[str, str] | None:
        """The path's parameters (URL-decoded) if ``path`` is this endpoint's, else ``None``."""
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {key: unquote(value) for key, value in found.groupdict().items() if value is not None}


_PROJECT = r"/api/app/projects/(?P<project_id>[^/]+)"
ROUTES = (
    Route("export", ("GET", "POST"), re.compile(r"/api/2\.0/export"), "export", "query"),
    Route("engage", ("GET", "POST"), re.compile(r"/api/(?:query|2\.0)/engage"), "query", "query"),
    Route("cohorts", ("POST",), re.compile(r"/api/query/cohorts/list"), "query", "query"),
    Route("funnels_list", ("GET",), re.compile(r"/api/query/funnels/list"), "query", "query"),
    Route("funnels", ("GET",), re.compile(r"/api/query/funnels"), "query", "query"),
    Route("annotations", ("GET",), re.compile(_PROJECT + r"/annotations"), "app", "app"),
    Route(
        "lexicon",
        ("GET",),
        re.compile(_PROJECT + r"/schemas(?:/(?P<entity_type>[^/]+)(?:/(?P<name>[^/]+))?)?"),
        "lexicon",
        "app",
    ),
)
#: Every endpoint name, for faults (``Fault(endpoint=...)``) and ``requests_to``.
ENDPOINT_NAMES = tuple(route.name for route in ROUTES)


def find_route(path: str) -> tuple[Route, dict[str, str]] | None:
    """The endpoint serving ``path`` and its path parameters, or ``None`` (a 404)."""
    for route in ROUTES:
        params = route.match(path)
        if params is not None:
            return route, params
    return None
