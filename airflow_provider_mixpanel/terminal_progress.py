"""``mixpanel-stream``'s progress on stderr: one line rewritten in place at a terminal, like ``curl``
and ``pv``; a plain line every :data:`LOG_INTERVAL` seconds into a file or pipe. Never on stdout.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, TextIO

# At a terminal the line is rewritten about this often (seconds): alive, without flicker.
TERMINAL_INTERVAL = 1.0
# Into a file or a pipe, a new line this often (seconds): a log stays short.
LOG_INTERVAL = 10.0
# Elapsed time never counts as less than this (seconds), so a rate never divides by zero.
MIN_ELAPSED = 1e-9
# Carriage return, then erase to the end of the line (ANSI EL): the next text replaces the line.
REWRITE = "\r\x1b[K"
# Byte units as network tools show them (decimal).
_UNITS = ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


class Progress:
    """Records and bytes written so far, shown on ``stream`` every interval.

    :param stream: where progress goes (stderr).
    :param prefix: what starts each line: the command's name, a colon and a space.
    :param live: rewrite one line in place (``stream`` is a terminal) instead of adding lines.
    :param quiet: show nothing.
    """

    def __init__(self, stream: TextIO, prefix: str, *, live: bool, quiet: bool = False):
        self.stream = stream
        self.prefix = prefix
        self.live = live and not quiet
        self.quiet = quiet
        self.interval = TERMINAL_INTERVAL if live else LOG_INTERVAL
        self.started = time.monotonic()
        self._next = self.started + self.interval
        self._shown = False  # a live line is on the terminal, to be erased before other text

    @classmethod
    def on(cls, stream: TextIO, prefix: str, *, quiet: bool = False) -> Progress:
        """Live when ``stream`` is a terminal."""
        return cls(stream, prefix, live=is_terminal(stream), quiet=quiet)

    def due(self, now: float) -> bool:
        return not self.quiet and now >= self._next

    def show(self, records: int, size: int, now: float) -> None:
        """Show the counts (the caller asks :meth:`due` first: one clock read per batch)."""
        self._next = now + self.interval
        elapsed = max(now - self.started, MIN_ELAPSED)
        rate = records / elapsed
        if self.live:
            self.stream.write(
                f"{REWRITE}{self.prefix}{records:,} records  {_size(size)}  {rate:,.0f} records/s  "
                f"{_size(size / elapsed)}/s  {_clock(elapsed)}"
            )
            self._shown = True
        else:
            self.stream.write(f"{self.prefix}{records:,} records, {rate:,.0f} records/s\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the live line, so that a message printed next starts on a clean line."""
        if self._shown:
            self.stream.write(REWRITE)
            self.stream.flush()
            self._shown = False


class StderrThatMayClose:
    """Stderr for a command whose stderr reader may go away (``2>&1 | head -c 20``): what is left to
    say is dropped, never raised. Progress and warnings are not the command's output; a broken pipe
    there must not stop an export or be mistaken for the output's reader leaving."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._drop_the_rest()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._drop_the_rest()

    def _drop_the_rest(self) -> None:
        """Point the descriptor at /dev/null: later lines, and the flush at exit, then succeed."""
        with contextlib.suppress(OSError, ValueError):  # a capture stream in tests has no descriptor
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding...: the stream's own
        return getattr(self.stream, name)


def is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _size(count: float) -> str:
    for unit, name in _UNITS:
        if count >= unit:
            return f"{count / unit:.1f} {name}"
    return f"{count:.0f} B"


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"
