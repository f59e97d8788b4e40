"""The mixpanel-stream command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

from airflow_provider_mixpanel.cli import build_parser, main
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.jsonl import dumps_line

DAY = "2024-03-01"
BIN = Path(sys.executable).parent


def run(args: list[str], *, env_conn: str | None = None, shell: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    if env_conn is not None:
        env["AIRFLOW_CONN_MIXPANEL_DEFAULT"] = env_conn
    command = shell or [sys.executable, "-m", "airflow_provider_mixpanel", *args]
    return subprocess.run(
        command,
        env=env,
        capture_output=True,
        timeout=120,
        shell=shell is not None,
        executable="/bin/bash" if shell else None,
    )


@pytest.mark.integration
def test_events_lines_equal_the_hooks_records(mixpanel, capfd):
    mixpanel(events_per_day=300)
    assert main(["events", "--from", DAY, "--to", DAY]) == 0
    out, err = capfd.readouterr()
    hook = MixpanelHook()
    assert out.encode() == b"".join(hook.stream_events_jsonl(from_date=DAY, to_date=DAY)), "not the hook's JSONL"
    # The same records as the hook's dicts; values compare as JSON (number forms such as 0.00 are
    # kept as Mixpanel sent them in JSONL, so the bytes can differ from re-encoding the dicts).
    lines = out.encode().split(b"\n")[:-1]  # not splitlines(): U+2028 is inside records
    records = hook.stream_events(from_date=DAY, to_date=DAY)
    assert [json.loads(line) for line in lines] == [json.loads(dumps_line(r)) for r in records]
    assert err.strip() == "mixpanel-stream: 300 records"


@pytest.mark.integration
def test_raw_profiles_with_filters(mixpanel, capfd):
    server = mixpanel(profiles=30)
    assert main(["profiles", "--raw", "--output-property", "$email", "--cohort-id", "1000", "-q"]) == 0
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert len(lines) == 30 and '"$distinct_id"' in lines[0] and err == ""
    assert server.engage_requests()[0].form["filter_by_cohort"] == '{"id": 1000}'


@pytest.mark.integration
def test_event_filters_reach_mixpanel(mixpanel, capfd):
    server = mixpanel(events_per_day=100)
    assert main(["events", "--from", DAY, "--to", DAY, "--event", "Purchase", "--event", "Search", "--limit", "5"]) == 0
    assert capfd.readouterr().out.count("\n") == 5  # not splitlines(): U+2028 is inside records
    assert server.export_requests()[0].params["event"] == '["Purchase", "Search"]'


@pytest.mark.integration
def test_file_from_the_cli_equals_the_operators_object(mixpanel, s3, capfd):
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

    mixpanel(events_per_day=400)
    client, bucket = s3
    assert main(["events", "--from", DAY, "--to", DAY, "-q"]) == 0
    cli_bytes = capfd.readouterr().out.encode()
    MixpanelStreamToS3Operator(
        task_id="t", s3_bucket=bucket, s3_key="x.jsonl", from_date=DAY, to_date=DAY, compression=None
    ).execute({})
    assert client.get_object(Bucket=bucket, Key="x.jsonl")["Body"].read() == cli_bytes


@pytest.mark.integration
def test_parquet_file_holds_the_operators_columns(mixpanel, capfd, tmp_path):
    import duckdb

    server = mixpanel(events_per_day=500)
    path = tmp_path / "events.parquet"
    assert main(["events", "--from", DAY, "--to", DAY, "--time-in-ms", "--format", "parquet", "-o", str(path)]) == 0
    assert capfd.readouterr().err.strip() == f"mixpanel-stream: 500 records written to {path}"
    rows = duckdb.sql(
        f"SELECT insert_id, epoch_ms(event_time), properties->>'$.plan' FROM read_parquet('{path}')"
    ).fetchall()
    expected = {}
    for line in server.synthetic(False).day_lines(date.fromisoformat(DAY), time_in_ms=True):
        properties = json.loads(line)["properties"]
        expected[properties["$insert_id"]] = (properties["time"], properties["plan"])
    assert {insert_id: (ms, plan) for insert_id, ms, plan in rows} == expected, "milliseconds or values differ"


@pytest.mark.integration
def test_jsonl_output_file_equals_stdout(mixpanel, capfd, tmp_path):
    mixpanel(events_per_day=50)
    path = tmp_path / "events.jsonl"
    assert main(["events", "--from", DAY, "--to", DAY, "--output", str(path), "-q"]) == 0
    assert capfd.readouterr().out == ""
    assert main(["events", "--from", DAY, "--to", DAY, "-q"]) == 0
    assert path.read_bytes() == capfd.readouterr().out.encode()


@pytest.mark.integration
@pytest.mark.parametrize("output", [None, "-"])
def test_parquet_refuses_a_pipe_before_any_request(mixpanel, capfd, output):
    server = mixpanel()
    args = ["events", "--from", DAY, "--to", DAY, "--format", "parquet"] + (["--output", output] if output else [])
    assert main(args) == 2
    assert "--format parquet writes a file, not a pipe" in capfd.readouterr().err
    assert server.export_requests() == []


def _failing_export(mixpanel):
    """A server whose export breaks after 2000 of its 3000 records."""
    server = mixpanel(events_per_day=3000)
    server.add_fault("malformed", after_records=2000)
    return server


@pytest.mark.integration
@pytest.mark.parametrize("output_format", ["jsonl", "parquet"])
def test_a_failed_export_to_a_new_file_leaves_no_file(mixpanel, capfd, tmp_path, output_format):
    _failing_export(mixpanel)
    path = tmp_path / f"events.{output_format}"
    assert main(["events", "--from", DAY, "--to", DAY, "--format", output_format, "--output", str(path)]) == 1
    assert "Line is not valid JSON" in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == [], "an incomplete file (or its temporary file) was left behind"


@pytest.mark.integration
def test_a_failed_export_leaves_an_existing_file_unchanged(mixpanel, capfd, tmp_path):
    _failing_export(mixpanel)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"yesterday's export\n")
    assert main(["events", "--from", DAY, "--to", DAY, "--output", str(path)]) == 1
    assert "Line is not valid JSON" in capfd.readouterr().err
    assert path.read_bytes() == b"yesterday's export\n", "a failed export changed the file that was there"
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"], "a temporary file was left behind"


@pytest.mark.integration
def test_a_failed_export_into_a_fifo_leaves_the_fifo(mixpanel, capfd, tmp_path):
    _failing_export(mixpanel)
    fifo = tmp_path / "events.pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    assert main(["events", "--from", DAY, "--to", DAY, "--output", str(fifo)]) == 1
    reader.join(timeout=30)
    assert "Line is not valid JSON" in capfd.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was removed or replaced by a regular file"
    assert received and received[0].count(b"\n") <= 2000, "the reader did not get the records written in place"


@pytest.mark.integration
def test_a_failed_export_to_dev_null_leaves_the_device(mixpanel, capfd):
    _failing_export(mixpanel)
    assert main(["events", "--from", DAY, "--to", DAY, "--output", os.devnull]) == 1
    capfd.readouterr()
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode), "/dev/null is no longer a device"


@pytest.mark.integration
def test_a_complete_export_replaces_an_existing_file(mixpanel, capfd, tmp_path):
    mixpanel(events_per_day=50)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"x" * 100_000)
    assert main(["events", "--from", DAY, "--to", DAY, "--output", str(path), "-q"]) == 0
    assert path.read_bytes().count(b"\n") == 50 and not path.read_bytes().startswith(b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]


@pytest.mark.integration
def test_head_stops_early_and_quietly(mixpanel):
    server = mixpanel(events_per_day=200_000)
    result = run(
        [],
        env_conn=server.connection_json(),
        shell=f"set -o pipefail; {sys.executable} -m airflow_provider_mixpanel events --from {DAY} --to {DAY}"
        " | head -n 3",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(b"\n") == 3
    assert result.stderr == b""


@pytest.mark.integration
def test_wrong_secret_is_one_clear_line(mixpanel):
    server = mixpanel()
    result = run(
        ["events", "--from", DAY, "--to", DAY], env_conn=server.connection_json().replace("test-secret", "Xy-bad")
    )
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixpanel-stream: error:") and "authentication failed" in lines[0]
    assert b"Xy-bad" not in result.stderr + result.stdout


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "code", "match"),
    [
        (["events", "--from", "2024-02-30", "--to", DAY], 2, "from_date='2024-02-30' is not a date"),
        (["events", "--from", DAY, "--to", "2024-02-01"], 2, "is after to_date"),
        (["events", "--from", DAY, "--to", DAY, "--conn-id", "missing_conn"], 1, "AIRFLOW_CONN_MISSING_CONN"),
    ],
)
def test_errors_exit_non_zero_with_one_line(mixpanel, capfd, args, code, match):
    mixpanel()
    assert main(args) == code
    err = capfd.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.integration
def test_debug_shows_the_traceback(mixpanel, capfd):
    mixpanel()
    assert main(["events", "--from", "x", "--to", DAY, "--debug"]) == 2
    assert "Traceback" in capfd.readouterr().err


def test_help_documents_every_option(capsys):
    parser = build_parser()
    for command in ("events", "profiles"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        text = capsys.readouterr().out
        options = {"--conn-id", "--raw", "--where", "--format", "--output", "--quiet", "--debug"} | (
            {"--from", "--to", "--event", "--limit"} if command == "events" else {"--cohort-id", "--output-property"}
        )
        assert all(option in text for option in options), text


def test_console_script_is_installed():
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "mixpanel-stream"), "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "mixpanel-stream" in result.stdout


# ---------------------------------------------------------------- connection stores
# The console script in a fresh AIRFLOW_HOME, as a user runs it: every store Airflow has, and the
# order Airflow searches them (secrets backend, environment variable, metadata database).


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    """A fresh AIRFLOW_HOME whose SQLite metadata database is migrated."""
    home = tmp_path_factory.mktemp("airflow-home-cli")
    _airflow(home, "db", "migrate")
    return home


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__SECRETS__"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", NO_PROXY="127.0.0.1,localhost")
    env.update(extra)
    return env


def _airflow(home: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=_env(home), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def _add_db_connection(home: Path, conn_id: str, server) -> None:
    """``airflow connections add``: the connection lives in the metadata database only."""
    _airflow(
        home,
        *("connections", "add", conn_id, "--conn-type", "mixpanel"),
        *("--conn-login", server.config.username, "--conn-password", server.config.secret),
        *("--conn-extra", json.dumps(server.connection_extra())),
    )


def _stream_events(home: Path, conn_id: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "mixpanel-stream"), "events", "--from", DAY, "--to", DAY, "--conn-id", conn_id],
        env=_env(home, **env),
        capture_output=True,
        timeout=300,
    )


@pytest.mark.integration
def test_connection_in_the_metadata_database_is_read(airflow_home, make_server):
    server = make_server(events_per_day=37)
    _add_db_connection(airflow_home, "mixpanel_default", server)
    result = subprocess.run(
        [str(BIN / "mixpanel-stream"), "events", "--from", DAY, "--to", DAY],
        env=_env(airflow_home),
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, f"a database connection was not found: {result.stderr.decode()}"
    assert result.stdout.count(b"\n") == 37, "not every record of the day was streamed"
    assert result.stderr.decode().strip() == "mixpanel-stream: 37 records"


@pytest.mark.integration
def test_environment_variable_wins_over_the_database(airflow_home, make_server):
    in_db, in_env = make_server(events_per_day=3), make_server(events_per_day=5)
    _add_db_connection(airflow_home, "mixpanel_env_first", in_db)
    result = _stream_events(
        airflow_home, "mixpanel_env_first", AIRFLOW_CONN_MIXPANEL_ENV_FIRST=in_env.connection_json()
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.count(b"\n") == 5 and in_env.export_requests() and not in_db.export_requests(), (
        "the environment variable must be used before the metadata database, as Airflow does"
    )


@pytest.mark.integration
def test_secrets_backend_wins_over_the_environment_variable(airflow_home, make_server, tmp_path):
    in_backend, in_env = make_server(events_per_day=4), make_server(events_per_day=6)
    connection = json.loads(in_backend.connection_json())
    connection["extra_dejson"] = connection.pop("extra")
    connections_file = tmp_path / "connections.json"
    connections_file.write_text(json.dumps({"mixpanel_backend_first": connection}))
    result = _stream_events(
        airflow_home,
        "mixpanel_backend_first",
        AIRFLOW__SECRETS__BACKEND="airflow.secrets.local_filesystem.LocalFilesystemBackend",
        AIRFLOW__SECRETS__BACKEND_KWARGS=json.dumps({"connections_file_path": str(connections_file)}),
        AIRFLOW_CONN_MIXPANEL_BACKEND_FIRST=in_env.connection_json(),
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.count(b"\n") == 4 and in_backend.export_requests() and not in_env.export_requests(), (
        "the configured secrets backend must be searched first, as Airflow does"
    )


@pytest.mark.integration
def test_connection_in_no_store_is_one_line_naming_every_store(airflow_home):
    result = _stream_events(airflow_home, "mixpanel_nowhere")
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "AIRFLOW_CONN_MIXPANEL_NOWHERE" in lines[0], lines
    assert result.stdout == b""


@pytest.mark.integration
def test_unreadable_database_is_still_one_line(tmp_path):
    result = _stream_events(
        tmp_path, "mixpanel_nowhere", AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:////nonexistent/dir/airflow.db"
    )
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "is not defined" in lines[0], f"a traceback of the database leaked: {lines[:5]}"
