from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib.resources import files

import jsonschema

from airflow_provider_mixpanel.get_provider_info import get_provider_info


def test_provider_info_matches_airflows_schema():
    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_package_name_is_the_distribution_name():
    assert get_provider_info()["package-name"] == "airflow-provider-mixpanel"


def test_declared_classes_import_and_agree():
    info = get_provider_info()
    (conn,) = info["connection-types"]
    module_name, class_name = conn["hook-class-name"].rsplit(".", 1)
    hook = getattr(importlib.import_module(module_name), class_name)
    assert hook.conn_type == conn["connection-type"] == "mixpanel"
    assert hook.hook_name == conn["hook-name"]
    for entry in info["transfers"] + info["hooks"]:
        for module in entry.get("python-modules", [entry.get("python-module")]):
            importlib.import_module(module)


def test_airflow_lists_the_provider():
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(result.stdout[result.stdout.index("[") :])}
    assert "airflow-provider-mixpanel" in providers, sorted(providers)
