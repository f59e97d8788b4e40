"""Unit tests run without sockets: any attempt to connect anywhere fails the test at once."""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import settings


class SocketUsedInUnitTest(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch):
    def refuse(*args, **kwargs):
        raise SocketUsedInUnitTest("unit tests must not open network connections; move this test to tests/integration")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# `make fuzz` selects the "fuzz" profile: the differential fuzz tests (tests/unit/test_roads_fuzz.py)
# run this many examples instead of a few hundred.
FUZZ_EXAMPLES = 10_000
settings.register_profile("fuzz", max_examples=FUZZ_EXAMPLES, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
