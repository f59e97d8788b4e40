"""The exception hierarchy: every failure says what went wrong and what to do about it.

Catch :class:`MixpanelError` for everything this package raises, or a subclass for one kind of
failure. Messages never contain a secret: they are built from status codes, Mixpanel's own error
text and the names of fields, never from credentials or request headers.
"""

from __future__ import annotations

try:  # An AirflowException, so Airflow shows the message plainly; plain Exception without Airflow.
    from airflow.exceptions import AirflowException as _Base
except ImportError:  # pragma: no cover - the package always installs Airflow
    _Base = Exception  # type: ignore[assignment,misc]


class MixpanelError(_Base):
    """Base class of every error raised by this package.

    :param message: what went wrong and what to do about it.
    :param http_status: the HTTP status Mixpanel answered with, when there was one.
    :param api_message: Mixpanel's own ``error`` text, when it sent one.
    """

    def __init__(self, message: str, *, http_status: int | None = None, api_message: str | None = None):
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.api_message = api_message

    def __str__(self) -> str:
        return self.message


class MixpanelConfigError(MixpanelError, ValueError):
    """A connection field, an argument or a date is wrong; raised before any request is made."""


class MixpanelAuthError(MixpanelError):
    """Mixpanel refused the credentials or the project (400 "Unable to authenticate request", 401,
    402, 403, wrong data-residency region). Never retried: retrying cannot fix it."""


class MixpanelQueryError(MixpanelError):
    """Mixpanel rejected the request's parameters (a 400 other than authentication, or a 404)."""


class MixpanelRateLimitError(MixpanelError):
    """Mixpanel kept answering 429 after the retry budget was spent.

    :param retry_after: seconds Mixpanel asked to wait (``Retry-After``), when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class MixpanelServerError(MixpanelError):
    """Mixpanel answered 5xx, or could not be reached or timed out, after the retry budget was spent."""


class MixpanelStreamInterruptedError(MixpanelError):
    """The export stream broke after records were already yielded: the connection dropped, the gzip
    body was truncated, the read timed out, or Mixpanel sent ``terminated early``. Not retried in
    place, because retrying would yield the records already delivered a second time.

    :param records_yielded: how many records the caller had received before the break.
    """

    def __init__(self, message: str, *, records_yielded: int = 0, **kwargs):
        super().__init__(message, **kwargs)
        self.records_yielded = records_yielded


class MixpanelMalformedRecordError(MixpanelError):
    """A line of the export, or an engage result, is not a JSON object."""
