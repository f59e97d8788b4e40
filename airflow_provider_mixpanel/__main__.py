"""``python -m airflow_provider_mixpanel``: the ``mixpanel-stream`` command."""

from __future__ import annotations

import sys

from airflow_provider_mixpanel.cli import main

sys.exit(main())
