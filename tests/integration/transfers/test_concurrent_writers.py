"""Two tasks exporting the same window at once (a zombie task Airflow already rescheduled, a
backfill overlapping the scheduled run, a manual trigger), raced against moto's S3 and
fake-gcs-server with random timing.

Each task reads another Mixpanel project (a test server of its own, with another number of events
that day), so parts of the two runs mixed under one manifest show. Every race must end with the
window's records exactly once under a manifest that matches its parts, and any task that failed
must have failed naming the other writer.

``MIXPANEL_RACES`` sets how many races each store gets (``make races`` runs a longer loop).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mixpanel.transfers.lease import WindowLockedError
from tests.integration.transfers.helpers import Destination, jsonl

pytestmark = pytest.mark.integration

DAY = "2024-03-01"
KEY = "ev/{window}/part-{part}.jsonl"
# Each run writes two or three parts (a part is committed once a 256 KiB batch passes
# MAX_FILE_SIZE: about 290 events), so a run can be overtaken mid-window.
EVENTS = {"scheduled": 500, "backfill": 650}
MAX_FILE_SIZE = 64 * 1024
# Throttled so one run lasts most of a second and the two overlap in many ways.
BYTES_PER_SECOND = 600_000
# Each task starts after a random delay up to this (seconds): sometimes together, sometimes one
# mid-way through the other, sometimes one after the other.
MAX_START_DELAY = 1.0
RACES = int(os.environ.get("MIXPANEL_RACES", "10"))


@dataclass
class Racer:
    """One task of a race: the run it belongs to and what its execute gave."""

    run_id: str
    conn_id: str
    #: the records this task writes when it runs alone
    expected: list[dict]
    result: dict | None = None
    error: BaseException | None = None
    finished: float = field(default=0.0)

    @property
    def context(self) -> dict[str, Any]:
        ti = SimpleNamespace(
            dag_id="mixpanel_daily", task_id="to_store", run_id=self.run_id, try_number=1, map_index=-1
        )
        return {"ti": ti, "run_id": self.run_id}


def _operator(destination: Destination, conn_id: str):
    return destination.operator(
        KEY,
        task_id="to_store",
        from_date=DAY,
        to_date=DAY,
        compression=None,
        max_file_size_bytes=MAX_FILE_SIZE,
        mixpanel_conn_id=conn_id,
    )


def _race(destination: Destination, racers: list[Racer], seed: int) -> None:
    rng = random.Random(seed)
    delays = [rng.uniform(0, MAX_START_DELAY) for _ in racers]

    def run(racer: Racer, delay: float) -> None:
        time.sleep(delay)
        operator = _operator(destination, racer.conn_id)
        try:
            racer.result = operator.execute(racer.context)
        except Exception as err:
            racer.error = err
        racer.finished = time.monotonic()

    threads = [threading.Thread(target=run, args=(r, d)) for r, d in zip(racers, delays, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def _outcome(destination: Destination, racers: list[Racer]) -> str:
    """What one race left: ``"one wrote, the other refused"``, ``"one after the other"``, or a
    word for what went wrong (the test fails on those)."""
    manifests = destination.manifests()
    objects = destination.objects()
    if list(manifests) != ["ev/2024-03-01/_manifest.json"]:
        return f"no manifest ({[type(r.error).__name__ for r in racers]})"
    manifest = manifests["ev/2024-03-01/_manifest.json"]
    listed = [p["uri"].split("/", 3)[3] for p in manifest["parts"]]
    if sorted(listed) != sorted(objects):
        return "manifest does not list the parts there are"
    records = [r for name in listed for r in jsonl(objects[name], None)]
    if [len(objects[name]) for name in listed] != [p["bytes"] for p in manifest["parts"]]:
        return "part sizes differ from the manifest"
    if len(records) != manifest["records"]:
        return f"manifest says {manifest['records']} records, parts hold {len(records)}"
    writers = [r for r in racers if r.expected == records]
    if not writers:
        return "records are not one run's, exactly once"
    failed = [r for r in racers if r.error is not None]
    if not failed:
        last = max(racers, key=lambda r: r.finished)
        return "one after the other" if writers[0] is last else "earlier run's data survived a later run"
    if len(failed) == 2:
        return "both failed"
    loser, winner = failed[0], next(r for r in racers if r.error is None)
    if writers[0] is not winner:
        return "the failed run's data survived"
    message = str(loser.error)
    if isinstance(loser.error, WindowLockedError) and winner.run_id in message:
        return "one wrote, the other refused"
    return f"failed without naming the other writer: {type(loser.error).__name__}: {message[:200]}"


def _fresh_bucket(destination: Destination, race: int) -> str:
    name = f"race-{race}-{random.getrandbits(32):08x}"
    if destination.kind == "s3":
        destination.client.create_bucket(Bucket=name)
    else:
        destination.client.create_bucket(name)
    return name


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_two_tasks_writing_one_window_at_once_leave_it_whole(kind, make_server, monkeypatch, request):
    destination = Destination(kind, request.getfixturevalue(kind))
    racers = []
    for run_id, events in EVENTS.items():
        server = make_server(events_per_day=events, gzip=False, bytes_per_second=BYTES_PER_SECOND)
        conn_id = f"mixpanel_{run_id}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", server.connection_json())
        destination.bucket = _fresh_bucket(destination, -1)
        _operator(destination, conn_id).execute({})  # alone: what this task writes
        alone = [r for part in sorted(destination.objects().items()) for r in jsonl(part[1], None)]
        racers.append((run_id, conn_id, alone))
    outcomes: Counter[str] = Counter()
    for race in range(RACES):
        destination.bucket = _fresh_bucket(destination, race)
        run = [Racer(f"{run_id}__{race}", conn_id, expected) for run_id, conn_id, expected in racers]
        _race(destination, run, seed=race)
        outcomes[_outcome(destination, run)] += 1
    report = json.dumps(dict(outcomes), indent=1)
    print(f"\n{kind}: {RACES} races: {report}")
    good = {"one wrote, the other refused", "one after the other"}
    assert set(outcomes) <= good, f"{kind}: races that left the window wrong: {report}"
