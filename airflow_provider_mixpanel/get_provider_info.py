"""The provider dict Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow calls this on every start, so it imports nothing: the connection form is declared here
(``conn-fields``, ``ui-field-behaviour``) and Airflow 3.2+ builds it without importing the hook.
"""

from __future__ import annotations

from typing import Any

MIXPANEL = "Mixpanel"


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
                    "relabeling": {
                        "login": "Service account username",
                        "password": "Service account secret",
                        "host": "API base URL (optional)",
                    },
                    "placeholders": {
                        "login": "my-service-account.123456.mp-service-account",
                        "password": "service account secret (or a legacy project secret, login empty)",
                        "host": "leave empty for Mixpanel's own hosts; a proxy or test server URL",
                    },
                },
                "conn-fields": {
                    "project_id": {
                        "label": "Project ID",
                        "description": "Numeric Mixpanel project id (Project Settings > Overview).",
                        "schema": {"type": ["integer", "string", "null"]},
                    },
                    "region": {
                        "label": "Data residency region",
                        "description": "us (default), eu or in: the region the project's data lives in.",
                        "schema": {"type": ["string", "null"], "enum": ["us", "eu", "in", None], "default": "us"},
                    },
                    "workspace_id": {
                        "label": "Workspace ID",
                        "description": "Only for projects with Data Views: the global view's workspace id.",
                        "schema": {"type": ["integer", "string", "null"]},
                    },
                    "project_timezone": {
                        "label": "Project timezone (projects created before 2023)",
                        "description": "IANA zone, e.g. America/New_York. Set it only for projects created "
                        "before 2023, whose event times are local wall-clock time.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
