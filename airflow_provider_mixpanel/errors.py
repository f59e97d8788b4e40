"""The exception hierarchy: every failure says what went wrong and what to do about it.

Catch :class:`MixpanelError` for everything this package raises, or a subclass for one kind of
failure. Messages never contain a secret: they are built from status codes, Mixpanel's own error
text and the names of fields, never from credentials or request headers.
"""

from __future__ import annotations

import re
import sys

if "airflow" in sys.modules:
    from airflow.exceptions import AirflowException as _Base
else:

    class _Base(Exception):  # type: ignore[no-redef]
        """Stands in for AirflowException until Airflow is loaded (:func:`attach_to_airflow`)."""


def attach_to_airflow() -> None:
    """Make :class:`MixpanelError` an ``AirflowException``, whatever was imported first.

    Importing Airflow only for a base class costs over a second, which ``mixpanel-stream`` with its
    connection in the environment does without; so when this module is imported before Airflow its
    base is a stand-in, and ``_compat`` (imported by the hook and the operators, after Airflow)
    calls this to put ``AirflowException`` in its place: ``except AirflowException`` then catches
    these errors in every process that uses the hook or the operators, in any import order.
    """
    from airflow.exceptions import AirflowException

    if not issubclass(MixpanelError, AirflowException):
        # Allowed because the stand-in and AirflowException have the same instance layout.
        MixpanelError.__bases__ = (AirflowException,)


# "... 61/60 queries running in the last hour": used / allowed in the rolling hour.
_HOURLY_COUNT = re.compile(r"(\d+)\s*/\s*(\d+) queries running in the last hour")


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

    @property
    def hourly_quota_spent(self) -> bool:
        """Mixpanel's message says the rolling-hour quota (60 queries) is used up, as opposed to
        the per-second or concurrency limits, which clear within seconds."""
        return is_hourly_quota_message(self.api_message)


def is_hourly_quota_message(api_message: str | None) -> bool:
    """Whether a 429 text says the hourly quota is spent: ``... 61/60 queries running in the last hour``."""
    match = _HOURLY_COUNT.search(api_message or "")
    return match is not None and int(match.group(1)) > int(match.group(2))


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


class MixpanelCancelledError(MixpanelError):
    """The stream was cancelled from another thread (:meth:`MixpanelClient.cancel`): the task was
    killed, or another window of the same task failed. Never retried."""


class MixpanelMalformedRecordError(MixpanelError):
    """A line of the export, or an engage result, is not a JSON object (or not a record: a
    ``properties`` that is not an object, a ``time`` that is not a time).

    :ivar line_number: the line's number in its stream (1 for the first), once the stream knows it.
    """

    line_number: int | None = None

    def locate(self, line_number: int, preview: str) -> None:
        """Name the line in the message: its number, and its start unless the message shows it."""
        if self.line_number is not None:
            return
        self.line_number = line_number
        shown = "" if preview in self.message else f" The line starts: {preview}"
        self.message = f"Line {line_number}: {self.message}{shown}"
        self.args = (self.message,)


def error_for_status(
    status: int,
    api_message: str | None,
    *,
    what: str,
    source: str,
    project_id: int | None,
    region: str,
    url: str,
    retry_after: float | None = None,
) -> MixpanelError:
    """The exception for an HTTP error answer of Mixpanel, with Mixpanel's message and what to do.

    :param what: the request, for the message: ``export 2024-03-01..2024-03-01``.
    :param source: where the credentials came from: ``connection 'mixpanel_default'``.
    :param retry_after: seconds of the answer's ``Retry-After`` header, when it had one.
    """
    said = f" Mixpanel said: {api_message!r}." if api_message else ""
    project = f"project {project_id}" if project_id is not None else "the project"
    lowered = (api_message or "").lower()
    details: dict = {"http_status": status, "api_message": api_message}
    if status == 429:
        return MixpanelRateLimitError(f"Rate limited (429).{said}", retry_after=retry_after, **details)
    if status >= 500:
        return MixpanelServerError(f"Mixpanel server error {status}.{said}", **details)
    if status == 401 or (status == 400 and "unable to authenticate" in lowered):
        fix = (
            f"The service account username or secret in {source} is wrong or has expired: create a new "
            "secret in Mixpanel (Organization Settings > Service Accounts) and update the connection."
        )
    elif status == 400 and "invalid project id for cluster" in lowered:
        fix = (
            f"{project.capitalize()} is not in the {region!r} data residency region: set the connection "
            f"extra 'region' of {source} to the region the project lives in (us, eu or in)."
        )
    elif status == 402:
        fix = "The project's plan has no API access for this endpoint; upgrade the plan or ask Mixpanel support."
    elif status == 403:
        fix = (
            f"Check that project_id in {source} is right ({project}) and that the service account is a "
            "member of that project with a role that may export data (and classified-data access where "
            "the project has it)."
        )
    elif status == 404:
        return MixpanelQueryError(
            f"Mixpanel {what}: not found (404) at {url.split('?')[0]}.{said} Check the host and region of {source}.",
            **details,
        )
    else:
        return MixpanelQueryError(
            f"Mixpanel {what}: request rejected ({status}).{said} Fix the request's parameters "
            "(dates, event names, where expression).",
            **details,
        )
    title = _AUTH_TITLES.get(status, "authentication failed")
    if "invalid project id for cluster" in lowered:
        title = "wrong data residency region"
    return MixpanelAuthError(f"Mixpanel {what}: {title} ({status}).{said} {fix}", **details)


_AUTH_TITLES = {
    400: "authentication failed",
    401: "authentication failed",
    402: "payment required",
    403: "access denied",
}
