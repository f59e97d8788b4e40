"""Streaming compressors for JSONL parts (gzip, zstd or none) and their level ranges; the codecs
of Parquet parts, which compress inside the file."""

from __future__ import annotations

import importlib.util
from typing import Any

from airflow_provider_mixpanel.errors import MixpanelConfigError

COMPRESSIONS = ("gzip", "zstd", None)
# gzip 6 (zlib's default) writes ~20% less than level 1; exports arrive slower than it compresses (RESULTS.md).
DEFAULT_LEVELS = {"gzip": 6, "zstd": 3}
# The levels each library accepts.
LEVEL_RANGES = {"gzip": (0, 9), "zstd": (1, 22)}
CONTENT_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd", None: "application/x-ndjson"}
# Parquet compresses each column inside the file; zstd writes ~3x less than snappy at about its speed (RESULTS.md).
PARQUET_COMPRESSIONS = ("zstd", "snappy", None)
DEFAULT_PARQUET_COMPRESSION = "zstd"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
PARQUET_EXTRA_HINT = "pip install 'airflow-provider-mixpanel[parquet]'"


class _FormatDefault:
    """The ``compression`` argument's default: gzip for JSONL parts, zstd for Parquet parts."""

    def __repr__(self) -> str:
        return "FORMAT_DEFAULT"


FORMAT_DEFAULT: Any = _FormatDefault()


def check_compression(compression: str | None, level: int | None, *, where: str = "") -> str | None:
    """The compression name (``"none"`` read as ``None``), checked with its level and with its
    library installed; raises :class:`MixpanelConfigError` naming the fix otherwise.

    :param where: prefix of the error message, e.g. ``"Task 'export': "``.
    """
    if compression == "none":
        compression = None
    if compression not in COMPRESSIONS:
        raise MixpanelConfigError(f"{where}compression={compression!r}: use 'gzip', 'zstd' or None.")
    _check_level(level, LEVEL_RANGES.get(compression or ""), f"compression={compression!r}", where)
    Compressor(compression, level)  # e.g. zstd without its extra installed
    return compression


def _check_level(level: int | None, limits: tuple[int, int] | None, compression: str, where: str) -> None:
    """A compression level is None, or an int within ``limits`` (``None``: the codec takes none)."""
    if level is None:
        return
    if limits is None or isinstance(level, bool) or not isinstance(level, int) or not limits[0] <= level <= limits[1]:
        raise MixpanelConfigError(
            f"{where}compression_level={level!r} does not fit {compression}"
            + (f": use {limits[0]} to {limits[1]}." if limits else ": leave it None.")
        )


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


def check_output_compression(
    output_format: str, compression: str | None, level: int | None, *, where: str = ""
) -> str | None:
    """The compression of ``output_format`` parts (``"jsonl"`` or ``"parquet"``), checked:
    :data:`FORMAT_DEFAULT` becomes gzip for JSONL, zstd for Parquet."""
    if output_format == "parquet":
        codec = DEFAULT_PARQUET_COMPRESSION if compression is FORMAT_DEFAULT else compression
        return check_parquet_compression(codec, level, where=where)
    return check_compression("gzip" if compression is FORMAT_DEFAULT else compression, level, where=where)


def check_parquet_compression(compression: str | None, level: int | None, *, where: str = "") -> str | None:
    """The codec of Parquet parts (``"none"`` read as ``None``), checked with its level and with
    pyarrow installed; raises :class:`MixpanelConfigError` naming the fix otherwise. pyarrow is
    looked up, not imported, so a DAG file that names Parquet parses as fast as one that does not."""
    if compression == "none":
        compression = None
    if compression == "gzip":
        raise MixpanelConfigError(
            f"{where}compression='gzip' is for JSONL: Parquet compresses inside the file, with 'zstd' (the "
            "default), 'snappy' or None."
        )
    if compression not in PARQUET_COMPRESSIONS:
        raise MixpanelConfigError(f"{where}compression={compression!r}: Parquet takes 'zstd', 'snappy' or None.")
    limits = LEVEL_RANGES["zstd"] if compression == "zstd" else None
    _check_level(level, limits, f"Parquet's compression={compression!r}", where)
    if importlib.util.find_spec("pyarrow") is None:
        raise MixpanelConfigError(f"{where}Parquet output needs pyarrow: {PARQUET_EXTRA_HINT}.")
    return compression
