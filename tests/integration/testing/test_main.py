"""``python -m airflow_provider_mixpanel.testing`` flags for the new options."""

from __future__ import annotations

from datetime import timedelta

from airflow_provider_mixpanel.testing.__main__ import build_server
from airflow_provider_mixpanel.testing.config import DEFAULT_MAX_PAGE_SIZE
from tests.integration.testing.helpers import utc


def test_new_options_are_off_by_default():
    server = build_server(["--port", "0"])
    try:
        config = server.config
        assert (config.quotas, config.late_arrival, config.profile_properties) == (None, None, 0)
        assert (config.max_page_size, config.echo_page_size, server.clock.speed) == (DEFAULT_MAX_PAGE_SIZE, True, 1.0)
    finally:
        server.stop()


def test_flags_turn_on_quotas_speed_up_and_late_arrival():
    server = build_server(
        [
            "--port=0",
            "--quotas",
            "--export-per-hour=30",
            "--retry-after=always",
            "--start=2024-03-02T00:30",
            "--speed-up=3600",
            "--late-arrival",
            "--profile-properties=300",
            "--max-page-size=50000",
            "--no-echo-page-size",
        ]
    )
    try:
        config = server.config
        assert config.quotas is not None
        assert (config.quotas.export_per_hour, config.quotas.query_concurrent) == (30, 5)
        assert config.quotas.retry_after == "always"
        assert config.late_arrival is not None and config.late_arrival.max_lag == timedelta(days=5)
        assert server.clock.speed == 3600
        assert utc(2024, 3, 2, 0, 30) <= server.clock.now() < utc(2024, 3, 2, 2)
        assert (config.profile_properties, config.max_page_size, config.echo_page_size) == (300, 50_000, False)
    finally:
        server.stop()
