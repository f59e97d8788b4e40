"""An export run over the in-memory store, with Mixpanel streams made of given lines: the transfer
machinery (windows, parts, leases, manifests) without sockets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from airflow_provider_mixpanel.transfers.lease import Leases, Writer
from airflow_provider_mixpanel.transfers.outputs import ManifestContext, WindowOutputs
from airflow_provider_mixpanel.transfers.parts import PartFormat
from airflow_provider_mixpanel.transfers.progress import Progress
from airflow_provider_mixpanel.transfers.runner import ExportRun, OutputResult
from airflow_provider_mixpanel.transfers.windows import Window, plan_units

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing.object_store import InMemoryObjectStore

DAY = date(2024, 3, 1)
TEMPLATE = "ev/{window}/part-{part}.jsonl"
# Lines of about 100 bytes, batches of 1000 (the tests' BATCH_BYTES) and parts of 2500 bytes: a
# window of 100 lines is four parts.
PART_BYTES = 2500
CONTEXT = ManifestContext(
    stream="events",
    project_id=1,
    region="us",
    events=None,
    where=None,
    raw=False,
    output_format="jsonl",
    compression=None,
)


def lines(count: int, tag: str = "a") -> list[bytes]:
    """``count`` JSONL lines of about 100 bytes, each naming ``tag`` (which run wrote it)."""
    return [json.dumps({"n": n, "tag": tag, "pad": "x" * 70}).encode() + b"\n" for n in range(count)]


class Clock:
    """Wall clock and steady clock at once, moved by the test."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def writer(run_id: str = "scheduled__2024-03-02", try_number: int = 1, pid: int = 100) -> Writer:
    return Writer(
        hostname="worker-1",
        pid=pid,
        started_at="2024-03-02T00:05:00+00:00",
        dag_id="mixpanel",
        task_id="events",
        run_id=run_id,
        map_index=-1,
        try_number=try_number,
    )


class FakeStream(Iterator[bytes]):
    """A window's lines, as a :class:`~airflow_provider_mixpanel.streams.RecordStream` gives them;
    ``fail_after`` lines in, it raises ``error`` (once: a restart streams the window again)."""

    def __init__(self, data: list[bytes], *, fail_after: int | None = None, error: BaseException | None = None):
        self.skipped_malformed = 0
        self.closed = False
        self._lines = iter(data)
        self._left = fail_after
        self._error = error

    def __next__(self) -> bytes:
        if self._left is not None:
            if self._left == 0:
                raise self._error or ConnectionError("stream dropped")
            self._left -= 1
        return next(self._lines)

    def close(self) -> None:
        self.closed = True


@dataclass
class Task:
    """One task exporting windows into ``store``."""

    store: InMemoryObjectStore
    data: dict[Window, list[bytes]]
    writer: Writer = field(default_factory=writer)
    clock: Clock | None = None
    lease_seconds: float | None = None
    renew_seconds: float = 3600.0  # no background renewal unless a test asks for it
    manifest: bool = True
    max_active: int = 1
    max_restarts: int = 2
    template: str = TEMPLATE
    #: the streams opened, in order (a restart opens a window again)
    opened: list[FakeStream] = field(default_factory=list)
    #: makes the stream of each opening: by default the window's lines
    stream: Callable[[Window, int], FakeStream] | None = None
    run: ExportRun | None = None

    def _open(self, window: Window) -> FakeStream:
        number = len(self.opened)
        stream = self.stream(window, number) if self.stream else FakeStream(self.data[window])
        self.opened.append(stream)
        return stream

    def make_run(self) -> ExportRun:
        clock = self.clock
        leases = Leases(
            self.store,
            self.writer,
            lease_seconds=self.lease_seconds,
            renew_seconds=self.renew_seconds,
            **({"clock": clock.time, "monotonic": clock.monotonic} if clock else {}),
        )
        self.run = ExportRun(
            store=self.store,
            open_stream=self._open,  # type: ignore[arg-type]
            part_format=PartFormat(None, None, PART_BYTES),
            max_stream_restarts=self.max_restarts,
            progress=Progress(),
            outputs=WindowOutputs(self.store, manifest=CONTEXT if self.manifest else None, leases=leases),
        )
        return self.run

    def execute(self) -> list[OutputResult]:
        windows = list(self.data)
        units = plan_units(windows, self.template, rotating=True)
        return self.make_run().write_units(units, max_active=self.max_active)

    def in_thread(self) -> TaskThread:
        return TaskThread(self)


class TaskThread(threading.Thread):
    """Runs a :class:`Task` on a thread; ``error`` or ``result`` once joined."""

    def __init__(self, task: Task):
        super().__init__(daemon=True)
        self.task = task
        self.result: list[OutputResult] | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.task.execute()
        except BaseException as err:
            self.error = err


def window(day: date = DAY) -> Window:
    return Window(day, day)


def manifest(store: InMemoryObjectStore, label: str = str(DAY)) -> dict | None:
    data = store.objects.get(f"ev/{label}/_manifest.json")
    return json.loads(data) if data is not None else None


def lease(store: InMemoryObjectStore, label: str = str(DAY)) -> dict:
    return json.loads(store.objects[f"ev/{label}/_lease.json"])


def parts(store: InMemoryObjectStore, label: str = str(DAY)) -> dict[str, bytes]:
    prefix = f"ev/{label}/part-"
    return {name: data for name, data in store.objects.items() if name.startswith(prefix)}


def records(store: InMemoryObjectStore, label: str = str(DAY)) -> list[dict]:
    """The window's records, read through its manifest (what a reader trusts)."""
    found = manifest(store, label)
    assert found is not None, f"window {label} has no manifest"
    names = [p["uri"].split("/", 3)[3] for p in found["parts"]]
    assert sorted(names) == sorted(parts(store, label)), "the manifest must list exactly the parts there are"
    data = store.objects
    for part, name in zip(found["parts"], names, strict=True):
        assert part["bytes"] == len(data[name]), f"{name}: the manifest's size differs from the part's"
    found_records = [json.loads(line) for name in names for line in data[name].splitlines()]
    assert len(found_records) == found["records"], "the manifest's record count differs from the parts'"
    return found_records


def whole(store: InMemoryObjectStore, data: list[bytes], label: str = str(DAY)) -> bool:
    """Whether the window holds exactly ``data``, once, under a manifest that matches its parts."""
    return records(store, label) == [json.loads(line) for line in data]
