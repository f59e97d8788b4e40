"""SimClock: real, sped-up and manual simulated time."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from airflow_provider_mixpanel.testing import MixpanelTestServer, SimClock
from tests.integration.testing.helpers import export, utc


def test_default_clock_is_the_wall_clock():
    assert abs(SimClock().time() - time.time()) < 1.0


def test_sped_up_clock_runs_speed_times_faster():
    clock = SimClock(utc(2024, 3, 2), speed=3600)
    time.sleep(0.2)
    elapsed = clock.time() - utc(2024, 3, 2).timestamp()
    assert 0.2 * 3600 <= elapsed < 5.0 * 3600, f"{elapsed} simulated seconds after 0.2 real seconds"


def test_manual_clock_moves_only_when_told():
    clock = SimClock.manual(utc(2024, 3, 2))
    time.sleep(0.05)
    assert clock.now() == utc(2024, 3, 2)
    clock.advance(timedelta(hours=1, minutes=30))
    assert clock.now() == utc(2024, 3, 2, 1, 30)
    clock.set(utc(2024, 3, 7))
    assert clock.now() == utc(2024, 3, 7)


def test_naive_start_is_read_as_utc():
    assert SimClock.manual(datetime(2024, 3, 2)).now() == utc(2024, 3, 2)


def test_real_seconds_divide_by_the_speed():
    assert SimClock(speed=3600).real_seconds(7200) == 2.0
    assert SimClock.manual(utc(2024, 3, 2)).real_seconds(30) == 30, "a stopped clock: simulated seconds"


def test_negative_speed_is_refused():
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed=-1)


def test_requests_record_the_simulated_time(start):
    server: MixpanelTestServer = start(clock=SimClock.manual(utc(2024, 3, 2, 0, 30)))
    export(server)
    assert server.requests[0].at == utc(2024, 3, 2, 0, 30)
