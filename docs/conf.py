"""Sphinx configuration: the provider's docs, with the API reference generated from docstrings."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "airflow_provider_mixpanel" / "__init__.py").read_text())[1]

project = "airflow-provider-mixpanel"
author = "airflow-provider-mixpanel contributors"
copyright = "2026, airflow-provider-mixpanel contributors"
version = release = VERSION

extensions = ["autoapi.extension", "sphinx.ext.viewcode"]
autoapi_type = "python"
autoapi_dirs = [str(ROOT / "airflow_provider_mixpanel")]
autoapi_root = "_api"
autoapi_ignore = ["*/__main__.py"]
autoapi_options = ["members", "undoc-members", "show-inheritance", "show-module-summary"]
autoapi_keep_files = False
autoapi_add_toctree_entry = False
suppress_warnings = ["autoapi.python_import_resolution", "ref.python"]
nitpicky = False


html_theme = "furo"
html_title = f"airflow-provider-mixpanel {VERSION}"
exclude_patterns = ["_build"]
