"""Streaming compressors for JSONL parts (gzip, zstd or none) and their level ranges."""

from __future__ import annotations

from typing import Any

from airflow_provider_mixpanel.errors import MixpanelConfigError

COMPRESSIONS = ("gzip", "zstd", None)
# gzip 6 (zlib's default) writes ~20% less than level 1; exports arrive slower than it compresses (RESULTS.md).
DEFAULT_LEVELS = {"gzip": 6, "zstd": 3}
# The levels each library accepts.
LEVEL_RANGES = {"gzip": (0, 9), "zstd": (1, 22)}
CONTENT_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd", None: "application/x-ndjson"}


def check_compression(compression: str | None, level: int | None, *, where: str = "") -> str | None:
    """The compression name (``"none"`` read as ``None``), checked with its level and with its
    library installed; raises :class:`MixpanelConfigError` naming the fix otherwise.

    :param where: prefix of the error message, e.g. ``"Task 'export': "``.
    """
    if compression == "none":
        compression = None
    if compression not in COMPRESSIONS:
        raise MixpanelConfigError(f"{where}compression={compression!r}: use 'gzip', 'zstd' or None.")
    if level is not None:
        limits = LEVEL_RANGES.get(compression or "")
        if (
            limits is None
            or isinstance(level, bool)
            or not isinstance(level, int)
            or not limits[0] <= level <= limits[1]
        ):
            raise MixpanelConfigError(
                f"{where}compression_level={level!r} does not fit compression={compression!r}"
                + (f": use {limits[0]} to {limits[1]}." if limits else ": leave it None.")
            )
    Compressor(compression, level)  # e.g. zstd without its extra installed
    return compression


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
