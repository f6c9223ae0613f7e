"""wsevents.protocol.core: ping/pong, message size limits, sending, failing, state; no sockets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    CoreDriver,
    Recorder,
    close_payload,
    frame,
    make_core,
    parse_frame_details,
    parse_frames,
    sent_close,
)
from wsevents.errors import InvalidState, MessageTooBig, ProtocolError
from wsevents.protocol.core import ReadyState, WebSocketCore

SIDES = pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
PATTERN = bytes((i * 13 + 5 + (i >> 8)) & 0xFF for i in range(70_000))


def peer(client: bool, opcode: int, payload: bytes | str = b"", **kwargs: Any) -> bytes:
    """A frame as the peer of a ``client`` core sends it (masked iff the peer is a client)."""
    return frame(opcode, payload, mask=not client, **kwargs)


# -- state ------------------------------------------------------------------------


def test_ready_state_numbers() -> None:
    assert [int(s) for s in ReadyState] == [0, 1, 2, 3]
    assert int(ReadyState.OPEN) == 1 and ReadyState.CLOSED.name == "CLOSED"


@SIDES
def test_initial_state(client: bool) -> None:
    core, rec, written = make_core(client=client)
    assert core.reading
    assert not core.close_sent
    assert not core.close_received
    assert not core.in_message
    assert core.max_message_size is None
    assert rec.calls == [] and written == []


@SIDES
def test_in_message_follows_fragmentation(client: bool) -> None:
    core, _, _ = make_core(client=client)
    core.receive_data(peer(client, BINARY, b"a", fin=False))
    assert core.in_message
    core.receive_data(peer(client, CONT, b"b", fin=False))
    assert core.in_message
    core.receive_data(peer(client, CONT, b"c", fin=True))
    assert not core.in_message


@SIDES
def test_receive_eof_stops_reading(client: bool) -> None:
    core, rec, written = make_core(client=client)
    data = peer(client, TEXT, "hello")
    core.receive_data(data[:3])
    core.receive_eof()
    assert not core.reading
    core.receive_data(data[3:])
    core.receive_data(peer(client, PING, b"x"))
    assert rec.calls == []
    assert written == []


# -- ping and pong ------------------------------------------------------------------


@SIDES
@pytest.mark.parametrize("n", [0, 1, 2, 125])
def test_ping_is_answered_with_the_same_payload(client: bool, n: int) -> None:
    payload = PATTERN[:n]
    core, rec, written = make_core(client=client)
    core.receive_data(peer(client, PING, payload))
    assert rec.calls == [("ping", payload)]
    assert parse_frames(b"".join(written)) == [(True, PONG, payload)]
    if not client:
        assert b"".join(written) == b"\x8a" + bytes((n,)) + payload
    else:
        assert parse_frame_details(b"".join(written))[0].masked


@SIDES
def test_pong_is_written_before_on_ping_is_called(client: bool) -> None:
    core, rec, written = make_core(client=client)
    seen: list[int] = []
    rec.on_ping = lambda payload: seen.append(len(written))  # type: ignore[method-assign]
    core.receive_data(peer(client, PING, b"x"))
    assert seen == [1]


@SIDES
def test_every_ping_gets_its_pong_in_order(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(b"".join(peer(client, PING, str(i)) for i in range(5)))
    assert rec.calls == [("ping", str(i).encode()) for i in range(5)]
    assert parse_frames(b"".join(written)) == [(True, PONG, str(i).encode()) for i in range(5)]


@SIDES
def test_ping_inside_a_fragmented_text_message(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(peer(client, TEXT, b"Hel\xe2", fin=False))
    core.receive_data(peer(client, PING, b"in between"))
    assert rec.calls == [("ping", b"in between")]
    assert parse_frames(b"".join(written)) == [(True, PONG, b"in between")]
    assert core.in_message
    core.receive_data(peer(client, CONT, b"\x82\xaclo", fin=False))
    core.receive_data(peer(client, PING, b""))
    core.receive_data(peer(client, CONT, b"!", fin=True))
    assert rec.calls == [("ping", b"in between"), ("ping", b""), ("text", "Hel€lo!")]
    assert parse_frames(b"".join(written)) == [(True, PONG, b"in between"), (True, PONG, b"")]


@SIDES
def test_ping_inside_a_fragmented_binary_message(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(
        peer(client, BINARY, PATTERN[:10], fin=False)
        + peer(client, PING, b"p")
        + peer(client, CONT, PATTERN[10:20], fin=True)
    )
    assert rec.calls == [
        ("binary_start",),
        ("binary", PATTERN[:10], False),
        ("ping", b"p"),
        ("binary", PATTERN[10:20], True),
    ]
    assert parse_frames(b"".join(written)) == [(True, PONG, b"p")]


@SIDES
def test_pong_goes_to_on_pong_and_is_not_answered(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(peer(client, PONG, b"unsolicited") + peer(client, PONG, b""))
    assert rec.calls == [("pong", b"unsolicited"), ("pong", b"")]
    assert written == []


@SIDES
def test_no_pong_after_our_close_frame(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.send_close(1000, "bye")
    core.receive_data(peer(client, PING, b"still there?"))
    assert rec.calls == [("ping", b"still there?")]
    assert sent_close(written) == (1000, b"bye")
    assert len(parse_frames(b"".join(written))) == 1
    # The peer's close still completes the closing handshake without a second close frame.
    core.receive_data(peer(client, CLOSE, close_payload(1000)))
    assert rec.calls[-1] == ("close", 1000, "")
    assert len(parse_frames(b"".join(written))) == 1


@SIDES
def test_ping_arriving_byte_by_byte(client: bool) -> None:
    data = peer(client, PING, b"0123456789")
    core, rec, written = make_core(client=client)
    for i in range(len(data)):
        assert rec.calls == []
        core.receive_data(data[i : i + 1])
    assert rec.calls == [("ping", b"0123456789")]
    assert parse_frames(b"".join(written)) == [(True, PONG, b"0123456789")]


# -- max_message_size ------------------------------------------------------------------


def _assert_too_big(rec: Any, written: list[bytes], before: list[tuple[Any, ...]] | None = None) -> None:
    assert rec.calls == [*(before or []), ("fail", 1009, "MessageTooBig")]
    assert isinstance(rec.errors[0], MessageTooBig)
    assert rec.errors[0].code == 1009
    assert sent_close(written)[0] == 1009


@SIDES
@pytest.mark.parametrize("announced", [101, 126, 65536, 1 << 40])
def test_text_over_the_limit_fails_from_the_header_before_the_payload(client: bool, announced: int) -> None:
    core, rec, written = make_core(client=client, max_message_size=100)
    header = peer(client, TEXT, b"", length=announced)  # the header alone; no payload follows
    core.receive_data(header)
    _assert_too_big(rec, written)
    assert not core.reading


@SIDES
def test_text_at_the_limit_passes(client: bool) -> None:
    core, rec, written = make_core(client=client, max_message_size=100)
    core.receive_data(peer(client, TEXT, "x" * 100))
    assert rec.calls == [("text", "x" * 100)]
    assert written == []


@SIDES
def test_fragmented_text_over_the_limit_fails_at_the_frame_that_crosses_it(client: bool) -> None:
    core, rec, written = make_core(client=client, max_message_size=100)
    core.receive_data(peer(client, TEXT, "a" * 60, fin=False))
    core.receive_data(peer(client, PING, b"x" * 100))  # control frames do not count
    core.receive_data(peer(client, CONT, "b" * 30, fin=False))
    assert [c[0] for c in rec.calls] == ["ping"]
    core.receive_data(peer(client, CONT, b"", length=11))  # header only: 101 bytes announced
    _assert_too_big(rec, written, [("ping", b"x" * 100)])


@SIDES
def test_fragmented_text_up_to_the_limit_passes_and_the_count_restarts(client: bool) -> None:
    core, rec, _ = make_core(client=client, max_message_size=100)
    for _ in range(3):
        core.receive_data(peer(client, TEXT, "a" * 50, fin=False))
        core.receive_data(peer(client, CONT, "b" * 50, fin=True))
    assert rec.calls == [("text", "a" * 50 + "b" * 50)] * 3


@SIDES
def test_bounded_binary_over_the_limit_fails_before_the_payload(client: bool) -> None:
    core, rec, written = make_core(client=client, max_message_size=100, bound_binary=True)
    core.receive_data(peer(client, BINARY, b"", length=101))
    _assert_too_big(rec, written, [("binary_start",)])


@SIDES
def test_bounded_fragmented_binary_over_the_limit_fails(client: bool) -> None:
    core, rec, written = make_core(client=client, max_message_size=100, bound_binary=True)
    core.receive_data(peer(client, BINARY, PATTERN[:100], fin=False))
    core.receive_data(peer(client, CONT, b"", fin=False))
    core.receive_data(peer(client, CONT, PATTERN[:1], fin=True))
    _assert_too_big(
        rec, written, [("binary_start",), ("binary", PATTERN[:100], False), ("binary", b"", False)]
    )


@SIDES
def test_unbounded_binary_of_ten_times_the_limit_streams_through_in_one_frame(client: bool) -> None:
    limit = 1000
    payload = PATTERN[: 10 * limit]
    core, rec, written = make_core(client=client, max_message_size=limit, bound_binary=False)
    data = peer(client, BINARY, payload)
    for i in range(0, len(data), 777):
        core.receive_data(data[i : i + 777])
    assert rec.calls[0] == ("binary_start",)
    pieces = rec.calls[1:]
    assert len(pieces) > 10
    assert all(c[0] == "binary" and len(c[1]) <= 777 for c in pieces)
    assert [c[2] for c in pieces] == [False] * (len(pieces) - 1) + [True]
    assert b"".join(c[1] for c in pieces) == payload
    assert written == []
    assert core.reading


@SIDES
def test_unbounded_fragmented_binary_of_ten_times_the_limit(client: bool) -> None:
    limit = 1000
    core, rec, written = make_core(client=client, max_message_size=limit, bound_binary=False)
    for i in range(10):
        opcode = BINARY if i == 0 else CONT
        core.receive_data(peer(client, opcode, PATTERN[i * limit : (i + 1) * limit], fin=i == 9))
    assert rec.calls == [("binary_start",)] + [
        ("binary", PATTERN[i * limit : (i + 1) * limit], i == 9) for i in range(10)
    ]
    assert written == []
    # The next binary message asks again; this time it is bounded.
    rec.bound_binary = True
    core.receive_data(peer(client, BINARY, b"", length=limit + 1))
    assert rec.calls[-2:] == [("binary_start",), ("fail", 1009, "MessageTooBig")]
    assert sent_close(written)[0] == 1009


@SIDES
def test_text_is_bounded_even_when_binary_is_not(client: bool) -> None:
    core, rec, written = make_core(client=client, max_message_size=10, bound_binary=False)
    core.receive_data(peer(client, TEXT, "x" * 11))
    _assert_too_big(rec, written)


@SIDES
def test_no_limit_by_default(client: bool) -> None:
    core, rec, _ = make_core(client=client)
    core.receive_data(peer(client, TEXT, "x" * 70000))
    core.receive_data(peer(client, BINARY, PATTERN))
    assert rec.calls == [("text", "x" * 70000), ("binary_start",), ("binary", PATTERN, True)]


def test_limit_can_be_changed_on_a_live_core() -> None:
    core, rec, written = make_core()
    core.receive_data(frame(TEXT, "x" * 50))
    core.max_message_size = 20
    core.receive_data(frame(TEXT, "x" * 21))
    _assert_too_big(rec, written, [("text", "x" * 50)])


# -- sending ------------------------------------------------------------------------------


SERVER_SENDS: list[tuple[str, tuple[Any, ...], bytes]] = [
    ("send_text", ("Hello",), b"\x81\x05Hello"),
    ("send_text", ("",), b"\x81\x00"),
    ("send_text", (KOSME.decode(),), b"\x81\x0b" + KOSME),
    ("send_binary", (b"\x00\xff",), b"\x82\x02\x00\xff"),
    ("send_binary", (b"",), b"\x82\x00"),
    ("send_binary", (PATTERN[:125],), b"\x82\x7d" + PATTERN[:125]),
    ("send_binary", (PATTERN[:126],), b"\x82\x7e\x00\x7e" + PATTERN[:126]),
    ("send_binary", (PATTERN[:65535],), b"\x82\x7e\xff\xff" + PATTERN[:65535]),
    ("send_binary", (PATTERN[:65536],), b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + PATTERN[:65536]),
    ("send_ping", (), b"\x89\x00"),
    ("send_ping", (b"abc",), b"\x89\x03abc"),
    ("send_ping", (PATTERN[:125],), b"\x89\x7d" + PATTERN[:125]),
    ("send_pong", (b"x",), b"\x8a\x01x"),
    ("send_close", (), b"\x88\x00"),
    ("send_close", (1000,), b"\x88\x02\x03\xe8"),
    ("send_close", (1001, "bye"), b"\x88\x05\x03\xe9bye"),
    ("send_close", (4000, "κ"), b"\x88\x04\x0f\xa0\xce\xba"),
    ("send_data_frame", (TEXT, b"Hel", False), b"\x01\x03Hel"),
    ("send_data_frame", (BINARY, b"\x01", False), b"\x02\x01\x01"),
    ("send_data_frame", (CONT, b"lo", False), b"\x00\x02lo"),
    ("send_data_frame", (CONT, b"lo", True), b"\x80\x02lo"),
]


@pytest.mark.parametrize(("method", "args", "expected"), SERVER_SENDS, ids=lambda v: str(v)[:20])
def test_server_sends_exact_bytes(method: str, args: tuple[Any, ...], expected: bytes) -> None:
    core, rec, written = make_core(client=False)
    getattr(core, method)(*args)
    assert b"".join(written) == expected
    assert rec.calls == []


@pytest.mark.parametrize(("method", "args", "expected"), SERVER_SENDS, ids=lambda v: str(v)[:20])
def test_client_sends_the_same_frames_masked(method: str, args: tuple[Any, ...], expected: bytes) -> None:
    core, _, written = make_core(client=True)
    getattr(core, method)(*args)
    [sent] = parse_frame_details(b"".join(written))
    [plain] = parse_frame_details(expected)
    assert sent.masked and not plain.masked
    assert (sent.fin, sent.rsv, sent.opcode, sent.payload) == (
        plain.fin,
        plain.rsv,
        plain.opcode,
        plain.payload,
    )
    assert sent.raw[0] == plain.raw[0]
    assert sent.raw[1] == plain.raw[1] | 0x80


@SIDES
@pytest.mark.parametrize("method", ["send_ping", "send_pong"])
def test_control_payload_over_125_bytes_is_a_value_error(client: bool, method: str) -> None:
    core, _, written = make_core(client=client)
    with pytest.raises(ValueError):
        getattr(core, method)(b"x" * 126)
    assert written == []
    assert not core.close_sent


SENDS_AFTER_CLOSE: list[tuple[str, tuple[Any, ...]]] = [
    ("send_text", ("x",)),
    ("send_binary", (b"x",)),
    ("send_ping", (b"x",)),
    ("send_pong", (b"x",)),
    ("send_data_frame", (BINARY, b"x", False)),
    ("send_data_frame", (CONT, b"x", True)),
]


@SIDES
@pytest.mark.parametrize(("method", "args"), SENDS_AFTER_CLOSE)
def test_sending_after_send_close_is_invalid_state(client: bool, method: str, args: tuple[Any, ...]) -> None:
    core, _, written = make_core(client=client)
    core.send_close(1000)
    before = list(written)
    with pytest.raises(InvalidState):
        getattr(core, method)(*args)
    assert written == before


@SIDES
@pytest.mark.parametrize(("method", "args"), SENDS_AFTER_CLOSE)
def test_sending_after_a_failure_is_invalid_state(client: bool, method: str, args: tuple[Any, ...]) -> None:
    core, _, written = make_core(client=client)
    core.receive_data(b"\xff\xff")
    assert sent_close(written)[0] == 1002
    with pytest.raises(InvalidState):
        getattr(core, method)(*args)


@SIDES
def test_send_close_twice_writes_one_frame(client: bool) -> None:
    core, _, written = make_core(client=client)
    core.send_close(1000, "first")
    core.send_close(1001, "second")
    core.send_close()
    assert sent_close(written) == (1000, b"first")
    assert core.close_sent
    assert core.reading  # still reading: waiting for the peer's close


def test_large_frames_are_written_whole() -> None:
    core, _, written = make_core(client=False)
    core.send_binary(PATTERN)
    assert parse_frames(b"".join(written)) == [(True, BINARY, PATTERN)]


# -- fail() from above ---------------------------------------------------------------------


@SIDES
def test_fail_1009_writes_a_close_frame_and_calls_on_fail_with_message_too_big(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.fail(1009, "buffer full")
    assert sent_close(written) == (1009, b"buffer full")
    assert rec.calls == [("fail", 1009, "MessageTooBig")]
    assert isinstance(rec.errors[0], MessageTooBig)
    assert str(rec.errors[0]) == "buffer full"
    assert not core.reading
    core.receive_data(peer(client, TEXT, "ignored"))
    assert len(rec.calls) == 1


@SIDES
def test_fail_with_another_code(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.fail(1011, "internal")
    assert sent_close(written) == (1011, b"internal")
    assert rec.calls == [("fail", 1011, "ProtocolError")]
    assert type(rec.errors[0]) is ProtocolError


@SIDES
def test_fail_inside_a_message_forgets_it(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(peer(client, TEXT, "part", fin=False))
    core.fail(1008, "policy")
    assert not core.in_message
    assert sent_close(written)[0] == 1008
    core.receive_data(peer(client, CONT, "rest", fin=True))
    assert rec.calls == [("fail", 1008, "ProtocolError")]


@SIDES
def test_fail_after_our_close_writes_no_second_close(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.send_close(1000)
    core.fail(1009, "too big")
    assert sent_close(written) == (1000, b"")
    assert rec.calls == [("fail", 1009, "MessageTooBig")]


@SIDES
def test_fail_reason_is_cut_to_fit_a_control_frame(client: bool) -> None:
    core, _, written = make_core(client=client)
    core.fail(1011, "é" * 100)
    code, reason = sent_close(written)
    assert code == 1011
    assert len(reason) <= 123
    assert reason.decode("utf-8") == "é" * (len(reason) // 2)
    assert len(reason) == 122


@SIDES
def test_protocol_error_close_frames_fit_in_a_control_frame(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(peer(client, 0x5, b""))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    [close] = parse_frames(b"".join(written))
    assert len(close[2]) <= 125
    close[2][2:].decode("utf-8")


# -- a client core and a server core talking to each other ------------------------------------


def _pair(max_message_size: int | None = None) -> tuple[WebSocketCore, Any, WebSocketCore, Any]:
    client, crec, cwritten = make_core(client=True, max_message_size=max_message_size)
    server, srec, swritten = make_core(client=False, max_message_size=max_message_size)

    def pump() -> None:
        while cwritten or swritten:
            while cwritten:
                server.receive_data(cwritten.pop(0))
            while swritten:
                client.receive_data(swritten.pop(0))

    return client, crec, server, (srec, pump)


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536])
def test_round_trip_between_a_client_core_and_a_server_core(n: int) -> None:
    client, crec, server, (srec, pump) = _pair()
    client.send_binary(PATTERN[:n])
    client.send_text("κ" * n)
    server.send_binary(PATTERN[-n:] if n else b"")
    server.send_text("é" * n)
    pump()
    assert srec.calls == [("binary_start",), ("binary", PATTERN[:n], True), ("text", "κ" * n)]
    assert crec.calls == [("binary_start",), ("binary", PATTERN[-n:] if n else b"", True), ("text", "é" * n)]


def test_fragmented_round_trip_and_closing_handshake() -> None:
    client, crec, server, (srec, pump) = _pair()
    client.send_data_frame(TEXT, "κό".encode()[:3], False)
    client.send_ping(b"hb")
    client.send_data_frame(CONT, "κό".encode()[3:], True)
    pump()
    assert srec.calls == [("ping", b"hb"), ("text", "κό")]
    assert crec.calls == [("pong", b"hb")]
    client.send_close(1000, "bye")
    pump()
    assert srec.calls[-1] == ("close", 1000, "bye")
    assert crec.calls[-1] == ("close", 1000, "")
    for core in (client, server):
        assert core.close_sent and core.close_received and not core.reading


# -- a handler that raises -------------------------------------------------------------------
# The exception propagates out of receive_data; the event it was raised for counts as
# delivered, and the next call goes on with the next one: nothing replayed, nothing lost.


class Boom(Exception):
    """What the test handlers raise."""


class RaisingRecorder(Recorder):
    """A Recorder that raises :class:`Boom` right after recording the calls numbered in ``raise_at``."""

    def __init__(self, raise_at: set[int], bound_binary: bool = True) -> None:
        super().__init__(bound_binary)
        self.raise_at = raise_at

    def _maybe_raise(self) -> None:
        if len(self.calls) - 1 in self.raise_at:
            raise Boom(len(self.calls) - 1)

    def on_text(self, text: str) -> None:
        super().on_text(text)
        self._maybe_raise()

    def on_binary_start(self) -> bool:
        bound = super().on_binary_start()
        self._maybe_raise()
        return bound

    def on_binary_data(self, data: bytes, fin: bool) -> None:
        super().on_binary_data(data, fin)
        self._maybe_raise()

    def on_ping(self, payload: bytes) -> None:
        super().on_ping(payload)
        self._maybe_raise()

    def on_pong(self, payload: bytes) -> None:
        super().on_pong(payload)
        self._maybe_raise()

    def on_close_frame(self, code: int, reason: str) -> None:
        super().on_close_frame(code, reason)
        self._maybe_raise()

    def on_fail(self, error: ProtocolError) -> None:
        super().on_fail(error)
        self._maybe_raise()


def raising_core(
    raise_at: set[int], client: bool = False, max_message_size: int | None = None, bound_binary: bool = True
) -> tuple[CoreDriver, RaisingRecorder, list[bytes]]:
    recorder = RaisingRecorder(raise_at, bound_binary)
    written: list[bytes] = []
    core = WebSocketCore(client=client, max_message_size=max_message_size)
    return CoreDriver(core, recorder, written), recorder, written


def feed_through_errors(core: CoreDriver, chunks: list[bytes]) -> int:
    """Feed each chunk, then b"" until nothing raises; return how many times Boom came out."""
    raised = 0
    for chunk in chunks:
        try:
            core.receive_data(chunk)
        except Boom:
            raised += 1
    while True:
        # What a raise left unparsed is parsed by the next call, even an empty one.
        try:
            core.receive_data(b"")
        except Boom:
            raised += 1
        else:
            return raised


def _chunks(data: bytes, how: str, frame_ends: list[int]) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    bounds = [0, *frame_ends]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@SIDES
@pytest.mark.parametrize("how", ["whole", "frames", "bytes"])
@pytest.mark.parametrize("nth", [0, 2, 4])
def test_a_handler_raising_on_the_nth_message_loses_and_replays_nothing(
    client: bool, how: str, nth: int
) -> None:
    frames = [peer(client, TEXT, f"message {i}") for i in range(5)]
    data = b"".join(frames)
    ends = [sum(len(f) for f in frames[: i + 1]) for i in range(5)]
    core, rec, written = raising_core({nth}, client=client)
    raised = feed_through_errors(core, _chunks(data, how, ends))
    assert raised == 1
    assert rec.calls == [("text", f"message {i}") for i in range(5)]
    assert core.reading and not core.in_message and written == []


@SIDES
def test_the_error_reaches_the_caller_and_the_next_call_goes_on(client: bool) -> None:
    core, rec, _ = raising_core({1}, client=client)
    with pytest.raises(Boom):
        core.receive_data(b"".join(peer(client, TEXT, t) for t in "abc"))
    assert rec.calls == [("text", "a"), ("text", "b")]
    core.receive_data(peer(client, TEXT, "d"))
    assert rec.calls == [("text", t) for t in "abcd"]


@SIDES
def test_a_raise_inside_a_fragmented_message_keeps_its_place(client: bool) -> None:
    data = (
        peer(client, BINARY, b"one", fin=False)
        + peer(client, PING, b"p")
        + peer(client, CONT, b"two", fin=False)
        + peer(client, CONT, b"three", fin=True)
        + peer(client, TEXT, "after")
    )
    core, rec, written = raising_core({0, 2, 4}, client=client)
    assert feed_through_errors(core, [data]) == 3
    assert rec.calls == [
        ("binary_start",),
        ("binary", b"one", False),
        ("ping", b"p"),
        ("binary", b"two", False),
        ("binary", b"three", True),
        ("text", "after"),
    ]
    assert parse_frames(b"".join(written)) == [(True, PONG, b"p")]


@SIDES
def test_a_raise_in_on_binary_start_still_bounds_the_message(client: bool) -> None:
    # Unanswered, on_binary_start is taken to have asked for the bound: the safe choice.
    core, rec, written = raising_core({0}, client=client, max_message_size=4, bound_binary=False)
    with pytest.raises(Boom):
        core.receive_data(peer(client, BINARY, b"12345"))
    core.receive_data(b"")
    assert rec.calls == [("binary_start",), ("fail", 1009, "MessageTooBig")]
    assert sent_close(written)[0] == 1009
    assert not core.reading


@SIDES
def test_a_raise_in_on_binary_start_leaves_the_payload_for_the_next_call(client: bool) -> None:
    core, rec, _ = raising_core({0}, client=client)
    with pytest.raises(Boom):
        core.receive_data(peer(client, BINARY, b"data") + peer(client, TEXT, "next"))
    assert core.in_message
    core.receive_data(b"")
    assert rec.calls == [("binary_start",), ("binary", b"data", True), ("text", "next")]


@SIDES
def test_a_raise_in_on_close_frame_keeps_the_close_handled_once(client: bool) -> None:
    core, rec, written = raising_core({0}, client=client)
    with pytest.raises(Boom):
        core.receive_data(peer(client, CLOSE, close_payload(1000, "bye")) + peer(client, TEXT, "late"))
    core.receive_data(b"")
    assert rec.calls == [("close", 1000, "bye")]
    assert sent_close(written) == (1000, b"")
    assert core.close_received and not core.reading


_MESSAGES = st.lists(
    st.tuples(
        st.sampled_from(["text", "binary", "ping", "pong"]),
        st.binary(max_size=300),
        st.text(max_size=100),
        st.lists(st.integers(0, 400), max_size=3),
        st.lists(st.booleans(), max_size=4),
    ),
    max_size=8,
)


def _stream(client: bool, messages: list[Any], close: bool) -> bytes:
    """Frames for ``messages``: data messages cut into fragments, pings between some of them."""
    out = []
    for kind, data, text, cuts, pings in messages:
        if kind in ("ping", "pong"):
            out.append(peer(client, PING if kind == "ping" else PONG, data[:125]))
            continue
        payload = text.encode() if kind == "text" else data
        bounds = sorted({c % (len(payload) + 1) for c in cuts} | {0, len(payload)})
        pieces = [payload[a:b] for a, b in zip(bounds, bounds[1:], strict=False)] or [b""]
        for i, piece in enumerate(pieces):
            opcode = (TEXT if kind == "text" else BINARY) if i == 0 else CONT
            out.append(peer(client, opcode, piece, fin=i == len(pieces) - 1))
            if i < len(pieces) - 1 and i < len(pings) and pings[i]:
                out.append(peer(client, PING, b"in between"))
    if close:
        out.append(peer(client, CLOSE, close_payload(1000, "done")))
    return b"".join(out)


@settings(max_examples=300, deadline=None)
@given(
    client=st.booleans(),
    messages=_MESSAGES,
    close=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    raise_at=st.sets(st.integers(0, 40), max_size=10),
)
def test_handler_raises_at_random_points_deliver_every_frame_exactly_once(
    client: bool, messages: list[Any], close: bool, cuts: list[int], raise_at: set[int]
) -> None:
    data = _stream(client, messages, close)
    reference, ref_rec, ref_written = make_core(client=client)
    reference.receive_data(data)
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    core, rec, written = raising_core(raise_at, client=client)
    raised = feed_through_errors(core, [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)])
    assert rec.merged() == ref_rec.merged()
    assert raised == len({i for i in raise_at if i < len(rec.calls)})
    assert parse_frames(b"".join(written)) == parse_frames(b"".join(ref_written))
    assert core.reading == reference.reading and core.in_message == reference.in_message
