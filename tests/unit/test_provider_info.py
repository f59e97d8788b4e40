from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib.resources import files
from zoneinfo import ZoneInfo

import jsonschema

from airflow_provider_mixpanel.connection import settings_from_connection
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


def _conn_fields():
    (conn,) = get_provider_info()["connection-types"]
    return conn["conn-fields"]


def test_every_extra_field_has_a_default_that_is_not_null():
    # Airflow 3.3's Add dialog saves every field's value: a missing default is saved as null
    assert {name: "default" in field["schema"] for name, field in _conn_fields().items()} == dict.fromkeys(
        _conn_fields(), True
    )
    assert None not in [field["schema"]["default"] for field in _conn_fields().values()]


def test_extra_fields_have_one_widget_type():
    # two non-null types (["integer", "string"]) make Airflow 3 draw a 6-row text area; "integer" a spinner
    for name, field in _conn_fields().items():
        types = field["schema"]["type"]
        types = [types] if isinstance(types, str) else types
        assert [t for t in types if t != "null"] == ["string"], name


def test_the_form_defaults_read_as_not_set():
    defaults = {name: field["schema"]["default"] for name, field in _conn_fields().items()}
    settings = settings_from_connection(
        conn_id="mixpanel_default", login=None, password="secret", host=None, port=None, extra=defaults
    )
    assert (settings.project_id, settings.region, settings.workspace_id, settings.project_timezone) == (
        None,
        "us",
        None,
        None,
    )


def test_the_timezone_suggestions_are_real_zones():
    for zone in _conn_fields()["project_timezone"]["schema"]["examples"]:
        ZoneInfo(zone)
