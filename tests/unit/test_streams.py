"""RecordStream: converts, counts, skips what is malformed when asked, and closes its source."""

from __future__ import annotations

import pytest

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.streams import RecordStream


class Source:
    def __init__(self, items):
        self._items = iter(items)
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._items)

    def close(self):
        self.closed = True


def double(item):
    if item < 0:
        raise MixpanelMalformedRecordError(f"negative: {item}")
    return item * 2


def test_records_are_converted_and_counted_as_they_pass():
    stream = RecordStream(Source([1, 2, 3]), double)
    assert next(stream) == 2 and stream.records == 1
    assert list(stream) == [4, 6] and stream.records == 3


def test_a_malformed_item_raises_or_is_skipped_and_counted():
    with pytest.raises(MixpanelMalformedRecordError):
        list(RecordStream(Source([1, -1, 2]), double))
    stream = RecordStream(Source([1, -1, 2]), double, skip_malformed=True)
    assert list(stream) == [2, 4]
    assert (stream.records, stream.skipped_malformed) == (2, 1)


@pytest.mark.parametrize("started", [False, True])
def test_closing_closes_the_source(started):
    source = Source([1, 2, 3])
    stream = RecordStream(source, double)
    if started:
        next(stream)
    stream.close()
    assert source.closed
    assert list(stream) == []


def test_an_exhausted_stream_has_closed_its_source():
    source = Source([1])
    assert list(RecordStream(source, double)) == [2]
    assert source.closed
