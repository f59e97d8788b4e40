"""Progress of one export: records and bytes counted, and logged every few seconds."""

from __future__ import annotations

import logging
import threading
import time

from airflow_provider_mixpanel.transfers.run_log import summary_line

log = logging.getLogger(__name__)

# A progress line at most this often (seconds): often enough to see a task is alive, rare enough
# to keep the log short.
PROGRESS_INTERVAL = 10.0
# Elapsed time never counts as less than this (seconds), so a rate never divides by zero.
MIN_ELAPSED = 1e-9


class Progress:
    """Counts what passed and logs it every :data:`PROGRESS_INTERVAL` seconds; windows streaming at
    once share one. The task's first log line already says what is exported, so these lines do not.
    """

    def __init__(self) -> None:
        self.records = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.monotonic()
        self._next_log = self.started + PROGRESS_INTERVAL
        self._lock = threading.Lock()

    def add(self, records: int, bytes_in: int) -> None:
        """Count ``records`` encoded into ``bytes_in`` bytes of JSONL, and log if it is time."""
        with self._lock:
            self.records += records
            self.bytes_in += bytes_in
        self._maybe_log()

    def add_written(self, bytes_out: int) -> None:
        """Count ``bytes_out`` compressed bytes sent to storage."""
        with self._lock:
            self.bytes_out += bytes_out

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + PROGRESS_INTERVAL
            self.log()

    def log(self, *, final: bool = False, windows: int | None = None) -> None:
        """A progress line, or the summary (``final``) with the number of windows exported."""
        elapsed = max(time.monotonic() - self.started, MIN_ELAPSED)
        with self._lock:
            line = summary_line(
                final=final,
                records=self.records,
                bytes_in=self.bytes_in,
                bytes_out=self.bytes_out,
                seconds=elapsed,
                windows=windows,
            )
        log.info("%s", line)
