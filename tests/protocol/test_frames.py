"""wsevents.protocol.frames, and the core's framing rules fed with raw bytes (RFC 6455 section 5)."""

from __future__ import annotations

from collections.abc import Sequence
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
    close_payload,
    frame,
    make_core,
    naive_mask,
    parse_frame_details,
    parse_frames,
    sent_close,
)
from wsevents.errors import ProtocolError
from wsevents.protocol.frames import (
    MAX_CLOSE_REASON,
    MAX_CONTROL_PAYLOAD,
    Frame,
    MaskKeys,
    Opcode,
    build_close_payload,
    build_frame,
    check_control_payload,
    parse_close_payload,
    truncate_reason,
)

SIDES = pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
PATTERN = bytes((i * 7 + 3 + (i >> 8)) & 0xFF for i in range(100_001))
KEY = b"\x9a\x0b\x5c\xe1"

# -- frames module --------------------------------------------------------------


def test_opcodes() -> None:
    assert [int(o) for o in Opcode] == [0x0, 0x1, 0x2, 0x8, 0x9, 0xA]
    assert int(Opcode.TEXT) == 1 and int(Opcode.PONG) == 0xA
    assert MAX_CONTROL_PAYLOAD == 125


@pytest.mark.parametrize(
    ("n", "header"),
    [
        (0, b"\x82\x00"),
        (1, b"\x82\x01"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (127, b"\x82\x7e\x00\x7f"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (100000, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x86\xa0"),
    ],
)
def test_build_frame_unmasked_uses_the_shortest_length_form(n: int, header: bytes) -> None:
    h, body = build_frame(Opcode.BINARY, PATTERN[:n])
    assert h == header
    assert body == PATTERN[:n]


@pytest.mark.parametrize("n", [0, 1, 5, 125, 126, 65535, 65536])
def test_build_frame_masked_puts_the_key_in_the_header(n: int) -> None:
    h, body = build_frame(Opcode.TEXT, PATTERN[:n], mask_key=KEY)
    unmasked_header, _ = build_frame(Opcode.TEXT, PATTERN[:n])
    assert h == bytes((unmasked_header[0], unmasked_header[1] | 0x80)) + unmasked_header[2:] + KEY
    assert body == naive_mask(PATTERN[:n], KEY)
    assert h + body == frame(TEXT, PATTERN[:n], mask=KEY)


def test_build_frame_rfc_examples() -> None:
    # RFC 6455 section 5.7.
    assert b"".join(build_frame(Opcode.TEXT, b"Hello")) == bytes.fromhex("810548656c6c6f")
    assert b"".join(build_frame(Opcode.TEXT, b"Hello", mask_key=b"\x37\xfa\x21\x3d")) == bytes.fromhex(
        "818537fa213d7f9f4d5158"
    )
    assert b"".join(build_frame(Opcode.TEXT, b"Hel", fin=False)) == bytes.fromhex("010348656c")
    assert b"".join(build_frame(Opcode.CONTINUATION, b"lo")) == bytes.fromhex("80026c6f")
    assert b"".join(build_frame(Opcode.PING, b"Hello")) == bytes.fromhex("890548656c6c6f")


def test_build_frame_rsv1() -> None:
    assert build_frame(Opcode.TEXT, b"", rsv1=True)[0] == b"\xc1\x00"
    assert build_frame(Opcode.CONTINUATION, b"", fin=False, rsv1=True)[0] == b"\x40\x00"


def test_build_close_payload() -> None:
    assert build_close_payload(None) == b""
    assert build_close_payload(1000) == b"\x03\xe8"
    assert build_close_payload(4999, "κ") == b"\x13\x87\xce\xba"


def test_parse_close_payload() -> None:
    assert parse_close_payload(b"") == (1005, "")
    assert parse_close_payload(b"\x03\xe8") == (1000, "")
    assert parse_close_payload(b"\x0f\xa0bye \xce\xba") == (4000, "bye κ")
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03")
    assert info.value.code == 1002
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03\xed")  # 1005
    assert info.value.code == 1002
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03\xe8\xff")
    assert info.value.code == 1007


def test_mask_keys_are_fresh_4_byte_keys_across_pool_refills() -> None:
    keys = MaskKeys()
    got = [keys.next() for _ in range(3000)]
    assert all(type(k) is bytes and len(k) == 4 for k in got)
    assert len(set(got)) > 2900  # random 32-bit keys: collisions are rare, repeats of the pool are not


# -- the core: payload lengths in every length form -------------------------------

LENGTH_CASES = [
    (n, form)
    for n in (0, 1, 125, 126, 127, 65535, 65536, 100000)
    for form in (7, 126, 127)
    if not (form == 7 and n > 125) and not (form == 126 and n > 65535)
]


@SIDES
@pytest.mark.parametrize(("n", "form"), LENGTH_CASES)
def test_binary_payload_lengths_in_every_length_form(client: bool, n: int, form: int) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(BINARY, PATTERN[:n], mask=not client and KEY, length_form=form))
    assert rec.calls == [("binary_start",), ("binary", PATTERN[:n], True)]
    assert written == []


@SIDES
@pytest.mark.parametrize(("n", "form"), LENGTH_CASES)
def test_text_payload_lengths_in_every_length_form(client: bool, n: int, form: int) -> None:
    text = "".join(chr(0x61 + i % 26) for i in range(n))
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, text, mask=not client and KEY, length_form=form))
    assert rec.calls == [("text", text)]
    assert written == []


@SIDES
@pytest.mark.parametrize(("n", "form"), [c for c in LENGTH_CASES if c[0] <= 65536])
def test_payload_lengths_fed_in_pieces(client: bool, n: int, form: int) -> None:
    data = frame(BINARY, PATTERN[:n], mask=not client and KEY, length_form=form)
    core, rec, _ = make_core(client=client)
    for i in range(0, len(data), 1000):
        core.receive_data(data[i : i + 1000])
    core.receive_data(b"")
    assert rec.merged() == [("binary_start",), ("binary", PATTERN[:n], True)]


# -- the core: masking rules ----------------------------------------------------


@pytest.mark.parametrize(
    ("opcode", "payload"),
    [(TEXT, b"hi"), (BINARY, b"hi"), (PING, b"p"), (PONG, b""), (CLOSE, b"\x03\xe8"), (TEXT, b"")],
)
def test_server_receiving_an_unmasked_frame_fails_with_1002(opcode: int, payload: bytes) -> None:
    core, rec, written = make_core(client=False)
    core.receive_data(frame(opcode, payload, mask=False))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert rec.errors[0].code == 1002
    assert b"".join(written)[:2] == b"\x88" + bytes((len(parse_frames(b"".join(written))[0][2]),))
    assert sent_close(written)[0] == 1002


@pytest.mark.parametrize(
    ("opcode", "payload"),
    [(TEXT, b"hi"), (BINARY, b"hi"), (PING, b"p"), (PONG, b""), (CLOSE, b"\x03\xe8"), (TEXT, b"")],
)
def test_client_receiving_a_masked_frame_fails_with_1002(opcode: int, payload: bytes) -> None:
    core, rec, written = make_core(client=True)
    core.receive_data(frame(opcode, payload, mask=KEY))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002
    assert all(f.masked for f in parse_frame_details(b"".join(written)))


def test_client_frames_are_masked_with_a_fresh_key_each_time() -> None:
    core, _, written = make_core(client=True)
    for i in range(20):
        core.send_text(f"message {i}")
    core.send_binary(PATTERN[:300])
    core.send_ping(b"ping")
    core.send_pong(b"pong")
    core.send_close(1000, "bye")
    frames = parse_frame_details(b"".join(written))
    assert len(frames) == 24
    assert all(f.masked for f in frames)
    keys = [f.key for f in frames]
    assert len(set(keys)) == len(keys)
    assert [f.payload for f in frames[:20]] == [f"message {i}".encode() for i in range(20)]
    assert frames[20].payload == PATTERN[:300]
    assert [(f.opcode, f.payload) for f in frames[21:]] == [
        (PING, b"ping"),
        (PONG, b"pong"),
        (CLOSE, b"\x03\xe8bye"),
    ]
    # The payload on the wire is not the plain payload (a key of 0 would leave it readable).
    assert all(f.raw[-len(f.payload) :] != f.payload for f in frames if f.key != b"\0\0\0\0" and f.payload)


def test_server_frames_are_unmasked() -> None:
    core, _, written = make_core(client=False)
    core.send_text("hello")
    core.send_binary(PATTERN[:70000])
    core.send_ping(b"p")
    core.send_close(1000)
    frames = parse_frame_details(b"".join(written))
    assert [f.masked for f in frames] == [False] * 4
    assert [(f.opcode, f.payload) for f in frames] == [
        (TEXT, b"hello"),
        (BINARY, PATTERN[:70000]),
        (PING, b"p"),
        (CLOSE, b"\x03\xe8"),
    ]


# -- the core: header rules -----------------------------------------------------


@SIDES
@pytest.mark.parametrize("rsv", range(1, 8))
@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING, CLOSE])
def test_reserved_bits_fail_with_1002(client: bool, rsv: int, opcode: int) -> None:
    payload = b"\x03\xe8" if opcode == CLOSE else b"x"
    core, rec, written = make_core(client=client)
    core.receive_data(frame(opcode, payload, mask=not client, rsv=rsv))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize("rsv", [0b100, 0b010, 0b001])
def test_reserved_bits_on_a_continuation_fail_with_1002(client: bool, rsv: int) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, "a", fin=False, mask=not client))
    core.receive_data(frame(CONT, "b", mask=not client, rsv=rsv))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
@pytest.mark.parametrize("fin", [True, False])
def test_unknown_opcodes_fail_with_1002(client: bool, opcode: int, fin: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(opcode, b"xyz", fin=fin, mask=not client) + frame(TEXT, "after", mask=not client))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize("opcode", [3, 7, 0xB, 0xF])
def test_unknown_opcode_inside_a_fragmented_message_fails_with_1002(client: bool, opcode: int) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, "a", fin=False, mask=not client))
    core.receive_data(frame(opcode, b"", mask=not client))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_control_frame_with_a_126_byte_payload_fails_with_1002(client: bool, opcode: int) -> None:
    payload = close_payload(1000, "x" * 124) if opcode == CLOSE else PATTERN[:126]
    assert len(payload) == 126
    core, rec, written = make_core(client=client)
    core.receive_data(frame(opcode, payload, mask=not client))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_control_frame_over_125_fails_from_the_header_alone(client: bool, opcode: int) -> None:
    data = frame(opcode, PATTERN[:1000], mask=not client)
    core, rec, written = make_core(client=client)
    core.receive_data(data[: 4 + (0 if client else 4)])
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_fragmented_control_frame_fails_with_1002(client: bool, opcode: int) -> None:
    payload = b"\x03\xe8" if opcode == CLOSE else b"abc"
    core, rec, written = make_core(client=client)
    core.receive_data(frame(opcode, payload, fin=False, mask=not client))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize("fin", [True, False])
def test_continuation_without_a_started_message_fails_with_1002(client: bool, fin: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(CONT, b"orphan", fin=fin, mask=not client))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
def test_continuation_after_a_finished_message_fails_with_1002(client: bool) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, "a", fin=False, mask=not client))
    core.receive_data(frame(CONT, "b", fin=True, mask=not client))
    core.receive_data(frame(CONT, "c", fin=True, mask=not client))
    assert rec.calls == [("text", "ab"), ("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
@pytest.mark.parametrize("first", [TEXT, BINARY])
@pytest.mark.parametrize(
    ("second", "second_fin"), [(TEXT, True), (BINARY, True), (TEXT, False), (BINARY, False)]
)
def test_new_data_frame_inside_a_fragmented_message_fails_with_1002(
    client: bool, first: int, second: int, second_fin: bool
) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(first, b"a", fin=False, mask=not client))
    assert core.in_message
    before = list(rec.calls)
    core.receive_data(frame(second, b"b", fin=second_fin, mask=not client))
    assert rec.calls == [*before, ("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002
    assert not core.in_message


@SIDES
@pytest.mark.parametrize("length", [1 << 63, (1 << 64) - 1, (1 << 63) + 5])
def test_64_bit_length_with_the_top_bit_set_fails_with_1002(client: bool, length: int) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(BINARY, b"", mask=not client, length_form=127, length=length))
    assert rec.calls == [("fail", 1002, "ProtocolError")]
    assert sent_close(written)[0] == 1002


@SIDES
def test_a_failure_stops_parsing_the_rest_of_the_same_chunk(client: bool) -> None:
    m = not client
    core, rec, written = make_core(client=client)
    core.receive_data(
        frame(TEXT, "one", mask=m)
        + frame(CONT, b"bad", mask=m)
        + frame(TEXT, "two", mask=m)
        + frame(PING, mask=m)
    )
    core.receive_data(frame(TEXT, "three", mask=m))
    assert rec.calls == [("text", "one"), ("fail", 1002, "ProtocolError")]
    assert len(parse_frames(b"".join(written))) == 1
    assert sent_close(written)[0] == 1002


# -- the core: the same handler calls however the bytes are split ------------------

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # "κόσμε" as Autobahn spells it (U+1F79, 3 bytes)
KOSME_TEXT = KOSME.decode()
BIN300 = PATTERN[1000:1300]


def _frames(client: bool, spec: list[tuple[int, bytes, bool]]) -> bytes:
    """The bytes the peer of a ``client`` core would send (masked iff the peer is a client)."""
    return b"".join(frame(op, p, fin=fin, mask=not client and KEY) for op, p, fin in spec)


SPLIT_CASES: dict[
    str, tuple[list[tuple[int, bytes, bool]], list[tuple[Any, ...]], list[tuple[bool, int, bytes]]]
] = {
    "small-text": ([(TEXT, b"Hello, world", True)], [("text", "Hello, world")], []),
    "fragmented-text-split-character": (
        [
            (TEXT, KOSME[:3], False),
            (CONT, KOSME[3:4], False),
            (CONT, KOSME[4:8], False),
            (CONT, KOSME[8:], True),
        ],
        [("text", KOSME_TEXT)],
        [],
    ),
    "binary-300": ([(BINARY, BIN300, True)], [("binary_start",), ("binary", BIN300, True)], []),
    "ping-inside-fragmented-text": (
        [
            (TEXT, b"Hel", False),
            (PING, b"are you there?", True),
            (CONT, b"lo ", False),
            (CONT, b"\xe2\x82\xac", True),
        ],
        [("ping", b"are you there?"), ("text", "Hello €")],
        [(True, PONG, b"are you there?")],
    ),
    "close": (
        [(CLOSE, close_payload(1001, "going away κ"), True)],
        [("close", 1001, "going away κ")],
        [(True, CLOSE, b"\x03\xe9")],
    ),
    "everything-in-a-row": (
        [
            (TEXT, b"Hello, world", True),
            (TEXT, KOSME[:3], False),
            (PING, b"", True),
            (CONT, KOSME[3:], True),
            (BINARY, BIN300[:100], False),
            (PONG, b"pong", True),
            (CONT, BIN300[100:], True),
            (CLOSE, close_payload(1000), True),
            (TEXT, b"ignored", True),
        ],
        [
            ("text", "Hello, world"),
            ("ping", b""),
            ("text", KOSME_TEXT),
            ("binary_start",),
            ("binary", BIN300[:100], False),
            ("pong", b"pong"),
            ("binary", BIN300[100:], True),
            ("close", 1000, ""),
        ],
        [(True, PONG, b""), (True, CLOSE, b"\x03\xe8")],
    ),
}


def _check(client: bool, name: str, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
    spec, expected_calls, expected_written = SPLIT_CASES[name]
    core, rec, written = make_core(client=client)
    for piece in pieces:
        core.receive_data(piece)
    assert rec.merged() == expected_calls, [len(p) for p in pieces]
    assert not [c for c in rec.calls if c[0] == "binary" and not c[1]], "an empty binary piece was delivered"
    assert parse_frames(b"".join(written)) == expected_written
    if not client:
        assert b"".join(written) == b"".join(
            frame(op, p, fin=fin, mask=False) for fin, op, p in expected_written
        )


@SIDES
@pytest.mark.parametrize("name", SPLIT_CASES)
def test_whole(client: bool, name: str) -> None:
    data = _frames(client, SPLIT_CASES[name][0])
    _check(client, name, [data])
    core, rec, _ = make_core(client=client)
    core.receive_data(data)
    assert rec.calls == SPLIT_CASES[name][1]  # whole frames: binary arrives in one piece


@SIDES
@pytest.mark.parametrize("name", SPLIT_CASES)
def test_byte_by_byte(client: bool, name: str) -> None:
    data = _frames(client, SPLIT_CASES[name][0])
    _check(client, name, [data[i : i + 1] for i in range(len(data))])


@SIDES
@pytest.mark.parametrize("name", SPLIT_CASES)
def test_every_two_way_split(client: bool, name: str) -> None:
    data = _frames(client, SPLIT_CASES[name][0])
    for i in range(1, len(data)):
        _check(client, name, [data[:i], data[i:]])


@SIDES
@pytest.mark.parametrize("name", SPLIT_CASES)
def test_split_with_bytearray_and_memoryview_input(client: bool, name: str) -> None:
    data = _frames(client, SPLIT_CASES[name][0])
    third = len(data) // 3
    pieces: list[bytes | bytearray | memoryview] = [
        bytearray(data[:third]),
        memoryview(data)[third : 2 * third],
        data[2 * third :],
    ]
    _check(client, name, pieces)


# -- the core: a big payload is handed on as it arrives -----------------------------


@SIDES
@pytest.mark.parametrize("with_header", range(5))
@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6, 7, 9, 13, 1000])
def test_partial_payload_is_delivered_piece_by_piece(client: bool, with_header: int, step: int) -> None:
    # ``with_header`` payload bytes arrive with the header; then pieces of ``step`` bytes,
    # so piece boundaries fall at every offset mod 4 of the masking key.
    payload = PATTERN[:4099]
    data = frame(BINARY, payload, mask=not client and KEY)
    header_len = len(data) - len(payload)
    core, rec, _ = make_core(client=client)
    core.receive_data(data[: header_len + with_header])
    expected: list[tuple[Any, ...]] = [("binary_start",)]
    if with_header:
        expected.append(("binary", payload[:with_header], False))
    assert rec.calls == expected
    pos = with_header
    while pos < len(payload):
        piece = payload[pos : pos + step]
        start = header_len + pos
        core.receive_data(data[start : start + step])
        pos += len(piece)
        expected.append(("binary", piece, pos == len(payload)))
        assert rec.calls[-1] == expected[-1], pos
    assert rec.calls == expected


@SIDES
def test_partial_payload_of_a_fragmented_binary_message(client: bool) -> None:
    m = not client and KEY
    core, rec, _ = make_core(client=client)
    first = frame(BINARY, PATTERN[:10], fin=False, mask=m)
    second = frame(CONT, PATTERN[10:20], fin=True, mask=m)
    core.receive_data(first[:-3])
    core.receive_data(first[-3:] + second[:-4])
    core.receive_data(second[-4:])
    assert rec.calls == [
        ("binary_start",),
        ("binary", PATTERN[:7], False),
        ("binary", PATTERN[7:10], False),
        ("binary", PATTERN[10:16], False),
        ("binary", PATTERN[16:20], True),
    ]


@SIDES
def test_text_is_delivered_only_when_whole(client: bool) -> None:
    text = "κόσμε " * 1000
    data = frame(TEXT, text, mask=not client and KEY)
    core, rec, _ = make_core(client=client)
    for i in range(0, len(data) - 1, 777):
        core.receive_data(data[i : min(i + 777, len(data) - 1)])
        assert rec.calls == []
    core.receive_data(data[-1:])
    assert rec.calls == [("text", text)]


@SIDES
def test_empty_frames(client: bool) -> None:
    m = not client
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, b"", mask=m))
    core.receive_data(frame(BINARY, b"", mask=m))
    core.receive_data(frame(TEXT, b"", fin=False, mask=m) + frame(CONT, b"", mask=m))
    core.receive_data(frame(BINARY, b"ab", fin=False, mask=m) + frame(CONT, b"", mask=m))
    assert rec.calls == [
        ("text", ""),
        ("binary_start",),
        ("binary", b"", True),
        ("text", ""),
        ("binary_start",),
        ("binary", b"ab", False),
        ("binary", b"", True),
    ]
    assert written == []


# -- the Frame type ----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    opcode=st.sampled_from([CONT, TEXT, BINARY, CLOSE, PING, PONG]),
    payload=st.one_of(st.binary(max_size=200), st.binary(min_size=65_530, max_size=65_540)),
    fin=st.booleans(),
    rsv1=st.booleans(),
    key=st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    extra=st.binary(max_size=8),
)
def test_frame_serialize_then_parse_gives_it_back(
    opcode: int, payload: bytes, fin: bool, rsv1: bool, key: bytes | None, extra: bytes
) -> None:
    if opcode & 0x08:
        payload, fin, rsv1 = payload[:MAX_CONTROL_PAYLOAD], True, False
    if opcode == CONT or opcode & 0x08:
        rsv1 = False  # RSV1 is allowed on a message's first frame only
    original = Frame(opcode, payload, fin, 0x40 if rsv1 else 0)
    wire = original.serialize(key)
    assert wire == frame(opcode, payload, fin=fin, rsv=0b100 if rsv1 else 0, mask=key if key else False)
    # Parsed by the side that receives it: a masked frame goes to a server.
    parsed = Frame.parse(wire + extra, client=key is None, ext_rsv=0x40, in_message=opcode == CONT)
    assert parsed == (original, len(wire))
    for cut in (0, 1, len(wire) // 2, len(wire) - 1):
        assert Frame.parse(wire[:cut], client=key is None, ext_rsv=0x40, in_message=opcode == CONT) is None


@pytest.mark.parametrize(
    ("data", "client", "message"),
    [
        (frame(TEXT, b"x", mask=False), False, "unmasked frame from client"),
        (frame(TEXT, b"x", mask=True), True, "masked frame from server"),
        (frame(TEXT, b"x", rsv=0b100), False, "reserved bits"),
        (frame(PING, b"x", fin=False), False, "fragmented control frame"),
        (frame(0xB, b"x"), False, "unknown opcode 0xb"),
        (frame(CONT, b"x"), False, "continuation frame without a message"),
        (frame(BINARY, b"", length_form=127, length=2**63), False, "top bit"),
    ],
)
def test_frame_parse_refuses_what_the_core_refuses(data: bytes, client: bool, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        Frame.parse(data, client=client)
    core, rec, _ = make_core(client=client)
    core.receive_data(data)
    assert rec.fails and message in str(rec.errors[0])


def test_check_control_payload_and_truncate_reason() -> None:
    check_control_payload(b"x" * MAX_CONTROL_PAYLOAD, "ping")
    with pytest.raises(ValueError, match="a pong payload is at most 125 bytes"):
        check_control_payload(b"x" * 126, "pong")
    assert MAX_CLOSE_REASON == 123
    assert truncate_reason("é" * 100).encode() == ("é" * 61).encode()  # 122 bytes: no half character
    assert truncate_reason("short") == "short"
