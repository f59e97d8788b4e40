"""Airflow's stable REST API as the test uses it, on Airflow 3 (``/api/v2``, a JWT from the
simple auth manager's ``POST /auth/token``) and Airflow 2 (``/api/v1``, basic auth). Every answer
is kept, so the test can show that no secret ever came back."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import requests

FINISHED = ("success", "failed")


class ApiError(RuntimeError):
    pass


class AirflowApi:
    """``version`` 3 or 2; ``base_url`` like ``http://127.0.0.1:8080``."""

    def __init__(self, base_url: str, version: int, username: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.prefix = f"{self.base_url}/api/v2" if version >= 3 else f"{self.base_url}/api/v1"
        self.session = requests.Session()
        self.answers: list[str] = []  # every response body, for the secret scan
        if version >= 3:
            self.session.headers["Authorization"] = f"Bearer {self._token(username, password)}"
        else:
            self.session.auth = (username, password)

    def _token(self, username: str, password: str) -> str:
        response = requests.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        if response.status_code != 201:
            raise ApiError(f"POST /auth/token answered {response.status_code}: {response.text[:500]}")
        return response.json()["access_token"]

    # ------------------------------------------------------------ plumbing

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.prefix}{path}", timeout=60, **kwargs)
        self.answers.append(response.text)
        if response.status_code not in ok:
            raise ApiError(f"{method} {path} answered {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def pages(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list endpoint, page by page."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", path, params={**params, "limit": 100, "offset": len(items)})
            items.extend(page[key])
            if not page[key] or len(items) >= page["total_entries"]:
                return items

    # ------------------------------------------------------------ setup

    def create_connection(self, conn_id: str, conn_type: str, **fields: Any) -> None:
        body = {"connection_id": conn_id, "conn_type": conn_type, **fields}
        if isinstance(body.get("extra"), dict):
            body["extra"] = json.dumps(body["extra"])
        self.call("POST", "/connections", json=body)

    def test_connection(self, conn_id: str, conn_type: str, **fields: Any) -> dict[str, Any]:
        body = {"connection_id": conn_id, "conn_type": conn_type, **fields}
        if isinstance(body.get("extra"), dict):
            body["extra"] = json.dumps(body["extra"])
        return self.call("POST", "/connections/test", json=body)

    def create_pool(self, name: str, slots: int, description: str) -> None:
        self.call("POST", "/pools", json={"name": name, "slots": slots, "description": description})

    def set_variable(self, key: str, value: str) -> None:
        self.call("POST", "/variables", json={"key": key, "value": value})

    def dag_ids(self) -> list[str]:
        return [dag["dag_id"] for dag in self.pages("/dags", "dags")]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    # ------------------------------------------------------------ runs

    def trigger(self, dag_id: str, run_id: str, logical_date: str, conf: dict[str, Any] | None = None) -> None:
        self.call(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": logical_date, "conf": conf or {}},
        )

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.pages(f"/dags/{dag_id}/dagRuns", "dag_runs")

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.pages(f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", "task_instances")

    def wait_for_runs(self, runs: list[tuple[str, str]], timeout: float, poll: float = 3) -> dict[tuple[str, str], str]:
        """Poll until every (dag_id, run_id) has finished; their final states."""
        deadline = time.monotonic() + timeout
        states: dict[tuple[str, str], str] = {}
        while True:
            for dag_id, run_id in runs:
                if states.get((dag_id, run_id)) not in FINISHED:
                    states[(dag_id, run_id)] = self.run(dag_id, run_id)["state"]
            if all(state in FINISHED for state in states.values()):
                return states
            if time.monotonic() > deadline:
                waiting = {key: state for key, state in states.items() if state not in FINISHED}
                raise TimeoutError(f"DAG runs not finished after {timeout:.0f} s: {waiting}")
            time.sleep(poll)

    def clear(
        self, dag_id: str, run_id: str, task_ids: list[Any], *, upstream: bool, downstream: bool
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": task_ids,
            "include_upstream": upstream,
            "include_downstream": downstream,
            "only_failed": False,
            "reset_dag_runs": True,
        }
        return self.call("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)["task_instances"]

    # ------------------------------------------------------------ what tasks left behind

    def xcom_values(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """Every XCom of one task instance: key -> value."""
        base = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries"
        params: dict[str, Any] = {"map_index": map_index}
        entries = self.pages(base, "xcom_entries", **params)
        values = {}
        for entry in entries:
            if entry.get("map_index", -1) != map_index:
                continue
            # Airflow 3 deserializes on request; Airflow 2 answers the value's repr (deserialize is off by default)
            extra = {"deserialize": True} if self.version >= 3 else {}
            detail = self.call("GET", f"{base}/{quote(entry['key'], safe='')}", params={**params, **extra})
            values[entry["key"]] = _parsed(detail.get("value"))
        return values

    def rendered_fields(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        base = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        path = f"{base}/{map_index}" if map_index >= 0 else base
        return self.call("GET", path).get("rendered_fields")


def _parsed(value: Any) -> Any:
    """XCom values arrive as JSON, or (Airflow 2, deserialized) as a Python repr string."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            import ast

            try:
                return ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return value
    return value
