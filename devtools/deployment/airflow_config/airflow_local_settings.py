"""Cluster policy of the deployment test (``airflow_local_settings`` on the Airflow processes'
``PYTHONPATH``): every task gets at least one retry after a short delay, so a task whose worker
was killed is retried within the test's time. The example DAGs stay as users copy them."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

RETRY_DELAY = timedelta(seconds=int(os.environ.get("DEPLOYMENT_RETRY_DELAY_SECONDS", "5")))


def task_policy(task: Any) -> None:
    task.retries = max(task.retries or 0, 2)
    task.retry_delay = RETRY_DELAY
