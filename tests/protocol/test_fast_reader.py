"""The compiled frame scan of the reader gives what the pure parser gives, pull by pull.

``FastCore`` parses with ``wsevents._speedups.scan`` and ``PureCore`` without it (the reader's
private ``_scan`` knob), whatever ``WSEVENTS_NO_SPEEDUPS`` says: the extension is built in any
case (see test_speedups.py), so both runs of the suite compare the two paths. Random streams of
frames -- plain and not: fragmented, control, invalid UTF-8, over the bound, wrongly masked, RSV
bits, long length forms, a close -- cut anywhere and pulled a few events at a time must give both
cores the same events, counts, ``buffered``, ``in_message`` and written frames after every pull,
and the events of a small reference model of RFC 6455 written here. The default core (compiled
or pure, as the run says) is checked against the same model.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from helpers import BINARY, CLOSE, CONT, PING, PONG, TEXT, close_payload, frame, parse_frames, scan_cores
from wsevents import _speedups  # type: ignore[attr-defined,unused-ignore]
from wsevents.protocol import events as ev
from wsevents.protocol.core import WebSocketCore

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 1000


FastCore, PureCore = scan_cores()


# -- streams of frames and what they mean ------------------------------------------------------

Expected = list[tuple[Any, ...]]


def _peer(client: bool, opcode: int, payload: bytes | str = b"", **kwargs: Any) -> bytes:
    return frame(opcode, payload, mask=not client, **kwargs)


def _text(draw: st.DrawFn, client: bool, limit: int | None) -> tuple[bytes, Expected, bool]:
    text = draw(st.text(max_size=draw(st.sampled_from([3, 40, 200]))))
    form = draw(st.sampled_from([None, None, 126, 127]))
    return _peer(client, TEXT, text, length_form=form), [(ev.TEXT, text)], False


def _binary(draw: st.DrawFn, client: bool, limit: int | None) -> tuple[bytes, Expected, bool]:
    data = draw(st.binary(max_size=draw(st.sampled_from([3, 130, 400]))))
    return _peer(client, BINARY, data), [(ev.BINARY_START,), (ev.BINARY, data, True)], False


def _fragmented(draw: st.DrawFn, client: bool, limit: int | None) -> tuple[bytes, Expected, bool]:
    parts = draw(st.lists(st.binary(max_size=100), min_size=2, max_size=4))
    text = draw(st.booleans())
    if text:
        parts = [p.decode("latin-1").encode() for p in parts]  # valid UTF-8 in every part
    ping = draw(st.booleans())
    wire = b""
    for i, part in enumerate(parts):
        wire += _peer(client, (TEXT if text else BINARY) if i == 0 else CONT, part, fin=i == len(parts) - 1)
        if i == 0 and ping:
            wire += _peer(client, PING, b"mid")
    joined = b"".join(parts)
    pong: Expected = [(ev.PING, b"mid")] if ping else []
    if text:
        return wire, [*pong, (ev.TEXT, joined.decode())], False
    return wire, [(ev.BINARY_START,), *pong, (ev.BINARY, joined, True)], False


def _control(draw: st.DrawFn, client: bool, limit: int | None) -> tuple[bytes, Expected, bool]:
    payload = draw(st.binary(max_size=125))
    opcode = draw(st.sampled_from([PING, PONG]))
    return _peer(client, opcode, payload), [(ev.PING if opcode == PING else ev.PONG, payload)], False


def _ending(draw: st.DrawFn, client: bool, limit: int | None) -> tuple[bytes, Expected, bool]:
    """A frame after which nothing more is parsed: a close or a rule broken."""
    kind = draw(st.sampled_from(["close", "utf8", "big_text", "big_binary", "mask", "rsv"]))
    if kind == "close":
        return _peer(client, CLOSE, close_payload(1000, "bye")), [(ev.CLOSE, 1000, "bye")], True
    if kind == "utf8":
        invalid = draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80"]))
        return _peer(client, TEXT, b"ok" + invalid), [(ev.FAIL, 1007)], True
    big = b"x" * (LIMIT + draw(st.integers(1, 50)))
    if kind == "big_text":
        if limit is None:
            return _peer(client, TEXT, big), [(ev.TEXT, big.decode())], False
        return _peer(client, TEXT, big), [(ev.FAIL, 1009)], True
    if kind == "big_binary":
        # Bounded unless the driver unbounds it (it does when ``limit`` is None here).
        if limit is None:
            return _peer(client, BINARY, big), [(ev.BINARY_START,), (ev.BINARY, big, True)], False
        return _peer(client, BINARY, big), [(ev.BINARY_START,), (ev.FAIL, 1009)], True
    if kind == "mask":
        return frame(TEXT, "m", mask=client), [(ev.FAIL, 1002)], True
    return _peer(client, BINARY, b"r", rsv=0b100), [(ev.FAIL, 1002)], True


@st.composite
def streams(draw: st.DrawFn) -> tuple[bool, int | None, bytes, Expected, list[int], list[int]]:
    """(client side, limit, the bytes, the merged events, cuts, pulls per received chunk)."""
    client = draw(st.booleans())
    limit = draw(st.sampled_from([LIMIT, None]))
    makers = [_text, _text, _binary, _binary, _fragmented, _control, _ending]
    wire = b""
    expected: Expected = []
    ends = False
    for _ in range(draw(st.integers(0, 12))):
        data, events, ends = draw(st.sampled_from(makers))(draw, client, limit)
        wire += data
        expected += events
        if ends:
            break
    if draw(st.booleans()):
        # Bytes after the end are not parsed.
        wire += _peer(client, TEXT, "tail")
        expected += [] if ends else [(ev.TEXT, "tail")]
    cuts = draw(st.lists(st.integers(0, len(wire)), max_size=6))
    pulls = draw(st.lists(st.integers(0, 5), min_size=8, max_size=8))
    return client, limit, wire, expected, cuts, pulls


# -- driving a core ------------------------------------------------------------------------------


def _norm(event: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    if event is not None and event[0] == ev.FAIL:
        return (ev.FAIL, event[1].code, str(event[1]))
    return event


def written(core: WebSocketCore) -> list[tuple[bool, int, bytes]]:
    """The frames the core queued since the last call, unmasked (a client masks with random keys)."""
    return parse_frames(b"".join(core.data_to_send()))


def _pull(core: WebSocketCore, unbound: bool, trace: list[Any]) -> bool:
    """One pull, recorded with everything the I/O layer can see after it; False at None."""
    event = core.next_event()
    if event is not None and event[0] == ev.BINARY_START and unbound:
        core.unbound_message()
    trace.append((_norm(event), list(core.counts), core.buffered, core.in_message, core.reading))
    trace.append(written(core))
    return event is not None


def drive(core: WebSocketCore, wire: bytes, cuts: list[int], pulls: list[int]) -> list[Any]:
    """Feed ``wire`` cut at ``cuts``, pulling a few events after each chunk, then all the rest."""
    unbound = core.max_message_size is None
    trace: list[Any] = []
    bounds = sorted({0, len(wire), *cuts})
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        core.receive_data(wire[a:b])
        for _ in range(pulls[i % len(pulls)]):
            if not _pull(core, unbound, trace):
                break
    while _pull(core, unbound, trace):
        pass
    return trace


def merged_events(trace: list[Any]) -> Expected:
    """The events of a trace with failures as (FAIL, code) and a binary message's pieces joined
    into its last one (after a ping that came between them, as the model has it)."""
    out: Expected = []
    pieces = b""
    for step in trace[::2]:
        event = step[0]
        if event is None:
            continue
        if event[0] == ev.FAIL:
            event = event[:2]
        elif event[0] == ev.BINARY:
            pieces += event[1]
            if not event[2]:
                continue
            event = (ev.BINARY, pieces, True)
            pieces = b""
        out.append(event)
    return out


@given(streams())
@FAST
def test_compiled_and_pure_paths_agree_pull_by_pull(stream: Any) -> None:
    client, limit, wire, expected, cuts, pulls = stream
    fast = drive(FastCore(client=client, max_message_size=limit), wire, cuts, pulls)
    pure = drive(PureCore(client=client, max_message_size=limit), wire, cuts, pulls)
    assert fast == pure
    assert merged_events(pure) == expected


@given(streams())
@FAST
def test_the_default_core_gives_the_events_of_the_model(stream: Any) -> None:
    client, limit, wire, expected, cuts, pulls = stream
    trace = drive(WebSocketCore(client=client, max_message_size=limit), wire, cuts, pulls)
    assert merged_events(trace) == expected


# -- pulling stops, parsing stops ------------------------------------------------------------------


def _texts(n: int) -> bytes:
    return b"".join(frame(TEXT, f"m{i}") for i in range(n))


@pytest.mark.parametrize("cls", [FastCore, PureCore])
@pytest.mark.parametrize("stop", ["fail", "eof"])
def test_nothing_parsed_ahead_comes_out_after_parsing_stops(cls: type[WebSocketCore], stop: str) -> None:
    core = cls(client=False)
    core.receive_data(_texts(10))
    assert [core.next_event(), core.next_event()] == [(ev.TEXT, "m0"), (ev.TEXT, "m1")]
    assert core.buffered == len(_texts(10)) - len(_texts(2))
    if stop == "fail":
        core.fail(1008, "policy")
    else:
        core.receive_eof()
    core.receive_data(_texts(3))
    assert core.next_event() is None
    assert core.counts[:2] == [2, 4] and core.buffered == 0 and not core.in_message


def test_the_scan_parses_ahead_within_its_bounds_and_counts_as_events_are_pulled() -> None:
    core = FastCore(client=False)
    core.receive_data(_texts(100))
    assert core.next_event() == (ev.TEXT, "m0")
    # 64 frames parsed at once, one of them pulled: 63 events and their sizes wait.
    assert len(core._pending) == 2 * 63
    assert core.counts[:2] == [1, 2] and core.buffered == len(_texts(100)) - len(_texts(1))
    assert [e[1] for e in core.events_received()] == [f"m{i}" for i in range(1, 100)]
    assert core.counts[:2] == [100, 290] and core.buffered == 0


def test_a_pulled_binary_start_leaves_the_message_in_progress_until_its_data() -> None:
    core = FastCore(client=False, max_message_size=4)
    core.receive_data(frame(BINARY, b"1234") + frame(BINARY, b"12345"))
    assert core.next_event() == (ev.BINARY_START,)
    assert core.in_message and core.buffered == 4 + len(frame(BINARY, b"12345"))
    assert core.next_event() == (ev.BINARY, b"1234", True)
    assert not core.in_message
    # Over the bound: left to the pure steps, which check it after BINARY_START.
    assert core.next_event() == (ev.BINARY_START,)
    core.unbound_message()
    assert core.next_event() == (ev.BINARY, b"12345", True)
    assert core.counts[2:4] == [2, 9]


# -- the scan itself -------------------------------------------------------------------------------


def test_scan_stops_before_what_the_pure_steps_must_parse() -> None:
    scan = _speedups.scan
    head = frame(TEXT, "a") + frame(BINARY, b"b")
    taken = [1, (ev.BINARY, b"b", True), 6, (ev.BINARY_START,), 1, (ev.TEXT, "a")]
    for tail in [
        frame(PING, b""),
        frame(TEXT, b"\xff"),
        frame(TEXT, "x", fin=False),
        frame(CONT, "x"),
        frame(TEXT, "x", rsv=0b100),
        frame(TEXT, "x", mask=False),
        frame(TEXT, "x", length_form=126),
        frame(BINARY, b"x" * 5, length_form=127),
        frame(TEXT, "x" * 11),  # over the bound
        frame(TEXT, "x")[:-1],  # partial
    ]:
        buf = memoryview(b"??" + head + tail)
        assert scan(buf, 2, 0x80, 10) == (taken, 2 + len(head)), tail
    assert scan(memoryview(head), 0, 0, None) == ([], 0)  # masked frames on a client


def test_scan_bounds_its_work_by_payload_but_takes_one_big_frame() -> None:
    scan = _speedups.scan
    big = frame(BINARY, b"x" * 70_000)
    pending, pos = scan(memoryview(big + big), 0, 0x80, None)
    assert pos == len(big) and pending[-1] == (ev.BINARY_START,) and len(pending) == 4
    small = frame(BINARY, b"y" * 30_000)
    pending, pos = scan(memoryview(small * 3), 0, 0x80, None)
    assert pos == 2 * len(small)


def test_scan_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        _speedups.scan(memoryview(b""), 1, 0x80, None)
    with pytest.raises(ValueError):
        _speedups.scan(memoryview(b""), 0, 1, None)
    with pytest.raises(TypeError):
        _speedups.scan(memoryview(b""), 0, 0x80, "10")
    with pytest.raises(TypeError):
        _speedups.scan(memoryview(b""), 0, 0x80)


@pytest.mark.parametrize("limit", [-1, -(2**70), 0, 2**70])
def test_any_bound_means_what_it_means_on_the_pure_path(limit: int) -> None:
    """A bound no payload fits (negative: every message fails) or past any buffer (none)."""
    wire = frame(TEXT, "") + frame(TEXT, "a") + frame(BINARY, b"b")
    traces = [drive(cls(client=False, max_message_size=limit), wire, [], [9]) for cls in (FastCore, PureCore)]
    assert traces[0] == traces[1]
    assert merged_events(traces[0])[0][0] == (ev.FAIL if limit < 0 else ev.TEXT)


# -- both paths in lockstep, whatever the I/O layer does between pulls ---------------------------


class Lockstep(RuleBasedStateMachine):
    """A fast and a pure core fed and driven alike (pulls, unbounding, failing from above, EOF, a
    local close) must look the same to the I/O layer at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.cores: list[WebSocketCore] = [FastCore(client=False, max_message_size=300)]
        self.cores.append(PureCore(client=False, max_message_size=300))
        self.last: list[Any] = [None, None]

    @rule(
        frames=st.lists(
            st.one_of(
                st.text(max_size=200).map(lambda t: frame(TEXT, t)),
                st.binary(max_size=400).map(lambda b: frame(BINARY, b)),
                st.binary(max_size=20).map(lambda b: frame(PING, b)),
                st.binary(max_size=20).map(lambda b: frame(TEXT, b)),
                st.just(frame(BINARY, b"f", fin=False) + frame(CONT, b"g")),
            ),
            max_size=80,
        ),
        cut=st.integers(0, 10_000),
    )
    def receive(self, frames: list[bytes], cut: int) -> None:
        data = b"".join(frames)
        for core in self.cores:
            core.receive_data(data[:cut])
            core.receive_data(data[cut:])

    @rule(n=st.integers(1, 70))
    def pull(self, n: int) -> None:
        for _ in range(n):
            self.last = [_norm(core.next_event()) for core in self.cores]
            assert self.last[0] == self.last[1]

    @precondition(lambda self: self.last[0] == (ev.BINARY_START,))
    @rule()
    def unbound(self) -> None:
        for core in self.cores:
            core.unbound_message()

    @rule(what=st.sampled_from(["fail", "eof", "close"]))
    def stop(self, what: str) -> None:
        for core in self.cores:
            if what == "fail":
                if core.reading:
                    core.fail(1008, "policy")
            elif what == "eof":
                core.receive_eof()
            else:
                core.send_close(1000)

    @invariant()
    def same_view(self) -> None:
        fast, pure = self.cores
        assert fast.counts == pure.counts
        assert (fast.buffered, fast.in_message) == (pure.buffered, pure.in_message)
        assert fast.reading == pure.reading
        assert (fast.state, fast.close_code_sent) == (pure.state, pure.close_code_sent)
        assert written(fast) == written(pure)


TestLockstep = Lockstep.TestCase
TestLockstep.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
