"""The test server's own tests start servers through its public fixture."""

from __future__ import annotations

import pytest


@pytest.fixture
def start(mixpanel_server_factory):
    """``start(**config)``: a started server, stopped after the test (the public fixture)."""
    return mixpanel_server_factory
