"""A big binary frame read in pieces: intact, in order, and not copied when a read is all payload.

A 1 MiB frame arrives in reads of about 256 KiB. The core hands each read's share of
the payload on as it comes (never the whole frame at once); on the client side, where
frames are not masked, a read that is all payload is handed on as the very ``bytes``
object that was received instead of a copy of it.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import BINARY, wire_frame
from wsevents.protocol import events as ev
from wsevents.protocol.core import WebSocketCore


def test_a_read_that_is_all_payload_is_handed_on_without_a_copy() -> None:
    core = WebSocketCore(client=True)
    payload = random.Random(3).randbytes(300_000)
    data = wire_frame(False, BINARY, payload)
    head, middle, tail = data[:100_010], data[100_010:200_010], data[200_010:]
    core.receive_data(head)
    assert [e[0] for e in core.events_received()] == [ev.BINARY_START, ev.BINARY]
    core.receive_data(middle)
    (event,) = core.events_received()
    assert event[1] is middle  # the received object itself
    core.receive_data(tail)
    (last,) = core.events_received()
    assert last[1] is tail and last[2] is True
    assert event[1] == payload[100_000:200_000]


@settings(max_examples=80, deadline=None)
@given(
    client=st.booleans(),
    size=st.integers(0, 200_000),
    cuts=st.lists(st.integers(0, 200_100), max_size=12),
    pulls=st.lists(st.booleans(), min_size=14, max_size=14),
    seed=st.integers(0, 2**32),
)
def test_a_big_frame_in_random_reads_arrives_whole_and_in_order(
    client: bool, size: int, cuts: list[int], pulls: list[bool], seed: int
) -> None:
    """Any split, events pulled after some reads only (the rest held in the core meanwhile)."""
    payload = random.Random(seed).randbytes(size)
    # The peer of a client is a server (unmasked frames), and the other way round.
    data = wire_frame(not client, BINARY, payload) + wire_frame(not client, BINARY, b"after")
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    core = WebSocketCore(client=client)
    events = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        piece = data[a:b]
        core.receive_data(piece)
        if pulls[i % len(pulls)]:
            events += core.events_received()
        # What the core keeps is independent of the caller's buffer.
        assert core.buffered <= len(data)
    events += core.events_received()
    binaries = [e for e in events if e[0] == ev.BINARY]
    assert all(type(e[1]) is bytes for e in binaries)
    joined = b"".join(e[1] for e in binaries)
    assert joined == payload + b"after"
    fins = [i for i, e in enumerate(binaries) if e[2]]
    assert b"".join(e[1] for e in binaries[: fins[0] + 1]) == payload
    assert len(fins) == 2
