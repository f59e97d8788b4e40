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
