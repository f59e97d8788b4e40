"""Identity mappings from export lines: the same mappings on every road that reads a line, each
device once per window, memory bounded."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.event_lines import event_line_normalizer, raw_line_checker
from airflow_provider_mixpanel.identity import IDENTITY_FIELDS, IdentityMappings, mapping_event

T0 = 1709251200  # 2024-03-01T00:00:00Z


def line(time: int = T0, device="D1", user="U1", insert_id="i-1", **extra) -> bytes:
    properties = {"time": time, "distinct_id": user or f"$device:{device}", "$browser": "Chrome"}
    if device is not None:
        properties["$device_id"] = device
    if insert_id is not None:
        properties["$insert_id"] = insert_id
    if user is not None:
        properties["$user_id"] = user
    properties.update(extra)
    return json.dumps({"event": "Page View", "properties": properties}, separators=(",", ":")).encode()


def roads(mappings: IdentityMappings):
    """Every road that reads an export line for JSONL output, fed to ``mappings``."""
    return {
        "normalized": event_line_normalizer(identity=mappings),
        "raw": raw_line_checker(mappings),
        "observe": lambda text: mappings.observe(text),
    }


LINES = {
    "splice layout": line(),
    "other key order": b'{"properties":{"$user_id":"U1","$device_id":"D1","time":1709251200,"$insert_id":"i-1"},'
    b'"event":"Page View"}',
    "spaces": b'{"event": "Page View", "properties": {"time": 1709251200, "$device_id": "D1", "$user_id": "U1", '
    b'"$insert_id": "i-1"}}',
    "escaped names": b'{"event":"Page View","properties":{"time":1709251200,"$\\u0064evice_id":"D1",'
    b'"\\u0024user_id":"U1","$insert_id":"i-1"}}',
    "raw control character elsewhere": b'{"event":"Page View","properties":{"time":1709251200,"$device_id":"D1",'
    b'"$insert_id":"i-1","$user_id":"U1","note":"a\tb"}}',
}
EXPECTED = ("$device:D1", "U1", "2024-03-01T00:00:00+00:00", "i-1")


def given(mappings: IdentityMappings) -> list[tuple]:
    """The mappings handed out since the last call, decoded."""
    return [mapping.values() for mapping in mappings.take()]


@pytest.mark.parametrize("road", ["normalized", "raw", "observe"])
@pytest.mark.parametrize("layout", list(LINES))
def test_every_road_gives_the_same_mapping(road, layout):
    mappings = IdentityMappings()
    roads(mappings)[road](LINES[layout])
    assert given(mappings) == [EXPECTED], f"{road} road, {layout}"


@pytest.mark.parametrize(
    "text",
    [
        line(user=None),
        line(device=None),
        line(user=""),
        line(user=None, **{"$user_id": None}),
        line(device=None, **{"$device_id": {"nested": "D1"}}),
        b'{"event":"x","properties":{"time":1709251200,"nested":{"$device_id":"D1","$user_id":"U1"}}}',
        b'{"event":"x","properties":null}',
    ],
)
def test_events_without_both_ids_map_nothing(text):
    mappings = IdentityMappings()
    for convert in roads(mappings).values():
        convert(text)
    assert given(mappings) == []


def test_a_device_is_given_once_per_window_unless_an_earlier_mapping_turns_up():
    mappings = IdentityMappings()
    normalize = event_line_normalizer(identity=mappings)
    normalize(line(T0 + 10, insert_id="a"))
    normalize(line(T0 + 20, insert_id="b"))
    normalize(line(T0 + 5, user="U2", insert_id="c"))  # out of time order: earlier, so written too
    normalize(line(T0 + 30, device="D2", insert_id="d"))
    written = [(device, user, insert_id) for device, user, _, insert_id in given(mappings)]
    assert written == [("$device:D1", "U1", "a"), ("$device:D1", "U2", "c"), ("$device:D2", "U1", "d")]


def test_memory_is_bounded_and_a_forgotten_device_only_repeats():
    mappings = IdentityMappings(max_devices=10)
    normalize = event_line_normalizer(identity=mappings)
    for round_ in range(2):
        for n in range(100):
            normalize(line(T0 + round_ * 1000 + n, device=f"D{n}", insert_id=f"{round_}-{n}"))
    written = given(mappings)
    assert {device for device, *_ in written} == {f"$device:D{n}" for n in range(100)}, "no device lost"
    assert len(written) == 200 and mappings.forgotten_devices > 0, "forgotten devices repeat"
    assert len(mappings._written.current) + len(mappings._written._previous) <= 10


def test_numbers_are_ids_and_a_missing_insert_id_gets_the_events_deterministic_one():
    mappings = IdentityMappings()
    normalize = event_line_normalizer(identity=mappings)
    record = json.loads(normalize(line(device=42, user=7, insert_id=None)))
    ((device, user, _, insert_id),) = given(mappings)
    assert (device, user) == ("$device:42", "7")
    assert insert_id == record["insert_id"], "the same id the normalized event has"


def test_milliseconds_and_project_time_zones_give_the_events_time():
    in_ms = IdentityMappings(time_in_ms=True)
    event_line_normalizer(time_in_ms=True, identity=in_ms)(line(T0 * 1000 + 250))
    assert given(in_ms)[0][2] == "2024-03-01T00:00:00.250000+00:00"
    zoned = IdentityMappings(project_timezone="America/New_York")
    record = event_line_normalizer(project_timezone="America/New_York", identity=zoned)(line())
    assert given(zoned)[0][2] == json.loads(record)["event_time"] == "2024-03-01T05:00:00+00:00"


def test_a_mapping_event_with_a_bad_time_is_malformed_on_the_raw_road():
    with pytest.raises(MixpanelMalformedRecordError, match="not a Unix timestamp"):
        raw_line_checker(IdentityMappings())(line(time="soon"))


def test_mapping_event_reads_the_last_of_a_name_sent_twice():
    text = b'{"event":"x","properties":{"time":1,"$device_id":"D1","$device_id":"D2","$user_id":"U"}}'
    assert mapping_event(text) == ("D2", "U", 1, None)


def test_records_are_data_pipelines_columns_then_the_events_time_and_id():
    mappings = IdentityMappings()
    event_line_normalizer(identity=mappings)(line())
    (mapping,) = mappings.take()
    assert json.loads(mapping.jsonl()) == dict(zip(IDENTITY_FIELDS, EXPECTED, strict=True))
    assert list(json.loads(mapping.jsonl())) == ["distinct_id", "resolved_distinct_id", "event_time", "insert_id"]
    assert mapping.record()["event_time"].isoformat() == EXPECTED[2]


def test_lone_surrogates_and_numbers_are_kept_as_sent():
    mappings = IdentityMappings()
    event_line_normalizer(identity=mappings)(
        b'{"event":"x","properties":{"time":1709251200,"distinct_id":"U","$device_id":"D\\ud83d",'
        b'"$insert_id":12,"$user_id":"U"}}'
    )
    (mapping,) = mappings.take()
    assert mapping.jsonl() == (
        b'{"distinct_id":"$device:D\\ud83d","resolved_distinct_id":"U",'
        b'"event_time":"2024-03-01T00:00:00+00:00","insert_id":12}\n'
    )
