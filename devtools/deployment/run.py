"""The deployment test: the provider's wheel in a production-shaped Airflow, driven only through
the REST API, as a user would run it. ``devtools/deployment/run.sh`` installs what it needs and
runs this with the deployment venv's Python; README.md beside this file says what it checks.

Airflow 3 (default): Postgres, Redis, api-server, scheduler, dag-processor, triggerer and two
Celery workers. ``--airflow 2``: Airflow 2.11 in its lighter form (Postgres, webserver, scheduler
with the LocalExecutor, triggerer). ``--measure``: the 30-day backfill timed on one worker and on
two, against a throttled test server.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.deployment import checks
from devtools.deployment.checks import Bucket, Report, Stopwatch
from devtools.deployment.components import Deployment
from devtools.deployment.infra import (
    AWS_ACCESS_KEY_ID,
    GCP_PROJECT,
    gcs_client,
    s3_client,
    start_emulators,
    start_mixpanel,
    start_postgres,
    start_redis,
)
from devtools.deployment.processes import Services, kill_tree, wait_until
from devtools.deployment.rest import AirflowApi
from devtools.deployment.ui_check import run_ui_check

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing import MixpanelTestServer

DAG_EVENTS = "example_mixpanel_events_to_s3"
DAG_PROFILES = "example_mixpanel_profiles_to_gcs"
DAG_BACKFILL = "example_mixpanel_backfill"
DAG_HOOK = "example_mixpanel_hook_task"
DAG_ICEBERG = "example_mixpanel_events_to_iceberg"
DAG_DAY_COUNTS = "example_mixpanel_iceberg_day_counts"
ICEBERG_TABLE = "mixpanel.events"
# The Iceberg example's parts and warehouse: a bucket of their own, so the checks of the JSONL
# examples' bucket read only JSONL.
LAKE_BUCKET = "mixpanel-lake"
EXAMPLE_DAG_IDS = (DAG_EVENTS, DAG_PROFILES, DAG_BACKFILL, DAG_HOOK)
DAILY_DAG_IDS = (DAG_EVENTS, DAG_PROFILES, DAG_HOOK)

BUCKET = "mixpanel-deployment"
POOL, POOL_SLOTS = "mixpanel_export", 3
BACKFILL_START, BACKFILL_DAYS = date(2024, 3, 1), 30
CLEARED_DAY = date(2024, 3, 15)
DAILY_LOGICAL_DATE = datetime(2024, 5, 15).isoformat() + "+00:00"
KILL_DAY = date(2024, 6, 1)
# the browser check's screenshots (gitignored), kept after the run for people to look at
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# what the events DAGs declare as their outlets (example_dags), listed on the Assets page
EVENTS_ASSET = "s3://my-mixpanel-exports/mixpanel/events"


@dataclass
class World:
    """Everything one test run started and learned."""

    args: argparse.Namespace
    run_dir: Path
    services: Services
    report: Report
    mixpanel_secret: str = field(default_factory=lambda: "mp-" + secrets.token_urlsafe(24))
    aws_secret: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    mixpanel: MixpanelTestServer | None = None
    deployment: Deployment | None = None
    api: AirflowApi | None = None
    s3: Bucket | None = None
    gcs: Bucket | None = None
    # days that were served with another number of events than the server's default
    events_per_day: dict[date, int] = field(default_factory=dict)

    @property
    def airflow3(self) -> bool:
        return self.args.airflow >= 3

    def need(self) -> tuple[MixpanelTestServer, Deployment, AirflowApi, Bucket, Bucket]:
        assert self.mixpanel and self.deployment and self.api and self.s3 and self.gcs
        return self.mixpanel, self.deployment, self.api, self.s3, self.gcs


# ---------------------------------------------------------------- bring-up


def bring_up(world: World, workers: int, concurrency: int, events_per_day: int) -> None:
    args = world.args
    with Stopwatch(world.report, "start Postgres, Redis, emulators, Mixpanel test server"):
        postgres = start_postgres(world.services, world.run_dir / "postgres")
        redis = start_redis(world.services, world.run_dir / "redis") if world.airflow3 else None
        emulators = start_emulators(world.services)
        world.mixpanel = start_mixpanel(
            world.mixpanel_secret, events_per_day=events_per_day, profiles=args.profiles, speed_up=args.speed_up
        )
        world.s3 = Bucket("s3", BUCKET, s3_client(emulators.s3_url, world.aws_secret))
        world.s3.client.create_bucket(Bucket=BUCKET)
        world.s3.client.create_bucket(Bucket=LAKE_BUCKET)
        world.gcs = Bucket("gs", BUCKET, gcs_client(emulators.gcs_url))
        world.gcs.client.create_bucket(BUCKET)
    with Stopwatch(world.report, "start Airflow"):
        world.deployment = Deployment(
            version=args.airflow,
            home=world.run_dir / "airflow-home",
            services=world.services,
            postgres=postgres,
            redis=redis,
            emulators=emulators,
        )
        world.deployment.configure()
        world.deployment.start(workers=workers, concurrency=concurrency)
        world.api = AirflowApi(world.deployment.api_url, args.airflow, "admin", world.deployment.password)
        wait_until(lambda: set(EXAMPLE_DAG_IDS) <= set(world.api.dag_ids()), "the example DAGs parsed", 240)  # type: ignore[union-attr]
    _report_import_errors(world)


def _report_import_errors(world: World) -> None:
    _, _, api, _, _ = world.need()
    errors = api.call("GET", "/importErrors")["import_errors"]
    world.report.record(
        "example DAGs import without errors", not errors, "; ".join(e.get("filename", "") for e in errors)
    )


def connections(world: World) -> dict[str, dict[str, Any]]:
    mixpanel, deployment, _, _, _ = world.need()
    return {
        "mixpanel_default": {
            "conn_type": "mixpanel",
            "login": mixpanel.config.username,
            "password": world.mixpanel_secret,
            # the base URL in the Host field, as the connection form offers it ("API base URL")
            "host": mixpanel.url,
            # every key named, as docs/connections/mixpanel.rst advises: Airflow 3.3's Edit dialog
            # shows only the extra fields whose key is in the extra
            "extra": {
                "project_id": str(mixpanel.config.project_id),
                "region": "us",
                "workspace_id": "",
                "project_timezone": "",
            },
        },
        "aws_default": {
            "conn_type": "aws",
            "login": AWS_ACCESS_KEY_ID,
            "password": world.aws_secret,
            "extra": {
                "region_name": "us-east-1",
                "endpoint_url": deployment.emulators.s3_url,
                # the Test button calls STS, which ignores the global endpoint_url: never reach AWS
                "service_config": {"sts": {"endpoint_url": deployment.emulators.s3_url}},
            },
        },
        "google_cloud_default": {
            "conn_type": "google_cloud_platform",
            "extra": {"is_anonymous": True, "project": GCP_PROJECT},
        },
        "iceberg_default": {"conn_type": "iceberg", "extra": iceberg_catalog_properties(world)},
    }


def iceberg_catalog_properties(world: World) -> dict[str, str]:
    """pyiceberg's SQL catalog in the deployment's Postgres (the metadata database: pyiceberg keeps
    its two tables beside Airflow's), the warehouse in the lake bucket on moto's S3."""
    _, deployment, _, _, _ = world.need()
    return {
        "type": "sql",
        "uri": deployment.postgres.url(),
        "warehouse": f"s3://{LAKE_BUCKET}/warehouse",
        "s3.endpoint": deployment.emulators.s3_url,
        "s3.access-key-id": AWS_ACCESS_KEY_ID,
        "s3.secret-access-key": world.aws_secret,
        "s3.region": "us-east-1",
    }


def configure_through_api(world: World) -> None:
    """Connections, pool and Variables through the REST API, as an administrator would; the Test
    button on each connection."""
    _, _, api, _, _ = world.need()
    with Stopwatch(world.report, "connections, pool, variables (REST)"):
        for conn_id, fields in connections(world).items():
            api.create_connection(conn_id, **fields)
            result = api.test_connection(conn_id, **fields)
            if conn_id == "mixpanel_default":
                world.report.record(
                    "test connection (mixpanel) succeeds", bool(result.get("status")), str(result.get("message"))
                )
            else:  # the amazon/google providers' own tests: informative only
                world.report.note(f"test connection {conn_id}: {result.get('status')} {result.get('message')}")
        wrong = {**connections(world)["mixpanel_default"], "password": "wrong-secret-" + secrets.token_hex(4)}
        result = api.test_connection("mixpanel_default", **wrong)
        world.report.record(
            "test connection (mixpanel) refuses a wrong secret with a message",
            not result.get("status") and bool(result.get("message")),
            str(result.get("message"))[:200],
        )
        api.create_pool(POOL, POOL_SLOTS, "Mixpanel export requests")
        api.set_variable("mixpanel_s3_bucket", BUCKET)
        api.set_variable("mixpanel_gcs_bucket", BUCKET)
        api.set_variable("mixpanel_lake_bucket", LAKE_BUCKET)


# ---------------------------------------------------------------- runs


def trigger_examples(world: World) -> list[tuple[str, str]]:
    _, _, api, _, _ = world.need()
    end = BACKFILL_START + timedelta(days=BACKFILL_DAYS - 1)
    triggered = [
        (
            DAG_BACKFILL,
            "deployment__backfill",
            "2024-04-01T00:00:00+00:00",
            {"start": str(BACKFILL_START), "end": str(end)},
        ),
        (DAG_EVENTS, "deployment__events", DAILY_LOGICAL_DATE, {}),
        (DAG_PROFILES, "deployment__profiles", DAILY_LOGICAL_DATE, {}),
        (DAG_HOOK, "deployment__hook", DAILY_LOGICAL_DATE, {}),
    ]
    for dag_id, *_ in triggered:
        api.set_paused(dag_id, False)
    for dag_id, run_id, logical_date, conf in triggered:
        api.trigger(dag_id, run_id, logical_date, conf)
    return [(dag_id, run_id) for dag_id, run_id, _, _ in triggered]


def all_runs(world: World) -> list[tuple[str, str]]:
    """Every run of the example DAGs: the triggered ones and those the scheduler made on unpause."""
    _, _, api, _, _ = world.need()
    return [(dag_id, run["dag_run_id"]) for dag_id in EXAMPLE_DAG_IDS for run in api.runs(dag_id)]


def wait_for(world: World, runs: list[tuple[str, str]], what: str) -> dict[tuple[str, str], str]:
    _, _, api, _, _ = world.need()
    started = time.monotonic()
    states = api.wait_for_runs(runs, timeout=world.args.run_timeout)
    world.report.timings[f"runs: {what}"] = time.monotonic() - started
    return states


def task_instances(world: World, runs: list[tuple[str, str]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    _, _, api, _, _ = world.need()
    for dag_id, run_id in runs:
        for ti in api.task_instances(dag_id, run_id):
            yield dag_id, run_id, ti


def check_tasks_succeeded(world: World, runs: list[tuple[str, str]]) -> list[tuple[str, str, dict[str, Any]]]:
    tis = list(task_instances(world, runs))
    failed = [
        f"{d}/{r}/{ti['task_id']}[{ti.get('map_index')}]={ti['state']}" for d, r, ti in tis if ti["state"] != "success"
    ]
    world.report.record(
        f"every task instance succeeded ({len(tis)} in {len(runs)} runs)",
        not failed and bool(tis),
        "; ".join(failed[:10])
        + (
            f" ... {len(failed)} in all; see {world.deployment.task_log_dir() if world.deployment else ''}"
            if failed
            else ""
        ),
    )
    return tis


def check_workers(world: World, tis: list[tuple[str, str, dict[str, Any]]]) -> None:
    hosts = Counter(ti.get("hostname") for _, _, ti in tis)
    if not world.airflow3:
        world.report.note(f"task instances per host (LocalExecutor): {dict(hosts)}")
        return
    world.report.record(
        "both Celery workers ran tasks",
        {"worker1", "worker2"} <= set(hosts),
        f"task instances per worker: {dict(hosts)}",
    )


# ---------------------------------------------------------------- what the tasks wrote


def expected_event_ids(world: World, day: date) -> Iterator[str]:
    from airflow_provider_mixpanel.testing.data import SyntheticEvents

    mixpanel, *_ = world.need()
    return SyntheticEvents(world.events_per_day.get(day, mixpanel.config.events_per_day)).insert_ids(day)


def check_events_in_s3(world: World, must_have: set[date]) -> checks.Contents:
    """Every day found in the bucket holds exactly the server's events for that day, each once."""
    _, _, _, s3, _ = world.need()
    contents = checks.read_events(s3, "")
    wrong = {}
    for day, ids in sorted(contents.ids.items()):
        problem = checks.compare_ids(ids, expected_event_ids(world, day))
        if problem:
            wrong[day] = problem
    missing = sorted(must_have - contents.ids.keys())
    detail = f"{len(contents.ids)} days in {len(contents.objects)} objects"
    if wrong:
        detail += "; wrong: " + "; ".join(f"{d}: {p}" for d, p in list(wrong.items())[:5])
    if missing:
        detail += f"; days never written: {', '.join(map(str, missing[:10]))}"
    world.report.record(
        "each day in S3 holds exactly the test server's events, once", not wrong and not missing, detail
    )
    return contents


def check_profiles_in_gcs(world: World) -> checks.Contents:
    mixpanel, _, _, _, gcs = world.need()
    contents = checks.read_profiles(gcs, "")
    wrong = {}
    for (where, kind), ids in sorted(contents.ids.items()):
        problem = checks.compare_ids(ids, (f"{kind}-{i}" for i in range(mixpanel.config.profiles)))
        if problem:
            wrong[(where, kind)] = problem
    kinds = Counter(kind for _, kind in contents.ids)
    world.report.record(
        "each profile snapshot in GCS holds every test-server profile, once",
        bool(contents.ids) and not wrong,
        f"snapshots by kind: {dict(kinds)}" + ("; wrong: " + str(list(wrong.items())[:3]) if wrong else ""),
    )
    if not kinds.get("company"):
        world.report.note("no group-profile snapshot written (the example DAG exports user profiles only)")
    return contents


def check_manifests(world: World, contents: dict[str, checks.Contents]) -> None:
    _, _, _, s3, gcs = world.need()
    total, problems = 0, []
    for bucket in (s3, gcs):
        count, found = checks.check_manifests(bucket, contents[bucket.scheme])
        total += count
        problems += found
    if total == 0:
        world.report.skip("_manifest.json files match their parts", "no _manifest.json written (issue 11 not landed)")
        return
    world.report.record(
        "_manifest.json files match their parts",
        not problems,
        f"{total} manifests" + ("; " + "; ".join(problems[:5]) if problems else ""),
    )


def check_no_incomplete_uploads(world: World, context: str) -> None:
    _, _, _, s3, _ = world.need()
    uploads = s3.incomplete_uploads()
    world.report.record(
        f"no incomplete S3 multipart upload left ({context})",
        not uploads,
        f"{len(uploads)} left: "
        + ", ".join(u["Key"] for u in uploads[:5])
        + " (the operator should abort leftover uploads at the start of a window: issue 11)"
        if uploads
        else "",
    )


def xcom_manifests(world: World, tis: list[tuple[str, str, dict[str, Any]]]) -> dict[tuple[str, str, str, int], Any]:
    """The return value (the run's manifest) of every operator task instance."""
    _, _, api, _, _ = world.need()
    found = {}
    for dag_id, run_id, ti in tis:
        values = api.xcom_values(dag_id, run_id, ti["task_id"], ti.get("map_index", -1))
        found[(dag_id, run_id, ti["task_id"], ti.get("map_index", -1))] = values.get("return_value")
    return found


def check_xcom_manifests(
    world: World, returns: dict[tuple[str, str, str, int], Any], contents: dict[str, checks.Contents]
) -> None:
    """Each export task's manifest (its XCom) names objects that exist and hold its record count."""
    problems, checked = [], 0
    for (dag_id, run_id, task_id, map_index), manifest in returns.items():
        if not (isinstance(manifest, dict) and "files" in manifest):
            continue
        checked += 1
        counted = 0
        for uri in manifest["files"]:
            scheme, _, rest = uri.partition("://")
            key = rest.partition("/")[2]
            held = contents["s3" if scheme == "s3" else "gs"].per_object.get(key)
            if held is None:
                problems.append(f"{dag_id}/{run_id}/{task_id}[{map_index}] names {uri}, which does not exist")
            counted += held or 0
        if manifest.get("records") not in (None, counted):
            problems.append(
                f"{dag_id}/{run_id}/{task_id}[{map_index}]: {manifest['records']} records, objects hold {counted}"
            )
    world.report.record(
        "each export task's XCom manifest matches the objects it names",
        checked > 0 and not problems,
        f"{checked} manifests" + ("; " + "; ".join(problems[:5]) if problems else ""),
    )


def check_daily_days(world: World, returns: dict[tuple[str, str, str, int], Any]) -> None:
    """The daily events DAG exports the day that ended before its run (issue 15): the last day of a
    non-empty data interval, or the day before the logical date when the interval is empty."""
    _, _, api, _, _ = world.need()
    wrong, seen = [], 0
    for (dag_id, run_id, _, _), manifest in returns.items():
        if dag_id != DAG_EVENTS or not isinstance(manifest, dict) or not manifest.get("to_date"):
            continue
        run = api.run(dag_id, run_id)
        expected = _day_that_ended(run)
        seen += 1
        if manifest["to_date"] != str(expected):
            wrong.append(
                f"{run_id} (logical date {run.get('logical_date')}) "
                f"exported up to {manifest['to_date']}, not {expected}"
            )
    world.report.record(
        "the daily events DAG exports the day that ended", seen > 0 and not wrong, "; ".join(wrong) or f"{seen} runs"
    )


def check_rendered_days(world: World) -> None:
    """Rendered Templates name the day a run exports when the DAG gives no dates (from_date and
    to_date filled in at render time), so nobody has to read the log for it."""
    _, _, api, _, _ = world.need()
    run = api.run(DAG_EVENTS, "deployment__events")
    rendered = api.rendered_fields(DAG_EVENTS, "deployment__events", "export_events") or {}
    expected = str(_day_that_ended(run))
    world.report.record(
        "Rendered Templates show the run's day as from_date and to_date",
        (rendered.get("from_date"), rendered.get("to_date")) == (expected, expected),
        f"from_date {rendered.get('from_date')!r}, to_date {rendered.get('to_date')!r}, expected {expected}",
    )


def _day_that_ended(run: dict[str, Any]) -> date:
    start, end = run.get("data_interval_start"), run.get("data_interval_end")
    if start and end and start != end:
        return datetime.fromisoformat(end).date() - timedelta(days=1)
    return datetime.fromisoformat(run["logical_date"]).date() - timedelta(days=1)


def check_hook_task(world: World, returns: dict[tuple[str, str, str, int], Any]) -> None:
    mixpanel, *_ = world.need()
    totals = [sum(v.values()) for (d, _, _, _), v in returns.items() if d == DAG_HOOK and isinstance(v, dict)]
    world.report.record(
        "the hook @task counted each day's events",
        bool(totals) and all(t == mixpanel.config.events_per_day for t in totals),
        f"totals {totals}, expected {mixpanel.config.events_per_day} each",
    )


def check_secrets(world: World) -> None:
    _, deployment, api, _, _ = world.need()
    needles = {"Mixpanel secret": world.mixpanel_secret, "AWS secret key": world.aws_secret}
    in_task_logs = checks.files_containing(deployment.task_log_dir(), needles)
    task_logs = sum(1 for p in deployment.task_log_dir().rglob("*") if p.is_file())
    world.report.record(
        f"no secret in any task or component log under AIRFLOW_HOME/logs ({task_logs} files)",
        not in_task_logs,
        str(in_task_logs),
    )
    in_process_logs = checks.files_containing(world.services.log_dir, needles)
    world.report.record("no secret in the Airflow processes' own output", not in_process_logs, str(in_process_logs))
    in_answers = checks.texts_containing(api.answers, needles)
    world.report.record(
        f"no secret in any REST answer: rendered fields, XCom, task instances ({len(api.answers)} answers)",
        not in_answers,
        str(in_answers),
    )


def fetch_rendered_fields(world: World, tis: list[tuple[str, str, dict[str, Any]]]) -> int:
    """Ask for each task instance's rendered template fields (kept in the answers for the scan)."""
    _, _, api, _, _ = world.need()
    for dag_id, run_id, ti in tis:
        api.rendered_fields(dag_id, run_id, ti["task_id"], ti.get("map_index", -1))
    return len(tis)


def check_cli(world: World) -> None:
    """``mixpanel-stream`` on a machine of the deployment reads the connection created through the
    REST API, from the metadata database (no AIRFLOW_CONN_ variable anywhere), and prints no secret."""
    mixpanel, deployment, _, _, _ = world.need()
    cli = str(Path(deployment.airflow).with_name("mixpanel-stream"))
    day = str(BACKFILL_START)
    result = subprocess.run(
        [cli, "events", "--from", day, "--to", day],
        env=deployment.env,
        cwd=deployment.home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stdout.count("\n")
    leaked = world.mixpanel_secret in result.stdout + result.stderr
    world.report.record(
        "mixpanel-stream reads the REST-created connection from the metadata database",
        result.returncode == 0 and lines == mixpanel.config.events_per_day and not leaked,
        f"exit {result.returncode}, {lines} lines, secret printed: {leaked}; {result.stderr.strip()[-300:]}",
    )


# ---------------------------------------------------------------- clear with upstream and downstream


def clear_and_rerun(world: World, backfill_run: str) -> None:
    """Clear one day's mapped task with its upstream and downstream: only it and its upstream run
    again, and its day is replaced, not doubled (checked with the whole bucket afterwards)."""
    _, _, api, _, _ = world.need()
    tis = api.task_instances(DAG_BACKFILL, backfill_run)
    target = next(
        (ti for ti in tis if ti["task_id"] == "export_day" and _rendered(ti, "from_date") == str(CLEARED_DAY)), None
    )
    if target is None:
        world.report.record("clear with upstream and downstream", False, f"no export_day task for {CLEARED_DAY}")
        return
    before = {ti["task_id"]: ti["try_number"] for ti in tis if ti.get("map_index", -1) in (-1, target["map_index"])}
    task_ids: list[Any] = [["export_day", target["map_index"]]] if world.airflow3 else ["export_day"]
    with Stopwatch(world.report, "clear with upstream and downstream, re-run"):
        cleared = api.clear(DAG_BACKFILL, backfill_run, task_ids, upstream=True, downstream=True)
        world.report.record(
            "clear with upstream and downstream is accepted",
            {"day_windows", "export_day"} <= {ti["task_id"] for ti in cleared},
            f"cleared {sorted((ti['task_id'], ti.get('map_index')) for ti in cleared)[:6]}",
        )
        wait_until(lambda: api.run(DAG_BACKFILL, backfill_run)["state"] != "success", "the cleared run to restart", 30)
        states = wait_for(world, [(DAG_BACKFILL, backfill_run)], "cleared backfill re-run")
    after = {
        ti["task_id"]: ti
        for ti in api.task_instances(DAG_BACKFILL, backfill_run)
        if ti.get("map_index", -1) in (-1, target["map_index"])
    }
    reran = all(after[task]["try_number"] > tries for task, tries in before.items())
    world.report.record(
        "the cleared tasks ran again and succeeded",
        reran and all(ti["state"] == "success" for ti in after.values()) and set(states.values()) == {"success"},
        f"tries before {before}, after { {t: ti['try_number'] for t, ti in after.items()} }",
    )


def _rendered(ti: dict[str, Any], name: str) -> Any:
    return (ti.get("rendered_fields") or {}).get(name)


# ---------------------------------------------------------------- a worker killed mid-stream


def kill_a_worker_mid_stream(world: World) -> None:
    """A large, slowly served day; once its first multipart part is uploaded, the worker streaming
    it dies (SIGKILL, whole process tree). The scheduler notices the missing heartbeats, Airflow
    retries the task on the other worker, and the day ends up in S3 exactly once."""
    mixpanel, deployment, api, _, _ = world.need()
    args = world.args
    for dag_id in DAILY_DAG_IDS:  # nothing else runs meanwhile (and no scheduled run appears)
        api.set_paused(dag_id, True)
    world.events_per_day[KILL_DAY] = args.kill_events
    mixpanel.config.events_per_day = args.kill_events
    mixpanel.config.bytes_per_second = args.kill_bytes_per_second
    run_id = "deployment__killed_worker"
    with Stopwatch(world.report, "kill a worker mid-stream, retry"):
        api.trigger(DAG_BACKFILL, run_id, "2024-06-02T00:00:00+00:00", {"start": str(KILL_DAY), "end": str(KILL_DAY)})
        ti = _wait_for_running(world, run_id, "export_day")
        victim = next(w for w in deployment.workers if w.name == ti["hostname"])
        survivor = next(w.name for w in deployment.workers if w is not victim)
        _wait_for_multipart_upload(world)
        killed = kill_tree(victim.pid)
        mixpanel.config.bytes_per_second = None  # the retry streams at full speed
        world.report.note(f"SIGKILLed {victim.name} (pids {killed}) while it streamed {KILL_DAY}")
        states = wait_for(world, [(DAG_BACKFILL, run_id)], "retry after killed worker")
    mixpanel.config.events_per_day = args.events_per_day
    final = next(t for t in api.task_instances(DAG_BACKFILL, run_id) if t["task_id"] == "export_day")
    world.report.record(
        "the killed worker's task was retried on the other worker and succeeded",
        states[(DAG_BACKFILL, run_id)] == "success"
        and final["state"] == "success"
        and final["hostname"] == survivor
        and final["try_number"] >= 2,
        f"state {final['state']}, try {final['try_number']}, on {final['hostname']} (killed: {victim.name})",
    )
    check_no_incomplete_uploads(world, "after the killed worker's retry")


def _wait_for_running(world: World, run_id: str, task_id: str) -> dict[str, Any]:
    _, _, api, _, _ = world.need()
    found: dict[str, Any] = {}

    def running() -> bool:
        for ti in api.task_instances(DAG_BACKFILL, run_id):
            if ti["task_id"] == task_id and ti["state"] == "running" and ti.get("hostname"):
                found.update(ti)
                return True
        return False

    wait_until(running, f"{task_id} of {run_id} running", 180)
    return found


def _wait_for_multipart_upload(world: World) -> None:
    _, _, _, s3, _ = world.need()
    try:
        wait_until(lambda: bool(s3.incomplete_uploads()), "a multipart upload of the large day", 120)
    except TimeoutError:
        world.report.note("no multipart upload seen before the kill (the day was smaller than a part)")


# ---------------------------------------------------------------- the scenarios


def scenario(world: World) -> None:
    args = world.args
    bring_up(
        world, workers=2 if world.airflow3 else 0, concurrency=args.concurrency, events_per_day=args.events_per_day
    )
    configure_through_api(world)
    with Stopwatch(world.report, "example DAG runs"):
        triggered = trigger_examples(world)
        wait_for(world, triggered, "example DAGs")
        time.sleep(2)
        runs = all_runs(world)  # with the scheduled runs that unpausing created
        wait_for(world, runs, "scheduled runs")
    tis = check_tasks_succeeded(world, runs)
    check_workers(world, tis)
    returns = xcom_manifests(world, tis)
    fetch_rendered_fields(world, tis)
    backfill_days = {BACKFILL_START + timedelta(days=n) for n in range(BACKFILL_DAYS)}
    contents = {"s3": check_events_in_s3(world, backfill_days), "gs": check_profiles_in_gcs(world)}
    check_manifests(world, contents)
    check_xcom_manifests(world, returns, contents)
    check_daily_days(world, returns)
    check_rendered_days(world)
    check_hook_task(world, returns)
    check_no_incomplete_uploads(world, "after the example runs")
    check_cli(world)
    check_iceberg_example(world)
    clear_and_rerun(world, "deployment__backfill")
    if world.airflow3 and not args.no_kill:
        kill_a_worker_mid_stream(world)
    with Stopwatch(world.report, "final checks"):
        check_events_in_s3(world, backfill_days)
        check_secrets(world)
    if world.airflow3:
        with Stopwatch(world.report, "the UI in headless Chromium"):
            check_ui(world)
    else:
        world.report.skip("the UI in a browser", "Airflow 3 only (Airflow 2.11's UI has another form)")


def check_ui(world: World) -> None:
    """What a user sees, in a real browser (ui_check.py): the connection dialogs, the grid, a task's
    log and XCom, the Assets page; no secret on any page."""
    _, deployment, api, _, _ = world.need()
    run_ui_check(
        services=world.services,
        run_dir=world.run_dir,
        artifacts=Path(world.args.artifacts),
        base_url=deployment.api_url,
        username="admin",
        password=deployment.password,
        api=api,
        report=world.report,
        secret_values={"Mixpanel secret": world.mixpanel_secret, "AWS secret key": world.aws_secret},
        task=(DAG_EVENTS, "deployment__events", "export_events"),
        asset=EVENTS_ASSET,
        rest_conn_id="mixpanel_default",
    )


def check_iceberg_example(world: World) -> None:
    """The daily example into an Iceberg table whose catalog is in Postgres: each of its 6 days
    holds exactly the server's events, and (Airflow 3.3+) the partitioned downstream DAG runs once
    per day written, each run's partition key a day."""
    from pyiceberg.catalog import load_catalog

    _, _, api, _, _ = world.need()
    if not world.airflow3:
        world.report.skip(
            "the Iceberg example (catalog in Postgres)",
            "pyiceberg's SQL catalog needs SQLAlchemy 2; Airflow 2.11 pins SQLAlchemy < 2 (REST, Glue work there)",
        )
        return
    with Stopwatch(world.report, "Iceberg example and its partitioned downstream DAG"):
        api.set_paused(DAG_DAY_COUNTS, False)
        api.set_paused(DAG_ICEBERG, False)
        run = (DAG_ICEBERG, "deployment__iceberg")
        api.trigger(*run, DAILY_LOGICAL_DATE, {})
        states = api.wait_for_runs([run], timeout=world.args.run_timeout)
        world.report.record("the Iceberg example run succeeded", states[run] == "success", states[run])
        last = datetime.fromisoformat(DAILY_LOGICAL_DATE).date() - timedelta(days=1)
        days = [last - timedelta(days=n) for n in range(5, -1, -1)]
        table = load_catalog("iceberg_default", **iceberg_catalog_properties(world)).load_table(ICEBERG_TABLE)
        found: dict[date, list[str]] = {}
        for row in table.scan(selected_fields=("event_time", "insert_id")).to_arrow().to_pylist():
            if row["event_time"].date() in days:  # unpausing also made a scheduled run of recent days
                found.setdefault(row["event_time"].date(), []).append(row["insert_id"])
        wrong = {day: checks.compare_ids(found.get(day, []), expected_event_ids(world, day)) for day in days}
        wrong = {day: problem for day, problem in wrong.items() if problem}
        world.report.record(
            "each day of the Iceberg table (catalog in Postgres) holds exactly the server's events, once",
            not wrong and sorted(found) == days,
            f"{len(found)} days, {table.current_snapshot() and len(table.snapshots())} snapshots"
            + ("; wrong: " + "; ".join(f"{d}: {p}" for d, p in wrong.items()) if wrong else ""),
        )
        expected = sorted(str(day) for day in days)
        downstream: list[dict[str, Any]] = []

        def partitioned_runs_finished() -> bool:
            downstream[:] = [r for r in api.runs(DAG_DAY_COUNTS) if r.get("partition_key") in expected]
            keys = {r.get("partition_key") for r in downstream}
            return keys == set(expected) and all(r["state"] in ("success", "failed") for r in downstream)

        try:
            wait_until(partitioned_runs_finished, "the partitioned downstream DAG's runs", world.args.run_timeout)
        except Exception as err:  # the check below says what was found
            world.report.note(f"waiting for {DAG_DAY_COUNTS}: {err}")
        keys = sorted(str(r.get("partition_key")) for r in downstream)
        world.report.record(
            "a partitioned downstream DAG runs once per day written (Airflow 3.3 partition keys)",
            keys == expected and all(r["state"] == "success" for r in downstream),
            f"runs {[(r.get('partition_key'), r['state']) for r in downstream]}",
        )


def measure(world: World) -> None:
    """The 30-day backfill on one Celery worker, then on two, against a server throttled per
    connection: wall time, speed-up, tasks per worker, 429s met."""
    mixpanel_args = world.args
    bring_up(world, workers=1, concurrency=1, events_per_day=mixpanel_args.measure_events)
    mixpanel, deployment, api, _, _ = world.need()
    configure_through_api(world)
    mixpanel.config.bytes_per_second = mixpanel_args.measure_bytes_per_second
    api.set_paused(DAG_BACKFILL, False)
    results = []
    for workers in (1, 2):
        if workers == 2:
            deployment.start_worker(2, concurrency=1)
            time.sleep(20)  # the worker joins the queue
        results.append(_timed_backfill(world, workers))
    one, two = results
    speed_up = one["seconds"] / two["seconds"]
    world.report.record(
        "the 30-day backfill is at least 1.7x faster on two workers than on one",
        speed_up >= 1.7,
        f"{one['seconds']:.0f} s on one worker, {two['seconds']:.0f} s on two: {speed_up:.2f}x",
    )
    for result in results:
        world.report.note(
            f"{result['workers']} worker(s): {result['seconds']:.0f} s, tasks per worker {result['per_worker']}, "
            f"429s met {result['429s']}, export requests {result['requests']}"
        )
    check_events_in_s3(world, {BACKFILL_START + timedelta(days=n) for n in range(BACKFILL_DAYS)})


def _timed_backfill(world: World, workers: int) -> dict[str, Any]:
    mixpanel, _, api, _, _ = world.need()
    end = BACKFILL_START + timedelta(days=BACKFILL_DAYS - 1)
    run_id = f"measure__{workers}_workers"
    before_429 = _refused(mixpanel)
    before_requests = len(mixpanel.export_requests())
    started = time.monotonic()
    api.trigger(
        DAG_BACKFILL, run_id, f"2024-0{4 + workers}-01T00:00:00+00:00", {"start": str(BACKFILL_START), "end": str(end)}
    )
    state = api.wait_for_runs([(DAG_BACKFILL, run_id)], timeout=world.args.run_timeout)[(DAG_BACKFILL, run_id)]
    seconds = time.monotonic() - started
    tis = api.task_instances(DAG_BACKFILL, run_id)
    world.report.record(f"measured backfill on {workers} worker(s) succeeded", state == "success", run_id)
    return {
        "workers": workers,
        "seconds": seconds,
        "per_worker": dict(Counter(ti["hostname"] for ti in tis if ti["task_id"] == "export_day")),
        "429s": _refused(mixpanel) - before_429,
        "requests": len(mixpanel.export_requests()) - before_requests,
    }


def _refused(mixpanel: MixpanelTestServer) -> int:
    return sum(1 for r in mixpanel.requests if r.fault and r.fault.startswith("quota"))


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.deployment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--airflow", type=int, choices=(2, 3), default=3, help="Airflow major version (its venv)")
    parser.add_argument("--measure", action="store_true", help="time the 30-day backfill on one worker and on two")
    parser.add_argument("--keep", action="store_true", help="keep the databases too (the logs are always kept)")
    parser.add_argument("--no-kill", action="store_true", help="skip the killed-worker scenario")
    parser.add_argument("--hold", action="store_true", help="after the checks, keep everything running until Ctrl-C")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per Celery worker")
    parser.add_argument("--events-per-day", type=int, default=100)
    parser.add_argument("--profiles", type=int, default=250)
    parser.add_argument("--speed-up", type=float, default=60.0, help="test server: simulated seconds per second")
    parser.add_argument("--kill-events", type=int, default=300_000, help="events of the day streamed when killed")
    parser.add_argument("--kill-bytes-per-second", type=float, default=1_000_000, help="its throttle")
    parser.add_argument("--measure-events", type=int, default=2000, help="--measure: events per day")
    parser.add_argument("--measure-bytes-per-second", type=float, default=15_000, help="--measure: throttle")
    parser.add_argument("--run-timeout", type=float, default=900, help="seconds to wait for a set of DAG runs")
    parser.add_argument("--artifacts", default=str(ARTIFACTS), help="folder for the browser check's screenshots")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    run_dir = Path(tempfile.mkdtemp(prefix="mixpanel-deployment-"))
    run_dir.chmod(0o755)  # Postgres runs as another user below it
    (run_dir / "logs").mkdir()
    world = World(args, run_dir, Services(run_dir / "logs"), Report())
    started = time.monotonic()
    print(f"Deployment test on Airflow {args.airflow}{' (measure)' if args.measure else ''}: {run_dir}", flush=True)
    try:
        measure(world) if args.measure else scenario(world)
        if args.hold:
            hold(world)
    except BaseException as err:  # reported, then everything is stopped
        world.report.record("the deployment test ran to the end", False, f"{type(err).__name__}: {err}")
        traceback.print_exc()
    finally:
        tear_down(world)
    world.report.timings["total"] = time.monotonic() - started
    print_summary(world)
    return 1 if world.report.failed else 0


def hold(world: World) -> None:
    """Leave the deployment running for a person to look at, until Ctrl-C."""
    deployment = world.deployment
    if deployment is None:
        return
    env_file = world.run_dir / "airflow.env"
    env_file.write_text(
        "".join(
            f"export {k}='{v}'\n"
            for k, v in deployment.env.items()
            if k.startswith(("AIRFLOW", "STORAGE", "PYTHONPATH", "GCE_", "AWS_EC2", "NO_PROXY"))
        )
    )
    print(
        f"\nRunning: {deployment.api_url} (user admin, password {deployment.password}).\n"
        f"Airflow CLI against it: source {env_file} && {deployment.airflow} dags list\n"
        "Ctrl-C stops everything.",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt, SystemExit):  # Ctrl-C or SIGTERM: stop as asked
        signal.pause()


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def tear_down(world: World) -> None:
    print("--- stopping everything", flush=True)
    started = time.monotonic()
    world.services.stop_all()
    world.report.timings["stop everything"] = time.monotonic() - started
    if world.mixpanel is not None:
        world.mixpanel.stop()


def print_summary(world: World) -> None:
    report = world.report
    print("\n=== logs")
    for name, path in world.services.logs():
        print(f"  {name:18} {path}")
    if world.deployment is not None:
        print(f"  {'task logs':18} {world.deployment.task_log_dir()}")
        print(f"  {'airflow cli':18} {world.services.log_dir / 'airflow-cli.log'}")
    print("\n=== timings")
    for name, seconds in report.timings.items():
        print(f"  {seconds:7.1f} s  {name}")
    if world.mixpanel is not None:
        stats = world.mixpanel.quota_stats()
        print(
            f"\n=== Mixpanel test server: {len(world.mixpanel.export_requests())} export and "
            f"{len(world.mixpanel.engage_requests())} engage requests; quota stats {stats}"
        )
    passed = sum(1 for c in report.checks if c.status == "PASS")
    skipped = sum(1 for c in report.checks if c.status == "SKIP")
    print("\n=== checks")
    for check in report.checks:
        print(f"  [{check.status}] {check.name}")
    for check in report.failed:
        print(f"\nFAILED: {check.name}\n  {check.detail}")
    print(f"\ndeployment: {passed} passed, {len(report.failed)} failed" + (f", {skipped} skipped" if skipped else ""))
    if not world.args.keep:  # the databases go; the logs stay (a few MB)
        import shutil

        for data in ("postgres", "redis"):
            shutil.rmtree(world.run_dir / data, ignore_errors=True)
    print(f"(logs kept in {world.run_dir}{'' if world.args.keep else '; --keep keeps the databases too'})")
    sys.stdout.flush()
