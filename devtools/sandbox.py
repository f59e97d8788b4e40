"""A whole offline world for running the example DAGs: the Mixpanel test server, S3 and GCS
emulators, buckets, a throwaway AIRFLOW_HOME with a migrated SQLite database, and ``airflow``
commands run against all of it. The demo, the DAG tests and the benchmarks share it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from airflow_provider_mixpanel.testing import MixpanelTestServer
from devtools.emulators import GCSEmulator, S3Emulator

S3_BUCKET = "mixpanel-demo"
GCS_BUCKET = "mixpanel-demo"
POOL = "mixpanel_export"
EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"


class Sandbox:
    """Start everything with ``with Sandbox() as sandbox:``; everything is stopped on exit, also
    when something failed.

    :param dags_folder: the DAGs ``airflow dags test`` sees (the repository's ``example_dags``).
    :param mixpanel_config: settings of the :class:`MixpanelTestServer`.
    """

    def __init__(self, dags_folder: Path = EXAMPLE_DAGS, **mixpanel_config: Any):
        self.dags_folder = dags_folder
        self.mixpanel_config = mixpanel_config
        self.mixpanel: MixpanelTestServer | None = None
        self.s3: S3Emulator | None = None
        self.gcs: GCSEmulator | None = None
        self.home: Path | None = None
        self.env: dict[str, str] = {}

    def __enter__(self) -> Sandbox:
        try:
            self.mixpanel = MixpanelTestServer(**self.mixpanel_config).start()
            self.s3 = S3Emulator().start()
            self.gcs = GCSEmulator().start()
            self.s3.client().create_bucket(Bucket=S3_BUCKET)
            self.gcs.client().create_bucket(GCS_BUCKET)
            self.home = Path(tempfile.mkdtemp(prefix="mixpanel-airflow-home-"))
            self.env = self._airflow_env()
            self.airflow("db", "migrate")
            self.airflow("pools", "set", POOL, "3", "Mixpanel export requests")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for server in (self.mixpanel, self.s3, self.gcs):
            if server is not None:
                server.stop()
        self.mixpanel = self.s3 = self.gcs = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def _airflow_env(self) -> dict[str, str]:
        assert self.mixpanel and self.s3 and self.gcs and self.home
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags_folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
            AIRFLOW_CONN_MIXPANEL_DEFAULT=self.mixpanel.connection_json(),
            AIRFLOW_CONN_AWS_DEFAULT=self.s3.connection_json(),
            AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT=self.gcs.connection_json(),
            AIRFLOW_CONN_ICEBERG_DEFAULT=json.dumps({"conn_type": "iceberg", "extra": self.iceberg_properties()}),
            AIRFLOW_VAR_MIXPANEL_S3_BUCKET=S3_BUCKET,
            AIRFLOW_VAR_MIXPANEL_LAKE_BUCKET=S3_BUCKET,
            AIRFLOW_VAR_MIXPANEL_GCS_BUCKET=GCS_BUCKET,
            STORAGE_EMULATOR_HOST=self.gcs.url,
            AWS_EC2_METADATA_DISABLED="true",
            GCE_METADATA_HOST="127.0.0.1:9",
            GCE_METADATA_IP="127.0.0.1:9",
            NO_PROXY="127.0.0.1,localhost",
        )
        return env

    def iceberg_properties(self) -> dict[str, str]:
        """pyiceberg catalog properties: a SQLite catalog in the Airflow home, its warehouse in the S3 bucket."""
        assert self.s3 and self.home
        return {
            "type": "sql",
            "uri": f"sqlite:///{self.home}/iceberg_catalog.db",
            "warehouse": f"s3://{S3_BUCKET}/warehouse",
            "s3.endpoint": self.s3.url,
            "s3.access-key-id": "testing",
            "s3.secret-access-key": "testing",
            "s3.region": "us-east-1",
        }

    def iceberg_catalog(self) -> Any:
        """The catalog of ``iceberg_default`` (a SQL catalog keys its tables by the connection id)."""
        from pyiceberg.catalog import load_catalog

        return load_catalog("iceberg_default", **self.iceberg_properties())

    def airflow(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` in the sandbox; raise with its output when it fails."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def dags_test(
        self, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``airflow dags test DAG_ID DATE``; raises unless every task succeeded."""
        args = ["dags", "test", dag_id, logical_date]
        if conf:
            args += ["--conf", json.dumps(conf)]
        result = self.airflow(*args)
        output = result.stdout + result.stderr
        states = re.findall(r"DagRun Finished: .*?state=(\w+)", output)
        if states != ["success"]:
            raise RuntimeError(f"airflow dags test {dag_id} did not succeed (states {states}):\n{output[-6000:]}")
        return result
