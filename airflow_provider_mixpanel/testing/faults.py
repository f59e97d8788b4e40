"""Injected faults: what goes wrong with the next matching request(s) of the test server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from airflow_provider_mixpanel.testing.routes import ENDPOINT_NAMES

FAULT_KINDS = ("status", "drop", "terminated_early", "malformed", "truncated_gzip", "slow", "stall")
#: Faults that strike in the middle of a body, after ``after_records`` records.
MID_BODY_KINDS = ("drop", "terminated_early", "malformed", "truncated_gzip", "stall")
#: JSON bodies (engage, cohorts, funnels, annotations, Lexicon) are not gzip or JSONL: these make
#: no sense there.
EXPORT_ONLY_KINDS = ("terminated_early", "truncated_gzip")
ENDPOINTS = (*ENDPOINT_NAMES, "any")


@dataclass
class Fault:
    """One injected fault, applied to the next ``times`` matching requests.

    :param kind: ``status`` (answer ``status`` with ``body`` and an optional ``Retry-After``),
        ``drop`` (close the socket after ``after_records`` records: export lines, or engage
        profiles, or any other JSON body's items), ``terminated_early`` (send the ``terminated early`` line after
        ``after_records``; export only), ``malformed`` (insert ``line`` after ``after_records``),
        ``truncated_gzip`` (end a gzip body without its end marker after ``after_records``; export
        only), ``slow`` (wait ``delay`` seconds before answering), ``stall`` (wait ``delay``
        seconds after ``after_records`` records).
    :param endpoint: ``export``, ``engage``, ``cohorts``, ``funnels_list``, ``funnels``,
        ``annotations``, ``lexicon`` (:data:`~.routes.ENDPOINT_NAMES`) or ``any``.
    """

    kind: str
    endpoint: str = "export"
    times: int = 1
    status: int = 500
    body: str | None = None
    retry_after: str | None = None
    after_records: int = 0
    delay: float = 0.0
    line: bytes = b'{"event":"broken","properties":{"time":'

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault {self.kind!r}: use one of {', '.join(FAULT_KINDS)}")
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"Unknown fault endpoint {self.endpoint!r}: use one of {', '.join(ENDPOINTS)}")
        if self.endpoint not in ("export", "any") and self.kind in EXPORT_ONLY_KINDS:
            raise ValueError(f"A {self.kind!r} fault applies to export bodies only, not to {self.endpoint}")


class DropConnection(Exception):
    """Raised by a faulty body: close the socket where the body has got to."""


class TruncateGzip(Exception):
    """Raised by a faulty body: end the gzip stream here, without its end marker."""


def with_fault(records: Iterator[bytes], fault: Fault) -> Iterator[bytes]:
    """``records`` with ``fault`` applied after ``fault.after_records`` of them."""
    for count, record in enumerate(records):
        if count == fault.after_records:
            if fault.kind == "drop":
                raise DropConnection
            if fault.kind == "terminated_early":
                yield b"terminated early\n"
                return
            if fault.kind == "malformed":
                yield fault.line.rstrip(b"\n") + b"\n"
            if fault.kind == "truncated_gzip":
                raise TruncateGzip
            if fault.kind == "stall":
                time.sleep(fault.delay)
        yield record
    # fewer records than after_records: break at the end instead
    if fault.kind == "drop":
        raise DropConnection
    if fault.kind == "truncated_gzip":
        raise TruncateGzip
