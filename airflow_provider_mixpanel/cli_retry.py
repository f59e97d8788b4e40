"""How ``mixpanel-stream`` retries: quickly at a terminal, patiently in scripts.

A person at a terminal who mistyped a host wants the error at once; a scheduled job wants the
retries that ride out a bad minute. When stderr is a terminal and neither ``--max-retries`` nor
``--max-retry-after`` is given, connection errors and 5xx answers are retried a couple of times
with short waits, and the error says how to ask for more; a 429 (a Retry-After, the hourly quota)
is waited for as in scripts, since waiting is the only way past it. Otherwise the hook's policy
applies (:class:`~airflow_provider_mixpanel.retry.RetryPolicy`'s defaults), with the flags' values.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mixpanel.errors import MixpanelError, MixpanelRateLimitError, MixpanelServerError
from airflow_provider_mixpanel.retry import DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_AFTER, RetryPolicy

# At a terminal, after a connection error or a 5xx: two retries after 0.5 s and 1 s (with jitter),
# about 2 s before the error. 429s keep the default policy.
QUICK_SERVER_ERROR_RETRIES = RetryPolicy(max_retries=2, backoff_base=0.5, backoff_max=1.0)
INTERACTIVE_POLICY = RetryPolicy(server_errors=QUICK_SERVER_ERROR_RETRIES)
# At a terminal a host that does not answer fails after this long per attempt, not the client's 10 s.
INTERACTIVE_CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True)
class RetryPlan:
    """The retry policy and connect timeout of one run, and what to say when they are spent."""

    policy: RetryPolicy
    connect_timeout: float | None  # None: the client's own
    quick: bool  # the short terminal policy: the error says how to wait longer

    def explain(self, error: MixpanelError, client: Any) -> str:
        """The error's message, naming the host, and at a terminal how to ask for more retries."""
        message = str(error)
        if not isinstance(error, MixpanelServerError | MixpanelRateLimitError) or client is None:
            return message
        host = urlsplit(client.export_url).netloc
        if host not in message:
            message = f"{message.rstrip()} (host {host})."
        if self.quick and isinstance(error, MixpanelServerError):  # only these are given up on early
            message += (
                f" Gave up early because stderr is a terminal: --max-retries N asks for more (scripts get "
                f"{DEFAULT_MAX_RETRIES} retries, about a minute in all)."
            )
        return message


def add_retry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-retries",
        type=_non_negative_int,
        metavar="N",
        help=f"retries of a request after a connection error, a 5xx or a 429 (default {DEFAULT_MAX_RETRIES}; "
        f"after a connection error or a 5xx, {QUICK_SERVER_ERROR_RETRIES.max_retries} with short waits when stderr "
        "is a terminal)",
    )
    parser.add_argument(
        "--max-retry-after",
        type=_non_negative_float,
        metavar="SECONDS",
        help=f"longest wait honoured for a Retry-After or the hourly quota (default {DEFAULT_MAX_RETRY_AFTER:.0f})",
    )


def retry_plan(max_retries: int | None, max_retry_after: float | None, *, interactive: bool) -> RetryPlan:
    """The terminal's quick policy when nothing was asked for there; otherwise the default policy
    with what the flags ask."""
    if interactive and max_retries is None and max_retry_after is None:
        return RetryPlan(INTERACTIVE_POLICY, INTERACTIVE_CONNECT_TIMEOUT, quick=True)
    policy = RetryPolicy(
        max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
        max_retry_after=DEFAULT_MAX_RETRY_AFTER if max_retry_after is None else max_retry_after,
    )
    return RetryPlan(policy, None, quick=False)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value
