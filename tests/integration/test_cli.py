"""The mixpanel-stream command."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from airflow_provider_mixpanel.cli import build_parser, main
from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.jsonl import dumps_line
from airflow_provider_mixpanel.retry import DEFAULT_MAX_RETRIES
from airflow_provider_mixpanel.terminal_progress import REWRITE

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
@pytest.mark.parametrize("skip_malformed", [False, True])
def test_raw_events_are_the_hooks_raw_lines(mixpanel, capfd, skip_malformed):
    server = mixpanel(events_per_day=3000)
    server.add_fault("malformed", after_records=1500, times=2)  # the command's request, then the hook's
    args = ["events", "--from", DAY, "--to", DAY, "--raw", "-q"] + (["--skip-malformed"] if skip_malformed else [])
    code = main(args)
    out = capfd.readouterr().out.encode()
    hook_lines: list[bytes] = []
    stream = MixpanelHook().stream_events_jsonl(from_date=DAY, to_date=DAY, raw=True, skip_malformed=skip_malformed)
    with contextlib.suppress(MixpanelMalformedRecordError):
        hook_lines.extend(stream)
    assert code == (0 if skip_malformed else 1)
    assert out == b"".join(hook_lines), "the batch road wrote other bytes than the hook's raw lines"
    assert out.count(b"\n") == (3000 if skip_malformed else 1500)


@pytest.mark.integration
def test_raw_profiles_with_filters(mixpanel, capfd):
    server = mixpanel(profiles=30)
    assert main(["profiles", "--raw", "--output-property", "$email", "--cohort-id", "1000", "-q"]) == 0
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert len(lines) == 30 and '"$distinct_id"' in lines[0] and err == ""
    assert server.engage_requests()[0].form["filter_by_cohort"] == '{"id": 1000}'


@pytest.mark.integration
@pytest.mark.parametrize(("flag", "sent"), [("--include-all-users", "true"), ("--no-include-all-users", "false")])
def test_a_switch_can_be_turned_off_too(mixpanel, capfd, flag, sent):
    server = mixpanel(profiles=3)
    assert main(["profiles", "--cohort-id", "1000", flag, "-q"]) == 0
    assert server.engage_requests()[0].form["include_all_users"] == sent


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


def _wait_for(condition, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.integration
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopping_signal_removes_the_temporary_file(make_server, tmp_path, number):
    # A slow body: the export is still running when the signal comes (`timeout 5 mixpanel-stream ...`).
    server = make_server(events_per_day=20_000, bytes_per_second=200_000)
    home = tmp_path / "home"
    home.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = ["events", "--from", DAY, "--to", DAY, "-q", "--output", str(out_dir / "events.jsonl")]
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_mixpanel", *args],
        env=_env(home, AIRFLOW_CONN_MIXPANEL_DEFAULT=server.connection_json()),
        stderr=subprocess.PIPE,
    )
    try:
        started = _wait_for(lambda: any(out_dir.iterdir()) and bool(server.export_requests()), timeout=60)
        assert started, "the export did not start"
        process.send_signal(number)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read().decode()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    assert code == 128 + number, stderr
    assert list(out_dir.iterdir()) == [], "the temporary file was left behind"
    assert "Traceback" not in stderr, stderr


@pytest.mark.integration
def test_ctrl_c_while_a_fifo_waits_for_its_reader_exits_130_quietly(mixpanel, tmp_path):
    server = mixpanel(events_per_day=5)
    fifo = tmp_path / "events.pipe"
    os.mkfifo(fifo)
    home = tmp_path / "home"
    home.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_mixpanel", "events", "--from", DAY, "--to", DAY, "-o", str(fifo)],
        env=_env(home, AIRFLOW_CONN_MIXPANEL_DEFAULT=server.connection_json()),
        stderr=subprocess.PIPE,
    )
    try:
        # Linux names where a process sleeps: opening a FIFO for writing waits for a reader there.
        # A kernel that hides it always says "0": then the open is waited for by time alone.
        wchan = Path(f"/proc/{process.pid}/wchan")
        seen: set[str] = set()

        def waits_for_a_reader() -> bool:
            seen.add(wchan.read_text())
            return "wait_for_partner" in seen

        if not _wait_for(waits_for_a_reader, timeout=60):
            assert seen <= {"0", ""}, f"never waited for a reader: {sorted(seen)}"
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read().decode()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    assert code == 130 and stderr == "", stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and not server.export_requests()


@pytest.mark.integration
def test_main_gives_the_signal_handlers_back(mixpanel, capfd):
    mixpanel(events_per_day=5)
    before = [signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP)]
    assert main(["events", "--from", DAY, "--to", DAY, "-q"]) == 0
    assert [signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP)] == before


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
def test_stderr_reader_going_away_does_not_stop_a_file_export(mixpanel, tmp_path):
    server = mixpanel(events_per_day=3000)
    path = tmp_path / "events.jsonl"
    # A progress line after every write (not every 10 s), so stderr is written while the export runs.
    code = (
        "import sys\n"
        "import airflow_provider_mixpanel.terminal_progress as progress\n"
        "progress.LOG_INTERVAL = 0\n"
        "from airflow_provider_mixpanel.cli import main\n"
        f"sys.exit(main(['events', '--from', '{DAY}', '--to', '{DAY}', '--output', '{path}']))\n"
    )
    result = run(
        [], env_conn=server.connection_json(), shell=f'set -o pipefail; {sys.executable} -c "{code}" 2>&1 | head -c 20'
    )
    assert result.returncode == 0, result.stdout
    assert len(result.stdout) == 20
    assert path.read_bytes().count(b"\n") == 3000, "the export stopped when stderr's reader went away"
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"], "a temporary file was left behind"


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


# ---------------------------------------------------------------- start-up without Airflow


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_environment_connection_streams_without_importing_airflow(mixpanel, tmp_path):
    server = mixpanel(events_per_day=20)
    env = _env(tmp_path, AIRFLOW_CONN_MIXPANEL_DEFAULT=server.connection_json())
    result = _python(
        "import sys\n"
        "from airflow_provider_mixpanel.cli import main\n"
        f"code = main(['events', '--from', '{DAY}', '--to', '{DAY}', '-q', '-o', '/dev/null'])\n"
        "print(code, 'airflow' in sys.modules, file=sys.stderr)\n",
        env,
    )
    assert result.stderr.strip() == "0 False", f"Airflow was imported (or the run failed): {result.stderr}"
    assert server.export_requests(), "the export was not made"


@pytest.mark.integration
def test_environment_uri_connection_streams_without_importing_airflow(mixpanel, tmp_path):
    server = mixpanel(events_per_day=20)
    user, secret = server.config.username, server.config.secret
    uri = (
        f"mixpanel://{server.url.replace('http://', f'http://{user}:{secret}@')}/?project_id={server.config.project_id}"
    )
    result = _python(
        "import sys\n"
        "from airflow_provider_mixpanel.cli import main\n"
        f"code = main(['events', '--from', '{DAY}', '--to', '{DAY}', '-q', '-o', '/dev/null'])\n"
        "print(code, 'airflow' in sys.modules, file=sys.stderr)\n",
        _env(tmp_path, AIRFLOW_CONN_MIXPANEL_DEFAULT=uri),
    )
    assert result.stderr.strip() == "0 False", f"Airflow was imported (or the run failed): {result.stderr}"


def test_help_does_not_import_airflow(tmp_path):
    result = _python(
        "import sys\n"
        "from airflow_provider_mixpanel.cli import main\n"
        "try:\n    main(['events', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('airflow' in sys.modules, file=sys.stderr)\n",
        _env(tmp_path),
    )
    assert result.stderr.strip() == "False" and "--max-retries" in result.stdout


@pytest.mark.integration
def test_secrets_backend_in_airflow_cfg_is_asked_first(make_server, tmp_path):
    in_backend, in_env = make_server(events_per_day=4), make_server(events_per_day=6)
    connection = json.loads(in_backend.connection_json())
    connection["extra_dejson"] = connection.pop("extra")
    connections_file = tmp_path / "connections.json"
    connections_file.write_text(json.dumps({"mixpanel_cfg_backend": connection}))
    home = tmp_path / "home"
    home.mkdir()
    (home / "airflow.cfg").write_text(
        "[secrets]\n"
        "backend = airflow.secrets.local_filesystem.LocalFilesystemBackend\n"
        f"backend_kwargs = {json.dumps({'connections_file_path': str(connections_file)})}\n"
    )
    result = _stream_events(home, "mixpanel_cfg_backend", AIRFLOW_CONN_MIXPANEL_CFG_BACKEND=in_env.connection_json())
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.count(b"\n") == 4 and in_backend.export_requests() and not in_env.export_requests(), (
        "the secrets backend of airflow.cfg must be searched before the environment variable, as Airflow does"
    )


# ---------------------------------------------------------------- fast failure and progress at a terminal


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _closed_port_connection() -> str:
    return json.dumps(
        {
            "conn_type": "mixpanel",
            "login": "u",
            "password": "p",
            "extra": {"project_id": 1, "host": f"http://127.0.0.1:{_closed_port()}"},
        }
    )


def _run_at_a_terminal(args: list[str], env: dict[str, str], *, timeout: float) -> tuple[int, str, float, bytes]:
    """Run the command with stderr on a pseudo-terminal (stdout to a pipe): exit status, what
    the terminal showed, seconds taken, stdout."""
    primary, secondary = pty.openpty()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_mixpanel", *args], env=env, stdout=subprocess.PIPE, stderr=secondary
    )
    os.close(secondary)
    shown = bytearray()
    stdout = bytearray()
    reader = threading.Thread(target=lambda: stdout.extend(process.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    while True:
        try:
            piece = os.read(primary, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not piece:
            break
        shown.extend(piece)
    code = process.wait(timeout=timeout)
    elapsed = time.monotonic() - started
    reader.join(timeout=timeout)
    os.close(primary)
    return code, shown.decode(errors="replace"), elapsed, bytes(stdout)


@pytest.mark.integration
def test_closed_port_at_a_terminal_fails_fast_naming_host_and_flag(tmp_path):
    env = _env(tmp_path, AIRFLOW_CONN_MIXPANEL_DEFAULT=_closed_port_connection())
    code, shown, elapsed, _ = _run_at_a_terminal(["events", "--from", DAY, "--to", DAY], env, timeout=60)
    assert code == 1, shown
    assert elapsed < 10, f"took {elapsed:.1f} s at a terminal"
    error = shown.splitlines()[-1]
    assert "mixpanel-stream: error:" in error and "127.0.0.1:" in error and "--max-retries" in error, shown


@pytest.mark.integration
def test_closed_port_without_a_terminal_keeps_the_default_retries(tmp_path):
    env = _env(tmp_path, AIRFLOW_CONN_MIXPANEL_DEFAULT=_closed_port_connection())
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_mixpanel", "events", "--from", DAY, "--to", DAY],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stderr.readline()  # type: ignore[union-attr]
    finally:
        process.kill()
        process.wait()
    assert f"(retry 1 of {DEFAULT_MAX_RETRIES})" in first, f"not the scheduled-run policy: {first!r}"


@pytest.mark.integration
def test_progress_at_a_terminal_is_one_line_rewritten(make_server, tmp_path):
    # 60,000 events: a few seconds even when the (gzip) body arrives fast, so a progress line is due.
    server = make_server(events_per_day=60_000, bytes_per_second=1_500_000)
    env = _env(tmp_path, AIRFLOW_CONN_MIXPANEL_DEFAULT=server.connection_json())
    code, shown, _, stdout = _run_at_a_terminal(["events", "--from", DAY, "--to", DAY, "--raw"], env, timeout=120)
    assert code == 0, shown
    assert shown.count(REWRITE) >= 2, f"no live progress line: {shown!r}"
    live = shown.split(REWRITE)[1]
    assert " records  " in live and "records/s" in live and live.count("\n") == 0, live
    assert shown.endswith("mixpanel-stream: 60,000 records\r\n"), shown[-200:]
    assert stdout.count(b"\n") == 60_000 and b"records/s" not in stdout, "progress reached stdout"
