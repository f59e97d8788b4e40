"""Unit tests run without sockets: any attempt to connect anywhere fails the test at once."""

from __future__ import annotations

import socket

import pytest


class SocketUsedInUnitTest(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch):
    def refuse(*args, **kwargs):
        raise SocketUsedInUnitTest("unit tests must not open network connections; move this test to tests/integration")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
