"""One writer per window: two tasks exporting the same window at once, a holder that dies, a retry
of the same try, a re-run after completion, a lease lost while writing, and writers that take no
lease at all, over the in-memory store (whose conditional writes are atomic, as S3's and GCS's)."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from datetime import date

import pytest

from airflow_provider_mixpanel.testing.object_store import InMemoryObjectStore
from airflow_provider_mixpanel.transfers import parts as parts_module
from airflow_provider_mixpanel.transfers.lease import (
    LEASE_SECONDS,
    LeaseLostError,
    Leases,
    WindowLockedError,
    Writer,
    lease_name,
)
from airflow_provider_mixpanel.transfers.parts import AirflowTaskAborted
from airflow_provider_mixpanel.transfers.storage import PreconditionFailed, StorageConflictError
from tests.unit.transfers.exports import (
    DAY,
    Clock,
    Task,
    lease,
    lines,
    manifest,
    whole,
    window,
    writer,
)

A = lines(100, tag="a")
B = lines(70, tag="b")
LEASE = "ev/2024-03-01/_lease.json"


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    monkeypatch.setattr(parts_module, "BATCH_BYTES", 1000)


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore(part_size=1024)


def pause_at(store: InMemoryObjectStore, operation: str, match: str) -> tuple[threading.Event, threading.Event]:
    """Stop the first writer reaching ``operation`` on ``match`` until the test lets it go."""
    reached, go_on = threading.Event(), threading.Event()

    def hook(name: str) -> None:
        if not reached.is_set():
            reached.set()
            assert go_on.wait(10), "the test never let the paused writer go on"

    store.before(operation, hook, match=match)
    return reached, go_on


def test_a_second_task_on_a_window_being_written_fails_naming_the_first(store):
    reached, go_on = pause_at(store, "commit", "part-00001")
    first = Task(store, {window(): A}, writer=writer("scheduled__2024-03-02")).in_thread()
    assert reached.wait(5)

    second = Task(store, {window(): B}, writer=writer("backfill__2024-03-02", pid=200))
    with pytest.raises(WindowLockedError) as caught:
        second.execute()
    go_on.set()
    first.join(5)

    message = str(caught.value)
    assert "run 'scheduled__2024-03-02' try 1 of mixpanel.events on host worker-1 (pid 100)" in message
    assert "started 2024-03-02T00:05:00+00:00" in message and "expires at" in message
    assert caught.value.holder == writer("scheduled__2024-03-02")
    assert second.opened == [], "the refused task must not even ask Mixpanel"
    assert first.error is None and whole(store, A)
    assert "ev/2024-03-01/part-00000.jsonl" not in store.operations("delete"), "the refused task touched nothing"


def test_a_rerun_after_completion_takes_the_released_lease_at_once(store):
    Task(store, {window(): A}, writer=writer("scheduled__2024-03-02")).execute()
    assert lease(store)["state"] == "released"
    Task(store, {window(): B}, writer=writer("manual__2024-03-03", pid=200)).execute()
    assert whole(store, B)
    assert lease(store)["writer"]["run_id"] == "manual__2024-03-03"


def _die_holding(store: InMemoryObjectStore, clock: Clock, dead: Writer) -> None:
    """A task killed with ``kill -9`` mid-window: its lease taken and never released, a part
    committed, an upload left open."""
    leases = Leases(store, dead, clock=clock.time, monotonic=clock.monotonic)
    leases.acquire(LEASE)
    leases.close()
    store.put("ev/2024-03-01/part-00000.jsonl", b'{"tag": "dead"}\n', "application/x-ndjson", if_absent=True)
    store.open("ev/2024-03-01/part-00001.jsonl", "application/x-ndjson", if_absent=True).write(b"half")


def test_a_dead_holders_window_is_refused_to_other_runs_until_its_lease_expires_then_taken_over_and_cleaned(
    store, caplog
):
    clock = Clock()
    dead = writer("scheduled__2024-03-02", try_number=1)
    _die_holding(store, clock, dead)
    other_run = writer("backfill__2024-03-02", try_number=1, pid=200)

    clock.advance(LEASE_SECONDS - 1)
    with pytest.raises(WindowLockedError, match=r"try 1 of mixpanel\.events"):
        Task(store, {window(): B}, writer=other_run, clock=clock).execute()

    clock.advance(2)
    Task(store, {window(): B}, writer=other_run, clock=clock).execute()
    assert "taken for dead" in caplog.text
    assert store.open_uploads == [], "the dead task's open upload must be aborted"
    assert whole(store, B), "the dead task's part must be gone"


def test_a_later_try_of_the_same_task_takes_over_at_once_and_cleans(store, caplog):
    """A worker killed mid-window: Airflow fails try 1 and starts try 2 within seconds (a short
    retry_delay); try 2 must not wait for try 1's lease to expire."""
    clock = Clock()
    _die_holding(store, clock, writer("scheduled__2024-03-02", try_number=1))
    Task(store, {window(): B}, writer=writer("scheduled__2024-03-02", try_number=2, pid=200), clock=clock).execute()
    assert "from an earlier try of this task" in caplog.text
    assert store.open_uploads == [], "the dead try's open upload must be aborted"
    assert whole(store, B), "the dead try's part must be gone"


def test_an_earlier_try_never_takes_a_later_tries_lease(store):
    clock = Clock()
    _die_holding(store, clock, writer("scheduled__2024-03-02", try_number=2))
    with pytest.raises(WindowLockedError, match=r"try 2 of mixpanel\.events"):
        Task(store, {window(): B}, writer=writer("scheduled__2024-03-02", try_number=1, pid=200), clock=clock).execute()


def test_the_same_try_started_again_takes_over_its_own_lease_at_once(store, caplog):
    clock = Clock()
    attempt = writer("scheduled__2024-03-02", try_number=3)
    _die_holding(store, clock, attempt)
    again = writer("scheduled__2024-03-02", try_number=3, pid=999)  # the same try, in a new process
    Task(store, {window(): B}, writer=again, clock=clock).execute()
    assert "from this same task attempt" in caplog.text
    assert whole(store, B)


def test_a_task_outside_airflow_never_takes_another_process_lease_as_its_own(store):
    clock = Clock()
    _die_holding(store, clock, Writer(hostname="laptop", pid=1, started_at="2024-03-02T00:00:00+00:00"))
    outside = Writer(hostname="laptop", pid=2, started_at="2024-03-02T00:01:00+00:00")
    with pytest.raises(WindowLockedError, match="a task outside Airflow on host laptop \\(pid 1\\)"):
        Task(store, {window(): B}, writer=outside, clock=clock).execute()


def test_a_holder_that_could_not_renew_in_time_stops_before_committing_beside_the_new_writer(store):
    clock = Clock()
    reached, go_on = pause_at(store, "create", "part-00001")  # between two parts
    zombie = Task(store, {window(): A}, writer=writer("scheduled__2024-03-02"), clock=clock)
    thread = zombie.in_thread()
    assert reached.wait(5)
    clock.advance(LEASE_SECONDS + 1)  # the zombie hangs: its lease expires unrenewed
    Task(store, {window(): B}, writer=writer("scheduled__2024-03-02", try_number=2, pid=200), clock=clock).execute()
    assert whole(store, B)

    go_on.set()  # the zombie wakes up; its next commit is refused before it is sent
    thread.join(5)
    assert isinstance(thread.error, LeaseLostError), thread.error
    assert "could not renew its lease" in str(thread.error)
    assert whole(store, B), "the zombie must not change the window taken over"
    assert lease(store)["writer"]["try_number"] == 2, "the zombie must not release the new writer's lease"


def test_a_commit_already_checked_when_the_lease_was_lost_cannot_overwrite_the_new_writers_part(store):
    """The new writer aborts the zombie's open upload (S3), and a part is created, never
    overwritten: if the new writer got there first, the zombie's commit fails; if the zombie got
    there first, the new writer fails. Never mixed."""
    clock = Clock()
    reached, go_on = pause_at(store, "commit", "part-00000")  # after the lease check, before the store
    zombie = Task(store, {window(): A}, writer=writer("scheduled__2024-03-02"), clock=clock).in_thread()
    assert reached.wait(5)
    clock.advance(LEASE_SECONDS + 1)
    Task(store, {window(): B}, writer=writer("scheduled__2024-03-02", try_number=2, pid=200), clock=clock).execute()
    go_on.set()
    zombie.join(5)
    assert zombie.error is not None, "the zombie's commit must fail"
    assert whole(store, B)


def test_losing_the_lease_while_writing_aborts_the_run_naming_the_new_holder(store):
    reached, go_on = pause_at(store, "commit", "part-00001")
    task = Task(store, {window(): A}, writer=writer("scheduled__2024-03-02"), renew_seconds=0.02)
    thread = task.in_thread()
    assert reached.wait(5)
    found = store.read(LEASE)
    taken = json.loads(found.data)  # as a task taking it over writes it: its run, its own token
    taken["writer"]["run_id"], taken["token"] = "manual__2024-03-05", "another task's token"
    store.put(LEASE, json.dumps(taken).encode(), "x", if_version=found.version)
    deadline = time.monotonic() + 5
    while not task.run.aborted and time.monotonic() < deadline:
        time.sleep(0.01)
    go_on.set()
    thread.join(5)
    assert isinstance(thread.error, AirflowTaskAborted)
    assert "was taken over by run 'manual__2024-03-05'" in str(thread.error)
    assert manifest(store) is None


def test_a_holder_renews_its_lease_while_it_writes(store):
    reached, go_on = pause_at(store, "commit", "part-00001")
    task = Task(store, {window(): A}, renew_seconds=0.02)
    thread = task.in_thread()
    assert reached.wait(5)
    first = store.version(LEASE)
    deadline = time.monotonic() + 5
    while store.version(LEASE) == first and time.monotonic() < deadline:
        time.sleep(0.01)
    go_on.set()
    thread.join(5)
    assert store.version(LEASE) != first, "the lease was never renewed"
    assert thread.error is None and whole(store, A)


def test_a_writer_that_takes_no_lease_cannot_overwrite_a_part_it_finds_nor_the_manifest(store):
    """An older provider version (no lease) writing at once: parts and manifest are created, never
    overwritten, so its objects are never mixed under this run's manifest."""
    store.before("commit", lambda name: store.put(name, b"{}\n", "x"), match="part-00002")
    with pytest.raises(PreconditionFailed, match=r"part-00002\.jsonl: was to be created but exists"):
        Task(store, {window(): A}).execute()
    assert manifest(store) is None

    other = InMemoryObjectStore(part_size=1024)
    done: list[str] = []

    def write_manifest_first(name: str) -> None:
        if not done:
            done.append(name)
            other.put(name, b"{}", "x")

    other.before("put", write_manifest_first, match="_manifest.json")
    with pytest.raises(StorageConflictError, match=r"_manifest\.json appeared while this task wrote the window"):
        Task(other, {window(): A}).execute()


def test_look_back_windows_of_overlapping_runs_are_each_written_once(store):
    """Today's run re-exports yesterday (look-back) while yesterday's backfill still writes it:
    each day ends whole, written by one of them; the refused task names the other."""
    days = {d: date(2024, 3, d) for d in (1, 2, 3)}
    yesterday = {window(days[d]): lines(40, tag=f"y{d}") for d in (1, 2)}
    today = {window(days[d]): lines(40, tag=f"t{d}") for d in (2, 3)}
    reached, go_on = pause_at(store, "commit", "2024-03-02/part-00000")
    backfill = Task(store, yesterday, writer=writer("backfill__2024-03-02")).in_thread()
    assert reached.wait(5)
    with pytest.raises(WindowLockedError, match="backfill__2024-03-02"):
        Task(store, today, writer=writer("scheduled__2024-03-04", pid=200)).execute()
    go_on.set()
    backfill.join(5)
    assert whole(store, yesterday[window(days[1])], "2024-03-01")
    assert whole(store, yesterday[window(days[2])], "2024-03-02")
    assert manifest(store, "2024-03-03") is None, "the refused task stopped at its first window"


@pytest.mark.parametrize("seed", range(30))
def test_two_tasks_racing_with_random_timing_leave_one_whole_window(seed):
    """As the emulator races, in milliseconds: each store call of either task may be delayed."""
    store = InMemoryObjectStore(part_size=1024)
    rng = random.Random(seed)
    delays = threading.Lock()

    def jitter(name: str) -> None:
        with delays:
            pause = rng.uniform(0, 0.002)
        time.sleep(pause)

    for operation in ("put", "read", "commit", "delete", "list", "upload_part"):
        store.before(operation, jitter)
    tasks = [
        Task(store, {window(): A}, writer=writer("scheduled__2024-03-02")),
        Task(store, {window(): B}, writer=writer("backfill__2024-03-02", pid=200)),
    ]
    threads = [task.in_thread() for task in tasks]
    for thread in threads:
        thread.join(10)
    errors = [t.error for t in threads if t.error is not None]
    assert all(isinstance(e, WindowLockedError) for e in errors), errors
    assert len(errors) <= 1
    written = [task for task, thread in zip(tasks, threads, strict=True) if thread.error is None]
    assert any(whole(store, task.data[window()]) for task in written)
    if errors:
        loser = next(t for t, th in zip(tasks, threads, strict=True) if th.error is not None)
        winner = next(t for t in tasks if t is not loser)
        assert winner.writer.run_id in str(errors[0])


@pytest.mark.parametrize(
    ("template", "own_folder", "name"),
    [
        ("ev/2024-03-01/part-{part}.jsonl.gz", True, "ev/2024-03-01/_lease.json"),
        ("ev/2024-03-01/part-{part}.jsonl.gz", False, "ev/2024-03-01/_lease.part.json"),
        ("ev/2024-03-01-{part}.jsonl", False, "ev/_lease.2024-03-01.json"),
        ("ev/2024-03-01.jsonl.gz", False, "ev/_lease.2024-03-01.jsonl.gz.json"),
        ("{part}.jsonl", False, "_lease.json"),
        # The window after {part}: each window its own lease.
        ("ev/part-{part}-2024-03-01.jsonl", False, "ev/_lease.part-2024-03-01.jsonl.json"),
        ("ev/{part}-2024-03-01.jsonl", False, "ev/_lease.2024-03-01.jsonl.json"),
        ("ev/{part}.2024-03-01T06.jsonl.gz", False, "ev/_lease.2024-03-01T06.jsonl.gz.json"),
    ],
)
def test_lease_names(template, own_folder, name):
    assert lease_name(template, own_folder=own_folder) == name


def test_the_lease_says_who_writes_and_until_when(store):
    clock = Clock()
    leases = Leases(store, writer(), clock=clock.time, monotonic=clock.monotonic)
    held = leases.acquire(LEASE)
    record = json.loads(store.objects[LEASE])
    assert record["state"] == "writing" and record["token"] == held.token
    assert record["writer"]["run_id"] == "scheduled__2024-03-02"
    assert record["expires_at"] == "2023-11-14T22:15:20+00:00"  # two minutes after the clock's now
    with pytest.raises(LeaseLostError, match="could not renew its lease"):
        clock.advance(LEASE_SECONDS)
        leases.check(held)
    leases.release(held)
    assert json.loads(store.objects[LEASE])["state"] == "released"
    assert DAY.isoformat() in LEASE


def test_a_release_racing_a_renewal_leaves_the_lease_released(store):
    """The renewing thread and the window's end write the lease one at a time: a release never
    loses to a renewal in flight (which would leave the window locked until the lease expired)."""
    for _ in range(20):
        leases = Leases(store, writer(), renew_seconds=0.0005)
        held = leases.acquire(LEASE)
        time.sleep(0.003)
        leases.release(held)
        time.sleep(0.002)
        leases.close()
        assert json.loads(store.objects[LEASE])["state"] == "released"


def test_a_window_taken_after_another_was_released_is_still_renewed(store):
    leases = Leases(store, writer(), renew_seconds=0.01)
    first = leases.acquire(LEASE)
    leases.release(first)
    time.sleep(0.05)  # the renewing thread finds nothing to renew
    second = leases.acquire("ev/2024-03-02/_lease.json")
    version = store.version(second.name)
    deadline = time.monotonic() + 5
    while store.version(second.name) == version and time.monotonic() < deadline:
        time.sleep(0.01)
    leases.close()
    assert store.version(second.name) != version, "the second window's lease was never renewed"


WINDOW_AFTER_PART = "ev/part-{part}-{window}.jsonl"


def window_parts(store: InMemoryObjectStore, label: str) -> list[dict]:
    """The records of one window of :data:`WINDOW_AFTER_PART` (no manifest), in part order."""
    names = sorted(name for name in store.objects if name.startswith("ev/part-") and name.endswith(f"-{label}.jsonl"))
    return [json.loads(line) for name in names for line in store.objects[name].splitlines()]


def test_windows_named_after_their_parts_each_take_a_lease_of_their_own(store):
    # Window 1 holds its lease at a commit while window 2 is written: one lease for both would be
    # taken over by the task itself, and the first window would abort.
    reached, go_on = pause_at(store, "commit", r"part-00001-2024-03-01")
    days = {window(date(2024, 3, d)): lines(100, tag=str(d)) for d in (1, 2)}
    second_committing = threading.Event()
    store.before("commit", lambda name: second_committing.set(), match=r"-2024-03-02")
    task = Task(store, days, manifest=False, max_active=2, template=WINDOW_AFTER_PART).in_thread()
    assert reached.wait(5)
    assert second_committing.wait(5)  # window 2 has taken its lease and writes while window 1 is held
    go_on.set()
    task.join(5)
    assert task.error is None, task.error
    for day, data in days.items():
        assert window_parts(store, day.label) == [json.loads(line) for line in data]


def test_mapped_tasks_on_different_days_named_after_their_parts_do_not_collide(store):
    reached, go_on = pause_at(store, "commit", r"part-00001-2024-03-01")
    first = Task(
        store,
        {window(date(2024, 3, 1)): A},
        writer=dataclasses.replace(writer(), map_index=0),
        manifest=False,
        template=WINDOW_AFTER_PART,
    ).in_thread()
    assert reached.wait(5)
    Task(
        store,
        {window(date(2024, 3, 2)): B},
        writer=dataclasses.replace(writer(), map_index=1, pid=200),
        manifest=False,
        template=WINDOW_AFTER_PART,
    ).execute()
    go_on.set()
    first.join(5)
    assert first.error is None, first.error
    assert window_parts(store, "2024-03-01") == [json.loads(line) for line in A]
    assert window_parts(store, "2024-03-02") == [json.loads(line) for line in B]


def resent_and_refused(store: InMemoryObjectStore) -> PreconditionFailed:
    """What an SDK raises when a write of the lease landed, its reply was lost, and its resend was
    refused by that very write."""
    return PreconditionFailed(store.uri(LEASE), "was to replace an earlier version but changed")


def test_a_lease_taken_whose_reply_was_lost_is_this_tasks(store):
    store.fail("put", match="_lease", applied=True, error=resent_and_refused(store))
    # Outside Airflow: no try to recognise, only the token tells our own write from another's.
    leases = Leases(store, dataclasses.replace(writer(), run_id=None))
    held = leases.acquire(LEASE)
    assert held.version == store.version(LEASE)
    assert json.loads(store.objects[LEASE])["token"] == held.token


def test_a_renewal_whose_reply_was_lost_keeps_the_lease(store):
    clock = Clock()
    leases = Leases(store, writer(), clock=clock.time, monotonic=clock.monotonic)
    held = leases.acquire(LEASE)
    store.fail("put", match="_lease", applied=True, error=resent_and_refused(store))
    clock.advance(LEASE_SECONDS / 2)
    leases.renew(held)
    assert held.version == store.version(LEASE)
    clock.advance(LEASE_SECONDS / 2)
    leases.check(held)  # the renewal counted: its deadline moved on
    leases.renew(held)  # and the next one names the version that is there


def test_a_release_whose_reply_was_lost_is_not_a_take_over(store, caplog):
    leases = Leases(store, writer())
    held = leases.acquire(LEASE)
    store.fail("put", match="_lease", applied=True, error=resent_and_refused(store))
    leases.release(held)
    assert json.loads(store.objects[LEASE])["state"] == "released"
    assert "taken over" not in caplog.text


def test_a_renewal_refused_for_another_tasks_token_is_still_lost(store):
    leases = Leases(store, writer())
    held = leases.acquire(LEASE)
    other = Leases(store, writer("manual__2024-03-05", pid=200), clock=lambda: time.time() + 2 * LEASE_SECONDS)
    other.acquire(LEASE)  # took it over as expired
    with pytest.raises(LeaseLostError, match="taken over by run 'manual__2024-03-05'"):
        leases.renew(held)
    other.close()


def test_a_window_whose_final_renewal_lost_its_reply_completes(store):
    # The first lease write takes it; the second is the window's end proving it still holds it.
    store.fail("put", match="_lease", applied=True, error=resent_and_refused(store), after=1)
    Task(store, {window(): A}).execute()
    assert whole(store, A)
    assert json.loads(store.objects[LEASE])["state"] == "released"


@pytest.mark.parametrize("taken_over", ["expired", "by_a_later_try"])
def test_a_zombie_restarting_after_a_take_over_never_deletes_the_new_writers_parts(store, taken_over):
    clock = Clock()
    reached, go_on = pause_at(store, "commit", "part-00002")  # past the zombie's lease check
    zombie = Task(store, {window(): A}, writer=writer("scheduled__2024-03-02"), clock=clock).in_thread()
    assert reached.wait(5)
    if taken_over == "expired":
        clock.advance(LEASE_SECONDS + 1)
    Task(store, {window(): B}, writer=writer("scheduled__2024-03-02", try_number=2, pid=200), clock=clock).execute()
    assert whole(store, B)
    store.fail("commit", match="part-00002")  # the zombie's commit in flight fails: a transient failure
    go_on.set()
    zombie.join(5)
    assert isinstance(zombie.error, LeaseLostError), zombie.error
    assert store.operations("delete").count("ev/2024-03-01/part-00000.jsonl") == 1, "only the new writer's own"
    assert whole(store, B)


def test_a_lease_of_a_newer_format_is_never_taken_for_junk(store):
    newer = {"lease_format_version": 99, "state": "writing", "holder": "a newer provider"}
    store.put(LEASE, json.dumps(newer).encode(), "application/json")
    with pytest.raises(StorageConflictError, match="format 99, newer than this provider reads"):
        Leases(store, writer()).acquire(LEASE)
    assert json.loads(store.objects[LEASE]) == newer, "the newer lease was overwritten"


def test_an_object_that_is_no_lease_at_all_is_taken_over(store):
    store.put(LEASE, b"not json", "application/json")
    held = Leases(store, writer()).acquire(LEASE)
    assert json.loads(store.objects[LEASE])["token"] == held.token
