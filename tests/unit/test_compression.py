from __future__ import annotations

import gzip

import pytest

from airflow_provider_mixpanel.compression import Compressor, check_compression
from airflow_provider_mixpanel.errors import MixpanelConfigError


@pytest.mark.parametrize("compression", ["gzip", "zstd", None])
def test_compressor_round_trip(compression):
    data = b'{"a":1}\n' * 10_000
    compressor = Compressor(compression)
    out = compressor.compress(data[:50_000]) + compressor.compress(data[50_000:]) + compressor.flush()
    if compression == "gzip":
        out = gzip.decompress(out)
    elif compression == "zstd":
        import zstandard

        out = zstandard.ZstdDecompressor().decompressobj().decompress(out)
    assert out == data


def test_unknown_compression():
    with pytest.raises(MixpanelConfigError, match="bz2"):
        Compressor("bz2")


@pytest.mark.parametrize(
    ("compression", "level", "match"),
    [
        ("bz2", None, "compression='bz2'"),
        ("gzip", 10, "use 0 to 9"),
        ("zstd", 0, "use 1 to 22"),
        (None, 3, "leave it None"),
        ("gzip", True, "compression_level=True"),
    ],
)
def test_bad_compression_settings_say_what_fits(compression, level, match):
    with pytest.raises(MixpanelConfigError, match=match):
        check_compression(compression, level)


def test_none_spelled_as_a_string_means_no_compression():
    assert check_compression("none", None) is None
