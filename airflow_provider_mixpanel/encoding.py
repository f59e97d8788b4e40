"""Records to JSONL bytes, and JSONL lines to records: the one serialization everything shares.

The CLI and both operators write through :func:`dumps_line`, so a file from either agrees byte for
byte. Output is compact UTF-8 JSON (non-ASCII written as is, not ``\\u``-escaped), one record per
line; ``datetime`` values are written as ISO-8601 (``2020-10-13T17:48:31+00:00``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import msgspec

from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelMalformedRecordError

# msgspec (a dependency of Airflow 3 itself) parses and writes JSON 3-8x faster than the standard
# library and, unlike orjson, keeps integers beyond 64 bits exact (benchmarks/RESULTS.md).
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
# Checks that a line is one well-formed JSON object without building it (about 4x faster).
_object_checker = msgspec.json.Decoder(type=dict[str, msgspec.Raw])


def dumps_line(record: dict[str, Any]) -> bytes:
    """One record as a JSONL line: compact UTF-8 JSON followed by ``\\n``.

    A top-level ``datetime`` (the normalized ``event_time``) is written as ISO-8601 with
    ``+00:00``. A record holding a lone UTF-16 surrogate (which UTF-8 cannot carry) is written
    with ASCII escapes instead, losslessly.
    """
    if isinstance(record.get("event_time"), datetime):
        record = {**record, "event_time": record["event_time"].isoformat()}
    try:
        return _encoder.encode(record) + b"\n"
    except (UnicodeEncodeError, TypeError, OverflowError, msgspec.EncodeError):
        return (json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=_default) + "\n").encode("ascii")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def loads_object(line: bytes) -> dict[str, Any]:
    """Parse one JSONL line that must hold a JSON object.

    :raises MixpanelMalformedRecordError: the line is not valid UTF-8 JSON, or not an object.
    """
    try:
        value = _decoder.decode(line)
    except msgspec.DecodeError:
        try:  # msgspec rejects lone UTF-16 surrogates (\ud83d), which JavaScript clients can send
            value = json.loads(line)
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
            raise MixpanelMalformedRecordError(f"Line is not valid JSON ({err}): {_preview(line)}") from None
    if not isinstance(value, dict):
        raise MixpanelMalformedRecordError(
            f"Line is JSON but not an object (got {type(value).__name__}): {_preview(line)}"
        )
    return value


def check_object(line: bytes) -> None:
    """Check that a line is one well-formed JSON object, without building the object: for raw
    output, which writes the line's bytes as they came.

    :raises MixpanelMalformedRecordError: as :func:`loads_object` would.
    """
    try:
        _object_checker.decode(line)
    except msgspec.DecodeError:
        loads_object(line)  # the precise error, or the rare line only the standard library reads


def convert_lines(
    lines: Iterator[bytes],
    convert: Callable[[bytes], Any],
    on_malformed: Callable[[bytes, MixpanelMalformedRecordError], None] | None,
) -> Iterator[Any]:
    """``convert`` each line. A line it finds malformed is passed to ``on_malformed`` and skipped,
    or, without ``on_malformed``, raises. Closing the result closes ``lines``."""
    try:
        for line in lines:
            try:
                yield convert(line)
            except MixpanelMalformedRecordError as err:
                if on_malformed is None:
                    raise
                on_malformed(line, err)
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()


def _preview(line: bytes, limit: int = 100) -> str:
    text = line[:limit].decode("utf-8", errors="replace")
    return repr(text + ("..." if len(line) > limit else ""))


COMPRESSIONS = ("gzip", "zstd", None)
# gzip 6 (zlib's default) writes ~20% less than level 1; exports arrive slower than it compresses (RESULTS.md).
DEFAULT_LEVELS = {"gzip": 6, "zstd": 3}
CONTENT_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd", None: "application/x-ndjson"}


class Compressor:
    """Streaming compression of JSONL bytes into one gzip member or zstd frame (or none).

    :param compression: ``"gzip"``, ``"zstd"`` (needs the ``zstd`` extra) or ``None``.
    :param level: the compression level; ``None`` picks the default of that compression.
    """

    def __init__(self, compression: str | None, level: int | None = None):
        self.compression = compression
        if compression == "gzip":
            import zlib

            self._engine: Any = zlib.compressobj(DEFAULT_LEVELS["gzip"] if level is None else level, zlib.DEFLATED, 31)
        elif compression == "zstd":
            try:
                import zstandard
            except ImportError:
                raise MixpanelConfigError(
                    "compression='zstd' needs the zstandard package: pip install 'airflow-provider-mixpanel[zstd]'."
                ) from None
            self._engine = zstandard.ZstdCompressor(
                level=DEFAULT_LEVELS["zstd"] if level is None else level
            ).compressobj()
        elif compression is None:
            self._engine = None
        else:
            raise MixpanelConfigError(f"compression={compression!r}: use 'gzip', 'zstd' or None.")

    def compress(self, data: bytes) -> bytes:
        return data if self._engine is None else self._engine.compress(data)

    def flush(self) -> bytes:
        """The rest of the compressed stream; the compressor cannot be used after this."""
        return b"" if self._engine is None else self._engine.flush()
