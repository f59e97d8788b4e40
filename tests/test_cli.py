"""The mixpanel-stream command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airflow_provider_mixpanel.cli import build_parser, main
from airflow_provider_mixpanel.encoding import dumps_line
from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

DAY = "2024-03-01"


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


def test_events_lines_equal_the_hooks_records(mixpanel, capfd):
    mixpanel(events_per_day=300)
    assert main(["events", "--from", DAY, "--to", DAY]) == 0
    out, err = capfd.readouterr()
    expected = b"".join(dumps_line(r) for r in MixpanelHook().stream_events(from_date=DAY, to_date=DAY))
    assert out.encode() == expected
    assert err.strip() == "mixpanel-stream: 300 records"


def test_raw_profiles_with_filters(mixpanel, capfd):
    server = mixpanel(profiles=30)
    assert main(["profiles", "--raw", "--output-property", "$email", "--cohort-id", "7", "-q"]) == 0
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert len(lines) == 30 and '"$distinct_id"' in lines[0] and err == ""
    assert server.engage_requests()[0].form["filter_by_cohort"] == '{"id": 7}'


def test_event_filters_reach_mixpanel(mixpanel, capfd):
    server = mixpanel(events_per_day=100)
    assert main(["events", "--from", DAY, "--to", DAY, "--event", "Purchase", "--event", "Search", "--limit", "5"]) == 0
    assert capfd.readouterr().out.count("\n") == 5  # not splitlines(): U+2028 is inside records
    assert server.export_requests()[0].params["event"] == '["Purchase", "Search"]'


def test_file_from_the_cli_equals_the_operators_object(mixpanel, s3, capfd):
    mixpanel(events_per_day=400)
    client, bucket = s3
    assert main(["events", "--from", DAY, "--to", DAY, "-q"]) == 0
    cli_bytes = capfd.readouterr().out.encode()
    MixpanelStreamToS3Operator(
        task_id="t", s3_bucket=bucket, s3_key="x.jsonl", from_date=DAY, to_date=DAY, compression=None
    ).execute({})
    assert client.get_object(Bucket=bucket, Key="x.jsonl")["Body"].read() == cli_bytes


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


def test_wrong_secret_is_one_clear_line(mixpanel):
    server = mixpanel()
    result = run(
        ["events", "--from", DAY, "--to", DAY], env_conn=server.connection_json().replace("test-secret", "Xy-bad")
    )
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixpanel-stream: error:") and "authentication failed" in lines[0]
    assert b"Xy-bad" not in result.stderr + result.stdout


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
        options = {"--conn-id", "--raw", "--where", "--quiet", "--debug"} | (
            {"--from", "--to", "--event", "--limit"} if command == "events" else {"--cohort-id", "--output-property"}
        )
        assert all(option in text for option in options), text


def test_console_script_is_installed():
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "mixpanel-stream"), "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "mixpanel-stream" in result.stdout
