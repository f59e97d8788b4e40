"""``[core] hostname_callable`` of the deployment test: two Celery workers on one machine report
different hostnames (``DEPLOYMENT_HOSTNAME``), as two machines would, so a task instance's
``hostname`` tells which worker ran it."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("DEPLOYMENT_HOSTNAME") or socket.getfqdn()
