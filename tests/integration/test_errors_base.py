"""MixpanelError is an AirflowException in any import order, and costs no Airflow import alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

ERRORS_FIRST_THEN_HOOK = """
import sys
from airflow_provider_mixpanel.errors import MixpanelAuthError, MixpanelConfigError, MixpanelError
assert "airflow" not in sys.modules, "importing the errors imported Airflow"
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow.exceptions import AirflowException
assert issubclass(MixpanelError, AirflowException)
try:
    raise MixpanelConfigError("bad")
except AirflowException as err:
    assert isinstance(err, ValueError) and str(err) == "bad"
print("ok")
"""


@pytest.mark.parametrize("script", [ERRORS_FIRST_THEN_HOOK], ids=["errors-then-hook"])
def test_errors_imported_before_airflow_become_airflow_exceptions_once_the_hook_loads(script):
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", f"MixpanelError is not an AirflowException: {result.stderr[-2000:]}"


def test_errors_are_airflow_exceptions_when_airflow_is_loaded_first():
    from airflow.exceptions import AirflowException

    from airflow_provider_mixpanel.errors import MixpanelError, MixpanelRateLimitError

    assert issubclass(MixpanelError, AirflowException)
    assert issubclass(MixpanelRateLimitError, AirflowException)
