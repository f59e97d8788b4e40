"""Test setup: an isolated AIRFLOW_HOME, no network but 127.0.0.1, and shared fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Set before Airflow is imported anywhere: a throwaway home, no example DAGs, and cloud SDKs that
# never look for metadata servers or real credentials.
_HOME = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["GCE_METADATA_HOST"] = "127.0.0.1:9"
os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"
os.environ.pop("AIRFLOW_CONN_MIXPANEL_DEFAULT", None)

import logging  # noqa: E402

import pytest  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log

from airflow_provider_mixpanel.testing.server import MixpanelTestServer  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "samples"

pytest_plugins = ["airflow_provider_mixpanel.testing.fixtures"]


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def make_server():
    """Start MixpanelTestServers with custom settings; all are stopped after the test."""
    started: list[MixpanelTestServer] = []

    def start(**config) -> MixpanelTestServer:
        server = MixpanelTestServer(**config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def s3_emulator():
    from devtools.emulators import S3Emulator

    with S3Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def gcs_emulator():
    from devtools.emulators import GCSEmulator

    with GCSEmulator() as emulator:
        yield emulator


@pytest.fixture
def s3(s3_emulator, monkeypatch):
    """A fresh bucket on the S3 emulator, reached by the ``aws_default`` connection."""
    import uuid

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", s3_emulator.connection_json())
    client = s3_emulator.client()
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def gcs(gcs_emulator, monkeypatch):
    """A fresh bucket on the GCS emulator, reached by the ``google_cloud_default`` connection."""
    import uuid

    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", gcs_emulator.connection_json())
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    client = gcs_emulator.client()
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(bucket)
    return client, bucket


@pytest.fixture
def mixpanel(make_server, monkeypatch):
    """Start a Mixpanel test server and point ``mixpanel_default`` at it."""

    def start(**config) -> MixpanelTestServer:
        server = make_server(**config)
        monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", server.connection_json())
        return server

    return start


# The layer of a test is the folder it lives in; its marker says so, so `-m "not system"` works.
_LAYER_MARKERS = {"unit": "unit", "integration": "integration", "system": "system"}


def pytest_collection_modifyitems(config, items):
    tests_root = Path(__file__).resolve().parent
    for item in items:
        try:
            layer = Path(str(item.fspath)).resolve().relative_to(tests_root).parts[0]
        except ValueError:
            continue
        marker = _LAYER_MARKERS.get(layer)
        if marker is not None:
            item.add_marker(getattr(pytest.mark, marker))
