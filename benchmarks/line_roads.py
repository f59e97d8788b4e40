"""Per-line cost of each road an export line can take, in process, no I/O: a focused, short
measurement for changes to ``event_lines`` and ``jsonl``; ``make bench`` measures the whole paths.
Not part of ``make test``.

    python benchmarks/line_roads.py [--lines 50000] [--rounds 5] [--against DIR] [--runs 3]

The lines are the synthetic day of ``make bench`` (Mixpanel's layout, about 870 bytes, raw UTF-8
text), once as sent and once with non-ASCII written as ``\\u`` escapes (an ASCII line). The
functions take turns, round after round, each keeping its best round of CPU time (this process's
own, so that other work on the two cores counts less). The yardstick is one bare
msgspec decode of the line's top level (``dict[str, Raw]``), which no change to the package
touches: compare the roads' ratios to it, not their absolute times, since other work shares the
two cores.

``--against DIR`` compares with another copy of the package (``DIR/airflow_provider_mixpanel``,
e.g. ``git archive main airflow_provider_mixpanel | tar -x -C DIR``): each copy is measured in
processes of its own, taking turns ``--runs`` times, and each road keeps its best run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

YARDSTICK = "yardstick: msgspec `dict[str, Raw]` decode of the top level"


def roads() -> dict[str, Callable[[bytes], Any]]:
    import msgspec

    from airflow_provider_mixpanel.event_lines import _general_normalizer, event_line_normalizer
    from airflow_provider_mixpanel.jsonl import check_object
    from airflow_provider_mixpanel.records import event_time_text_cache

    top = msgspec.json.Decoder(dict[str, msgspec.Raw])
    return {
        YARDSTICK: top.decode,
        "raw check: `jsonl.check_object`": check_object,
        "splice road: `event_line_normalizer`": event_line_normalizer(),
        "members road: `_general_normalizer`": _general_normalizer(event_time_text_cache()),
    }


def measure(lines: list[bytes], rounds: int) -> dict[str, float]:
    """Microseconds per line of each road, best round."""
    functions = roads()
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            begin = time.process_time()
            for line in lines:
                function(line)
            best[name] = min(best[name], time.process_time() - begin)
    return {name: seconds / len(lines) * 1e6 for name, seconds in best.items()}


def measure_both(count: int, rounds: int) -> list[dict[str, float]]:
    """µs per line of each road, for raw UTF-8 lines and for ASCII lines."""
    from airflow_provider_mixpanel.testing.data import SyntheticEvents

    day = date(2024, 3, 1)
    results = []
    for ascii_escape in (False, True):
        lines = [line.rstrip(b"\n") for line in SyntheticEvents(count, ascii_escape=ascii_escape).day_lines(day)]
        results.append(measure(lines, rounds))
    return results


def table(results: list[dict[str, float]]) -> list[str]:
    rows = [
        "| road | raw UTF-8 lines: µs/line | x yardstick | ASCII lines: µs/line | x yardstick |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in results[0]:
        cells = []
        for result in results:
            cells += [f"{result[name]:.2f}", f"{result[name] / result[YARDSTICK]:.2f}"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another copy of the package, to compare with")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--package-root", type=Path, default=HERE.parent.parent, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against is None:
        sys.path.insert(0, str(args.package_root))
        results = measure_both(args.lines, args.rounds)
        print(json.dumps(results) if args.json else "\n".join(table(results)))
        return
    roots = {"this checkout": HERE.parent.parent, str(args.against): args.against.resolve()}
    best: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.runs):
        for label, root in roots.items():
            command = [sys.executable, str(HERE), "--json", "--package-root", str(root)]
            command += ["--lines", str(args.lines), "--rounds", str(args.rounds)]
            run = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            previous = best.setdefault(label, run)
            for kept, new in zip(previous, run, strict=True):
                for name, cost in new.items():
                    kept[name] = min(kept[name], cost)
    for label, results in best.items():
        print(f"\n{label}:\n")
        print("\n".join(table(results)))


if __name__ == "__main__":
    main()
