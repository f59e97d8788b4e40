from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from airflow_provider_mixpanel.encoding import Compressor, dumps_line, loads_object
from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelMalformedRecordError


def test_event_time_is_iso_with_utc_offset():
    line = dumps_line({"event_time": datetime(2020, 10, 13, 17, 48, 31, tzinfo=UTC), "x": 1})
    assert line == b'{"event_time":"2020-10-13T17:48:31+00:00","x":1}\n'
    line = dumps_line({"event_time": datetime(2020, 10, 13, 17, 48, 31, 123000, tzinfo=UTC)})
    assert line == b'{"event_time":"2020-10-13T17:48:31.123000+00:00"}\n'


def test_non_ascii_and_separators_are_written_raw():
    assert dumps_line({"t": "é東\u2028"}) == '{"t":"é東\u2028"}\n'.encode()


def test_integers_beyond_64_bits_survive():
    record = loads_object(b'{"big": 123456789012345678901234567890, "neg": -98765432109876543210}')
    assert record == {"big": 123456789012345678901234567890, "neg": -98765432109876543210}
    assert json.loads(dumps_line(record)) == record


def test_lone_surrogate_is_kept_losslessly():
    record = loads_object(b'{"t": "broken \\ud83d emoji"}')
    assert record["t"] == "broken \ud83d emoji"
    assert json.loads(dumps_line(record)) == record


@pytest.mark.parametrize("line", [b"[1, 2]", b"42", b'"text"', b"not json", b'{"a":', b'\xff{"a":1}'])
def test_non_objects_are_malformed(line):
    with pytest.raises(MixpanelMalformedRecordError):
        loads_object(line)


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
