"""wsevents.protocol.closecodes and the core's handling of close frames (RFC 6455 sections 5.5.1, 7.4)."""

from __future__ import annotations

import pytest

from helpers import BINARY, CLOSE, PING, TEXT, close_payload, frame, make_core, parse_frames, sent_close
from wsevents.protocol.closecodes import CloseCode, is_valid_wire_code, may_send

ACCEPTED = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
REFUSED = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]

SIDES = pytest.mark.parametrize("client", [False, True], ids=["server", "client"])


# -- closecodes -----------------------------------------------------------------


@pytest.mark.parametrize("code", ACCEPTED)
def test_valid_wire_codes(code: int) -> None:
    assert is_valid_wire_code(code)
    assert may_send(code)


@pytest.mark.parametrize("code", REFUSED)
def test_invalid_wire_codes(code: int) -> None:
    assert not is_valid_wire_code(code)
    assert not may_send(code)


def test_close_code_enum_values() -> None:
    assert int(CloseCode.NORMAL) == 1000
    assert int(CloseCode.GOING_AWAY) == 1001
    assert int(CloseCode.PROTOCOL_ERROR) == 1002
    assert int(CloseCode.UNSUPPORTED_DATA) == 1003
    assert int(CloseCode.NO_STATUS) == 1005
    assert int(CloseCode.ABNORMAL) == 1006
    assert int(CloseCode.INVALID_DATA) == 1007
    assert int(CloseCode.POLICY_VIOLATION) == 1008
    assert int(CloseCode.MESSAGE_TOO_BIG) == 1009
    assert int(CloseCode.MANDATORY_EXTENSION) == 1010
    assert int(CloseCode.INTERNAL_ERROR) == 1011
    assert int(CloseCode.TLS_HANDSHAKE) == 1015
    never_on_wire = {CloseCode.NO_STATUS, CloseCode.ABNORMAL, CloseCode.TLS_HANDSHAKE}
    for code in CloseCode:
        assert is_valid_wire_code(code) == (code not in never_on_wire), code


# -- the core receiving close frames --------------------------------------------


@SIDES
@pytest.mark.parametrize("code", ACCEPTED)
def test_close_code_accepted_and_echoed(client: bool, code: int) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(CLOSE, close_payload(code, "some reason"), mask=not client))
    assert rec.calls == [("close", code, "some reason")]
    assert sent_close(written) == (code, b"")
    assert core.close_received
    assert core.close_sent
    assert not core.reading


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_server_echo_is_exact_bytes(code: int) -> None:
    core, _, written = make_core(client=False)
    core.receive_data(frame(CLOSE, close_payload(code, "bye")))
    assert b"".join(written) == b"\x88\x02" + code.to_bytes(2, "big")


def test_client_echo_is_masked() -> None:
    core, _, written = make_core(client=True)
    core.receive_data(frame(CLOSE, close_payload(1000), mask=False))
    data = b"".join(written)
    assert data[:2] == b"\x88\x82"
    assert parse_frames(data) == [(True, CLOSE, b"\x03\xe8")]


@SIDES
def test_empty_close_body_gives_1005_and_an_empty_reply(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(CLOSE, b"", mask=not client))
    assert rec.calls == [("close", 1005, "")]
    assert sent_close(written) == (None, b"")
    if not client:
        assert b"".join(written) == b"\x88\x00"


@SIDES
def test_one_byte_close_body_fails_with_1002(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(CLOSE, b"\x03", mask=not client))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert rec.errors[0].code == 1002
    assert sent_close(written)[0] == 1002
    assert not core.close_received
    assert not core.reading


@SIDES
@pytest.mark.parametrize("code", REFUSED)
def test_invalid_close_code_fails_with_1002(client: bool, code: int) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(CLOSE, close_payload(code), mask=not client))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize(
    "reason", [b"\xff", b"ok\xed\xa0\x80", b"\xce", b"\xf4\x90\x80\x80"], ids=lambda d: d.hex()
)
def test_invalid_utf8_reason_fails_with_1007(client: bool, reason: bytes) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(CLOSE, close_payload(1000, reason), mask=not client))
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert rec.errors[0].code == 1007
    assert sent_close(written)[0] == 1007


@SIDES
@pytest.mark.parametrize("reason", ["", "bye", "κόσμε", "\U0001f600", "r" * 123])
def test_reason_is_decoded(client: bool, reason: str) -> None:
    core, rec, _ = make_core(client=client)
    core.receive_data(frame(CLOSE, close_payload(1001, reason), mask=not client))
    assert rec.calls == [("close", 1001, reason)]


@SIDES
def test_data_after_a_close_frame_is_ignored(client: bool) -> None:
    m = not client
    core, rec, written = make_core(client=client)
    after = (
        frame(TEXT, "late", mask=m) + frame(PING, b"p", mask=m) + frame(CLOSE, close_payload(1000), mask=m)
    )
    core.receive_data(frame(CLOSE, close_payload(1000), mask=m) + after)
    core.receive_data(after)
    core.receive_data(b"\xff\xff garbage that would fail the connection")
    assert rec.calls == [("close", 1000, "")]
    assert sent_close(written) == (1000, b"")


@SIDES
def test_reading_stops_after_the_close_frame(client: bool) -> None:
    m = not client
    core, rec, _ = make_core(client=client)
    assert core.reading
    core.receive_data(frame(TEXT, "before", mask=m))
    core.receive_data(frame(CLOSE, close_payload(1000), mask=m))
    assert not core.reading
    assert core.close_received
    core.receive_data(frame(BINARY, b"after", mask=m))
    assert rec.calls == [("text", "before"), ("close", 1000, "")]


@SIDES
def test_close_frame_inside_a_fragmented_message(client: bool) -> None:
    # A control frame may come between fragments; the unfinished message is dropped.
    m = not client
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, "part", fin=False, mask=m))
    core.receive_data(frame(CLOSE, close_payload(1001, "going"), mask=m))
    assert rec.calls == [("close", 1001, "going")]
    assert sent_close(written) == (1001, b"")


@SIDES
def test_close_reply_after_our_own_close_is_not_sent_twice(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.send_close(1000, "done")
    core.receive_data(frame(CLOSE, close_payload(1000), mask=not client))
    assert rec.calls == [("close", 1000, "")]
    assert sent_close(written) == (1000, b"done")


@SIDES
def test_close_frame_arriving_in_pieces(client: bool) -> None:
    data = frame(CLOSE, close_payload(4000, "piecewise reason"), mask=not client)
    core, rec, written = make_core(client=client)
    for i in range(len(data) - 1):
        core.receive_data(data[i : i + 1])
        assert rec.calls == []
        assert written == []
    core.receive_data(data[-1:])
    assert rec.calls == [("close", 4000, "piecewise reason")]
    assert sent_close(written) == (4000, b"")


@SIDES
def test_close_with_the_longest_body(client: bool) -> None:
    body = close_payload(1000, "x" * 123)
    assert len(body) == 125
    core, rec, _ = make_core(client=client)
    core.receive_data(frame(CLOSE, body, mask=not client))
    assert rec.calls == [("close", 1000, "x" * 123)]


@SIDES
def test_close_body_of_126_bytes_fails_with_1002(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(CLOSE, close_payload(1000, "x" * 124), mask=not client))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002
