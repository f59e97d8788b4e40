"""pytest fixtures: ``pytest_plugins = ["airflow_provider_mixpanel.testing.fixtures"]``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_mixpanel.testing.server import MixpanelTestServer


@pytest.fixture
def mixpanel_server() -> Iterator[MixpanelTestServer]:
    """A started :class:`MixpanelTestServer` with default settings, stopped after the test."""
    with MixpanelTestServer() as server:
        yield server


@pytest.fixture
def mixpanel_conn(mixpanel_server: MixpanelTestServer, monkeypatch: pytest.MonkeyPatch) -> MixpanelTestServer:
    """The server, with ``mixpanel_default`` pointing at it through ``AIRFLOW_CONN_MIXPANEL_DEFAULT``."""
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", mixpanel_server.connection_json())
    return mixpanel_server


@pytest.fixture
def mixpanel_server_factory() -> Iterator[Callable[..., MixpanelTestServer]]:
    """Start servers with your own settings (``quotas=True``, ``clock=SimClock(...)``, ...); all
    are stopped after the test."""
    started: list[MixpanelTestServer] = []

    def start(**config: Any) -> MixpanelTestServer:
        server = MixpanelTestServer(**config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
