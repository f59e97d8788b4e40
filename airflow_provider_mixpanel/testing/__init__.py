"""Offline Mixpanel for tests, demos and benchmarks: :class:`MixpanelTestServer`.

Use it in your own DAG tests through the pytest fixtures (``pytest_plugins =
["airflow_provider_mixpanel.testing.fixtures"]``, then a ``mixpanel_server`` argument), or from a
shell with ``python -m airflow_provider_mixpanel.testing --port 8765``. Off by default, it can be
as hard as Mixpanel: :class:`Quotas` (rate limits and 429s), :class:`LateArrival` (events processed
days late) and a :class:`SimClock` that makes a simulated hour pass in seconds.

:class:`InMemoryObjectStore` is an object store in memory (the storage contract the operators
write through, with S3's and GCS's conditional writes and injectable faults), for millisecond tests
of code that writes through :class:`~airflow_provider_mixpanel.transfers.storage.ObjectStore`.
"""

from __future__ import annotations

from airflow_provider_mixpanel.testing.clock import SimClock
from airflow_provider_mixpanel.testing.faults import FAULT_KINDS, Fault
from airflow_provider_mixpanel.testing.identity import IdentityMerge
from airflow_provider_mixpanel.testing.lateness import DEFAULT_SHAPE, LateArrival
from airflow_provider_mixpanel.testing.object_store import STORE_OPERATIONS, InMemoryObjectStore, StoreFault
from airflow_provider_mixpanel.testing.quota import Quotas, QuotaStats
from airflow_provider_mixpanel.testing.server import MixpanelTestServer, RecordedRequest

__all__ = [
    "DEFAULT_SHAPE",
    "FAULT_KINDS",
    "STORE_OPERATIONS",
    "Fault",
    "IdentityMerge",
    "InMemoryObjectStore",
    "LateArrival",
    "MixpanelTestServer",
    "QuotaStats",
    "Quotas",
    "RecordedRequest",
    "SimClock",
    "StoreFault",
]
