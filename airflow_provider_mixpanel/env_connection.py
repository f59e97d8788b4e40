"""A connection from ``AIRFLOW_CONN_<ID>``, read without importing Airflow, when Airflow would read it there.

``import airflow`` takes over a second; a command run from a shell with its connection in the
environment does not need it. :func:`connection_from_environment` answers only when Airflow's own
lookup (``Connection.get_connection_from_secrets``, the order ``airflow connections get`` uses)
would certainly answer from the environment variable:

1. no secrets backend is configured, in the environment or in ``airflow.cfg`` (a configured
   backend is searched before the variable, and only Airflow can ask it);
2. the variable is set (otherwise the metadata database is next, which only Airflow can read);
3. its value is parsed exactly as Airflow parses it (JSON or URI; the URI code follows
   ``airflow.models.connection.Connection._parse_from_uri``), and is unremarkable: anything Airflow
   would reject or treat specially (an extra that is not a JSON object, unknown JSON keys, a
   conn_id Airflow would not accept, multi-team names) is left to Airflow, which says what is wrong.

Otherwise it returns ``None`` and the caller asks Airflow, as before.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

CONN_ENV_PREFIX = "AIRFLOW_CONN_"
# Airflow's own names: the [secrets] backend option, as an environment variable and in airflow.cfg.
SECRETS_BACKEND_ENV = "AIRFLOW__SECRETS__BACKEND"
SECRETS_SECTION = "secrets"
SECRETS_BACKEND_KEY = "backend"
# Airflow's URI form: extras given whole as one query parameter of this name.
URI_EXTRA_KEY = "__extra__"
# The conn_id Airflow accepts (airflow.models.connection.RE_SANITIZE_CONN_ID and CONN_ID_MAX_LEN).
_CONN_ID = re.compile(r"^[\w#!()\-.:/\\]{1,250}$")
# Multi-team Airflow reads ``AIRFLOW_CONN__<TEAM>___<ID>`` and ignores ids containing this.
_TEAM_SEPARATOR = "___"
# The JSON form's keys that Airflow's Connection() takes; any other key makes Airflow fail.
_JSON_FIELDS = frozenset({"conn_type", "description", "host", "login", "password", "schema", "port", "extra"})


@dataclass(frozen=True)
class EnvironmentConnection:
    """The fields of a connection read from the environment, as Airflow's ``Connection`` has them.
    ``repr`` never shows the password."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    port: int | None = None
    extra: str | None = field(default=None, repr=False)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return json.loads(self.extra) if self.extra else {}


def connection_from_environment(conn_id: str) -> EnvironmentConnection | None:
    """The connection Airflow would find for ``conn_id`` in ``AIRFLOW_CONN_<ID>``, or ``None``
    when only Airflow can answer (a secrets backend is configured, the variable is absent, or its
    value is one Airflow treats specially)."""
    if not _CONN_ID.match(conn_id) or _TEAM_SEPARATOR in conn_id or secrets_backend_configured():
        return None
    value = os.environ.get(CONN_ENV_PREFIX + conn_id.upper(), "").strip()
    if not value:
        return None
    try:
        connection = _from_json(conn_id, value) if value[0] == "{" else _from_uri(conn_id, value)
    # Airflow's own message says what is wrong with the value (TypeError: a port that is a list or an object).
    except (ValueError, TypeError):
        return None
    if connection is None or not _is_json_object(connection.extra):
        return None
    return connection


def secrets_backend_configured() -> bool:
    """Whether Airflow's ``[secrets] backend`` may be set, read as Airflow reads it (the
    environment first, then ``airflow.cfg``) without importing Airflow. Unsure counts as set."""
    if SECRETS_BACKEND_ENV in os.environ:
        return bool(_expand(os.environ[SECRETS_BACKEND_ENV]).strip())
    if any(f"{SECRETS_BACKEND_ENV}{suffix}" in os.environ for suffix in ("_CMD", "_SECRET")):
        return True
    if os.environ.get("AIRFLOW__CORE__UNIT_TEST_MODE", "").strip().lower() in ("true", "t", "1"):
        return True  # Airflow then reads its unit-test configuration instead of airflow.cfg
    path = _airflow_config_path()
    if not os.path.exists(path):
        return False  # Airflow writes its defaults, in which no backend is set
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return True
    if not parser.has_section(SECRETS_SECTION):
        return False
    options = parser[SECRETS_SECTION]
    if any(option in options for option in (f"{SECRETS_BACKEND_KEY}_cmd", f"{SECRETS_BACKEND_KEY}_secret")):
        return True
    return bool(options.get(SECRETS_BACKEND_KEY, "").strip())


def _airflow_config_path() -> str:
    """airflow.configuration.get_airflow_config: ``AIRFLOW_CONFIG``, else ``$AIRFLOW_HOME/airflow.cfg``."""
    configured = os.environ.get("AIRFLOW_CONFIG")
    if configured is not None:
        return _expand(configured)
    return os.path.join(_expand(os.environ.get("AIRFLOW_HOME", "~/airflow")), "airflow.cfg")


def _expand(value: str) -> str:
    """Airflow's expand_env_var: environment variables and ``~``, until nothing changes."""
    while True:
        expanded = os.path.expanduser(os.path.expandvars(value))
        if expanded == value:
            return expanded
        value = expanded


def _from_json(conn_id: str, value: str) -> EnvironmentConnection | None:
    """Connection.from_json: ``extra`` given as an object is serialized, ``port`` made an int."""
    fields = json.loads(value)
    if not isinstance(fields, dict) or not set(fields) <= _JSON_FIELDS:
        return None
    if not all(isinstance(fields.get(name), str | None) for name in _JSON_FIELDS - {"port", "extra"}):
        return None
    extra = fields.get("extra")
    port = fields.get("port")
    return EnvironmentConnection(
        conn_id=conn_id,
        conn_type=_normalize_conn_type(fields["conn_type"]) if fields.get("conn_type") else None,
        host=fields.get("host"),
        login=fields.get("login"),
        password=fields.get("password"),
        schema=fields.get("schema"),
        port=int(port) if port else None,
        extra=(extra if isinstance(extra, str) else json.dumps(extra)) if extra else None,
    )


def _from_uri(conn_id: str, uri: str) -> EnvironmentConnection | None:
    """Connection._parse_from_uri, line for line (a host may carry its own scheme:
    ``mixpanel://user:secret@https://proxy.example.com``)."""
    schemes = uri.count("://")
    if schemes > 2:
        return None
    host_with_protocol = schemes == 2
    parts = urlsplit(uri)
    scheme = parts.scheme
    rest = uri.replace(f"{scheme}://", "" if host_with_protocol else "//")
    if host_with_protocol:
        before_host = rest.split("://", 1)[0]
        if "@" in before_host or ":" in before_host:
            return None
    parts = urlsplit(rest)
    protocol = parts.scheme if host_with_protocol else None
    host = _hostname(parts)
    extra: str | None = None
    if parts.query:
        query: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        if URI_EXTRA_KEY in query:
            extra = query[URI_EXTRA_KEY]
        else:
            for key, text in query.items():
                if text:
                    with contextlib.suppress(json.JSONDecodeError):  # else kept as the text it is
                        query[key] = json.loads(text)
            extra = json.dumps(query)
    return EnvironmentConnection(
        conn_id=conn_id,
        conn_type=_normalize_conn_type(scheme),
        host=f"{protocol}://{host}" if protocol and host else host,
        login=unquote(parts.username) if parts.username else parts.username,
        password=unquote(parts.password) if parts.password else parts.password,
        schema=unquote(parts.path[1:]) if parts.path[1:] else parts.path[1:],
        port=parts.port,
        extra=extra,
    )


def _hostname(parts: Any) -> str:
    """airflow.models.connection._parse_netloc_to_hostname: the host as written (not lowercased
    when it holds a path)."""
    hostname = unquote(parts.hostname or "")
    if "/" in hostname:
        hostname = parts.netloc
        if "@" in hostname:
            hostname = hostname.rsplit("@", 1)[1]
        if ":" in hostname:
            hostname = hostname.split(":", 1)[0]
        hostname = unquote(hostname)
    return hostname


def _normalize_conn_type(conn_type: str) -> str:
    if conn_type == "postgresql":
        return "postgres"
    return conn_type.replace("-", "_")


def _is_json_object(extra: str | None) -> bool:
    """Airflow refuses a connection whose extra is not a JSON object (Connection._validate_extra)."""
    if not extra:
        return True
    try:
        return isinstance(json.loads(extra), dict)
    except json.JSONDecodeError:
        return False
