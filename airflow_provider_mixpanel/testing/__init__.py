"""Offline Mixpanel for tests, demos and benchmarks: :class:`MixpanelTestServer`.

Use it in your own DAG tests through the pytest fixture (``pytest_plugins =
["airflow_provider_mixpanel.testing.fixtures"]``, then a ``mixpanel_server`` argument), or from a
shell with ``python -m airflow_provider_mixpanel.testing --port 8765``.
"""

from __future__ import annotations

from airflow_provider_mixpanel.testing.server import FAULT_KINDS, Fault, MixpanelTestServer

__all__ = ["FAULT_KINDS", "Fault", "MixpanelTestServer"]
