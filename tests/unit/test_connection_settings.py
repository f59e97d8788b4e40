from __future__ import annotations

import pytest

from airflow_provider_mixpanel.connection import settings_from_connection
from airflow_provider_mixpanel.dates import date_range, parse_date
from airflow_provider_mixpanel.errors import MixpanelConfigError


def settings(**fields):
    values = {"conn_id": "mp", "login": "sa", "password": "s", "host": None, "port": None, "extra": {"project_id": 7}}
    values.update(fields)
    return settings_from_connection(**values)


def test_uri_extras_arrive_as_strings_and_are_converted():
    read = settings(extra={"project_id": "7", "region": " EU ", "workspace_id": "9"})
    assert (read.project_id, read.region, read.workspace_id) == (7, "eu", 9)


def test_the_secret_is_not_in_the_repr():
    assert "s3cr3t" not in repr(settings(password="s3cr3t"))


@pytest.mark.parametrize(
    ("host", "port", "extra_host", "expected"),
    [
        ("http://127.0.0.1", 8765, None, "http://127.0.0.1:8765"),
        ("proxy.example.com", None, None, "https://proxy.example.com"),
        (None, None, "http://127.0.0.1:1", "http://127.0.0.1:1"),
        ("http://a:1/", None, "http://a:1", "http://a:1"),
        (None, None, None, None),
    ],
)
def test_base_url_from_the_host_field_or_the_old_extra(host, port, extra_host, expected):
    extra = {"project_id": 7, **({"host": extra_host} if extra_host else {})}
    assert settings(host=host, port=port, extra=extra).base_url == expected


def test_two_different_base_urls_are_an_error():
    with pytest.raises(MixpanelConfigError, match="base URL twice"):
        settings(host="http://a:1", extra={"project_id": 7, "host": "http://b:2"})


def test_errors_can_name_the_connection_differently():
    with pytest.raises(MixpanelConfigError, match=r"^The connection has no password"):
        settings(password=None, where="connection")


def test_dates_accept_dates_datetimes_and_iso_strings():
    from datetime import date, datetime

    assert parse_date(datetime(2024, 3, 1, 23, 59), "x") == parse_date("2024-03-01", "x") == date(2024, 3, 1)
    with pytest.raises(MixpanelConfigError, match="after to_date"):
        date_range("2024-03-02", "2024-03-01")


@pytest.mark.parametrize("host", ["https://user:S3cret@proxy.example.com", "user:S3cret@proxy.example.com:8443"])
def test_a_password_inside_the_base_url_is_refused_without_echoing_it(host):
    with pytest.raises(MixpanelConfigError, match="user name or password inside") as info:
        settings(host=host, extra={"project_id": 7})
    assert "S3cret" not in str(info.value)
