"""Records to JSONL bytes, and JSONL lines to records: the one serialization everything shares.

The CLI and both operators write through :func:`dumps_line`, so a file from either agrees byte for
byte. Output is compact UTF-8 JSON (non-ASCII written as is, not ``\\u``-escaped), one record per
line; ``datetime`` values are written as ISO-8601 (``2020-10-13T17:48:31+00:00``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=lambda o: _default(o))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps_line(record: Any) -> bytes:
    """One record as a JSONL line: compact UTF-8 JSON followed by ``\\n``."""
    return (_encoder.encode(record) + "\n").encode("utf-8")


def loads_object(line: bytes) -> dict[str, Any]:
    """Parse one JSONL line that must hold a JSON object.

    :raises MixpanelMalformedRecordError: the line is not valid UTF-8 JSON, or not an object.
    """
    try:
        value = json.loads(line)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise MixpanelMalformedRecordError(f"Line is not valid JSON ({err}): {_preview(line)}") from None
    if not isinstance(value, dict):
        raise MixpanelMalformedRecordError(
            f"Line is JSON but not an object (got {type(value).__name__}): {_preview(line)}"
        )
    return value


def _preview(line: bytes, limit: int = 100) -> str:
    text = line[:limit].decode("utf-8", errors="replace")
    return repr(text + ("..." if len(line) > limit else ""))
