"""The transfer machinery over the in-memory store: part rotation, restarts, stale parts, manifests,
abort on failure and cancellation, with faults injected at each store call."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from airflow_provider_mixpanel.testing.object_store import STORE_OPERATIONS, InMemoryObjectStore
from airflow_provider_mixpanel.transfers import parts as parts_module
from airflow_provider_mixpanel.transfers.parts import AirflowTaskAborted
from tests.unit.transfers.exports import (
    DAY,
    FakeStream,
    Task,
    lease,
    lines,
    manifest,
    parts,
    whole,
    window,
)

LINES = lines(100)


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    monkeypatch.setattr(parts_module, "BATCH_BYTES", 1000)


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore(part_size=1024)


def test_parts_rotate_by_size_and_the_manifest_lists_them_in_order(store):
    Task(store, {window(): LINES}).execute()
    assert list(parts(store)) == [f"ev/2024-03-01/part-0000{n}.jsonl" for n in range(4)]
    assert whole(store, LINES)
    assert lease(store)["state"] == "released"
    assert store.open_uploads == []


def test_a_rerun_deletes_the_old_parts_first_and_reports_those_it_did_not_rewrite(store):
    Task(store, {window(): LINES}).execute()
    shorter = lines(50, tag="b")
    [output] = Task(store, {window(): shorter}).execute()
    assert list(parts(store)) == ["ev/2024-03-01/part-00000.jsonl", "ev/2024-03-01/part-00001.jsonl"]
    assert output.completed.deleted_stale == [f"mem://bucket/ev/2024-03-01/part-0000{n}.jsonl" for n in (2, 3)]
    assert whole(store, shorter)
    last_delete = store.calls.index(("delete", "ev/2024-03-01/part-00003.jsonl"))
    first_commit = store.calls.index(("commit", "ev/2024-03-01/part-00000.jsonl"), last_delete - 10)
    assert last_delete < first_commit, "the old parts must be gone before the first new part is committed"


def test_an_empty_window_still_writes_one_empty_part_and_its_manifest(store):
    Task(store, {window(): LINES}).execute()
    Task(store, {window(): []}).execute()
    assert parts(store) == {"ev/2024-03-01/part-00000.jsonl": b""}
    assert manifest(store)["records"] == 0


@pytest.mark.parametrize("operation", ["create", "upload_part", "commit"])
def test_a_transient_store_failure_restarts_the_window_and_keeps_each_record_once(store, operation):
    store.fail(operation, match=r"part-00002")
    task = Task(store, {window(): LINES})
    task.execute()
    assert len(task.opened) == 2, "the window must be streamed again from scratch"
    assert whole(store, LINES)
    assert store.open_uploads == []


def test_a_restart_deletes_the_parts_its_failed_attempt_committed(store):
    task = Task(
        store,
        {window(): LINES},
        stream=lambda w, n: FakeStream(LINES, fail_after=60 if n == 0 else None),
    )
    task.execute()
    committed = store.operations("commit")
    assert committed.count("ev/2024-03-01/part-00000.jsonl") == 2
    assert "ev/2024-03-01/part-00000.jsonl" in store.operations("delete")
    assert whole(store, LINES)


def test_a_restart_after_a_commit_whose_reply_was_lost_deletes_that_part_too(store):
    # The commit landed but the task never heard: the part is not among the committed ones, and
    # the restart would find it when it creates that part anew.
    store.fail("commit", match=r"part-00001", applied=True, error=ConnectionError("read timeout"))
    task = Task(store, {window(): LINES})
    task.execute()
    assert len(task.opened) == 2, "the window must be streamed again from scratch"
    assert "ev/2024-03-01/part-00001.jsonl" in store.operations("delete")
    assert whole(store, LINES)


def test_restarts_are_bounded_and_the_last_failure_is_raised(store):
    store.fail("commit", match=r"part-00001", times=5)
    task = Task(store, {window(): LINES}, max_restarts=2)
    with pytest.raises(ConnectionError, match="injected commit failure"):
        task.execute()
    assert len(task.opened) == 3
    assert manifest(store) is None and store.open_uploads == []
    assert lease(store)["state"] == "released", "a failed window hands its lease back"


def test_a_permanent_failure_aborts_the_part_in_flight_and_writes_no_manifest(store):
    store.fail("upload_part", match=r"part-00001", error=PermissionError("AccessDenied"))
    task = Task(store, {window(): LINES})
    with pytest.raises(PermissionError):
        task.execute()
    assert len(task.opened) == 1, "a permanent failure is not restarted"
    assert manifest(store) is None
    assert store.open_uploads == [], "the part in flight must be aborted"
    assert "ev/2024-03-01/part-00001.jsonl" in store.operations("abort")


def test_an_upload_whose_abort_failed_is_aborted_by_the_next_run(store):
    store.fail("upload_part", match=r"part-00001", error=PermissionError("AccessDenied"))
    store.fail("abort")
    with pytest.raises(PermissionError):
        Task(store, {window(): LINES}).execute()
    assert store.open_uploads == ["ev/2024-03-01/part-00001.jsonl"]
    Task(store, {window(): LINES}).execute()
    assert store.open_uploads == []
    assert whole(store, LINES)


@pytest.mark.parametrize(
    ("operation", "after"),
    [
        ("read", 0),  # the earlier run's lease, before taking it over
        ("put", 1),  # taking the lease over
        ("delete", 0),  # the manifest, before anything else is touched
        ("list", 0),  # the old parts, before deleting them
        ("delete", 1),  # an old part
        ("list", 1),  # the parts, after the last one
        ("put", 2),  # the lease's renewal, after the last part
        ("put", 3),  # the manifest
    ],
)
def test_a_failing_store_call_around_the_parts_leaves_the_old_window_or_no_manifest(store, operation, after):
    Task(store, {window(): LINES}).execute()  # an earlier, complete run
    store.fail(operation, after=after, error=PermissionError(f"{operation} denied"))
    with pytest.raises(PermissionError):
        Task(store, {window(): lines(50, tag="b")}).execute()
    assert manifest(store) is None or whole(store, LINES), "a manifest must only ever list complete parts"
    assert lease(store)["state"] == "released"


def test_every_operation_can_fail_and_an_unknown_one_is_refused(store):
    for operation in STORE_OPERATIONS:
        store.fail(operation, match="nothing-matches")
    with pytest.raises(ValueError, match="use one of create, upload_part"):
        store.fail("rename")


def test_killing_the_task_aborts_the_upload_in_flight_and_declares_nothing(store):
    started, release = threading.Event(), threading.Event()

    def pause(name):
        started.set()
        release.wait(5)

    store.before("upload_part", pause, match="part-00001")
    task = Task(store, {window(): LINES})
    thread = task.in_thread()
    assert started.wait(5)
    threading.Timer(0.05, release.set).start()  # lets the writer thread reach the abort
    task.run.abort("The task was killed.")
    thread.join(5)
    assert isinstance(thread.error, AirflowTaskAborted) and "killed" in str(thread.error)
    assert manifest(store) is None
    assert store.open_uploads == [], "the part in flight must be aborted"
    assert lease(store)["state"] == "released"


def test_one_failing_window_aborts_the_others_at_once(store):
    days = [date(2024, 3, d) for d in (1, 2, 3)]
    data = {window(d): lines(100, tag=str(d)) for d in days}
    store.fail("upload_part", match=r"2024-03-02/part-00001", error=PermissionError("AccessDenied"))
    with pytest.raises(PermissionError):
        Task(store, data, max_active=3).execute()
    assert manifest(store, "2024-03-02") is None
    assert store.open_uploads == []
    for d in days:
        assert lease(store, str(d))["state"] == "released"


def test_windows_of_one_template_share_one_manifest_and_one_lease(store):
    days = [date(2024, 3, d) for d in (1, 2)]
    data = {window(d): lines(40, tag=str(d)) for d in days}
    Task(store, data, template="ev/all/part-{part}.jsonl").execute()
    assert whole(store, data[window(days[0])] + data[window(days[1])], label="all")
    assert [name for name in store.objects if "_lease" in name] == ["ev/all/_lease.json"]
    assert manifest(store, "all")["window"]["first_day"] == str(DAY)


def test_without_manifests_a_lease_is_named_after_its_window_parts(store):
    data = {window(date(2024, 3, d)): lines(5) for d in (1, 2)}
    Task(store, data, template="ev/{window}-{part}.jsonl", manifest=False).execute()
    assert sorted(name for name in store.objects if "_lease" in name) == [
        "ev/_lease.2024-03-01.json",
        "ev/_lease.2024-03-02.json",
    ]


def test_one_fixed_object_is_replaced_in_place_never_deleted_first(store):
    data = {window(): lines(20)}
    Task(store, data, template="ev/{window}/day.jsonl").execute()
    Task(store, {window(): lines(10, tag="b")}, template="ev/{window}/day.jsonl").execute()
    assert "ev/2024-03-01/day.jsonl" not in store.operations("delete"), "readers of one object never see it missing"
    assert store.objects["ev/2024-03-01/day.jsonl"].count(b"\n") == 10
    assert manifest(store)["records"] == 10
