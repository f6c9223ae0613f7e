"""wsevents.protocol.utf8 and the core's UTF-8 rules (RFC 6455 sections 5.6, 8.1): 1007, failing fast."""

from __future__ import annotations

import pytest

from helpers import BINARY, CONT, TEXT, frame, make_core, sent_close
from wsevents.protocol.utf8 import InvalidUtf8, Utf8Decoder

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # "κόσμε" as Autobahn spells it (U+1F79, 3 bytes)
KOSME_TEXT = KOSME.decode()

# -- Utf8Decoder ---------------------------------------------------------------


def test_invalid_utf8_is_a_value_error() -> None:
    assert issubclass(InvalidUtf8, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ascii",
        KOSME_TEXT,
        "€uro",
        "\U0001f600 emoji",
        "\u07ff\u0800\uffff\U00010000\U0010ffff",
        "\ud7ff\ue000",
    ],
)
def test_valid_text_whole_and_byte_by_byte(text: str) -> None:
    data = text.encode("utf-8")
    assert Utf8Decoder().feed(data, final=True) == text
    dec = Utf8Decoder()
    out = "".join(dec.feed(data[i : i + 1]) for i in range(len(data)))
    out += dec.feed(b"", final=True)
    assert out == text


def test_partial_sequence_is_held_until_completed() -> None:
    dec = Utf8Decoder()
    assert dec.feed(b"a\xe2\x82") == "a"
    assert dec.feed(b"\xac") == "€"
    assert dec.feed(b"", final=True) == ""


def test_memoryview_input() -> None:
    assert Utf8Decoder().feed(memoryview(KOSME), final=True) == KOSME_TEXT


@pytest.mark.parametrize(
    "data",
    [
        b"\x80",  # lone continuation byte
        b"\xbf",
        b"\xc0\x80",  # overlong
        b"\xc1\xbf",
        b"\xe0\x80\x80",
        b"\xf0\x80\x80\x80",
        b"\xf4\x90\x80\x80",  # past U+10FFFF
        b"\xf5\x80\x80\x80",
        b"\xff",
        b"\xfe",
        b"\xed\xa0\x80",  # surrogates
        b"\xed\xbf\xbf",
        b"\xe2\x82",  # truncated at the end
        b"\xf0\x9f\x98",
        b"\xce",
        b"a\xce b",
    ],
    ids=lambda d: d.hex(),
)
def test_invalid_sequences_fail(data: bytes) -> None:
    with pytest.raises(InvalidUtf8):
        Utf8Decoder().feed(data, final=True)


@pytest.mark.parametrize(
    "prefix",
    [
        b"\xf4\x90",  # can only be past U+10FFFF
        b"\xf4\x90\x80",
        b"\xe0\x80",  # overlong 3-byte
        b"\xe0\x9f",
        b"\xf0\x80",  # overlong 4-byte
        b"\xf0\x8f",
        b"\xed\xa0",  # surrogate high half
        b"\xed\xbf",
        b"\xc0",
        b"\xc1",
        b"\xf5",
        b"\xff",
        b"\x80",
        b"\xce\xce",
    ],
    ids=lambda d: d.hex(),
)
def test_impossible_prefix_fails_without_waiting_for_more(prefix: bytes) -> None:
    dec = Utf8Decoder()
    dec.feed(KOSME)
    with pytest.raises(InvalidUtf8):
        dec.feed(prefix)


@pytest.mark.parametrize(
    "pieces",
    [(b"\xf4", b"\x90"), (b"\xed", b"\xa0"), (b"\xe0", b"\x80"), (b"\xf0", b"\x8f")],
    ids=lambda p: p[0].hex() + "|" + p[1].hex(),
)
def test_impossible_prefix_split_across_feeds_fails_at_the_second(pieces: tuple[bytes, bytes]) -> None:
    dec = Utf8Decoder()
    assert dec.feed(pieces[0]) == ""
    with pytest.raises(InvalidUtf8):
        dec.feed(pieces[1])


@pytest.mark.parametrize(
    "prefix", [b"\xed", b"\xed\x9f", b"\xf4\x8f", b"\xf4\x8f\xbf", b"\xe0\xa0", b"\xf0\x90"]
)
def test_possible_prefixes_do_not_fail(prefix: bytes) -> None:
    assert Utf8Decoder().feed(prefix) == ""


def test_reset_forgets_a_partial_sequence() -> None:
    dec = Utf8Decoder()
    dec.feed(b"\xe2\x82")
    dec.reset()
    assert dec.feed(b"ok", final=True) == "ok"


def test_decoder_is_reusable_after_a_final_feed() -> None:
    dec = Utf8Decoder()
    assert dec.feed(KOSME, final=True) == KOSME_TEXT
    assert dec.feed(b"\xe2\x82") == ""
    assert dec.feed(b"\xac", final=True) == "€"


# -- the core: UTF-8 in text messages -------------------------------------------


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("text", [KOSME_TEXT, "€", "\U0001f600\U0010ffff", "a" * 200])
def test_valid_multibyte_text(client: bool, text: str) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, text, mask=not client))
    assert rec.calls == [("text", text)]
    assert written == []


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        b"\xc0\xaf",
        b"ok\xf4\x90\x80\x80",
    ],
    ids=lambda d: d[:6].hex(),
)
def test_invalid_text_in_one_frame_fails_with_1007(client: bool, payload: bytes) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, payload, mask=not client) + frame(TEXT, "after", mask=not client))
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert rec.errors[0].code == 1007
    assert sent_close(written)[0] == 1007
    assert not core.reading


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("payload", [b"\xe2\x82", b"\xce", b"abc\xf0\x9f\x98"], ids=lambda d: d.hex())
def test_truncated_sequence_at_the_end_of_a_one_frame_message(client: bool, payload: bytes) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(TEXT, payload, mask=not client))
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert sent_close(written)[0] == 1007


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_truncated_sequence_at_the_end_of_a_fragmented_message(client: bool) -> None:
    core, rec, written = make_core(client=client)
    m = not client
    core.receive_data(frame(TEXT, "ab", fin=False, mask=m))
    core.receive_data(frame(CONT, b"c\xe2", fin=False, mask=m))
    core.receive_data(frame(CONT, b"\x82", fin=False, mask=m))
    assert rec.calls == []
    core.receive_data(frame(CONT, b"", fin=True, mask=m))
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert sent_close(written)[0] == 1007


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_multibyte_character_split_across_fragments(client: bool) -> None:
    core, rec, _ = make_core(client=client)
    m = not client
    core.receive_data(frame(TEXT, KOSME[:3], fin=False, mask=m))
    core.receive_data(frame(CONT, KOSME[3:4], fin=False, mask=m))
    core.receive_data(frame(CONT, KOSME[4:8], fin=False, mask=m))
    assert rec.calls == []
    core.receive_data(frame(CONT, KOSME[8:], fin=True, mask=m))
    assert rec.calls == [("text", KOSME_TEXT)]


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_fragmented_invalid_sequence_fails_fast(client: bool) -> None:
    # Autobahn 6.4.1: fragment 2 starts with F4 90, which can never be valid;
    # fail when it arrives, not when the final fragment does.
    core, rec, written = make_core(client=client)
    m = not client
    core.receive_data(frame(TEXT, KOSME, fin=False, mask=m))
    assert rec.calls == []
    core.receive_data(frame(CONT, b"\xf4\x90\x80\x80", fin=False, mask=m))
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert sent_close(written)[0] == 1007
    core.receive_data(frame(CONT, b"edited", fin=True, mask=m))
    assert rec.calls == [("fail", 1007, "ProtocolError")]


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_fragmented_impossible_prefix_fails_at_the_fragment_carrying_it(client: bool) -> None:
    # Only the first two bytes of the impossible sequence are in fragment 2.
    core, rec, written = make_core(client=client)
    m = not client
    core.receive_data(frame(TEXT, KOSME, fin=False, mask=m))
    core.receive_data(frame(CONT, b"\xf4\x90", fin=False, mask=m))
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert sent_close(written)[0] == 1007


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_surrogate_split_across_fragments_fails_at_the_second(client: bool) -> None:
    core, rec, written = make_core(client=client)
    m = not client
    core.receive_data(frame(TEXT, b"a\xed", fin=False, mask=m))
    assert rec.calls == []
    core.receive_data(frame(CONT, b"\xa0", fin=False, mask=m))
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert sent_close(written)[0] == 1007


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_surrogate_prefix_in_a_non_final_frame_fails_before_the_final_frame(client: bool) -> None:
    core, rec, written = make_core(client=client)
    m = not client
    core.receive_data(frame(TEXT, b"ab\xed\xa0", fin=False, mask=m))
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert sent_close(written)[0] == 1007


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize(
    "bad",
    [b"\xf4\x90", b"\xed\xa0", b"\xe0\x80", b"\xff", b"\x80"],
    ids=lambda d: d.hex(),
)
def test_fail_fast_inside_one_frame_whose_payload_arrives_in_pieces(client: bool, bad: bytes) -> None:
    payload = b"hello" + bad + b"\x80\x80" + b"world" * 10
    data = frame(TEXT, payload, mask=not client)
    header = 2 if client else 6
    core, rec, written = make_core(client=client)
    core.receive_data(data[: header + 5])
    assert rec.calls == []
    assert written == []
    core.receive_data(data[header + 5 : header + 5 + len(bad)])
    assert rec.calls == [("fail", 1007, "ProtocolError")]
    assert sent_close(written)[0] == 1007
    core.receive_data(data[header + 5 + len(bad) :])
    assert rec.calls == [("fail", 1007, "ProtocolError")]


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_valid_text_arriving_byte_by_byte_in_one_frame(client: bool) -> None:
    data = frame(TEXT, KOSME * 3, mask=not client)
    core, rec, _ = make_core(client=client)
    for i in range(len(data)):
        core.receive_data(data[i : i + 1])
    assert rec.calls == [("text", KOSME_TEXT * 3)]


def test_decoder_state_does_not_leak_into_the_next_message() -> None:
    core, rec, _ = make_core()
    core.receive_data(frame(TEXT, b"x\xe2", fin=False))
    core.receive_data(frame(CONT, b"\x82\xac", fin=True))
    core.receive_data(frame(TEXT, b"\xe2", fin=False))
    core.receive_data(frame(CONT, b"\x82\xacy", fin=True))
    assert rec.calls == [("text", "x€"), ("text", "€y")]


def test_binary_is_not_checked_for_utf8() -> None:
    core, rec, written = make_core()
    core.receive_data(frame(BINARY, b"\xff\xed\xa0\x80"))
    assert rec.calls == [("binary_start",), ("binary", b"\xff\xed\xa0\x80", True)]
    assert written == []
