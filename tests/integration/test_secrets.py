"""Secrets never reach logs, exceptions, XCom, reprs or the CLI's output, even with DEBUG logging."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys

import pytest

from airflow_provider_mixpanel.errors import MixpanelAuthError
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

SECRET = "sEcReT-9f8e7d6c5b4a"
DAY = "2024-03-01"


def forbidden(username: str) -> list[str]:
    """The secret, and the Authorization header value that carries it."""
    token = base64.b64encode(f"{username}:{SECRET}".encode()).decode()
    return [SECRET, token, f"Basic {token}"]


@pytest.fixture
def secret_server(make_server, monkeypatch):
    server = make_server(secret=SECRET, events_per_day=200)
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", server.connection_json())
    return server


def assert_clean(text: str, username: str = "test-user") -> None:
    for value in forbidden(username):
        assert value not in text, f"a secret leaked: {value[:4]}..."


def test_stream_and_failed_auth_at_debug(secret_server, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    hook = MixpanelHook(backoff_base=0.01)
    secret_server.add_fault("status", status=503)
    assert len(list(hook.stream_events(from_date=DAY, to_date=DAY))) == 200
    texts = [repr(hook), repr(hook.settings), repr(hook.get_conn())]
    bad = secret_server.connection_json().replace("test-user", "wrong-user")
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", bad)
    with pytest.raises(MixpanelAuthError) as info:
        list(MixpanelHook().stream_events(from_date=DAY, to_date=DAY))
    texts += [str(info.value), repr(info.value), caplog.text]
    ok, message = MixpanelHook().test_connection()
    assert not ok
    texts.append(message)
    for text in texts:
        assert_clean(text)
        assert_clean(text, "wrong-user")


def test_operator_logs_and_xcom(secret_server, s3, caplog):
    caplog.set_level(logging.DEBUG)
    manifest = MixpanelStreamToS3Operator(
        task_id="t", s3_bucket=s3[1], s3_key="k.jsonl.gz", from_date=DAY, to_date=DAY
    ).execute({})
    assert_clean(json.dumps(manifest))
    assert_clean(caplog.text)


def test_cli_output_with_debug(secret_server):
    env = {**os.environ, "AIRFLOW_CONN_MIXPANEL_DEFAULT": secret_server.connection_json()}
    ok = subprocess.run(
        [sys.executable, "-m", "airflow_provider_mixpanel", "events", "--from", DAY, "--to", DAY, "--debug"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0
    env["AIRFLOW_CONN_MIXPANEL_DEFAULT"] = secret_server.connection_json().replace("test-user", "wrong-user")
    failed = subprocess.run(
        [sys.executable, "-m", "airflow_provider_mixpanel", "events", "--from", DAY, "--to", DAY, "--debug"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "Traceback" in failed.stderr
    for result in (ok, failed):
        assert_clean(result.stdout + result.stderr)
        assert_clean(result.stdout + result.stderr, "wrong-user")
