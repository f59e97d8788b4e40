"""Child processes of the deployment test: each in a session of its own, its output in a log file,
stopped (SIGTERM to its process group, then SIGKILL) however the test ends, and killable as a
whole tree the way a machine dies."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Started before Airflow and stopped after it.
INFRASTRUCTURE = ("postgres-initdb", "postgres", "redis", "moto-s3", "fake-gcs-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(ready: Callable[[], bool], what: str, timeout: float, alive: Callable[[], bool] | None = None) -> None:
    """Poll ``ready`` until it is true; raise after ``timeout`` seconds or when ``alive`` says the
    process that should become ready has exited."""
    deadline = time.monotonic() + timeout
    while not ready():
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not ready within {timeout:.0f} s")
        time.sleep(0.25)


@dataclass
class Service:
    """One started process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Services:
    """Every process the test started, in start order; :meth:`stop_all` ends them in reverse."""

    log_dir: Path
    started: list[Service] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> Service:
        log = self.log_dir / f"{name}.log"
        handle = log.open("ab")
        try:
            process = subprocess.Popen(
                [*_DIE_WITH_PARENT, *argv],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                user=user,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        finally:
            handle.close()
        service = Service(name, process, log)
        self.started.append(service)
        return service

    def stop_many(self, services: list[Service], timeout: float = 20) -> None:
        """SIGTERM to each service's process group, all at once; after ``timeout`` seconds SIGKILL
        to whatever is left of them and of every process they started (whatever its group)."""
        trees = {service.pid: [*descendants(service.pid), service.pid] for service in services}
        for service in services:
            if service.alive():
                _signal_group(service.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(service.alive() for service in services) and time.monotonic() < deadline:
            time.sleep(0.1)
        for service in services:
            for pid in [*descendants(service.pid), *trees[service.pid]]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            _signal_group(service.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(timeout=5)

    def stop_all(self) -> None:
        """Airflow's processes first (they still talk to the database on the way out), then the rest."""
        airflow = [s for s in self.started if s.name not in INFRASTRUCTURE]
        for group in (airflow, [s for s in self.started if s.name in INFRASTRUCTURE]):
            try:
                self.stop_many(list(reversed(group)))
            except Exception as err:  # keep stopping the others
                print(f"  could not stop {[s.name for s in group]}: {err}", flush=True)

    def logs(self) -> list[tuple[str, Path]]:
        return [(service.name, service.log) for service in self.started]


# util-linux's setpriv execs the command (same pid) with a parent-death signal: if this test is
# killed before it can stop its children, they get SIGTERM instead of running on.
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = [_SETPRIV, "--pdeathsig", "TERM", "--"] if _SETPRIV else []


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name (2nd field) is in parentheses and may hold spaces: split after it
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...), whatever process group they chose:
    Airflow puts each task in a process group of its own."""
    parents = _parents()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def kill_tree(pid: int) -> list[int]:
    """Kill ``pid`` and everything below it at once, as a machine that loses power: freeze the whole
    tree first (SIGSTOP, until no new process appears), then SIGKILL it, so no process of the tree
    can notice another one dying and report anything. Returns the pids killed."""
    frozen: set[int] = set()
    while True:
        tree = {pid, *descendants(pid)}
        new = tree - frozen
        if not new:
            break
        for member in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGSTOP)
        frozen |= new
    for member in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    return sorted(frozen)
