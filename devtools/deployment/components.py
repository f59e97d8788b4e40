"""Airflow's processes as a production deployment runs them, all from one venv and one
environment: Airflow 3 with the CeleryExecutor (api-server, scheduler, dag-processor, triggerer,
Celery workers), or Airflow 2.11 in its lighter form (webserver, scheduler with the LocalExecutor,
triggerer). Nothing listens beyond 127.0.0.1: the log servers of workers, scheduler and triggerer
are off (every process shares the log folder)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devtools.deployment.processes import Service, Services, free_port, port_open, wait_until

if TYPE_CHECKING:
    from devtools.deployment.infra import Emulators, Postgres, Redis

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
AIRFLOW_CONFIG = Path(__file__).resolve().parent / "airflow_config"
ADMIN = "admin"
# The scheduler fails a running task whose heartbeats stopped (its worker died) after this long.
HEARTBEAT_TIMEOUT_SECONDS = 30


@dataclass
class Deployment:
    """One Airflow installation: its home, environment and processes."""

    version: int
    home: Path
    services: Services
    postgres: Postgres
    redis: Redis | None
    emulators: Emulators
    api_port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    env: dict[str, str] = field(default_factory=dict)
    workers: list[Service] = field(default_factory=list)

    @property
    def airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # ------------------------------------------------------------ configuration

    def configure(self) -> None:
        self.home.mkdir(parents=True)
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW_", "AIRFLOW__", "VIRTUAL_ENV", "PYTHONPATH", "STORAGE_EMULATOR"))
        }
        from cryptography.fernet import Fernet

        self.env = {
            **inherited,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{inherited.get('PATH', '')}",
            "PYTHONPATH": str(AIRFLOW_CONFIG),  # airflow_local_settings (cluster policy), hostname callable
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "deployment_hostname.hostname",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url(),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD": str(HEARTBEAT_TIMEOUT_SECONDS),  # Airflow 2
            "AIRFLOW__SCHEDULER__ZOMBIE_DETECTION_INTERVAL": "5",  # Airflow 2
            # The DAG files do not change during the test: parse them once, not every 30 s.
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "STORAGE_EMULATOR_HOST": self.emulators.gcs_url,
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "GCE_METADATA_IP": "127.0.0.1:9",
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        if self.version >= 3:
            self.env.update(self._airflow3_env())
        else:
            self.env.update(self._airflow2_env())

    def _airflow3_env(self) -> dict[str, str]:
        assert self.redis is not None
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({ADMIN: self.password}))
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url().replace("+psycopg2", ""),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }

    def _airflow2_env(self) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
            "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__WEBSERVER__WORKERS": "1",
            "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(self.api_port),
            "AIRFLOW__WEBSERVER__BASE_URL": self.api_url,
        }

    # ------------------------------------------------------------ processes

    def cli(self, *args: str, timeout: float = 600) -> str:
        """``airflow ARGS`` to completion; its output, or an error with it."""
        result = subprocess.run(
            [self.airflow, *args], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=timeout
        )
        with (self.services.log_dir / "airflow-cli.log").open("a") as log:
            log.write(f"$ airflow {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result.stdout

    def start_component(self, name: str, *args: str, env: dict[str, str] | None = None) -> Service:
        return self.services.start(name, [self.airflow, *args], env={**self.env, **(env or {})}, cwd=self.home)

    def start(self, workers: int, concurrency: int) -> None:
        """Migrate the database, then start every component and wait for the API."""
        self.cli("db", "migrate")
        if self.version >= 3:
            api = self.start_component(
                "api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"
            )
            self.start_component("scheduler", "scheduler", "--skip-serve-logs")
            self.start_component("dag-processor", "dag-processor")
            self.start_component("triggerer", "triggerer", "--skip-serve-logs")
            for number in range(1, workers + 1):
                self.start_worker(number, concurrency)
            health = f"{self.api_url}/api/v2/monitor/health"
        else:
            self.cli(
                "users", "create", "--username", ADMIN, "--password", self.password, "--role", "Admin",
                "--email", "admin@example.com", "--firstname", "Ad", "--lastname", "Min",
            )  # fmt: skip
            api = self.start_component(
                "webserver", "webserver", "--hostname", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"
            )
            self.start_component("scheduler", "scheduler", "--skip-serve-logs")
            self.start_component("triggerer", "triggerer", "--skip-serve-logs")
            health = f"{self.api_url}/health"
        wait_until(lambda: port_open(self.api_port) and _ok(health), "the Airflow API", 180, api.alive)

    def start_worker(self, number: int, concurrency: int) -> Service:
        """A Celery worker, as another machine would run it: a hostname of its own."""
        name = f"worker{number}"
        worker = self.start_component(
            name,
            *("celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", str(concurrency)),
            "--skip-serve-logs",
            env={"DEPLOYMENT_HOSTNAME": name},
        )
        self.workers.append(worker)
        return worker

    def task_log_dir(self) -> Path:
        return self.home / "logs"


def _ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False
