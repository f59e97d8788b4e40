"""mixpanel-stream's progress: one line rewritten at a terminal, plain lines into a file or pipe."""

from __future__ import annotations

import io
from types import SimpleNamespace

from airflow_provider_mixpanel.cli_retry import INTERACTIVE_POLICY, retry_plan
from airflow_provider_mixpanel.errors import MixpanelRateLimitError, MixpanelServerError
from airflow_provider_mixpanel.retry import DEFAULT_QUOTA_POLL_INTERVAL, RetryPolicy, RetryState
from airflow_provider_mixpanel.terminal_progress import LOG_INTERVAL, REWRITE, TERMINAL_INTERVAL, Progress

# Mixpanel's answer when the 60 queries of the rolling hour are spent.
HOURLY = "Query rate limit exceeded. 1/5 queries running concurrently and 61/60 queries running in the last hour."


def rate_limited(message: str = "slow down", retry_after: float | None = None) -> MixpanelRateLimitError:
    return MixpanelRateLimitError("429", retry_after=retry_after, http_status=429, api_message=message)


def test_live_line_is_rewritten_in_place_with_records_bytes_rate_and_elapsed():
    stream = io.StringIO()
    progress = Progress(stream, "cmd: ", live=True)
    assert progress.interval == TERMINAL_INTERVAL
    progress.show(1_500_000, 750_000_000, progress.started + 3.0)
    progress.show(3_000_000, 1_500_000_000, progress.started + 6.0)
    text = stream.getvalue()
    assert "\n" not in text and text.count(REWRITE) == 2
    assert text.endswith(f"{REWRITE}cmd: 3,000,000 records  1.5 GB  500,000 records/s  250.0 MB/s  0:00:06")


def test_clear_erases_the_live_line_once():
    stream = io.StringIO()
    progress = Progress(stream, "cmd: ", live=True)
    progress.show(10, 1000, progress.started + 1.0)
    progress.clear()
    progress.clear()
    assert stream.getvalue().endswith(REWRITE) and stream.getvalue().count(REWRITE) == 2


def test_file_or_pipe_gets_a_plain_line_every_log_interval():
    stream = io.StringIO()
    progress = Progress.on(stream, "cmd: ")  # StringIO is not a terminal
    assert not progress.live and progress.interval == LOG_INTERVAL
    assert not progress.due(progress.started + LOG_INTERVAL - 1)
    assert progress.due(progress.started + LOG_INTERVAL)
    progress.show(20_000, 1, progress.started + LOG_INTERVAL)
    progress.clear()
    assert stream.getvalue() == "cmd: 20,000 records, 2,000 records/s\n"


def test_quiet_is_never_due():
    progress = Progress(io.StringIO(), "cmd: ", live=True, quiet=True)
    assert not progress.due(progress.started + 3600)


def test_terminal_without_flags_retries_quickly():
    plan = retry_plan(None, None, interactive=True)
    assert plan.quick and plan.policy == INTERACTIVE_POLICY


def test_at_a_terminal_only_connection_errors_and_5xx_give_up_early():
    plan = retry_plan(None, None, interactive=True)
    assert plan.policy.for_error(MixpanelServerError("502")).max_retries == 2
    # A 429 is waited for as in scripts: the hourly quota and a long Retry-After are not given up on.
    assert plan.policy.for_error(rate_limited()) == RetryPolicy(server_errors=plan.policy.server_errors)
    assert RetryState(plan.policy).next_wait(rate_limited(retry_after=60)) == (60, None)
    assert RetryState(plan.policy).next_wait(rate_limited(HOURLY)) == (DEFAULT_QUOTA_POLL_INTERVAL, None)


def test_at_a_terminal_a_429_is_not_said_to_be_given_up_early():
    plan = retry_plan(None, None, interactive=True)
    client = SimpleNamespace(export_url="https://data.mixpanel.com/api/2.0/export")
    assert "stderr is a terminal" not in plan.explain(rate_limited(retry_after=900), client)
    assert "--max-retries" in plan.explain(MixpanelServerError("Connection refused."), client)


def test_without_a_terminal_the_retry_policy_is_the_hooks():
    plan = retry_plan(None, None, interactive=False)
    assert not plan.quick and plan.policy == RetryPolicy() and plan.connect_timeout is None


def test_flags_ask_for_more_even_at_a_terminal():
    plan = retry_plan(8, 900.0, interactive=True)
    assert not plan.quick and plan.policy == RetryPolicy(max_retries=8, max_retry_after=900.0)
