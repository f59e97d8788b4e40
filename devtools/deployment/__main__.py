"""``python -m devtools.deployment`` (from the repository root, with the deployment venv's Python)."""

from __future__ import annotations

import sys

from devtools.deployment.run import main

sys.exit(main())
