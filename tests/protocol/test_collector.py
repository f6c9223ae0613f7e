"""The message collector: a binary message gathered whole, each piece unmasked into its buffer.

The compiled ``Collector`` (``wsevents._speedups``, built in any case: see test_speedups.py) and
the pure ``CollectorPython`` give the same bytes for any pieces, keys and hints, and the same as
masking each piece and joining them; a piece kept as it is (the first one, when it is a bytes
object and needs no unmasking) is never written into; the buffer grows with what arrives, never
to what a frame header announces. Then the reader's side: ``collect_message`` puts the rest of a
binary message into the collector, with the same counts as when it hands the pieces on.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import BINARY, CONT, PING, frame, naive_mask, scan_cores
from wsevents import _speedups  # type: ignore[attr-defined,unused-ignore]
from wsevents.protocol import events as ev
from wsevents.protocol._mask import Collector, CollectorPython
from wsevents.protocol.core import WebSocketCore

COLLECTORS: list[Callable[[], Collector]] = [_speedups.Collector, CollectorPython]
IDS = ["compiled", "pure"]


FastCore, PureCore = scan_cores()

# One piece: its bytes, how it is passed, its key (None: not masked), the `more` hint.
_piece = st.tuples(
    st.binary(max_size=300),
    st.sampled_from([bytes, bytearray, memoryview]),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    st.sampled_from([-1, 0, 1, 7, 1000, 1 << 40]),
)


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(st.lists(_piece, max_size=8), min_size=1, max_size=3))
def test_compiled_and_pure_collectors_agree_with_mask_and_join(messages: list[list[Any]]) -> None:
    compiled, pure = _speedups.Collector(), CollectorPython()
    for pieces in messages:  # one collector after another: finish() empties it for the next
        expected = b""
        for data, wrap, key, more in pieces:
            for collector in (compiled, pure):
                collector.add(wrap(data), key, more)
            expected += naive_mask(data, key) if key is not None else data
            assert compiled.size == pure.size == len(expected)
        assert compiled.finish() == expected
        assert pure.finish() == expected
        assert compiled.size == pure.size == 0


@pytest.mark.parametrize("new", COLLECTORS, ids=IDS)
def test_a_piece_kept_as_it_is_is_never_written_into(new: Callable[[], Collector]) -> None:
    first = bytes(range(200))
    collector = new()
    collector.add(first)  # kept, not copied: still ours too
    collector.add(b"\x00" * 100, b"\x01\x02\x03\x04", 0)
    assert first == bytes(range(200))
    message = collector.finish()
    assert message == bytes(range(200)) + b"\x01\x02\x03\x04" * 25
    assert first == bytes(range(200))
    # Once the message is handed out, a new one starts empty.
    collector.add(b"next")
    assert collector.finish() == b"next"
    assert message[:200] == first


@pytest.mark.parametrize("new", COLLECTORS, ids=IDS)
def test_the_key_must_be_four_bytes(new: Callable[[], Collector]) -> None:
    with pytest.raises(ValueError):
        new().add(b"data", b"abc", -1)


def test_the_compiled_buffer_grows_with_what_arrives_not_with_what_is_announced() -> None:
    collector = _speedups.Collector()
    tracemalloc.start()
    try:
        # A header announced 2**40 bytes; 1,000 arrived.
        collector.add(b"\x00" * 1000, b"abcd", (1 << 40) - 1000)
        small, _ = tracemalloc.get_traced_memory()
        assert small < 2 * 1000 + 65536 + 4096
        # Then 1 MiB in pieces: at most about twice what arrived at any moment.
        tracemalloc.reset_peak()
        arrived = 1000
        for _ in range(16):
            collector.add(b"\x00" * 65536, b"abcd", 1 << 40)
            arrived += 65536
            _, peak = tracemalloc.get_traced_memory()
            # The piece itself (65,536), the buffer (twice what arrived plus 64 KiB), and while it
            # grows, the old buffer beside the new one.
            assert peak < 65536 + 2 * (2 * arrived + 65536) + 4096, (arrived, peak)
        # With what is still announced as the bound, no more than that is reserved.
        piece = b"\x00" * 1000
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        exact = _speedups.Collector()
        exact.add(piece, b"abcd", 10)
        _, peak = tracemalloc.get_traced_memory()
        assert peak - before < 1010 + 1024
        assert exact.finish() == naive_mask(piece, b"abcd")
    finally:
        tracemalloc.stop()
    assert collector.finish() == naive_mask(b"\x00" * (1000 + 16 * 65536), b"abcd")


# -- the reader's side ------------------------------------------------------------------------


def _masked(opcode: int, payload: bytes, fin: bool = True, **kwargs: Any) -> bytes:
    return frame(opcode, payload, mask=True, fin=fin, **kwargs)


@pytest.mark.parametrize("new", COLLECTORS, ids=IDS)
def test_a_header_announcing_a_huge_message_allocates_nothing_big(new: Callable[[], Collector]) -> None:
    core = WebSocketCore(client=False, max_message_size=None)
    # A 14-byte header announcing 2**40 bytes, and 1,000 of them.
    wire = frame(BINARY, b"\x01" * 1000, length=1 << 40)
    collector = new()
    tracemalloc.start()
    try:
        core.receive_data(wire)
        assert core.next_event() == (ev.BINARY_START,)
        core.unbound_message()
        assert core.collect_message(collector)
        assert core.next_event() == (ev.BINARY, b"", False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert collector.size == 1000
    assert peak < 200_000
    assert collector.finish() == b"\x01" * 1000


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    ping_after=st.integers(min_value=-1, max_value=4),
    start=st.integers(min_value=0, max_value=6),
    cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=20),
    compiled=st.booleans(),
)
def test_collecting_gives_the_message_and_the_counts_of_handing_pieces_on(
    parts: list[bytes], ping_after: int, start: int, cuts: list[int], compiled: bool
) -> None:
    """From any piece on (``start``), a collected message is the rest of the message; the
    pieces handed on before it and the collector's bytes make the message, and the counts are
    those of a core that hands every piece on. Fragmented, a ping in the middle, read in cuts."""
    wire = b""
    for i, part in enumerate(parts):
        wire += _masked(BINARY if i == 0 else CONT, part, fin=i == len(parts) - 1)
        if i == ping_after:
            wire += _masked(PING, b"mid")
    message = b"".join(parts)
    got: dict[bool, bytes] = {}
    counts: dict[bool, list[int]] = {}
    for collecting in (False, True):
        core = (FastCore if compiled else PureCore)(client=False, max_message_size=None)
        collector = _speedups.Collector() if compiled else CollectorPython()
        handed: list[bytes] = []
        pieces = 0
        done = into = False
        pos = 0
        for cut in [*cuts, len(wire)]:
            core.receive_data(wire[pos : pos + cut])
            pos += cut
            while (event := core.next_event()) is not None:
                if event[0] == ev.BINARY:
                    # As the I/O layer does: once collecting, every piece's bytes go into the
                    # collector (b"" for those the core put there itself).
                    if into:
                        collector.add(event[1])
                    else:
                        handed.append(event[1])
                    pieces += 1
                    done = event[2]
                if collecting and event[0] in (ev.BINARY_START, ev.BINARY) and pieces == start and not done:
                    into = core.collect_message(collector)
                    # Refused only for a message the compiled scan parsed ahead whole.
                    assert into or (compiled and len(parts) == 1)
            if pos >= len(wire):
                break
        assert done
        assert core.collect_message(collector) is False  # between messages: nothing to collect
        got[collecting] = b"".join(handed) + collector.finish()
        counts[collecting] = list(core.counts)
    assert got[False] == got[True] == message
    assert counts[False] == counts[True]


def test_a_message_parsed_ahead_whole_is_not_collected() -> None:
    core = FastCore(client=False, max_message_size=None)
    core.receive_data(_masked(BINARY, b"whole"))
    assert core.next_event() == (ev.BINARY_START,)
    assert core.collect_message(_speedups.Collector()) is False
    assert core.next_event() == (ev.BINARY, b"whole", True)


def test_collecting_stops_with_parsing() -> None:
    core = WebSocketCore(client=False, max_message_size=None)
    collector = _speedups.Collector()
    core.receive_data(_masked(BINARY, b"x" * 100, fin=False)[:50])
    assert core.next_event() == (ev.BINARY_START,)
    assert core.collect_message(collector)
    assert core.next_event() == (ev.BINARY, b"", False)
    core.fail(1009, "too big")
    assert core.collect_message(collector) is False
