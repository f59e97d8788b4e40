"""The export body's gunzip: pieces of bounded size, several gzip members, a cut body detected."""

from __future__ import annotations

import gzip
import os
import random

import pytest

from airflow_provider_mixpanel.client import DECOMPRESSED_PIECE_BYTES, READ_CHUNK_BYTES, _body_chunks, _TruncatedBody


class Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, size: int, decode_content: bool):
        assert decode_content is False
        for start in range(0, len(self._body), size):
            yield self._body[start : start + size]


class Response:
    """What _body_chunks reads of a requests.Response: the raw stream and the headers."""

    def __init__(self, body: bytes, encoding: str = "gzip"):
        self.raw = Raw(body)
        self.headers = {"Content-Encoding": encoding}


def payload(size: int) -> bytes:
    return os.urandom(size // 2).hex().encode()  # compresses about 2:1, so reads inflate


def test_pieces_are_bounded_and_join_to_the_body():
    body = payload(4 * READ_CHUNK_BYTES)
    pieces = list(_body_chunks(Response(gzip.compress(body))))
    assert b"".join(pieces) == body
    assert max(map(len, pieces)) <= DECOMPRESSED_PIECE_BYTES
    zeros = bytes(3 * READ_CHUNK_BYTES)  # inflates a thousandfold: still in bounded pieces
    pieces = list(_body_chunks(Response(gzip.compress(zeros))))
    assert b"".join(pieces) == zeros and max(map(len, pieces)) <= DECOMPRESSED_PIECE_BYTES


def test_several_gzip_members_are_read_one_after_another():
    first, second = payload(300_000), payload(500_000)
    assert b"".join(_body_chunks(Response(gzip.compress(first) + gzip.compress(second)))) == first + second


def test_a_body_cut_short_is_detected():
    with pytest.raises(_TruncatedBody):
        list(_body_chunks(Response(gzip.compress(payload(100_000))[:-20])))


def test_a_plain_body_passes_as_it_came():
    assert b"".join(_body_chunks(Response(b"a\nb\n", encoding=""))) == b"a\nb\n"


def test_any_read_size_gives_the_whole_body():
    rng = random.Random(12)
    for _ in range(40):
        unit = rng.randbytes(rng.randrange(1, 50))
        body = unit * rng.randrange(1_000, 20_000) + rng.randbytes(rng.randrange(3_000))  # long matches
        compressed = gzip.compress(body)
        for size in (1, 64, rng.randrange(1, 5_000)):
            response = Response(compressed)
            response.raw.stream = (
                lambda _, decode_content, size=size, data=compressed: (  # type: ignore[method-assign]
                    data[start : start + size] for start in range(0, len(data), size)
                )
            )
            assert b"".join(_body_chunks(response)) == body
