"""What a client core sends: every frame masked with a key of its own, around the 125/126 length edge."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import BINARY, TEXT, make_core, parse_frame_details
from wsevents.protocol import events as ev
from wsevents.protocol.core import WebSocketCore


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["text", "binary", "ping"]), st.integers(0, 140)), min_size=1))
def test_client_frames_are_masked_with_fresh_keys_and_read_back_intact(sends: list[tuple[str, int]]) -> None:
    core, _, written = make_core(client=True)
    expected: list[tuple[object, ...]] = []
    for kind, n in sends:
        if kind == "ping":
            n = min(n, 125)
            core.send_ping(b"p" * n)
            expected.append((ev.PING, b"p" * n))
        elif kind == "text":
            core.send_text("t" * n)
            expected.append((ev.TEXT, "t" * n))
        else:
            core.send_binary(bytes(range(n)))
            expected.append((ev.BINARY, bytes(range(n)), True))
    wire = b"".join(written)
    frames = parse_frame_details(wire)
    assert all(f.masked for f in frames)
    assert [f.opcode for f in frames] == [{"text": TEXT, "binary": BINARY, "ping": 0x9}[k] for k, _ in sends]
    keys = [f.key for f in frames]
    assert len(set(keys)) == len(keys)  # a fresh key per frame (RFC 6455 section 5.3)
    server = WebSocketCore(client=False)
    server.receive_data(wire)
    got = [e for e in server.events_received() if e[0] != ev.BINARY_START]
    assert got == expected
