"""When and how long to wait before retrying a Mixpanel request: an immutable :class:`RetryPolicy`.

The policy only answers questions (is this failure retryable, how long to wait before attempt N,
when to give up); the client applies it, and keeps the one rule the policy cannot know: a request
is retried only while none of its records has been yielded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from airflow_provider_mixpanel.errors import MixpanelError, MixpanelRateLimitError, MixpanelServerError

DEFAULT_MAX_RETRIES = 5
# First backoff wait; it doubles each retry (2, 4, 8, 16, 32 s: about a minute in all), with jitter.
DEFAULT_BACKOFF_BASE = 2.0
DEFAULT_BACKOFF_MAX = 60.0
# A Retry-After (or an hourly-quota wait) longer than this fails the call instead of parking a
# worker: Airflow's own retry_delay then takes over.
DEFAULT_MAX_RETRY_AFTER = 300.0
# When a 429 says the hourly quota is spent but gives no Retry-After, ask again this often: a
# rolling hour frees one query slot at a time, so a minute is about when the next one frees up.
DEFAULT_QUOTA_POLL_INTERVAL = 60.0


def is_retryable(error: BaseException) -> bool:
    """429s and 5xx answers may pass; authentication, query and configuration errors never do."""
    return isinstance(error, MixpanelRateLimitError | MixpanelServerError)


@dataclass(frozen=True)
class RetryPolicy:
    """How a request is retried after a 429, a 5xx, a connection error or a timeout.

    :param max_retries: retries of one request (not counting waits for the hourly quota).
    :param backoff_base: seconds before the first retry; doubles each retry, with jitter.
    :param backoff_max: cap of one backoff wait, in seconds.
    :param max_retry_after: longest wait honoured, in seconds: a ``Retry-After`` beyond it, or an
        hourly-quota wait that would add up to more, fails the call at once.
    :param quota_poll_interval: seconds between attempts while the hourly quota is spent and
        Mixpanel did not say how long to wait.
    :param server_errors: the retries and backoff of a connection error or a 5xx answer when they
        differ from a 429's (``mixpanel-stream`` at a terminal: a few short ones, while a 429 still
        waits as long as Mixpanel asks); ``None``: this policy's.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    quota_poll_interval: float = DEFAULT_QUOTA_POLL_INTERVAL
    server_errors: RetryPolicy | None = None

    def without_retries(self) -> RetryPolicy:
        """The same policy, answering at the first failure (``test_connection``)."""
        return replace(self, max_retries=0, max_retry_after=0.0, server_errors=None)

    def for_error(self, error: MixpanelError) -> RetryPolicy:
        """The policy whose retries and backoff apply to ``error``."""
        if self.server_errors is not None and isinstance(error, MixpanelServerError):
            return self.server_errors
        return self

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based) when Mixpanel did not say."""
        return min(self.backoff_max, self.backoff_base * 2 ** (retry - 1)) * random.uniform(0.5, 1.0)


@dataclass
class RetryState:
    """The attempts of one request so far, judged by a :class:`RetryPolicy`."""

    policy: RetryPolicy
    retries: int = 0
    quota_waited: float = 0.0

    def next_wait(self, error: MixpanelError) -> tuple[float, str | None]:
        """``(seconds to wait, None)`` before the next attempt, or ``(0, why)`` to give up."""
        policy = self.policy
        retry_after = error.retry_after if isinstance(error, MixpanelRateLimitError) else None
        if retry_after is not None and retry_after > policy.max_retry_after:
            return 0.0, (
                f"Mixpanel asked to wait {retry_after:.0f} s, longer than max_retry_after="
                f"{policy.max_retry_after:.0f} s"
            )
        if isinstance(error, MixpanelRateLimitError) and error.hourly_quota_spent:
            wait = retry_after if retry_after is not None else policy.quota_poll_interval
            if self.quota_waited + wait > policy.max_retry_after:
                return 0.0, (
                    f"the hourly quota (60 queries) is spent and waiting for it would take longer than "
                    f"max_retry_after={policy.max_retry_after:.0f} s"
                )
            self.quota_waited += wait
            return wait, None
        # One count of retries, judged by the limit of the failure at hand.
        retries = policy.for_error(error)
        self.retries += 1
        if self.retries > retries.max_retries:
            return 0.0, f"failed after {self.retries} attempts"
        return (retry_after if retry_after is not None else retries.backoff(self.retries)), None
