"""Plain ``requests`` against the test server (not the package's client, which has its own tests)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing import MixpanelTestServer

AUTH = ("test-user", "test-secret")
DAY = date(2024, 3, 1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def export(server: MixpanelTestServer, **params: Any) -> requests.Response:
    query = {"project_id": server.config.project_id, "from_date": DAY.isoformat(), "to_date": DAY.isoformat()}
    return requests.get(f"{server.url}/api/2.0/export", params={**query, **params}, auth=AUTH, timeout=30)


def export_lines(server: MixpanelTestServer, **params: Any) -> list[dict]:
    response = export(server, **params)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.content.split(b"\n") if line]


def engage(server: MixpanelTestServer, **form: Any) -> requests.Response:
    url = f"{server.url}/api/query/engage"
    return requests.post(url, params={"project_id": server.config.project_id}, data=form, auth=AUTH, timeout=30)


def query_api(
    server: MixpanelTestServer, method: str, path: str, *, auth: Any = AUTH, **params: Any
) -> requests.Response:
    """A query-API request (``/api/query/<path>``) with ``project_id`` in the query string; a POST
    sends the other parameters as its form body, as Mixpanel's spec says."""
    url = f"{server.url}/api/query/{path}"
    query = {"project_id": params.pop("project_id", server.config.project_id)}
    if method == "POST":
        return requests.post(url, params=query, data=params, auth=auth, timeout=30)
    return requests.request(method, url, params={**query, **params}, auth=auth, timeout=30)


def app_api(
    server: MixpanelTestServer, path: str, *, project_id: int | None = None, auth: Any = AUTH, **params: Any
) -> requests.Response:
    """An app-API GET (``/api/app/projects/{id}/<path>``)."""
    project = server.config.project_id if project_id is None else project_id
    url = f"{server.url}/api/app/projects/{project}/{path}"
    return requests.get(url, params=params, auth=auth, timeout=30)
