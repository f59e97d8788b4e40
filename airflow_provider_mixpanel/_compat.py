"""The one place that knows Airflow 2.11 from 3.x import paths."""

from __future__ import annotations

from airflow_provider_mixpanel.errors import attach_to_airflow

try:  # Airflow 3.1+
    from airflow.sdk import BaseHook, BaseOperator
except ImportError:  # Airflow 2.11
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]
    from airflow.models import BaseOperator  # type: ignore[no-redef]

try:  # Airflow 3
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 2.11
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]

try:  # Airflow 3: what the Assets page lists; example DAGs declare their outlets with it
    from airflow.sdk import Asset
except ImportError:  # Airflow 2.11: the same thing under its old name (one positional URI on both)
    from airflow.datasets import Dataset as Asset  # type: ignore[no-redef,assignment]

try:
    from airflow.exceptions import AirflowProviderDeprecationWarning
except ImportError:  # pragma: no cover
    AirflowProviderDeprecationWarning = DeprecationWarning  # type: ignore[misc,assignment]

# Airflow is loaded now: errors imported before it (e.g. by a user's script through the client)
# become AirflowExceptions too.
attach_to_airflow()

__all__ = ["AirflowProviderDeprecationWarning", "Asset", "BaseHook", "BaseOperator", "mask_secret"]
