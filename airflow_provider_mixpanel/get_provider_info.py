"""The provider dict Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow calls this on every start, so it imports nothing: the connection form is declared here
(``conn-fields``, ``ui-field-behaviour``) and Airflow 3.2+ builds it without importing the hook.
"""

from __future__ import annotations

from typing import Any

MIXPANEL = "Mixpanel"

# Zones offered as suggestions in Airflow 3's form (any IANA zone is accepted).
TIMEZONE_EXAMPLES = [
    "America/Los_Angeles",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
]

# The extra fields of the connection form, in the order the form shows them. Ids are single-line
# text ("string"): Airflow 3 draws a field typed ["integer", "string"] as a 6-row text area and an
# "integer" one as a spinner that the mouse wheel changes. Every field has a non-null default so
# the extra that Airflow 3.3's Add dialog saves (it writes every field) holds no nulls, and names
# every key, which its Edit dialog needs to show the field (docs/connections.rst, "Airflow 3.3").
# The connection reader takes "" as "not set".
CONN_FIELDS: dict[str, Any] = {
    "project_id": {
        "label": "Project ID (needed with a service account)",
        "description": "The numeric Mixpanel project id, e.g. 2195193 (Project Settings > Overview). "
        "Needed with a service account; not with a legacy project secret.",
        "schema": {"type": ["string", "null"], "default": "", "pattern": "^[0-9]*$"},
    },
    "region": {
        "label": "Data residency region",
        "description": "us (default), eu or in: the region the project's data lives in.",
        "schema": {"type": "string", "enum": ["us", "eu", "in"], "default": "us"},
    },
    "workspace_id": {
        "label": "Workspace ID (Data Views only)",
        "description": "Only for projects with Data Views: the global view's numeric workspace id. "
        "Leave empty otherwise.",
        "schema": {"type": ["string", "null"], "default": "", "pattern": "^[0-9]*$"},
    },
    "project_timezone": {
        "label": "Project timezone (projects created before 2023)",
        "description": "IANA zone, e.g. America/New_York. Set it only for projects created "
        "before 2023, whose event times are local wall-clock time; leave empty otherwise.",
        "schema": {"type": ["string", "null"], "default": "", "examples": TIMEZONE_EXAMPLES},
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-mixpanel",
        "name": "Mixpanel",
        "description": "Stream `Mixpanel <https://mixpanel.com/>`__ raw events and user/group profiles "
        "into Amazon S3 and Google Cloud Storage with flat memory.",
        "integrations": [
            {
                "integration-name": MIXPANEL,
                "external-doc-url": "https://developer.mixpanel.com/reference/raw-event-export",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": MIXPANEL, "python-modules": ["airflow_provider_mixpanel.hooks.mixpanel"]}],
        "transfers": [
            {
                "source-integration-name": MIXPANEL,
                "target-integration-name": "Amazon Simple Storage Service (S3)",
                "python-module": "airflow_provider_mixpanel.transfers.mixpanel_to_s3",
            },
            {
                "source-integration-name": MIXPANEL,
                "target-integration-name": "Google Cloud Storage (GCS)",
                "python-module": "airflow_provider_mixpanel.transfers.mixpanel_to_gcs",
            },
        ],
        "connection-types": [
            {
                "connection-type": "mixpanel",
                "hook-class-name": "airflow_provider_mixpanel.hooks.mixpanel.MixpanelHook",
                "hook-name": "Mixpanel",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    # Airflow draws the standard fields in its own order (host before login); the
                    # label says the base URL is optional, so it reads as skippable.
                    "relabeling": {
                        "login": "Service account username",
                        "password": "Service account secret",
                        "host": "API base URL (optional)",
                    },
                    # Airflow 3.3 shows the standard fields' placeholders; the extra fields' ones
                    # reach Airflow 2.11's form (3.3 has no placeholder for them: see descriptions).
                    "placeholders": {
                        "login": "my-service-account.123456.mp-service-account",
                        "password": "service account secret (or a legacy project secret, login empty)",
                        "host": "leave empty for Mixpanel's own hosts; a proxy or test server URL",
                        "project_id": "e.g. 2195193",
                        "region": "us, eu or in",
                        "workspace_id": "only for projects with Data Views",
                        "project_timezone": "e.g. America/New_York; empty for projects from 2023 on",
                    },
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
