"""wsevents.protocol.reader through the core's pull API: events pulled on demand, nothing pushed.

These tests drive :class:`WebSocketCore` as an I/O layer does, with
``receive_data`` / ``next_event`` / ``events_received`` / ``data_to_send``,
and check what the pull style promises: the events do not depend on how the
bytes were cut nor on when they are pulled, stopping to pull (backpressure)
loses and reorders nothing, and an exception in the caller between two pulls
leaves the core where it was.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import BINARY, CLOSE, CONT, PING, PONG, TEXT, close_payload, frame, parse_frames
from wsevents.errors import MessageTooBig
from wsevents.protocol import events as ev
from wsevents.protocol.core import ReadyState, Side, WebSocketCore
from wsevents.protocol.deflate import DeflateConfig, PerMessageDeflate
from wsevents.protocol.events import TINY_PIECE, append_piece

SIDES = pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
PULL = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def peer(client: bool, opcode: int, payload: bytes | str = b"", **kwargs: Any) -> bytes:
    """A frame as the peer of a ``client`` core sends it (masked iff the peer is a client)."""
    return frame(opcode, payload, mask=not client, **kwargs)


def merged(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Events with consecutive binary pieces joined: the view that does not depend on the cuts."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        if event[0] == ev.BINARY and out and out[-1][0] == ev.BINARY and not out[-1][2]:
            out[-1] = (ev.BINARY, out[-1][1] + event[1], event[2])
        elif event[0] == ev.FAIL:
            out.append((ev.FAIL, event[1].code))
        else:
            out.append(event)
    return out


@st.composite
def streams(draw: st.DrawFn, client: bool) -> tuple[bytes, list[tuple[Any, ...]]]:
    """Frames of a correct peer (fragmented messages, pings between fragments, maybe a close)
    and the events they must give, binary messages whole and without ``BINARY_START``."""
    data = bytearray()
    expected: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "binary", "ping", "pong"]))
        if kind in ("ping", "pong"):
            payload = draw(st.binary(max_size=125))
            data += peer(client, PING if kind == "ping" else PONG, payload)
            expected.append((ev.PING if kind == "ping" else ev.PONG, payload))
            continue
        text = draw(st.text(max_size=60))
        body = text.encode() if kind == "text" else draw(st.binary(max_size=300))
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        for i, piece in enumerate(pieces):
            opcode = (TEXT if kind == "text" else BINARY) if i == 0 else CONT
            data += peer(client, opcode, piece, fin=i == len(pieces) - 1)
            if i < len(pieces) - 1 and draw(st.booleans()):
                data += peer(client, PING, b"between")
                expected.append((ev.PING, b"between"))
        # A message's event comes after the pings between its fragments (compared apart).
        expected.append((ev.TEXT, text) if kind == "text" else (ev.BINARY, body, True))
    if draw(st.booleans()):
        data += peer(client, CLOSE, close_payload(1000, "done"))
        expected.append((ev.CLOSE, 1000, "done"))
    return bytes(data), expected


def pull_all(data: bytes, cuts: list[int], client: bool, limit: int | None = None) -> list[tuple[Any, ...]]:
    core = WebSocketCore(client=client, max_message_size=limit)
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    events: list[tuple[Any, ...]] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        core.receive_data(data[a:b])
        events += core.events_received()
    return events


def messages(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The events but pings and ``BINARY_START``, binary pieces joined."""
    return merged([e for e in events if e[0] not in (ev.PING, ev.BINARY_START)])


# -- split and pull independence ------------------------------------------------------------------


@PULL
@given(st.data())
def test_any_split_of_a_valid_stream_gives_the_same_events(data: st.DataObject) -> None:
    client = data.draw(st.booleans())
    stream, expected = data.draw(streams(client))
    cuts = data.draw(st.lists(st.integers(0, 10_000), max_size=10))
    whole = pull_all(stream, [], client)
    assert merged(pull_all(stream, cuts, client)) == merged(whole)
    assert messages(whole) == messages(expected)
    assert [e for e in whole if e[0] == ev.PING] == [e for e in expected if e[0] == ev.PING]


@PULL
@given(st.data())
def test_pulling_late_or_in_between_reads_changes_nothing(data: st.DataObject) -> None:
    """Backpressure is "stop pulling": feed more while events wait, pull some, feed again..."""
    client = data.draw(st.booleans())
    stream, _ = data.draw(streams(client))
    reference = merged(pull_all(stream, [], client))
    core = WebSocketCore(client=client)
    events: list[tuple[Any, ...]] = []
    pos = 0
    while pos < len(stream):
        step = data.draw(st.integers(1, max(1, len(stream) - pos)))
        core.receive_data(stream[pos : pos + step])
        pos += step
        for _ in range(data.draw(st.integers(0, 3))):
            event = core.next_event()
            if event is not None:
                events.append(event)
    events += core.events_received()
    assert merged(events) == reference
    assert core.next_event() is None


@PULL
@given(st.data())
def test_an_exception_between_pulls_loses_and_replays_nothing(data: st.DataObject) -> None:
    client = data.draw(st.booleans())
    stream, _ = data.draw(streams(client))
    reference = pull_all(stream, [], client)
    raise_at = data.draw(st.sets(st.integers(0, 30), max_size=6))
    core = WebSocketCore(client=client)
    core.receive_data(stream)
    seen: list[tuple[Any, ...]] = []

    def dispatch(event: tuple[Any, ...]) -> None:
        seen.append(event)
        if len(seen) - 1 in raise_at:
            raise RuntimeError("listener failed")

    while True:
        try:
            event = core.next_event()
            if event is None:
                break
            dispatch(event)
        except RuntimeError:
            continue
    assert seen == reference


# -- pull-style specifics ---------------------------------------------------------------------------


@SIDES
def test_nothing_is_parsed_before_a_pull(client: bool) -> None:
    core = WebSocketCore(client=client)
    data = peer(client, PING, b"x") + peer(client, TEXT, "hi")
    core.receive_data(data)
    assert core.buffered == len(data)
    assert core.data_to_send() == []  # not even the pong
    assert core.next_event() == (ev.PING, b"x")
    assert parse_frames(b"".join(core.data_to_send())) == [(True, PONG, b"x")]
    assert core.next_event() == (ev.TEXT, "hi")
    assert core.next_event() is None and core.buffered == 0


@SIDES
def test_unbound_message_at_binary_start_lifts_the_bound_for_that_message_only(client: bool) -> None:
    core = WebSocketCore(client=client, max_message_size=4)
    core.receive_data(peer(client, BINARY, b"123456") + peer(client, BINARY, b"123456"))
    assert core.next_event() == (ev.BINARY_START,)
    core.unbound_message()
    assert core.next_event() == (ev.BINARY, b"123456", True)
    assert core.next_event() == (ev.BINARY_START,)
    event = core.next_event()
    assert event is not None and event[0] == ev.FAIL and isinstance(event[1], MessageTooBig)
    assert core.next_event() is None


def test_one_pull_inflates_at_most_one_received_piece() -> None:
    """One read holding a whole compressed message in two frames: each pull inflates one frame's
    piece, and the next frame stays unparsed until the I/O layer pulls again."""
    codec = PerMessageDeflate(
        compress_bits=15,
        compress_no_context=False,
        decompress_bits=15,
        decompress_no_context=False,
        config=DeflateConfig(),
    )
    rng = random.Random(0)
    raw = bytes(rng.randrange(4) for _ in range(200_000))
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(raw[:100_000]) + comp.flush(zlib.Z_SYNC_FLUSH)
    second = (comp.compress(raw[100_000:]) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
    tail = frame(CONT, second)
    core = WebSocketCore(client=False, max_message_size=1 << 20, extension=codec)
    core.receive_data(frame(BINARY, first, fin=False, rsv=0b100) + tail)
    assert core.next_event() == (ev.BINARY_START,)
    core.unbound_message()
    assert core.next_event() == (ev.BINARY, raw[:100_000], False)
    assert core.buffered == len(tail)
    assert core.next_event() == (ev.BINARY, raw[100_000:], True)
    assert core.next_event() is None


def state_of(core: WebSocketCore) -> tuple[ReadyState, Side | None]:
    return core.state, core.closer


@SIDES
def test_state_moves_in_one_direction_with_who_closed(client: bool) -> None:
    local = WebSocketCore(client=client)
    assert state_of(local) == (ReadyState.OPEN, None)
    local.send_close(1000)
    assert state_of(local) == (ReadyState.CLOSING, Side.LOCAL)
    local.receive_data(peer(client, CLOSE, close_payload(1000)))
    assert local.next_event() == (ev.CLOSE, 1000, "")
    assert local.closer is Side.LOCAL
    local.receive_eof()
    assert state_of(local) == (ReadyState.CLOSED, Side.LOCAL) and not local.reading

    remote = WebSocketCore(client=client)
    remote.receive_data(peer(client, CLOSE, close_payload(1001, "bye")))
    assert remote.next_event() == (ev.CLOSE, 1001, "bye")
    assert state_of(remote) == (ReadyState.CLOSING, Side.REMOTE)
    assert remote.close_code_sent == 1001  # echoed

    failed = WebSocketCore(client=client)
    failed.receive_data(peer(client, 0x3))
    event = failed.next_event()
    assert event is not None and event[0] == ev.FAIL
    assert state_of(failed) == (ReadyState.CLOSING, Side.LOCAL)
    assert failed.failure is event[1] and not failed.reading


class Reverse:
    """A toy extension on RSV2: payloads travel reversed. The core must know it only by the interface."""

    rsv = 0x20

    def decode(self, data: bytes | memoryview, last: bool, limit: int | None) -> bytes:
        return bytes(data)[::-1]

    def encode_message(self, payload: bytes) -> tuple[bytes, int]:
        return payload[::-1], 0x20

    def encode_frame(self, data: bytes, first: bool, fin: bool) -> tuple[bytes, int]:
        return data[::-1], 0x20 if first else 0


def test_any_extension_behind_the_interface() -> None:
    server = WebSocketCore(client=False, extension=Reverse())
    client = WebSocketCore(client=True, extension=Reverse())
    client.send_text("hello")
    wire = b"".join(client.data_to_send())
    assert wire[0] == 0x80 | 0x20 | TEXT
    server.receive_data(wire)
    assert server.events_received() == [(ev.TEXT, "hello")]
    # RSV1 is not this extension's bit: 1002.
    server.receive_data(frame(TEXT, b"x", rsv=0b100))
    event = server.next_event()
    assert event is not None and event[0] == ev.FAIL and event[1].code == 1002


def test_append_piece_joins_tiny_pieces_only() -> None:
    parts: list[bytes] = []
    for _ in range(1000):
        append_piece(parts, b"x")
    assert len(parts) < 10 and b"".join(parts) == b"x" * 1000
    big = b"y" * TINY_PIECE
    append_piece(parts, big)
    append_piece(parts, b"z")
    assert parts[-2] is big and parts[-1] == b"z"
