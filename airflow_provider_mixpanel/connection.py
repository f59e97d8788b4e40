"""A ``mixpanel`` connection, read and validated: :class:`MixpanelConnectionSettings`.

No Airflow here: the hook hands over the connection's fields; the client checks its own
credentials with :func:`check_credentials`, so every check has one place and one wording.
URI-form extras arrive as strings (``?project_id=123``); they are converted here, and every error
names the field and the connection id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_mixpanel.errors import MixpanelConfigError


@dataclass(frozen=True)
class RegionHosts:
    """The two API hosts of one data-residency region."""

    export: str
    query: str


REGIONS: dict[str, RegionHosts] = {
    "us": RegionHosts(export="https://data.mixpanel.com", query="https://mixpanel.com"),
    "eu": RegionHosts(export="https://data-eu.mixpanel.com", query="https://eu.mixpanel.com"),
    "in": RegionHosts(export="https://data-in.mixpanel.com", query="https://in.mixpanel.com"),
}
DEFAULT_REGION = "us"


@dataclass(frozen=True)
class MixpanelConnectionSettings:
    """A ``mixpanel`` connection, read and validated. ``repr`` never shows the secret."""

    conn_id: str
    username: str | None
    secret: str = field(repr=False)
    project_id: int | None
    region: str = DEFAULT_REGION
    workspace_id: int | None = None
    project_timezone: str | None = None
    base_url: str | None = None


# Mixpanel retires legacy project secrets on this day (reference/project-secret in Mixpanel's docs).
PROJECT_SECRET_RETIREMENT = date(2027, 3, 3)


def legacy_secret_notice(where: str) -> str:
    """The warning for a connection that authenticates with a legacy project secret."""
    return (
        f"The {where} authenticates with a legacy project secret, which Mixpanel retires on "
        f"{PROJECT_SECRET_RETIREMENT:%Y-%m-%d}. Create a service account and set its username as "
        "login and its secret as password."
    )


def check_credentials(
    *, username: str | None, secret: str | None, project_id: int | None, region: str, where: str
) -> None:
    """The checks every Mixpanel request needs, before any request.

    :param where: what holds the credentials, for the message: ``connection 'mixpanel_default'``.
    """
    if not secret:
        raise MixpanelConfigError(
            f"The {where} has no password: set it to the service account's secret "
            "(and login to the service account's username)."
        )
    if username and project_id is None:
        raise MixpanelConfigError(
            f"The {where} has no extra 'project_id': set it to the numeric Mixpanel project id "
            '(Project Settings > Overview), e.g. {"project_id": 123456}.'
        )
    if region not in REGIONS:
        raise MixpanelConfigError(
            f"The {where} has extra 'region'={region!r}: use one of {', '.join(REGIONS)} "
            "(the data residency region of the project)."
        )


def settings_from_connection(
    *,
    conn_id: str,
    login: str | None,
    password: str | None,
    host: str | None,
    port: int | None,
    extra: dict[str, Any],
    where: str | None = None,
) -> MixpanelConnectionSettings:
    """Read and validate the fields of a ``mixpanel`` connection.

    :param where: how errors name the connection; ``connection '<conn_id>'`` by default.
    """
    where = where or f"connection {conn_id!r}"
    username = (login or "").strip() or None
    project_id = _int_field(_extra(extra, "project_id"), "project_id", where)
    region_value = _extra(extra, "region")
    region = str(region_value).strip().lower() if region_value is not None else DEFAULT_REGION
    check_credentials(
        username=username,
        secret=password,
        project_id=project_id,
        region=region,
        where=where,
    )
    assert password  # checked above
    return MixpanelConnectionSettings(
        conn_id=conn_id,
        username=username,
        secret=password,
        project_id=project_id,
        region=region,
        workspace_id=_int_field(_extra(extra, "workspace_id"), "workspace_id", where),
        project_timezone=_timezone(_extra(extra, "project_timezone"), where),
        base_url=_base_url(host, port, _extra(extra, "host"), where),
    )


def _extra(extra: dict[str, Any], name: str) -> Any:
    for key in (name, f"extra__mixpanel__{name}"):
        value = extra.get(key)
        if value is not None and value != "":
            return value
    return None


def _int_field(value: Any, name: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    raise MixpanelConfigError(
        f"The {where} has extra {name!r}={value!r}: it must be a positive whole number "
        f"(the numeric Mixpanel {name.replace('_', ' ')})."
    )


def _timezone(value: Any, where: str) -> str | None:
    if value is None:
        return None
    timezone = str(value).strip()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MixpanelConfigError(
            f"The {where} has extra 'project_timezone'={timezone!r}, which is not an IANA time zone: "
            "use a name like 'America/New_York' or 'Europe/Berlin', or remove it for projects created "
            "in 2023 or later."
        ) from None
    return timezone


def _base_url(host: str | None, port: int | None, extra_host: Any, where: str) -> str | None:
    """The base URL from the Host field (the one documented spelling) or, for connections made
    before it was documented, the ``host`` extra; both set to different URLs is an error."""
    field_url = _url(host, port, where, "host")
    extra_url = _url(extra_host, None, where, "extra 'host'")
    if field_url and extra_url and field_url != extra_url:
        raise MixpanelConfigError(
            f"The {where} sets the base URL twice, as host={host!r} and as extra 'host'={extra_host!r}: "
            "keep the Host field and remove the extra."
        )
    return field_url or extra_url


def _url(value: Any, port: int | None, where: str, name: str) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().rstrip("/")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if "@" in parts.netloc:  # the value is not echoed: it holds a password
        raise MixpanelConfigError(
            f"The {where} has a user name or password inside {name}: remove it from the URL. Mixpanel's "
            "credentials go in the connection's login and password; a proxy's in the HTTPS_PROXY variable."
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MixpanelConfigError(
            f"The {where} has {name}={value!r}: use a base URL like 'https://proxy.example.com' or leave "
            "it empty for Mixpanel's own hosts."
        )
    if port and parts.port is None:
        text = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return text
