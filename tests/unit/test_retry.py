from __future__ import annotations

import dataclasses

import pytest

from airflow_provider_mixpanel.errors import (
    MixpanelAuthError,
    MixpanelQueryError,
    MixpanelRateLimitError,
    MixpanelServerError,
    is_hourly_quota_message,
)
from airflow_provider_mixpanel.retry import RetryPolicy, RetryState, is_retryable

PREFIX = "Query rate limit exceeded for project_id: 1."
HOURLY = f"{PREFIX} 1/5 queries running concurrently and 61/60 queries running in the last hour."
CONCURRENT = f"{PREFIX} 6/5 queries running concurrently and 60/60 queries running in the last hour."


def rate_limited(message: str = "slow down", retry_after: float | None = None) -> MixpanelRateLimitError:
    return MixpanelRateLimitError("429", retry_after=retry_after, http_status=429, api_message=message)


def test_the_policy_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_retries = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (rate_limited(), True),
        (MixpanelServerError("502"), True),
        (MixpanelAuthError("401"), False),
        (MixpanelQueryError("400"), False),
    ],
)
def test_only_429_and_server_errors_are_retryable(error, retryable):
    assert is_retryable(error) is retryable


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(backoff_base=2, backoff_max=10)
    for retry, ceiling in [(1, 2), (2, 4), (3, 8), (4, 10), (9, 10)]:
        wait = policy.backoff(retry)
        assert ceiling / 2 <= wait <= ceiling


def test_retries_run_out():
    state = RetryState(RetryPolicy(max_retries=2))
    assert state.next_wait(MixpanelServerError("502"))[1] is None
    assert state.next_wait(MixpanelServerError("502"))[1] is None
    assert state.next_wait(MixpanelServerError("502"))[1] == "failed after 3 attempts"


def test_retry_after_is_honoured_and_a_long_one_gives_up_at_once():
    state = RetryState(RetryPolicy(max_retry_after=60))
    assert state.next_wait(rate_limited(retry_after=7)) == (7, None)
    wait, why = state.next_wait(rate_limited(retry_after=61))
    assert wait == 0 and "longer than max_retry_after=60" in (why or "")


def test_hourly_quota_waits_do_not_spend_retries_but_are_bounded():
    state = RetryState(RetryPolicy(max_retries=1, quota_poll_interval=50, max_retry_after=120))
    assert state.next_wait(rate_limited(HOURLY)) == (50, None)
    assert state.next_wait(rate_limited(HOURLY)) == (50, None)
    assert state.retries == 0
    wait, why = state.next_wait(rate_limited(HOURLY))
    assert wait == 0 and "hourly quota" in (why or "")


def test_server_errors_can_have_retries_of_their_own():
    quick = RetryPolicy(max_retries=1, backoff_base=0.5, backoff_max=0.5)
    policy = RetryPolicy(max_retries=3, backoff_base=10, backoff_max=10, server_errors=quick)
    state = RetryState(policy)
    assert 0.25 <= state.next_wait(MixpanelServerError("502"))[0] <= 0.5
    assert state.next_wait(MixpanelServerError("502"))[1] == "failed after 2 attempts"
    state = RetryState(policy)
    waits = [state.next_wait(rate_limited())[0] for _ in range(3)]
    assert all(5 <= wait <= 10 for wait in waits), "a 429 got the server errors' retries"
    assert state.next_wait(rate_limited())[1] == "failed after 4 attempts"


def test_without_retries_answers_at_the_first_failure():
    state = RetryState(RetryPolicy().without_retries())
    assert state.next_wait(MixpanelServerError("502"))[1] is not None
    quick = RetryPolicy(server_errors=RetryPolicy(max_retries=2)).without_retries()
    assert RetryState(quick).next_wait(MixpanelServerError("502"))[1] is not None
    assert RetryState(RetryPolicy().without_retries()).next_wait(rate_limited(HOURLY))[1] is not None


@pytest.mark.parametrize(
    ("message", "hourly"),
    [(HOURLY, True), (CONCURRENT, False), ("Too many requests", False), (None, False)],
)
def test_hourly_quota_message(message, hourly):
    assert is_hourly_quota_message(message) is hourly
