"""`make bench`: throughput and peak memory of every path, normalized and raw side by side, against
plain baselines, in one run.

Each path streams the same synthetic day from the bundled Mixpanel server (gzip bodies replayed
from memory, so the server costs almost nothing) and runs in its own process, so its peak RSS is
its own. Ratios are taken between paths of the same run; the comparisons the targets rest on are
run several times, interleaved, and the best of each is kept (the machine is shared).

Results go to benchmarks/RESULTS.md, between the ``make bench`` markers only: other sections of the
file (benchmarks/scale.py's, and any other script's) are kept as they are.

    python benchmarks/run.py [--sizes 10000,1000000] [--profile-sizes 10000,1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from airflow_provider_mixpanel.testing.server import MixpanelTestServer  # noqa: E402
from devtools.emulators import GCSEmulator, S3Emulator  # noqa: E402

RESULTS = HERE / "RESULTS.md"
SAVED = Path(tempfile.gettempdir()) / "mixpanel-make-bench.json"
SECTION = "make bench"
BUCKET = "bench-bucket"
SIZES = (10_000, 1_000_000)
PROFILE_SIZES = (10_000, 1_000_000)
# (label, normalized path, raw path): the pairs the side-by-side table shows.
PAIRS = (
    ("`mixpanel-stream events` to a file", "cli-normalized-file", "cli-raw-file"),
    ("`stream_events_jsonl()` consumed", "hook-jsonl-normalized", "hook-jsonl-raw"),
    ("`stream_events()` consumed (dicts)", "hook-dicts-normalized", "hook-dicts-raw"),
    ("operator, gzip, counting sink", "sink-normalized-gzip", "sink-raw-gzip"),
    ("operator, zstd, counting sink", "sink-normalized-zstd", "sink-raw-zstd"),
    ("S3 operator, gzip", "s3-normalized-gzip", "s3-raw-gzip"),
    ("S3 operator, zstd", "s3-normalized-zstd", "s3-raw-zstd"),
    ("GCS operator, gzip", "gcs-normalized-gzip", "gcs-raw-gzip"),
    ("GCS operator, zstd", "gcs-normalized-zstd", "gcs-raw-zstd"),
)
BASELINES = ("naive-file", "baseline-ceiling")
# The dict paths are not JSONL (no byte-for-byte contract): left out of `make bench` to keep it within
# ~15 minutes on a busy 2-core machine; `--paths` runs them.
OPTIONAL_PATHS = ("hook-dicts-normalized", "hook-dicts-raw")
EVENT_PATHS = BASELINES + tuple(p for _, n, r in PAIRS for p in (n, r) if p not in OPTIONAL_PATHS)
PROFILE_PATHS = ("profiles-jsonl-normalized", "profiles-jsonl-raw")
# The comparisons the targets rest on: run REPEATS times at the largest size, interleaved, best kept.
REPEATED = ("naive-file", "cli-normalized-file", "cli-raw-file", "sink-normalized-gzip", "sink-raw-gzip")
REPEATS = 3
# Runs of the operator's sink path at another gzip level are kept under this name + the level.
LEVEL_PREFIX = "sink-normalized-gzip-level-"
WINDOW_DAYS = 8
WINDOW_EVENTS_PER_DAY = 5_000
# Per-connection throttle of the windows benchmark (gzip bytes/s): one day takes ~3 s to arrive.
THROTTLE_BYTES_PER_SECOND = 100_000
WINDOWS_TARGET = 3.0
RSS_BUDGET_MIB = 64
CLI_VS_NAIVE_TARGET = 3.0
CLI_VS_RAW_TARGET = 0.80
OPERATOR_VS_RAW_TARGET = 0.90


# ---------------------------------------------------------------- shared with scale.py


def run_path(
    path: str, records: int, env: dict[str, str], *, quiet: bool = False, label: str | None = None
) -> dict[str, Any]:
    """Run one path of paths.py in a process of its own; its JSON result, with ``events_per_s``."""
    result = subprocess.run(
        [sys.executable, str(HERE / "paths.py"), path, str(records)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(f"{path} {records} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    line = [x for x in result.stdout.splitlines() if x.startswith("{")][-1]
    measured = json.loads(line)
    measured["events_per_s"] = measured["events"] / measured["seconds"]
    if not quiet:
        print(
            f"  {label or path:26s} {records:>9,}  {measured['events_per_s']:>10,.0f} /s  "
            f"peak {measured['peak_rss_mib']:7.1f} MiB",
            flush=True,
        )
    return measured


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a path's process: this one's, without its Airflow connections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        AIRFLOW_HOME=str(HERE / ".airflow-home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=str(HERE.parent),
        **extra,
    )
    return env


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(
        f"{p} {version(p)}"
        for p in ("apache-airflow", "msgspec", "requests", "urllib3", "boto3", "google-cloud-storage")
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {versions}"
    )


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace this script's section of RESULTS.md (between ``<!-- NAME: begin -->`` and
    ``<!-- NAME: end -->``) with ``body``, keeping everything else as it is. The file is read
    right before it is replaced (others write their own sections of it), and replaced atomically."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in text and end in text and text.index(begin) < text.index(end):
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".RESULTS-", suffix=".md")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


# ---------------------------------------------------------------- make bench


class Runs:
    """Every measurement of the run: several per (path, size) when repeated."""

    def __init__(self) -> None:
        self.measured: dict[tuple[str, int], list[dict[str, Any]]] = {}

    def add(self, path: str, size: int, result: dict[str, Any]) -> None:
        self.measured.setdefault((path, size), []).append(result)

    def has(self, path: str, size: int) -> bool:
        return (path, size) in self.measured

    def best(self, path: str, size: int) -> dict[str, Any]:
        """The fastest run; its peak RSS is the highest of all runs (memory is not noise)."""
        runs = self.measured[path, size]
        fastest = dict(max(runs, key=lambda r: r["events_per_s"]))
        fastest["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        fastest["runs"] = len(runs)
        fastest["all_rates"] = [r["events_per_s"] for r in runs]
        return fastest

    def rate(self, path: str, size: int) -> float:
        return self.best(path, size)["events_per_s"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--profile-sizes", default=",".join(map(str, PROFILE_SIZES)))
    parser.add_argument("--paths", default=",".join(EVENT_PATHS), help="event paths (default: all)")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    # gzip level 1 against the default 6, same run: docs/operators.rst cites it for the default level.
    parser.add_argument("--levels", default="1", help="extra gzip levels of the sink path at the largest size")
    parser.add_argument("--no-windows", action="store_true")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--save", default=str(SAVED), help="where the raw measurements are saved (JSON)")
    parser.add_argument("--render-from", help="write the section from saved measurements; measure nothing")
    args = parser.parse_args()
    if args.render_from:
        saved = json.loads(Path(args.render_from).read_text())
        runs, extra, settings = load(saved)
        write_section(SECTION, render(runs, extra, **settings), Path(args.output))
        print(f"Wrote the '{SECTION}' section of {args.output} from {args.render_from}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop every server
    sizes = sorted(int(s) for s in args.sizes.split(","))
    profile_sizes = sorted(int(s) for s in args.profile_sizes.split(",") if s)
    paths = [p for p in args.paths.split(",") if p]
    levels = [int(x) for x in args.levels.split(",") if x]
    runs = Runs()
    extra: dict[str, Any] = {"windows": {}, "engage_requests": {}, "load": [load_average()]}
    bytes_per_event = 0.0
    started = time.monotonic()
    with S3Emulator() as s3, GCSEmulator() as gcs, tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        s3.client().create_bucket(Bucket=BUCKET)
        gcs.client().create_bucket(BUCKET)
        env0 = base_env(
            AIRFLOW_CONN_AWS_DEFAULT=s3.connection_json(),
            AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT=gcs.connection_json(),
            STORAGE_EMULATOR_HOST=gcs.url,
            BENCH_BUCKET=BUCKET,
            BENCH_TMP=scratch,
        )
        for events in sizes:
            with MixpanelTestServer(events_per_day=events, cache_bodies=True) as server:
                env = {**env0, "AIRFLOW_CONN_MIXPANEL_DEFAULT": server.connection_json()}
                bytes_per_event = warm(server, events)
                print(f"{events:,} events/day: {bytes_per_event:.0f} gzip bytes per event on the wire", flush=True)
                for path in paths:
                    runs.add(path, events, run_path(path, events, env))
                if events == sizes[-1]:
                    repeated = [p for p in REPEATED if p in paths]
                    for round_ in range(1, args.repeats + 1):
                        if round_ > 1:
                            print(f"Repeat {round_} of {args.repeats} at {events:,} events", flush=True)
                            for path in repeated:
                                runs.add(path, events, run_path(path, events, env))
                        for level in levels:  # the operator at another gzip level, as often as the default
                            level_env = {**env, "BENCH_GZIP_LEVEL": str(level)}
                            measured = run_path("sink-normalized-gzip", events, level_env, label=f"gzip level {level}")
                            runs.add(f"{LEVEL_PREFIX}{level}", events, measured)
        extra["load"].append(load_average())
        for profiles in profile_sizes:
            with MixpanelTestServer(profiles=profiles) as server:
                env = {**env0, "AIRFLOW_CONN_MIXPANEL_DEFAULT": server.connection_json()}
                print(f"{profiles:,} profiles", flush=True)
                for path in PROFILE_PATHS:
                    before = len(server.engage_requests())
                    runs.add(path, profiles, run_path(path, profiles, env))
                    extra["engage_requests"][path, profiles] = len(server.engage_requests()) - before
        if not args.no_windows:
            throttled = MixpanelTestServer(
                events_per_day=WINDOW_EVENTS_PER_DAY, bytes_per_second=THROTTLE_BYTES_PER_SECOND
            )
            with throttled:
                env = {**env0, "AIRFLOW_CONN_MIXPANEL_DEFAULT": throttled.connection_json()}
                print(f"Windows: {WINDOW_DAYS} days x {WINDOW_EVENTS_PER_DAY:,} events, throttled", flush=True)
                for name in ("windows-1", "windows-4"):
                    extra["windows"][name] = run_path(name, WINDOW_DAYS * WINDOW_EVENTS_PER_DAY, env)
    extra["load"].append(load_average())
    extra["speeds"] = compression_speeds()
    extra["line_costs"] = line_costs()
    settings = dict(
        bytes_per_event=bytes_per_event,
        sizes=sizes,
        profile_sizes=profile_sizes,
        paths=paths,
        repeats=args.repeats,
        elapsed=time.monotonic() - started,
    )
    Path(args.save).write_text(json.dumps(dump(runs, extra, settings), indent=1))
    print(f"Saved the measurements to {args.save} (re-render with --render-from)")
    report = render(runs, extra, **settings)  # type: ignore[arg-type]
    write_section(SECTION, report, Path(args.output))
    print(f"\nWrote the '{SECTION}' section of {args.output}")
    return 0 if "**missed**" not in report else 1


def dump(runs: Runs, extra: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "measured": [[path, size, results] for (path, size), results in runs.measured.items()],
        "extra": {
            **extra,
            "engage_requests": [[path, size, count] for (path, size), count in extra["engage_requests"].items()],
        },
        "settings": settings,
    }


def load(saved: dict[str, Any]) -> tuple[Runs, dict[str, Any], dict[str, Any]]:
    runs = Runs()
    for path, size, results in saved["measured"]:
        runs.measured[path, size] = results
    extra = dict(saved["extra"])
    largest = max(saved["settings"]["sizes"])
    for level, measured in extra.pop("levels", []):  # saved before level runs were kept as runs
        runs.add(f"{LEVEL_PREFIX}{level}", largest, measured)
    extra["engage_requests"] = {(path, size): count for path, size, count in extra["engage_requests"]}
    extra["speeds"] = {name: tuple(value) for name, value in extra.get("speeds", {}).items()}
    return runs, extra, saved["settings"]


def warm(server: MixpanelTestServer, events: int) -> float:
    """Build and cache the day's gzip body once; its size per event."""
    response = requests.get(
        f"{server.url}/api/2.0/export",
        params={"from_date": "2024-03-01", "to_date": "2024-03-01", "project_id": server.config.project_id},
        auth=(server.config.username, server.config.secret),
        headers={"Accept-Encoding": "gzip"},
        timeout=600,
        stream=True,
    )
    response.raise_for_status()
    size = sum(len(chunk) for chunk in response.raw.stream(1024 * 1024, decode_content=False))
    return size / events


def best_of(function: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        begin = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - begin)
    return best


def compression_speeds() -> dict[str, tuple[float, float]]:
    """Single-thread speed (MB/s of JSONL in) and size ratio of each compressor on the same data."""
    import zlib

    import zstandard

    from airflow_provider_mixpanel.event_lines import event_line_normalizer
    from airflow_provider_mixpanel.testing.data import SyntheticEvents

    normalize = event_line_normalizer()
    data = b"".join(normalize(line) for line in SyntheticEvents(100_000).day_lines(date(2024, 3, 1)))
    measured = {}
    for name, compress in {
        "gzip level 1": lambda d: zlib.compress(d, 1, 31),
        "gzip level 6": lambda d: zlib.compress(d, 6, 31),
        "zstd level 1": lambda d: zstandard.ZstdCompressor(level=1).compress(d),
        "zstd level 3": lambda d: zstandard.ZstdCompressor(level=3).compress(d),
    }.items():
        out = compress(data)
        seconds = best_of(lambda c=compress: c(data))
        measured[name] = (len(data) / 1e6 / seconds, len(out) / len(data))
    return measured


LINE_COST_RAW = "raw: `jsonl.check_object` (msgspec, `dict[str, Raw]` of the top level)"
LINE_COST_NORMALIZED = "normalized: `event_line_normalizer` (Mixpanel's layout: a struct decode, three members cut)"
LINE_COST_MEMBERS = "normalized, any other layout: properties as `dict[str, Raw]` (the members road)"
LINE_COST_DICTS = "objects, then a line: `loads_object` + `normalize_event` + `dumps_line`"
LINE_COST_NAIVE = "naive: `json.loads` + `normalize_event` + `json.dumps`"


def line_costs(rounds: int = 5) -> dict[str, float]:
    """In-process lines per second of what each JSONL path does to one export line (no I/O); the
    functions take turns, round after round, and each keeps its best round."""
    from airflow_provider_mixpanel.event_lines import _general_normalizer, event_line_normalizer
    from airflow_provider_mixpanel.jsonl import check_object, dumps_line, loads_object
    from airflow_provider_mixpanel.records import event_time_text_cache, normalize_event
    from airflow_provider_mixpanel.testing.data import SyntheticEvents

    lines = list(SyntheticEvents(50_000).day_lines(date(2024, 3, 1)))
    normalize = event_line_normalizer()
    functions: dict[str, Callable[[bytes], Any]] = {
        LINE_COST_RAW: check_object,
        LINE_COST_NORMALIZED: normalize,
        LINE_COST_MEMBERS: _general_normalizer(event_time_text_cache()),
        LINE_COST_DICTS: lambda line: dumps_line(normalize_event(loads_object(line))),
        LINE_COST_NAIVE: lambda line: json.dumps(normalize_event(json.loads(line)), default=str),
    }

    def each(function: Callable[[bytes], Any]) -> None:
        for line in lines:  # results dropped at once, as a stream drops them (a list of dicts would time the GC)
            function(line)

    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            best[name] = min(best[name], best_of(lambda f=function: each(f), repeat=1))
    return {name: len(lines) / seconds for name, seconds in best.items()}


# ---------------------------------------------------------------- the report


def render(
    runs: Runs,
    extra: dict[str, Any],
    *,
    bytes_per_event: float,
    sizes: list[int],
    profile_sizes: list[int],
    paths: list[str],
    repeats: int,
    elapsed: float,
) -> str:
    big, small = sizes[-1], sizes[0]
    out: list[str] = [
        "## `make bench`: every path, normalized and raw side by side",
        "",
        f"Machine: {machine()}. Load average (1, 5, 15 min) at the start, after the event paths and at "
        f"the end: {' / '.join(extra['load'])}; other engineers' test suites share the two cores, so "
        "absolute rates move by 10-30% between runs: read the ratios, which are taken within this run.",
        "",
        f"Reproduce: `make bench` (`python benchmarks/run.py --sizes {','.join(map(str, sizes))} "
        f"--profile-sizes {','.join(map(str, profile_sizes))} --repeats {repeats}`); this run took "
        f"{elapsed / 60:.1f} min. Every event path streams the same synthetic day (~{bytes_per_event:.0f} "
        "gzip bytes per event on the wire, ~870 bytes per export line: nested properties, non-ASCII "
        "text) from the bundled Mixpanel server over HTTP on 127.0.0.1, its gzip body replayed from "
        "memory, and runs in its own process; rates exclude interpreter start and imports (the CLI's "
        "own cost of them is given apart). *Normalized* is the default output; *raw* is `raw=True` / "
        "`--raw`. The *counting sink* paths run the operator's whole `execute` (JSONL, compression on "
        "the writer thread, part rotation) into a store that counts bytes and keeps nothing; S3 is "
        "moto's server and GCS fake-gcs-server, both on this machine. Peak RSS is each process's "
        "VmHWM.",
        "",
    ]
    out += side_by_side(runs, big, small, repeats)
    out += targets(runs, extra, big, small, paths, profile_sizes)
    out += full_table(runs, extra, sizes, profile_sizes, paths, bytes_per_event)
    out += costs_section(extra)
    out += compression_section(runs, extra, big)
    out += windows_section(extra)
    return "\n".join(out) + "\n"


def _rss(runs: Runs, path: str, small: int, big: int) -> str:
    if not (runs.has(path, small) and runs.has(path, big)):
        return "-"
    before, after = runs.best(path, small)["peak_rss_mib"], runs.best(path, big)["peak_rss_mib"]
    return f"{before:.0f} -> {after:.0f}"


def _rate(runs: Runs, path: str, size: int) -> str:
    if not runs.has(path, size):
        return "-"
    best = runs.best(path, size)
    mark = f" (best of {best['runs']})" if best["runs"] > 1 else ""
    return f"{best['events_per_s']:,.0f}{mark}"


def side_by_side(runs: Runs, big: int, small: int, repeats: int) -> list[str]:
    lines = [
        f"### Normalized and raw at {big:,} events (one day), same run",
        "",
        f"| path | normalized: events/s | raw: events/s | normalized / raw | peak RSS {small:,} -> {big:,} "
        "events, normalized (MiB) | the same, raw (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, normalized, raw in PAIRS:
        if not (runs.has(normalized, big) and runs.has(raw, big)):
            continue
        ratio = runs.rate(normalized, big) / runs.rate(raw, big)
        lines.append(
            f"| {label} | {_rate(runs, normalized, big)} | {_rate(runs, raw, big)} | **{ratio:.0%}** | "
            f"{_rss(runs, normalized, small, big)} | {_rss(runs, raw, small, big)} |"
        )
    profile_big = max((s for (p, s) in runs.measured if p == PROFILE_PATHS[0]), default=None)
    profile_small = min((s for (p, s) in runs.measured if p == PROFILE_PATHS[0]), default=None)
    if profile_big is not None and profile_small is not None and runs.has(PROFILE_PATHS[1], profile_big):
        normalized, raw = PROFILE_PATHS
        ratio = runs.rate(normalized, profile_big) / runs.rate(raw, profile_big)
        lines.append(
            f"| `stream_profiles_jsonl()` consumed, {profile_big:,} profiles (profiles/s) | "
            f"{_rate(runs, normalized, profile_big)} | {_rate(runs, raw, profile_big)} | **{ratio:.0%}** | "
            f"{_rss(runs, normalized, profile_small, profile_big)} | {_rss(runs, raw, profile_small, profile_big)} |"
        )
    for path, label in (("naive-file", "naive baseline to a file"), ("baseline-ceiling", "byte ceiling")):
        if runs.has(path, big):
            lines.append(f"| {label} (`{path}`) | {_rate(runs, path, big)} | | | {_rss(runs, path, small, big)} | |")
    lines += [
        "",
        f"*Best of {repeats}*: those paths ran {repeats} times at {big:,} events, interleaved; the "
        "fastest run is shown, with the highest peak RSS of all its runs. The naive baseline is "
        "`requests` + `iter_lines()` + `json.loads` + the normalization written the obvious way + "
        "`json.dumps`, one line at a time into a file; the byte ceiling reads the body in 1 MiB raw "
        "reads, gunzips and gzips it, without splitting lines.",
        "",
    ]
    return lines


def targets(
    runs: Runs, extra: dict[str, Any], big: int, small: int, paths: list[str], profile_sizes: list[int]
) -> list[str]:
    lines = ["### Targets of issue 12 (ratios within this run)", ""]
    need = ("naive-file", "cli-normalized-file", "cli-raw-file", "sink-normalized-gzip", "sink-raw-gzip")
    if all(runs.has(p, big) for p in need):
        naive = runs.best("naive-file", big)
        cli = runs.best("cli-normalized-file", big)
        raw = runs.best("cli-raw-file", big)
        vs_naive, vs_raw = cli["events_per_s"] / naive["events_per_s"], cli["events_per_s"] / raw["events_per_s"]

        def rates(measured: dict[str, Any]) -> str:
            return ", ".join(f"{r:,.0f}" for r in measured["all_rates"])

        lines.append(
            f"- `mixpanel-stream events` normalized, to a file: {cli['events_per_s']:,.0f} events/s = "
            f"**{vs_naive:.1f}x** the naive baseline ({naive['events_per_s']:,.0f}/s); target >= "
            f"{CLI_VS_NAIVE_TARGET:.0f}x: {verdict(vs_naive >= CLI_VS_NAIVE_TARGET)}."
        )
        lines.append(
            f"- The same = **{vs_raw:.0%}** of `--raw` ({raw['events_per_s']:,.0f}/s); target >= "
            f"{CLI_VS_RAW_TARGET:.0%}: {verdict(vs_raw >= CLI_VS_RAW_TARGET)}. (Runs, events/s: naive "
            f"{rates(naive)}; normalized {rates(cli)}; raw {rates(raw)}.)"
        )
        startup = cli.get("startup_seconds")
        if startup:
            whole = cli["events"] / (cli["seconds"] + startup)
            whole_raw = raw["events"] / (raw["seconds"] + raw.get("startup_seconds", 0))
            lines.append(
                f"  - The whole command, interpreter start and imports included ({startup:.1f} s, most of it "
                f"Airflow's import): {whole:,.0f} events/s normalized, {whole_raw:,.0f} raw."
            )
        normalized_op = runs.best("sink-normalized-gzip", big)
        raw_op = runs.best("sink-raw-gzip", big)
        op_ratio = normalized_op["events_per_s"] / raw_op["events_per_s"]
        stores = [
            f"{s.upper()} {runs.rate(f'{s}-normalized-{c}', big) / runs.rate(f'{s}-raw-{c}', big):.0%} ({c})"
            for s in ("s3", "gcs")
            for c in ("gzip", "zstd")
            if runs.has(f"{s}-normalized-{c}", big) and runs.has(f"{s}-raw-{c}", big)
        ]
        lines.append(
            f"- Operator normalized -> gzip: {normalized_op['events_per_s']:,.0f} events/s = **{op_ratio:.0%}** "
            f"of raw -> gzip ({raw_op['events_per_s']:,.0f}/s), counting sink; target >= "
            f"{OPERATOR_VS_RAW_TARGET:.0%}: {verdict(op_ratio >= OPERATOR_VS_RAW_TARGET)}. (Runs: normalized "
            f"{rates(normalized_op)}; raw {rates(raw_op)}.)"
            + (f" Into the emulators, single runs: {'; '.join(stores)}." if stores else "")
        )
    ours = [p for p in paths if p not in BASELINES and runs.has(p, small) and runs.has(p, big)]
    growth = {p: runs.best(p, big)["peak_rss_mib"] - runs.best(p, small)["peak_rss_mib"] for p in ours}
    if profile_sizes and len(profile_sizes) > 1:
        for p in PROFILE_PATHS:
            if runs.has(p, profile_sizes[0]) and runs.has(p, profile_sizes[-1]):
                growth[p] = (
                    runs.best(p, profile_sizes[-1])["peak_rss_mib"] - runs.best(p, profile_sizes[0])["peak_rss_mib"]
                )
    if growth:
        worst = max(growth, key=lambda p: growth[p])
        lines.append(
            f"- Peak RSS at {big:,} records within {RSS_BUDGET_MIB} MiB of {small:,}, on every path "
            f"({len(growth)} paths, profiles included): largest growth {growth[worst]:+.1f} MiB ({worst}): "
            f"{verdict(growth[worst] <= RSS_BUDGET_MIB)}."
        )
        lines.append(
            "  - "
            + "; ".join(f"{p} {g:+.1f}" for p, g in sorted(growth.items(), key=lambda item: -item[1]))
            + " (MiB)."
        )
    lines.append("")
    return lines


def full_table(
    runs: Runs,
    extra: dict[str, Any],
    sizes: list[int],
    profile_sizes: list[int],
    paths: list[str],
    bytes_per_event: float,
) -> list[str]:
    lines = [
        "### Every path and size",
        "",
        "| path | records | records/s | MB/s of export lines | output MB | peak RSS (MiB) | runs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    line_bytes = 867  # bytes of one synthetic export line, uncompressed (what MB/s counts)
    for path in paths:
        for size in sizes:
            if not runs.has(path, size):
                continue
            best = runs.best(path, size)
            lines.append(
                f"| {path} | {size:,} | {best['events_per_s']:,.0f} | "
                f"{best['events_per_s'] * line_bytes / 1e6:,.0f} | {best['bytes_out'] / 1e6:,.1f} | "
                f"{best['peak_rss_mib']:.0f} | {best['runs']} |"
            )
    for path in PROFILE_PATHS:
        for size in profile_sizes:
            if runs.has(path, size):
                best = runs.best(path, size)
                requests_spent = extra["engage_requests"].get((path, size), "?")
                lines.append(
                    f"| {path} (engage requests: {requests_spent}) | {size:,} | {best['events_per_s']:,.0f} | | "
                    f"{best['bytes_out'] / 1e6:,.1f} | {best['peak_rss_mib']:.0f} | {best['runs']} |"
                )
    lines += [
        "",
        "Small sizes are dominated by fixed costs (the operators' first connection to the store, the "
        "writer thread); the rates that matter are the largest size's.",
        "",
    ]
    return lines


def costs_section(extra: dict[str, Any]) -> list[str]:
    costs = extra.get("line_costs") or {}
    if not costs:
        return []
    lines = [
        "### Where the time goes: one export line, in process",
        "",
        "What each path does to one synthetic export line, without I/O (50,000 lines; the functions take "
        "turns for 5 rounds, best round kept):",
        "",
        "| per line | lines/s | microseconds per line |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} |" for name, rate in costs.items()]
    if LINE_COST_RAW in costs and LINE_COST_NORMALIZED in costs:
        raw_check, normalized = costs[LINE_COST_RAW], costs[LINE_COST_NORMALIZED]
        objects = costs.get(LINE_COST_DICTS)
        lines += [
            "",
            f"The normalized line costs **{raw_check / normalized:.1f}x** the raw path's check per line"
            + (
                f", and {normalized / objects:.1f}x less than building the record as Python objects and encoding it"
                if objects
                else ""
            )
            + ". On two busy cores that difference, not the network or the compression, is what separates "
            "the normalized paths from the raw ones above.",
        ]
    lines.append("")
    return lines


def compression_section(runs: Runs, extra: dict[str, Any], big: int) -> list[str]:
    lines: list[str] = []
    plain = runs.best("hook-jsonl-normalized", big)["bytes_out"] if runs.has("hook-jsonl-normalized", big) else None
    rows = []
    levels = sorted(int(p[len(LEVEL_PREFIX) :]) for (p, size) in runs.measured if p.startswith(LEVEL_PREFIX))
    for level in levels:
        rows.append((f"gzip level {level}", runs.best(f"{LEVEL_PREFIX}{level}", big)))
    if runs.has("sink-normalized-gzip", big):
        rows.append(("gzip level 6 (default)", runs.best("sink-normalized-gzip", big)))
    if runs.has("sink-normalized-zstd", big):
        rows.append(("zstd level 3 (default)", runs.best("sink-normalized-zstd", big)))
    if rows:
        lines += [
            f"### Compression ({big:,} normalized events, operator into the counting sink)",
            "",
            "| compression | events/s | output MB | ratio to uncompressed JSONL |",
            "|---|---:|---:|---:|",
        ]
        for name, measured in rows:
            ratio = f"{measured['bytes_out'] / plain:.3f}" if plain else "-"
            runs_note = f" (best of {measured['runs']})" if measured.get("runs", 1) > 1 else ""
            lines.append(
                f"| {name} | {measured['events_per_s']:,.0f}{runs_note} | "
                f"{measured['bytes_out'] / 1e6:,.1f} | {ratio} |"
            )
        if 1 in levels and runs.has("sink-normalized-gzip", big):
            one, six = runs.best(f"{LEVEL_PREFIX}1", big), runs.best("sink-normalized-gzip", big)
            lines += [
                "",
                f"The default gzip level 6 writes {1 - six['bytes_out'] / one['bytes_out']:.0%} less than level 1, "
                f"at {six['events_per_s'] / one['events_per_s']:.0%} of its speed in this run (compression runs "
                "on the writer thread, beside the parsing).",
            ]
        lines.append("")
    speeds = extra.get("speeds") or {}
    if speeds:
        lines += [
            "Single-thread compression of 100,000 normalized JSONL lines (87 MB), best of 3:",
            "",
            "| compressor | MB/s in | size ratio |",
            "|---|---:|---:|",
        ]
        lines += [f"| {name} | {speed:,.0f} | {ratio:.3f} |" for name, (speed, ratio) in speeds.items()]
        lines.append("")
    return lines


def windows_section(extra: dict[str, Any]) -> list[str]:
    windows = extra.get("windows") or {}
    if not windows:
        return []
    one, four = windows["windows-1"], windows["windows-4"]
    gain = four["events_per_s"] / one["events_per_s"]
    return [
        f"### Concurrent day windows ({WINDOW_DAYS} days x {WINDOW_EVENTS_PER_DAY:,} events, server throttled to "
        f"{THROTTLE_BYTES_PER_SECOND / 1e3:.0f} kB/s per connection, counting sink)",
        "",
        "| max_active_windows | events/s | seconds | peak RSS (MiB) |",
        "|---:|---:|---:|---:|",
        f"| 1 | {one['events_per_s']:,.0f} | {one['seconds']:.1f} | {one['peak_rss_mib']:.0f} |",
        f"| 4 | {four['events_per_s']:,.0f} | {four['seconds']:.1f} | {four['peak_rss_mib']:.0f} |",
        "",
        f"- 4 windows at once: **{gain:.1f}x** the throughput of one; target >= {WINDOWS_TARGET:.0f}x: "
        f"{verdict(gain >= WINDOWS_TARGET)}. Memory grows by {four['peak_rss_mib'] - one['peak_rss_mib']:.0f} MiB "
        "for 3 more windows.",
        "",
    ]


if __name__ == "__main__":
    sys.exit(main())
