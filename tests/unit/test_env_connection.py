"""connection_from_environment: AIRFLOW_CONN_<ID> read as Airflow reads it, only where Airflow would read it."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from airflow_provider_mixpanel.env_connection import connection_from_environment, secrets_backend_configured

CONN_ID = "mixpanel_env"
VARIABLE = "AIRFLOW_CONN_MIXPANEL_ENV"
FIELDS = ("conn_type", "host", "login", "password", "schema", "port", "extra_dejson")

# Every form the docs show, and the corners of Airflow's URI parser.
VALUES = [
    json.dumps(
        {
            "conn_type": "mixpanel",
            "login": "sa.123.mp-service-account",
            "password": "s3cr=t/+",
            "extra": {"project_id": 123, "region": "eu"},
        }
    ),
    json.dumps({"conn_type": "mixpanel", "password": "x", "extra": '{"project_id": "7"}', "port": "8443"}),
    json.dumps({"conn_type": "mixpanel", "password": "x", "host": "http://127.0.0.1:9999"}),
    "mixpanel://sa.user:s3cr%3Dt%2F%2B@/?project_id=123&region=eu",
    "mixpanel://user:secret@proxy.example.com:8443/?project_id=123",
    "mixpanel://https://user:secret@proxy.example.com/?project_id=123&workspace_id=4",
    "mixpanel://user:secret@https%3A%2F%2Fproxy.example.com%2Fmixpanel/?project_id=123",
    "mixpanel://:secret@?project_id=123",
    "mixpanel://user:secret@host/?__extra__=%7B%22project_id%22%3A+5%7D",
    "mixpanel://user:secret@HOST.Example.com/schema?project_timezone=America%2FNew_York&flag=",
    "mix-panel://user:secret@host",
    "  mixpanel://user:secret@host/?project_id=1  ",
]


@pytest.fixture
def plain_environment(monkeypatch, tmp_path):
    """No secrets backend anywhere, an AIRFLOW_HOME without airflow.cfg."""
    for name in ("AIRFLOW__SECRETS__BACKEND", "AIRFLOW__SECRETS__BACKEND_CMD", "AIRFLOW__SECRETS__BACKEND_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AIRFLOW_CONFIG", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("value", VALUES)
def test_fields_are_those_airflow_reads(plain_environment, monkeypatch, value):
    from airflow.models.connection import Connection

    monkeypatch.setenv(VARIABLE, value)
    ours = connection_from_environment(CONN_ID)
    assert ours is not None, "an ordinary connection in the environment was left to Airflow"
    value = value.strip()
    airflows = Connection.from_json(value, conn_id=CONN_ID) if value[0] == "{" else Connection(CONN_ID, uri=value)
    for name in FIELDS:
        theirs, mine = getattr(airflows, name), getattr(ours, name)
        if name == "extra_dejson" and AIRFLOW_2:
            # Airflow 2 keeps a URI's query values as text where Airflow 3 reads them as JSON
            # (project_id=123 -> 123); the connection settings convert either form alike.
            theirs, mine = _as_text(theirs), _as_text(mine)
        assert mine == theirs, f"{name} differs from Airflow's for {value!r}"


AIRFLOW_2 = int(importlib.metadata.version("apache-airflow").split(".")[0]) < 3


def _as_text(extra: dict) -> dict:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in extra.items()}


@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"conn_type": "mixpanel", "extra": "[1, 2]"}),  # Airflow refuses: not an object
        json.dumps({"conn_type": "mixpanel", "extra_dejson": {"project_id": 1}}),  # Airflow: unknown key
        json.dumps({"conn_type": "mixpanel", "port": "eighty"}),
        json.dumps({"conn_type": "mixpanel", "port": [443]}),  # int() raises TypeError, not ValueError
        json.dumps({"conn_type": "mixpanel", "port": {"number": 443}}),
        "mixpanel://a://b://c",
        "mixpanel://user:secret@https://proxy.example.com",  # Airflow: "Invalid connection string"
        "mixpanel://user:secret@host/?__extra__=not-json",
    ],
)
def test_values_airflow_treats_specially_are_left_to_airflow(plain_environment, monkeypatch, value):
    monkeypatch.setenv(VARIABLE, value)
    assert connection_from_environment(CONN_ID) is None


def test_absent_variable_is_left_to_airflow(plain_environment, monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)
    assert connection_from_environment(CONN_ID) is None, "the metadata database comes next: only Airflow reads it"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AIRFLOW__SECRETS__BACKEND", "airflow.secrets.local_filesystem.LocalFilesystemBackend"),
        ("AIRFLOW__SECRETS__BACKEND_CMD", "echo x"),
        ("AIRFLOW__SECRETS__BACKEND_SECRET", "path"),
    ],
)
def test_backend_in_the_environment_is_searched_first_by_airflow(plain_environment, monkeypatch, variable, value):
    monkeypatch.setenv(VARIABLE, "mixpanel://user:secret@host")
    monkeypatch.setenv(variable, value)
    assert secrets_backend_configured()
    assert connection_from_environment(CONN_ID) is None


def test_backend_in_airflow_cfg_is_searched_first_by_airflow(plain_environment, monkeypatch):
    monkeypatch.setenv(VARIABLE, "mixpanel://user:secret@host")
    (plain_environment / "airflow.cfg").write_text(
        "[core]\nload_examples = False\n\n"
        "[secrets]\nbackend = airflow.secrets.local_filesystem.LocalFilesystemBackend\n"
    )
    assert connection_from_environment(CONN_ID) is None


def test_airflow_config_variable_names_the_file(plain_environment, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("config") / "custom.cfg"
    elsewhere.write_text("[secrets]\nbackend = some.Backend\n")
    monkeypatch.setenv("AIRFLOW_CONFIG", str(elsewhere))
    assert secrets_backend_configured()


def test_empty_backend_setting_is_no_backend(plain_environment, monkeypatch):
    (plain_environment / "airflow.cfg").write_text("[secrets]\nbackend = some.Backend\n")
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "")  # the environment wins over airflow.cfg, as in Airflow
    monkeypatch.setenv(VARIABLE, "mixpanel://user:secret@host")
    assert connection_from_environment(CONN_ID) is not None


def test_airflow_cfg_without_a_backend_is_no_backend(plain_environment):
    (plain_environment / "airflow.cfg").write_text("[secrets]\nbackend =\nbackend_kwargs =\n")
    assert not secrets_backend_configured()


def test_repr_hides_the_password(plain_environment, monkeypatch):
    monkeypatch.setenv(VARIABLE, "mixpanel://user:Sup3rSecret@host")
    assert "Sup3rSecret" not in repr(connection_from_environment(CONN_ID))
