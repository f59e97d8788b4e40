"""JSONL batches into Parquet: column values, the slow road for unusual lines, row groups by size."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_mixpanel.compression import check_output_compression, check_parquet_compression
from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelMalformedRecordError
from airflow_provider_mixpanel.event_lines import event_line_normalizer
from airflow_provider_mixpanel.schemas import record_columns
from airflow_provider_mixpanel.transfers.parquet import ParquetEncoder
from airflow_provider_mixpanel.transfers.parts import PartFormat

EVENTS = record_columns("events", raw=False)


def encode(lines: list[bytes], columns=EVENTS, **options) -> pq.ParquetFile:
    encoder = ParquetEncoder(columns, **options)
    data = b"".join(encoder.compress(line) for line in lines) + encoder.flush()
    return pq.ParquetFile(io.BytesIO(data))


def rows(lines: list[bytes], columns=EVENTS, **options) -> list[dict]:
    return encode(lines, columns, **options).read().to_pylist()


def event_line(**overrides) -> bytes:
    record = {
        "event_name": "Purchase",
        "event_time": "2024-03-01T12:00:00+00:00",
        "distinct_id": "user-1",
        "insert_id": "i-1",
        "properties": {"amount": 1.50, "$city": "Zürich"},
    }
    record.update(overrides)
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def test_normalized_event_columns_and_types():
    file = encode([event_line()])
    assert file.schema_arrow.types == [
        pa.string(),
        pa.timestamp("us", tz="UTC"),
        pa.string(),
        pa.string(),
        pa.json_(pa.string()),
    ]
    assert file.schema.column(4).logical_type.type == "JSON", "properties should carry Parquet's JSON logical type"
    (row,) = file.read().to_pylist()
    assert row["event_time"] == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert row["properties"] == '{"amount": 1.5, "$city": "Zürich"}'


def test_properties_are_the_normalizer_text_byte_for_byte():
    line = b'{"event":"E","properties":{"time":1709294400,"distinct_id":"u","$insert_id":"i","n":1.50,"s":"\\u00e9"}}'
    normalized = event_line_normalizer()(line)
    (row,) = rows([normalized])
    assert row["properties"] == '{"n":1.50,"s":"\\u00e9"}'


def test_milliseconds_are_kept_with_time_in_ms():
    line = b'{"event":"E","properties":{"time":1709294400123,"distinct_id":"u","$insert_id":"i"}}'
    (row,) = rows([event_line_normalizer(time_in_ms=True)(line)])
    assert row["event_time"] == datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_a_numeric_distinct_id_is_stored_as_its_json_text():
    lines = [event_line(distinct_id=12345), event_line(distinct_id=None, insert_id="i-2"), event_line(insert_id="i-3")]
    assert [r["distinct_id"] for r in rows([b"".join(lines)])] == ["12345", None, "user-1"]


def test_lines_msgspec_refuses_take_the_slow_road():
    control = event_line(properties={"note": "a"}).replace(b'"a"', b'"a\tb"')  # a raw tab inside a string
    surrogate = event_line(insert_id="x").replace(b'"x"', b'"\\ud83d"')
    result = rows([control + surrogate + event_line(insert_id="plain")])
    # only the control character changes: the value keeps its spacing, as every other byte
    assert result[0]["properties"] == '{"note": "a\\tb"}', "a raw control character is written back escaped"
    assert result[1]["insert_id"] == '"\\ud83d"', "a lone surrogate has no UTF-8 string: its JSON text is kept"
    assert result[2]["insert_id"] == "plain"


def test_a_member_beside_the_columns_is_refused_not_dropped():
    raw = record_columns("events", raw=True)
    with pytest.raises(MixpanelMalformedRecordError, match=r"member\(s\) extra .*output_format='jsonl'"):
        rows([b'{"event":"E","properties":{},"extra":1}\n'], raw)


def test_raw_columns_hold_each_value_as_sent_and_missing_ones_as_null():
    raw = record_columns("events", raw=True)
    result = rows([b'{"event":"E","properties":{"time":1, "x":[1, 2]}}\n{"event":"F"}\n'], raw)
    assert result == [
        {"event": '"E"', "properties": '{"time":1, "x":[1, 2]}'},
        {"event": '"F"', "properties": None},
    ]


def test_normalized_profiles():
    profiles = record_columns("profiles", raw=False)
    line = b'{"distinct_id":"u1","last_seen":"2024-01-01T10:00:00","properties":{"plan":"pro"}}\n'
    assert rows([line, b'{"distinct_id":7,"last_seen":null,"properties":{}}\n'], profiles) == [
        {"distinct_id": "u1", "last_seen": "2024-01-01T10:00:00", "properties": '{"plan":"pro"}'},
        {"distinct_id": "7", "last_seen": None, "properties": "{}"},
    ]


def test_row_groups_are_written_once_enough_jsonl_gathered():
    line = event_line()
    encoder = ParquetEncoder(EVENTS, row_group_bytes=len(line) * 10)
    outputs = [encoder.compress(line * 3) for _ in range(9)]
    assert [bool(o) for o in outputs] == [True, False, False, True, False, False, False, True, False], (
        "bytes should leave the encoder at the first batch (the magic) and at each full row group"
    )
    file = pq.ParquetFile(io.BytesIO(b"".join(outputs) + encoder.flush()))
    groups = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
    assert groups == [12, 12, 3], "a row group per 10 lines' worth of JSONL, the rest at flush"


def test_an_empty_part_is_a_valid_file_with_the_schema():
    file = encode([])
    assert file.metadata.num_rows == 0
    assert file.schema_arrow.names == [c.name for c in EVENTS]


def test_a_bad_event_time_says_which_column():
    with pytest.raises(MixpanelMalformedRecordError, match="event_time is not an ISO-8601 time"):
        rows([event_line(event_time="yesterday")])


def test_part_format_picks_the_encoder_and_content_type():
    parquet = PartFormat("zstd", None, 64 * 1024, parquet_columns=EVENTS)
    assert parquet.content_type == "application/vnd.apache.parquet"
    encoder = parquet.encoder()
    assert isinstance(encoder, ParquetEncoder) and encoder.row_group_bytes == 64 * 1024
    assert PartFormat("gzip", None, None).content_type == "application/gzip"


@pytest.mark.parametrize(
    ("compression", "level", "message"),
    [
        ("gzip", None, "compression='gzip' is for JSONL.*'zstd' \\(the default\\), 'snappy' or None"),
        ("lz4", None, "Parquet takes 'zstd', 'snappy' or None"),
        ("snappy", 3, "compression_level=3 does not fit.*leave it None"),
        ("zstd", 30, "use 1 to 22"),
    ],
)
def test_parquet_compression_is_checked(compression, level, message):
    with pytest.raises(MixpanelConfigError, match=message):
        check_parquet_compression(compression, level)


def test_the_default_compression_depends_on_the_format():
    from airflow_provider_mixpanel.compression import FORMAT_DEFAULT

    assert check_output_compression("jsonl", FORMAT_DEFAULT, None) == "gzip"
    assert check_output_compression("parquet", FORMAT_DEFAULT, None) == "zstd"
    assert check_output_compression("parquet", "none", None) is None


def test_parquet_without_pyarrow_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(MixpanelConfigError, match=r"needs pyarrow: pip install 'airflow-provider-mixpanel\[parquet\]'"):
        check_parquet_compression("zstd", None)
