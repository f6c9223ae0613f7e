"""Property-based fuzzing (Hypothesis) of the frame parser and the handshake parsers.

Any bytes, split anywhere, give the same handler calls as unsplit, or a clean
failure with a documented close code; never another exception, never a buffer
that grows beyond a partial header plus a partial control frame.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import frame, make_core, parse_frames
from wsevents.errors import HandshakeError
from wsevents.protocol import handshake

#: The most the core may hold between calls: a 14-byte header, or a whole control frame.
BUFFER_BOUND = 14 + 131

frames = st.builds(
    lambda opcode, payload, fin, rsv, masked: frame(opcode, payload, fin=fin, rsv=rsv, mask=masked),
    opcode=st.sampled_from([0, 1, 1, 2, 2, 8, 9, 10, 3, 0xB]),
    payload=st.one_of(st.binary(max_size=300), st.text(max_size=60).map(str.encode)),
    fin=st.booleans(),
    rsv=st.sampled_from([0, 0, 0, 0b100, 0b010]),
    masked=st.booleans(),
)
streams = st.tuples(st.lists(frames, max_size=8), st.binary(max_size=40)).map(lambda t: b"".join(t[0]) + t[1])


def run(data: bytes, cuts: list[int], client: bool, limit: int | None) -> tuple[list[Any], list[Any]]:
    core, recorder, written = make_core(client=client, max_message_size=limit, bound_binary=True)
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        core.receive_data(data[a:b])
        assert len(core._buf) <= BUFFER_BOUND
    for call in recorder.calls:
        if call[0] == "fail":
            assert call[1] in (1002, 1007, 1009), call
    sent = [(fin, opcode, payload) for fin, opcode, payload in parse_frames(b"".join(written))]
    return recorder.merged(), sent


@settings(max_examples=400, deadline=None)
@given(
    data=streams,
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=6),
    client=st.booleans(),
    limit=st.sampled_from([None, 64, 1000]),
)
def test_frame_parser_is_split_independent_and_fails_cleanly(
    data: bytes, cuts: list[int], client: bool, limit: int | None
) -> None:
    whole = run(data, [], client, limit)
    assert run(data, cuts, client, limit) == whole
    assert run(data, list(range(len(data))), client, limit) == whole  # byte by byte


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=4))
def test_random_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    for client in (False, True):
        run(data, cuts, client, 100)


heads = st.one_of(
    st.binary(max_size=400),
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "GET / HTTP/1.1",
                    "HTTP/1.1 101 Switching Protocols",
                    "Host: x",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    "Sec-WebSocket-Version: 13",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                    "Sec-WebSocket-Protocol: a, b",
                    "Sec-WebSocket-Extensions: permessage-deflate",
                    " folded",
                    ":",
                    "X",
                ]
            ),
            st.text(max_size=40),
        ),
        max_size=12,
    ).map(lambda lines: ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")),
)


@settings(max_examples=400, deadline=None)
@given(head=heads)
def test_handshake_parsers_raise_only_handshake_error(head: bytes) -> None:
    try:
        handshake.find_head_end(head, 200)
    except HandshakeError as exc:
        assert exc.status == 431
    try:
        request = handshake.parse_request(head)
        key = handshake.check_request(request)
        assert len(key) == 24
    except HandshakeError as exc:
        assert exc.status in (400, 405, 426, 431)
    try:
        response = handshake.parse_response(head)
        handshake.check_response(response, "dGhlIHNhbXBsZSBub25jZQ==", ["a"])
    except HandshakeError:
        pass
    try:
        handshake.check_request_start(head)
    except HandshakeError as exc:
        assert exc.status == 400


def test_superscript_digits_are_not_digits() -> None:
    """latin-1 decodes 0xB9 to '¹', which str.isdigit() accepts and int() refuses (found by fuzzing)."""
    with pytest.raises(HandshakeError) as info:
        handshake.parse_request(b"GET / HTTP/1.\xb9\r\nHost: x\r\n\r\n")
    assert info.value.status == 400
    for status_line in (
        b"HTTP/1.1 1\xb2\xb3 OK",
        b"HTTP/1.\xb9 101 OK",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 600 High",
    ):
        with pytest.raises(HandshakeError):
            handshake.parse_response(status_line + b"\r\n\r\n")
