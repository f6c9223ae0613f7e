"""HeadBuffer: one HTTP head collected from pieces, within its bound; what follows kept apart."""

from __future__ import annotations

import pytest

from wsevents.errors import InvalidMessage
from wsevents.protocol.head import HeadBuffer

HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("cut", range(1, len(HEAD)))
def test_head_cut_anywhere(cut: int) -> None:
    buffer = HeadBuffer(1024)
    assert buffer.feed(HEAD[:cut], response=False) is None
    assert buffer.feed(HEAD[cut:] + b"\x81\x00", response=False) == HEAD
    assert buffer.leftover == b"\x81\x00"
    assert buffer.buffer == b""


def test_request_over_the_bound_is_431() -> None:
    buffer = HeadBuffer(16)
    with pytest.raises(InvalidMessage) as raised:
        buffer.feed(HEAD, response=False)
    assert raised.value.status == 431


def test_response_over_the_bound_has_no_status() -> None:
    with pytest.raises(InvalidMessage) as raised:
        HeadBuffer(16).feed(b"HTTP/1.1 101 Switching Protocols\r\n", response=True)
    assert raised.value.status is None


def test_a_request_that_cannot_be_http_fails_before_its_end() -> None:
    """A TLS ClientHello on a plain port: 400 at once, not after the handshake timeout."""
    with pytest.raises(InvalidMessage) as raised:
        HeadBuffer(1024).feed(b"\x16\x03\x01\x02\x00\x01", response=False)
    assert raised.value.status == 400
    assert HeadBuffer(1024).feed(b"\x16\x03\x01", response=True) is None  # a response is not checked so
