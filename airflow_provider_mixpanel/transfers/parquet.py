"""JSONL batches into a Parquet file, written into memory chunks that a part's upload takes.

A :class:`ParquetEncoder` takes the same batches of JSONL lines as a JSONL part's compressor and
gives back Parquet bytes. Each batch is parsed into columns with msgspec (a ``json`` column keeps
the value's JSON text byte for byte: ``properties`` is never built into Python objects); once about
:data:`ROW_GROUP_BYTES` of JSONL have gathered they are written as one row group, and
:meth:`ParquetEncoder.flush` writes the rest and the footer. Nothing touches the disk, and memory
stays about one row group however large the part. The columns of each record format are
defined in :mod:`airflow_provider_mixpanel.schemas`.

Imports pyarrow: only the Parquet output loads this module.
"""

from __future__ import annotations

import io
import itertools
import json
from array import array
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.jsonl import lenient_members
from airflow_provider_mixpanel.schemas import BOOLEAN, INTEGER, JSON, TEXT, TIMESTAMP, Column
from airflow_provider_mixpanel.transfers.parts import BATCH_BYTES

# JSONL bytes gathered into one row group. The row group's columns are held in memory until it is
# written (about as many bytes as its JSONL), so this bounds the encoder's memory; ~37,000 normalized
# events of ~900 bytes, enough rows for readers that scan row groups in parallel (RESULTS.md).
ROW_GROUP_BYTES = 32 * 1024 * 1024
# Arrow's type of event_time: UTC instants to the microsecond (Parquet TIMESTAMP(isAdjustedToUTC, MICROS)).
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
# Marks JSON columns with Parquet's JSON logical type (pyarrow >= 19, the extra's floor); plain
# strings with an older pyarrow that was installed without the extra.
_JSON_EXTENSION = hasattr(pa, "json_")
_JSON_TYPE = pa.json_(pa.string()) if _JSON_EXTENSION else pa.string()
_ARROW_TYPES = {
    TEXT: pa.string(),
    TIMESTAMP: TIMESTAMP_TYPE,
    JSON: _JSON_TYPE,
    INTEGER: pa.int64(),
    BOOLEAN: pa.bool_(),
}
# Columns whose values msgspec decodes into Python values of this type (the others are text or raw JSON).
_VALUE_TYPES: dict[str, type] = {INTEGER: int, BOOLEAN: bool}
_EMPTY_RAW = msgspec.Raw()
_members = msgspec.json.Decoder(dict[str, msgspec.Raw])
# The stdlib reads what msgspec refuses (a raw control character, a lone surrogate escape).
_lenient = json.JSONDecoder(strict=False)


def arrow_schema(columns: Sequence[Column], *, json_logical_type: bool = True) -> pa.Schema:
    """The Arrow schema of a record format's columns; with ``json_logical_type=False`` JSON columns
    are plain strings (their text is the same)."""
    types = _ARROW_TYPES if json_logical_type else {**_ARROW_TYPES, JSON: pa.string()}
    return pa.schema([pa.field(column.name, types[column.kind]) for column in columns])


class _MemorySink(io.RawIOBase):
    """Collects what the Parquet writer writes until :meth:`drain` hands it on."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:  # the writer records column chunk offsets from it
        return self._position

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class ParquetEncoder:
    """One Parquet file made from JSONL batches: :meth:`compress` takes a batch and returns the
    bytes of the file written so far (often none: a row group is written once it is full),
    :meth:`flush` the rest with the footer. The same interface as a JSONL part's
    :class:`~airflow_provider_mixpanel.compression.Compressor`.

    :param columns: the record format's columns (:func:`airflow_provider_mixpanel.schemas.record_columns`).
    :param compression: the codec inside the file: ``"zstd"``, ``"snappy"`` or ``None``, already checked.
    :param compression_level: the zstd level; ``None`` takes pyarrow's default.
    :param row_group_bytes: write a row group once this many bytes of JSONL have gathered.
    :param json_logical_type: mark JSON columns with Parquet's JSON logical type; ``False`` writes
        plain strings (Iceberg tables: Iceberg has no JSON type, and pyiceberg refuses the Arrow one).
    """

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        compression: str | None = "zstd",
        compression_level: int | None = None,
        row_group_bytes: int = ROW_GROUP_BYTES,
        json_logical_type: bool = True,
    ):
        self.columns = tuple(columns)
        self.schema = arrow_schema(self.columns, json_logical_type=json_logical_type)
        self._json_extension = json_logical_type and _JSON_EXTENSION
        self.row_group_bytes = row_group_bytes
        self._decode = _typed_decoder(self.columns)
        self._getters = [attrgetter(f"c{i}") for i in range(len(self.columns))]
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._sink = _MemorySink()
        # Dictionaries and statistics pay off for the short columns (names, ids, times) only;
        # a JSON column is read whole, never filtered by its min/max.
        short = [column.name for column in self.columns if column.kind != JSON]
        self._writer = pq.ParquetWriter(
            self._sink,
            self.schema,
            compression=compression or "none",
            compression_level=compression_level,
            use_dictionary=short,
            write_statistics=short,
        )

    def compress(self, data: bytes) -> bytes:
        """Take a batch of JSONL lines; the Parquet bytes written so far."""
        batch = self._record_batch(data)
        self._pending.append(batch)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self.row_group_bytes:
            self._write_row_group()
        return self._sink.drain()

    def flush(self) -> bytes:
        """The rest of the file: the last row group and the footer. The encoder cannot be used after this."""
        self._write_row_group()
        self._writer.close()
        return self._sink.drain()

    def _write_row_group(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, self.schema)
            self._pending = []
            self._pending_bytes = 0
            self._writer.write_table(table, row_group_size=table.num_rows)

    def _record_batch(self, data: bytes) -> pa.RecordBatch:
        try:
            rows = self._decode.decode_lines(data)
        except msgspec.MsgspecError:  # a value of another type, or a line msgspec refuses: line by line
            return self._record_batch_leniently(data)
        columns = zip(self.columns, self._getters, strict=True)
        arrays = [self._array(column, list(map(get, rows))) for column, get in columns]
        return self._batch(arrays)

    @staticmethod
    def _array(column: Column, values: list[Any]) -> pa.Array:
        if column.kind in _VALUE_TYPES:
            return pa.array(values, _ARROW_TYPES[column.kind])
        return _json_array(values) if column.kind == JSON else _text_array(column, values)

    def _record_batch_leniently(self, data: bytes) -> pa.RecordBatch:
        """The slow road: each line read on its own, each value converted by its column's rule."""
        names = [column.name for column in self.columns]
        values: list[list[Any]] = [[] for _ in self.columns]
        for line in data.split(b"\n"):
            if not line:
                continue
            members = _member_texts(line)
            unknown = set(members).difference(names)
            if unknown:
                raise MixpanelMalformedRecordError(
                    f"A record has the member(s) {', '.join(sorted(unknown))} beside the Parquet columns "
                    f"{', '.join(names)}: write this stream as JSONL (output_format='jsonl') to keep them."
                )
            for column, column_values in zip(self.columns, values, strict=True):
                text = members.get(column.name)
                column_values.append(text if text is None or column.kind == JSON else _typed_value(column, text))
        arrays = [
            pa.array(texts, _ARROW_TYPES[column.kind]) if column.kind in _VALUE_TYPES else _text_array(column, texts)
            for column, texts in zip(self.columns, values, strict=True)
        ]
        return self._batch(arrays)

    def _batch(self, arrays: list[pa.Array]) -> pa.RecordBatch:
        if not self._json_extension:  # plain strings: the JSON columns' text, without the extension type
            arrays = [a.storage if isinstance(a, pa.ExtensionArray) else a for a in arrays]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _typed_decoder(columns: Sequence[Column]) -> msgspec.json.Decoder:
    """The fast road: a whole batch decoded at once into structs whose text columns are strings
    and json columns raw JSON text. Another member, or a value of another type, raises, and the
    batch takes the slow road."""
    fields = [
        (f"c{i}", msgspec.Raw, _EMPTY_RAW)
        if column.kind == JSON
        else (f"c{i}", _VALUE_TYPES.get(column.kind, str) | None, None)
        for i, column in enumerate(columns)
    ]
    row = msgspec.defstruct(
        "Row",
        fields,
        rename={f"c{i}": column.name for i, column in enumerate(columns)},
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(row)


def _json_array(raws: list[msgspec.Raw]) -> pa.Array:
    """Raw JSON texts as a JSON column; a missing member (an empty Raw) is NULL."""
    if all(raws):  # one copy into a single buffer, no Python object per value
        data = b"".join(raws)
        offsets = array("i", itertools.accumulate(map(len, raws), initial=0))
        storage = pa.StringArray.from_buffers(len(raws), pa.py_buffer(offsets), pa.py_buffer(data))
    else:
        storage = pa.array([bytes(raw) if raw else None for raw in raws], pa.string())
    return _as_json(storage)


def _as_json(storage: pa.Array) -> pa.Array:
    return pa.ExtensionArray.from_storage(_JSON_TYPE, storage) if _JSON_EXTENSION else storage


def _text_array(column: Column, texts: list[Any]) -> pa.Array:
    """A column from its values as text (``str`` or ``None``): a JSON column from JSON texts."""
    if column.kind == TIMESTAMP:
        return _timestamp_array(column, texts)
    strings = pa.array(texts, pa.string())
    return _as_json(strings) if column.kind == JSON else strings


def _timestamp_array(column: Column, texts: list[Any]) -> pa.Array:
    """ISO-8601 texts with their offset (``2024-03-01T00:00:00+00:00``) as UTC instants."""
    try:
        return pa.array(texts, pa.string()).cast(TIMESTAMP_TYPE)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise MixpanelMalformedRecordError(
            f"A record's {column.name} is not an ISO-8601 time with its UTC offset: {err}"
        ) from None


def _typed_value(column: Column, text: str) -> Any:
    """A column's value from the member's JSON text: integers and booleans as themselves, text by
    :func:`_text_value`."""
    wanted = _VALUE_TYPES.get(column.kind)
    if wanted is None:
        return _text_value(text)
    value = _lenient.decode(text)
    if value is not None and (type(value) is not wanted):
        raise MixpanelMalformedRecordError(f"A record's {column.name} is not {column.kind}: {text[:100]!r}")
    return value


def _text_value(text: str) -> str | None:
    """A text column's value from the member's JSON text: a string's value, NULL for ``null``, and
    the JSON text of anything else (a number stays as sent: ``12345``)."""
    value = _lenient.decode(text)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape: no UTF-8 string holds it, its JSON text does
            return text
        return value
    return text


def _member_texts(line: bytes) -> dict[str, str]:
    """The JSON text of each top-level member of a JSONL line. A value holding a raw control
    character is written back escaped, since JSON requires it."""
    try:
        return {name: bytes(raw).decode("utf-8") for name, raw in _members.decode(line).items()}
    except msgspec.DecodeError:
        pass
    try:
        return {name: value_text for name, value_text, _ in lenient_members(line.decode("utf-8"))}
    except (ValueError, IndexError) as err:
        raise MixpanelMalformedRecordError(f"A JSONL line is not a JSON object ({err}): {line[:200]!r}") from None


class ParquetLines:
    """JSONL lines in, a Parquet file out (the CLI's ``--format parquet``): lines are gathered into
    batches for a :class:`ParquetEncoder`, whose bytes go to ``file``. :meth:`finish` writes the
    footer; without it the file is incomplete.

    :param file: a binary file open for writing; closed by :meth:`finish` and :meth:`close`.
    :param columns: the record format's columns.
    """

    def __init__(self, file: Any, columns: Sequence[Column]):
        self._file = file
        self._encoder = ParquetEncoder(columns)
        self._batch: list[bytes] = []
        self._size = 0

    def write(self, line: bytes) -> None:
        self._batch.append(line)
        self._size += len(line)
        if self._size >= BATCH_BYTES:
            self._write_batch()

    def flush(self) -> None:
        """Nothing to do: row groups are written when full (a reader needs the footer anyway)."""

    def finish(self) -> None:
        """Write the rest and the footer, and close the file."""
        self._write_batch()
        self._file.write(self._encoder.flush())
        self._file.close()

    def close(self) -> None:
        self._file.close()

    def _write_batch(self) -> None:
        if self._batch:
            self._file.write(self._encoder.compress(b"".join(self._batch)))
            self._batch = []
            self._size = 0
