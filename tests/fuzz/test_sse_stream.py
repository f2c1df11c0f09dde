"""Fuzzing the SSE parser that reads MCP servers' event streams: any bytes, split at any
points, give the same events as the whole stream at once; well-formed events round-trip;
nothing but EventTooLarge ever escapes, and only past the bound."""

import pytest
pytest.importorskip("hypothesis", minversion="6")  # older ones lack what we use

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import finishes
from tunnel_client.sse import EventTooLarge, SseParser

FIELDS = st.sampled_from([b"data", b"event", b"id", b"retry", b"", b":", b"dat", b"\xef\xbb\xbf"])
ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r", b""])
LINES = st.builds(lambda name, sep, value, end: name + sep + value + end, FIELDS,
                  st.sampled_from([b":", b": ", b""]),
                  st.one_of(st.binary(max_size=20), st.text(max_size=10).map(str.encode)),
                  ENDINGS)
STREAMS = st.one_of(st.lists(LINES, max_size=12).map(b"".join), st.binary(max_size=300))


def parse(chunks, limit=64 << 20):
    parser = SseParser(max_event_bytes=limit)
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return [(e.event, e.id, e.data) for e in events]


def split(data: bytes, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


@settings(max_examples=300, deadline=None)
@given(STREAMS, st.lists(st.integers(0, 10 ** 6), max_size=8))
def test_events_do_not_depend_on_where_the_stream_is_split(data, cuts):
    whole = finishes(lambda: parse([data]))
    assert finishes(lambda: parse(split(data, cuts))) == whole
    assert finishes(lambda: parse([data[i:i + 1] for i in range(len(data))])) == whole


def text_without(forbidden: str, size: int):
    return st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                          blacklist_characters=forbidden), max_size=size)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(text_without("\r\n", 10),
                          st.lists(text_without("\r\n", 30), min_size=1, max_size=3)),
                max_size=5),
       st.lists(st.integers(0, 10 ** 6), max_size=6))
def test_well_formed_events_round_trip(events, cuts):
    stream = b"".join(
        (b"event: " + name.encode() + b"\n" if name else b"") +
        b"".join(b"data: " + line.encode() + b"\n" for line in lines) + b"\n"
        for name, lines in events)
    expected = [(name or "message", None, "\n".join(lines)) for name, lines in events
                if "\n".join(lines)]
    assert finishes(lambda: parse(split(stream, cuts))) == expected


@settings(max_examples=200, deadline=None)
@given(STREAMS, st.lists(st.integers(0, 10 ** 6), max_size=6), st.integers(1, 64))
def test_only_an_oversized_event_raises_and_only_event_too_large(data, cuts, limit):
    try:
        finishes(lambda: parse(split(data, cuts), limit))
    except EventTooLarge:
        assert len(data) > limit  # nothing smaller than the bound can exceed it
