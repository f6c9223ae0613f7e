"""permessage-deflate (RFC 7692) without sockets: header parsing, both sides of the negotiation,
the codec (context takeover, fragments, the decompression bound, zlib's 8-bit quirk) and the
core's handling of RSV1, inflating and compressing."""

from __future__ import annotations

import itertools
import random
import time
import tracemalloc
import zlib
from typing import Any

import pytest

from helpers import (
    BINARY,
    CONT,
    PING,
    PONG,
    TEXT,
    Recorder,
    frame,
    make_core,
    parse_frame_details,
    sent_close,
)
from wsevents.errors import HandshakeError, MessageTooBig, ProtocolError
from wsevents.protocol.core import WebSocketCore
from wsevents.protocol.deflate import (
    DeflateConfig,
    PerMessageDeflate,
    client_accept,
    client_offer,
    parse_extensions,
    server_accept,
)

DEFAULT = DeflateConfig()
TAIL = b"\x00\x00\xff\xff"
RSV1, RSV2, RSV3 = 0b100, 0b010, 0b001
# Compressible but not trivially so: words from a small vocabulary.
_rng = random.Random(7692)
_WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
TEXTISH = " ".join(_rng.choice(_WORDS) for _ in range(40_000)).encode()
RANDOM_KIB = _rng.randbytes(1024)


def codec(
    compress_bits: int = 15,
    compress_no_context: bool = False,
    decompress_bits: int = 15,
    decompress_no_context: bool = False,
    **config: Any,
) -> PerMessageDeflate:
    return PerMessageDeflate(
        compress_bits=compress_bits,
        compress_no_context=compress_no_context,
        decompress_bits=decompress_bits,
        decompress_no_context=decompress_no_context,
        config=DeflateConfig(**config),
    )


def settings(c: PerMessageDeflate) -> tuple[int, bool, int, bool]:
    return (c.compress_bits, c.compress_no_context, c.decompress_bits, c.decompress_no_context)


def answer_of(header: str) -> dict[str, str | None]:
    ((name, params),) = parse_extensions(header)
    assert name == "permessage-deflate"
    assert len({k for k, _ in params}) == len(params), header
    return dict(params)


def answer_header(answer: dict[str, str | None]) -> str:
    return "; ".join(["permessage-deflate", *(k if v is None else f"{k}={v}" for k, v in answer.items())])


def accept(offer: str | None, **config: Any) -> tuple[dict[str, str | None], PerMessageDeflate]:
    result = server_accept(offer, DeflateConfig(**config))
    assert result is not None, offer
    header, server_codec = result
    return answer_of(header), server_codec


# == parse_extensions =================================================================


def test_parse_several_offers_params_with_and_without_values() -> None:
    header = (
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
        "permessage-deflate; server_no_context_takeover, x-webkit-deflate-frame, permessage-deflate"
    )
    assert parse_extensions(header) == [
        ("permessage-deflate", [("client_max_window_bits", None), ("server_max_window_bits", "10")]),
        ("permessage-deflate", [("server_no_context_takeover", None)]),
        ("x-webkit-deflate-frame", []),
        ("permessage-deflate", []),
    ]


def test_parse_quoted_values() -> None:
    assert parse_extensions('permessage-deflate; server_max_window_bits="10"; client_max_window_bits=""') == [
        ("permessage-deflate", [("server_max_window_bits", "10"), ("client_max_window_bits", "")])
    ]
    # An offer with a quoted value is as good as the token (RFC 7692 section 7.1: quoted-string form).
    answer, server_codec = accept('permessage-deflate; client_max_window_bits="10"')
    assert answer["client_max_window_bits"] == "10"
    assert server_codec.decompress_bits == 10


@pytest.mark.parametrize(
    "header",
    [
        "permessage-deflate;client_max_window_bits=10;server_no_context_takeover",
        "permessage-deflate ; client_max_window_bits = 10 ; server_no_context_takeover",
        "  permessage-deflate;   client_max_window_bits=10;server_no_context_takeover   ",
        "permessage-deflate\t;\tclient_max_window_bits=10\t;\tserver_no_context_takeover",
        "PerMessage-Deflate; Client_Max_Window_Bits=10; SERVER_NO_CONTEXT_TAKEOVER",
        'permessage-deflate; client_max_window_bits="10"; server_no_context_takeover',
        ", permessage-deflate; client_max_window_bits=10; server_no_context_takeover ,, ",
    ],
)
def test_parse_whitespace_case_and_empty_items(header: str) -> None:
    assert parse_extensions(header) == [
        ("permessage-deflate", [("client_max_window_bits", "10"), ("server_no_context_takeover", None)])
    ]


def test_parse_empty() -> None:
    assert parse_extensions("") == []
    assert parse_extensions(" , ,") == []


@pytest.mark.parametrize(
    "bad",
    [
        "; client_max_window_bits",
        "permessage-deflate, ; x",
        "permessage-deflate; ; client_max_window_bits",
        "permessage-deflate;",
        "permessage-deflate; =10",
        'permessage-deflate; server_max_window_bits="10',
        'permessage-deflate; server_max_window_bits="',
    ],
)
def test_parse_syntax_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_extensions(bad)


# == server_accept =====================================================================


@pytest.mark.parametrize("header", [None, "", "   ", "x-webkit-deflate-frame", "foo; bar=1, baz"])
def test_server_accept_without_offer(header: str | None) -> None:
    assert server_accept(header, DEFAULT) is None


@pytest.mark.parametrize(
    "header",
    [
        "permessage-deflate; =1",  # syntax error: the whole header is ignored
        'permessage-deflate; client_max_window_bits="1',
        "permessage-deflate; foo",
        "permessage-deflate; foo, x-other, permessage-deflate; server_max_window_bits",
    ],
)
def test_server_accept_none_acceptable(header: str) -> None:
    assert server_accept(header, DEFAULT) is None


def test_server_accept_picks_the_first_acceptable_offer() -> None:
    header = (
        "x-other; a=1, permessage-deflate; client_max_window_bits=10, "
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"
    )
    answer, server_codec = accept(header)
    assert answer == {"server_max_window_bits": "12", "client_max_window_bits": "10"}
    assert settings(server_codec) == (12, False, 10, False)


INVALID_OFFERS = [
    "permessage-deflate; foo",
    "permessage-deflate; foo=1",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=0",
    "permessage-deflate; server_max_window_bits=-9",
    "permessage-deflate; server_max_window_bits=010",
    "permessage-deflate; server_max_window_bits=abc",
    "permessage-deflate; server_max_window_bits=",
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; client_max_window_bits=1e1",
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; client_no_context_takeover=true",
    'permessage-deflate; client_no_context_takeover=""',
    "permessage-deflate; server_max_window_bits",
    'permessage-deflate; server_max_window_bits=10"',
    "permessage-deflate; server_max_window_bits=1 0",
]


@pytest.mark.parametrize("invalid", INVALID_OFFERS)
def test_server_declines_an_invalid_offer_and_takes_the_next(invalid: str) -> None:
    assert server_accept(invalid, DEFAULT) is None
    answer, server_codec = accept(f"{invalid}, permessage-deflate; client_max_window_bits=11")
    assert answer == {"server_max_window_bits": "12", "client_max_window_bits": "11"}
    assert settings(server_codec) == (12, False, 11, False)


def test_server_echoes_server_no_context_takeover() -> None:
    answer, server_codec = accept("permessage-deflate; server_no_context_takeover")
    assert "server_no_context_takeover" in answer
    assert server_codec.compress_no_context and not server_codec.decompress_no_context
    answer, server_codec = accept("permessage-deflate")
    assert "server_no_context_takeover" not in answer
    assert not server_codec.compress_no_context


def test_server_echoes_client_no_context_takeover() -> None:
    answer, server_codec = accept("permessage-deflate; client_no_context_takeover")
    assert "client_no_context_takeover" in answer
    assert server_codec.decompress_no_context and not server_codec.compress_no_context


def test_server_config_no_context_takeover_is_answered_unasked() -> None:
    answer, server_codec = accept(
        "permessage-deflate", server_no_context_takeover=True, client_no_context_takeover=True
    )
    assert answer == {
        "server_no_context_takeover": None,
        "client_no_context_takeover": None,
        "server_max_window_bits": "12",
    }
    assert settings(server_codec) == (12, True, 15, True)


@pytest.mark.parametrize("config_bits", [None, 9, 12, 15])
@pytest.mark.parametrize("offered", [None, 8, 10, 15])
def test_server_max_window_bits_is_min_of_config_and_offer(
    config_bits: int | None, offered: int | None
) -> None:
    header = "permessage-deflate" + ("" if offered is None else f"; server_max_window_bits={offered}")
    answer, server_codec = accept(header, server_max_window_bits=config_bits)
    expected = config_bits or 12
    if offered is not None:
        expected = min(expected, offered)
    assert server_codec.compress_bits == expected
    if expected < 15 or offered is not None:
        # Unasked it is optional (and left out at 15); asked, the server MUST answer it
        # (RFC 7692 section 7.1.2.1), 15 included.
        assert answer["server_max_window_bits"] == str(expected)
    else:
        assert "server_max_window_bits" not in answer
    assert settings(client_accept(answer_header(answer), DeflateConfig(server_max_window_bits=offered))) == (
        12,
        False,
        max(9, expected),
        False,
    )
    assert server_codec.can_compress is (expected >= 9)


@pytest.mark.parametrize("config_bits", [None, 9, 12, 15])
@pytest.mark.parametrize("offered", ["", "=8", "=10", "=15"])
def test_client_max_window_bits_answered_when_offered(config_bits: int | None, offered: str) -> None:
    answer, server_codec = accept(
        f"permessage-deflate; client_max_window_bits{offered}", client_max_window_bits=config_bits
    )
    expected = config_bits or 12
    if offered:
        expected = min(expected, int(offered[1:]))
    assert answer["client_max_window_bits"] == str(expected)
    assert server_codec.decompress_bits == max(9, expected)


def test_client_max_window_bits_not_answered_when_not_offered() -> None:
    answer, server_codec = accept("permessage-deflate")
    assert "client_max_window_bits" not in answer
    assert server_codec.decompress_bits == 15


@pytest.mark.parametrize("config_bits", [8, 10, 15])
def test_config_client_bits_but_not_offered_declines_that_offer(config_bits: int) -> None:
    config = DeflateConfig(client_max_window_bits=config_bits)
    assert server_accept("permessage-deflate", config) is None
    assert server_accept("permessage-deflate; server_no_context_takeover", config) is None
    answer, server_codec = accept(
        "permessage-deflate; server_no_context_takeover, permessage-deflate; client_max_window_bits",
        client_max_window_bits=config_bits,
    )
    assert "server_no_context_takeover" not in answer  # the second offer was taken
    assert answer["client_max_window_bits"] == str(config_bits)
    assert server_codec.decompress_bits == max(9, config_bits)


OFFER_PARAMS = {
    "server_no_context_takeover": "server_no_context_takeover",
    "client_no_context_takeover": "client_no_context_takeover",
    "server_max_window_bits": "server_max_window_bits=10",
    "client_max_window_bits": "client_max_window_bits",
}
SUBSETS = [
    combo for n in range(len(OFFER_PARAMS) + 1) for combo in itertools.combinations(sorted(OFFER_PARAMS), n)
]


@pytest.mark.parametrize("order", ["sorted", "reversed"])
@pytest.mark.parametrize("combo", SUBSETS, ids=lambda c: "+".join(c) or "none")
def test_server_accept_every_combination(combo: tuple[str, ...], order: str) -> None:
    names = list(combo) if order == "sorted" else list(reversed(combo))
    header = "; ".join(["permessage-deflate", *(OFFER_PARAMS[n] for n in names)])
    answer, server_codec = accept(header)
    expected: dict[str, str | None] = {}
    if "server_no_context_takeover" in combo:
        expected["server_no_context_takeover"] = None
    if "client_no_context_takeover" in combo:
        expected["client_no_context_takeover"] = None
    server_bits = 10 if "server_max_window_bits" in combo else 12
    expected["server_max_window_bits"] = str(server_bits)
    client_bits = 12 if "client_max_window_bits" in combo else 15
    if "client_max_window_bits" in combo:
        expected["client_max_window_bits"] = "12"
    assert answer == expected
    assert settings(server_codec) == (
        server_bits,
        "server_no_context_takeover" in combo,
        client_bits,
        "client_no_context_takeover" in combo,
    )
    # And the client that made this offer accepts the answer with matching settings.
    client_config = DeflateConfig(
        server_no_context_takeover="server_no_context_takeover" in combo,
        client_no_context_takeover="client_no_context_takeover" in combo,
        server_max_window_bits=10 if "server_max_window_bits" in combo else None,
    )
    header_answer = server_accept(client_offer(client_config), DEFAULT)
    assert header_answer is not None
    client_codec = client_accept(header_answer[0], client_config)
    assert client_codec.compress_bits <= header_answer[1].decompress_bits
    assert header_answer[1].compress_bits <= client_codec.decompress_bits
    assert client_codec.compress_no_context == header_answer[1].decompress_no_context
    assert client_codec.decompress_no_context == header_answer[1].compress_no_context


# == client_offer / client_accept ==========================================================


@pytest.mark.parametrize(
    ("config", "offer"),
    [
        ({}, "permessage-deflate; client_max_window_bits"),
        (
            {"server_no_context_takeover": True},
            "permessage-deflate; server_no_context_takeover; client_max_window_bits",
        ),
        (
            {"client_no_context_takeover": True},
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
        ),
        (
            {"server_max_window_bits": 10},
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
        ),
        ({"client_max_window_bits": 9}, "permessage-deflate; client_max_window_bits=9"),
        ({"threshold": 0, "level": 9, "mem_level": 8}, "permessage-deflate; client_max_window_bits"),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 8,
                "client_max_window_bits": 15,
            },
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=8; client_max_window_bits=15",
        ),
    ],
)
def test_client_offer(config: dict[str, Any], offer: str) -> None:
    assert client_offer(DeflateConfig(**config)) == offer
    parse_extensions(offer)  # well-formed


@pytest.mark.parametrize(
    ("config", "answer", "expected"),
    [
        # (compress_bits, compress_no_context, decompress_bits, decompress_no_context)
        ({}, "permessage-deflate", (12, False, 15, False)),
        ({}, "Permessage-Deflate", (12, False, 15, False)),
        ({}, "permessage-deflate; server_max_window_bits=10", (12, False, 10, False)),
        ({}, "permessage-deflate; server_max_window_bits=8", (12, False, 9, False)),
        ({}, "permessage-deflate; client_max_window_bits=9", (9, False, 15, False)),
        ({}, "permessage-deflate; client_max_window_bits=15", (15, False, 15, False)),
        ({}, 'permessage-deflate; client_max_window_bits="11"', (11, False, 15, False)),
        ({}, "permessage-deflate; server_no_context_takeover", (12, False, 15, True)),
        ({}, "permessage-deflate; client_no_context_takeover", (12, True, 15, False)),
        (
            {},
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=11; client_max_window_bits=10",
            (10, True, 11, True),
        ),
        ({"client_no_context_takeover": True}, "permessage-deflate", (12, True, 15, False)),
        (
            {"server_no_context_takeover": True},
            "permessage-deflate; server_no_context_takeover",
            (12, False, 15, True),
        ),
        (
            {"server_max_window_bits": 10},
            "permessage-deflate; server_max_window_bits=10",
            (12, False, 10, False),
        ),
        (
            {"server_max_window_bits": 10},
            "permessage-deflate; server_max_window_bits=9",
            (12, False, 9, False),
        ),
        ({"client_max_window_bits": 10}, "permessage-deflate", (10, False, 15, False)),
        (
            {"client_max_window_bits": 10},
            "permessage-deflate; client_max_window_bits=10",
            (10, False, 15, False),
        ),
        (
            {"client_max_window_bits": 10},
            "permessage-deflate; client_max_window_bits=8",
            (8, False, 15, False),
        ),
    ],
)
def test_client_accept_valid(
    config: dict[str, Any], answer: str, expected: tuple[int, bool, int, bool]
) -> None:
    client_codec = client_accept(answer, DeflateConfig(**config))
    assert settings(client_codec) == expected
    assert client_codec.can_compress is (expected[0] >= 9)


@pytest.mark.parametrize(
    ("config", "answer"),
    [
        ({}, "permessage-deflate, permessage-deflate"),
        ({}, "permessage-deflate, x-other"),
        ({}, "x-other"),
        ({}, "x-webkit-deflate-frame; no_context_takeover"),
        ({}, "permessage-deflate; foo"),
        ({}, "permessage-deflate; foo=1"),
        ({}, "permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
        ({}, "permessage-deflate; client_max_window_bits=10; client_max_window_bits=10"),
        ({}, "permessage-deflate; server_max_window_bits=7"),
        ({}, "permessage-deflate; server_max_window_bits=16"),
        ({}, "permessage-deflate; client_max_window_bits=7"),
        ({}, "permessage-deflate; client_max_window_bits=16"),
        ({}, "permessage-deflate; client_max_window_bits"),  # a bare value is only for offers
        ({}, "permessage-deflate; server_max_window_bits"),
        ({}, "permessage-deflate; server_no_context_takeover=1"),
        ({}, "permessage-deflate; =1"),
        ({"client_max_window_bits": 10}, "permessage-deflate; client_max_window_bits=11"),
        ({"client_max_window_bits": 8}, "permessage-deflate; client_max_window_bits=15"),
        ({"server_max_window_bits": 10}, "permessage-deflate; server_max_window_bits=11"),
        ({"server_max_window_bits": 10}, "permessage-deflate"),
        ({"server_no_context_takeover": True}, "permessage-deflate"),
        ({"server_no_context_takeover": True}, "permessage-deflate; client_no_context_takeover"),
    ],
)
def test_client_accept_failures(config: dict[str, Any], answer: str) -> None:
    with pytest.raises(HandshakeError) as info:
        client_accept(answer, DeflateConfig(**config))
    assert str(info.value).startswith("Invalid handshake")
    assert info.value.status is None


CONFIGS = [
    {},
    {"server_no_context_takeover": True},
    {"client_no_context_takeover": True},
    {"server_max_window_bits": 9},
    {"server_max_window_bits": 8},
    {"client_max_window_bits": 9},
    {"client_max_window_bits": 8},
    {"server_max_window_bits": 15, "client_max_window_bits": 15},
]


@pytest.mark.parametrize("server_config", CONFIGS, ids=str)
@pytest.mark.parametrize("client_config", CONFIGS, ids=str)
def test_negotiated_codecs_talk_both_ways(
    client_config: dict[str, Any], server_config: dict[str, Any]
) -> None:
    cconf, sconf = DeflateConfig(**client_config), DeflateConfig(**server_config)
    result = server_accept(client_offer(cconf), sconf)
    assert result is not None  # the client always offers client_max_window_bits, so any config fits
    header, server_codec = result
    client_codec = client_accept(header, cconf)
    for sender, receiver in ((client_codec, server_codec), (server_codec, client_codec)):
        for i in range(3):
            message = TEXTISH[i * 5000 : i * 5000 + 20_000]
            if sender.can_compress:
                assert receiver.decompress(sender.compress(message), True, None) == message


# == the codec =============================================================================


def test_roundtrip_many_messages_with_context_takeover() -> None:
    sender, receiver = codec(compress_bits=12), codec(decompress_bits=12)
    for i in range(200):
        message = TEXTISH[i * 97 : i * 97 + 50 + i * 13]
        assert receiver.decompress(sender.compress(message), True, None) == message


def test_context_takeover_shrinks_a_repeated_message() -> None:
    sender, receiver = codec(), codec()
    first = sender.compress(RANDOM_KIB)
    second = sender.compress(RANDOM_KIB)
    assert len(first) > 1000  # random data does not compress on its own
    assert len(second) < 50  # but the second copy is a back-reference to the first
    assert receiver.decompress(first, True, None) == RANDOM_KIB
    assert receiver.decompress(second, True, None) == RANDOM_KIB


def test_without_context_takeover_every_message_compresses_the_same() -> None:
    sender = codec(compress_no_context=True)
    receiver = codec(decompress_no_context=True)
    outputs = [sender.compress(RANDOM_KIB) for _ in range(5)]
    assert len(set(outputs)) == 1 and len(outputs[0]) > 1000
    for out in outputs:
        assert receiver.decompress(out, True, None) == RANDOM_KIB
    # Each message stands alone: a fresh decompressor reads any of them.
    assert codec().decompress(outputs[3], True, None) == RANDOM_KIB
    for i in range(50):
        message = TEXTISH[i * 300 : i * 300 + 2000]
        assert receiver.decompress(sender.compress(message), True, None) == message


def test_decompressor_without_context_resets_between_messages() -> None:
    # A decompressor told "no context takeover" starts afresh: a message that
    # refers back to the previous one cannot be read (RFC 7692 section 7.1.1.1).
    sender = codec()
    receiver = codec(decompress_no_context=True)
    assert receiver.decompress(sender.compress(RANDOM_KIB), True, None) == RANDOM_KIB
    with pytest.raises(ProtocolError) as info:
        receiver.decompress(sender.compress(RANDOM_KIB), True, None)
    assert info.value.code == 1007


@pytest.mark.parametrize("no_context", [False, True])
@pytest.mark.parametrize("bits", [9, 12, 15])
def test_compressed_output_never_ends_with_the_tail(no_context: bool, bits: int) -> None:
    sender = codec(compress_bits=bits, compress_no_context=no_context)
    receiver = codec(decompress_bits=bits, decompress_no_context=no_context)
    messages = [b"", b"a", b"", RANDOM_KIB, RANDOM_KIB, b"\x00" * 5000, TAIL, TAIL * 100, TEXTISH[:3000], b""]
    for message in messages:
        out = sender.compress(message)
        assert out and not out.endswith(TAIL)
        assert receiver.decompress(out, True, None) == message


@pytest.mark.parametrize("no_context", [False, True])
def test_fragment_wise_compression(no_context: bool) -> None:
    sender = codec(compress_no_context=no_context)
    receiver = codec(decompress_no_context=no_context)
    for round_ in range(3):
        pieces = [TEXTISH[i * 1000 + round_ : (i + 1) * 1000 + round_] for i in range(4)] + [b"", RANDOM_KIB]
        outs = [sender.compress(p, fin=False) for p in pieces[:-1]] + [sender.compress(pieces[-1], fin=True)]
        assert all(o.endswith(TAIL) for o in outs[:-1])  # flushed, so each can be inflated on arrival
        assert not outs[-1].endswith(TAIL)
        got = [receiver.decompress(o, i == len(outs) - 1, None) for i, o in enumerate(outs)]
        assert got[:4] == pieces[:4]  # each fragment inflates as soon as it arrives
        assert b"".join(got) == b"".join(pieces)
    # The concatenated payload of a streamed message inflates the same in one go.
    other = codec(compress_no_context=no_context)
    stream = b"".join(other.compress(p, fin=False) for p in (b"abc" * 100, b"def" * 100)) + other.compress(
        b"!"
    )
    assert codec().decompress(stream, True, None) == b"abc" * 100 + b"def" * 100 + b"!"


def test_decompression_bomb_is_bounded() -> None:
    sender = codec(level=9)
    bomb = sender.compress(b"\x00" * (10 << 20))
    assert len(bomb) < 20_000
    receiver = codec()
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(MessageTooBig) as info:
            receiver.decompress(bomb, True, 1 << 20)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code == 1009
    assert peak < 4 << 20, peak  # the 10 MiB were never materialised
    assert elapsed < 5  # generous: it stopped at 1 MiB of output


def test_decompression_bound_is_per_call() -> None:
    # The codec bounds what one call returns; the core bounds the sum over a message.
    bomb = codec(level=9).compress(b"\x00" * (4 << 20))
    pieces = [bomb[i : i + 100] for i in range(0, len(bomb), 100)]
    receiver = codec()
    total = 0
    for i, piece in enumerate(pieces):
        out = receiver.decompress(piece, i == len(pieces) - 1, 200_000)
        assert len(out) <= 200_000
        total += len(out)
    assert total == 4 << 20
    receiver = codec()
    with pytest.raises(MessageTooBig):
        receiver.decompress(pieces[0], False, 50_000)  # 100 bytes of it inflate to ~100 KB


@pytest.mark.parametrize("size", [0, 1, 1000, 100_000])
def test_decompress_exactly_max_size_passes(size: int) -> None:
    message = (TEXTISH * 3)[:size]
    out = codec().compress(message)
    assert codec().decompress(out, True, size) == message
    if size:
        with pytest.raises(MessageTooBig):
            codec().decompress(out, True, size - 1)


def test_decompress_max_size_counts_what_only_the_tail_releases() -> None:
    # The last bytes of a message may come out only when the tail is appended.
    for size in (1, 2, 3, 50, 130):
        message = bytes(range(size))
        out = codec().compress(message)
        assert codec().decompress(out, True, size) == message
        with pytest.raises(MessageTooBig):
            codec().decompress(out, True, size - 1)


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xff\xff\xff", b"\x06\x00", b"\x07\x00\x01\x02", b"\x00\x05\x00\x00\x00abcde"],
)
def test_invalid_deflate_data_is_1007(garbage: bytes) -> None:
    receiver = codec()
    with pytest.raises(ProtocolError) as info:
        receiver.decompress(garbage, True, 1 << 20)
    assert info.value.code == 1007
    assert not isinstance(info.value, MessageTooBig)


def test_invalid_data_in_a_non_final_piece_is_1007() -> None:
    with pytest.raises(ProtocolError) as info:
        codec().decompress(b"\xff" * 10, False, None)
    assert info.value.code == 1007


def test_window_bits_8_cannot_compress() -> None:
    assert codec(compress_bits=8).can_compress is False
    assert codec(compress_bits=9).can_compress is True
    assert codec(compress_bits=15).can_compress is True


def test_decompress_with_8_bits_reads_a_9_bit_stream() -> None:
    receiver = codec(decompress_bits=8)
    assert receiver.decompress_bits == 9
    # zlib compresses "8 bits" with a 9-bit window: long back-references.
    block = _rng.randbytes(240)
    message = block * 8
    comp = zlib.compressobj(9, zlib.DEFLATED, -9)
    data = comp.compress(message) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert len(data) < 400
    assert receiver.decompress(data[:-4], True, None) == message
    # And what a codec agreed at 9 bits sends, read by one agreed at 8.
    sender = codec(compress_bits=9)
    for _ in range(3):
        assert receiver.decompress(sender.compress(message), True, None) == message


# == the core with deflate =================================================================


def deflate_core(
    client: bool = False,
    max_message_size: int | None = None,
    bound_binary: bool = True,
    deflate: PerMessageDeflate | None = None,
) -> tuple[Any, Recorder, list[bytes]]:
    return make_core(
        client=client,
        max_message_size=max_message_size,
        bound_binary=bound_binary,
        extension=deflate if deflate is not None else codec(),
    )


def fail_code(rec: Recorder, written: list[bytes]) -> int | None:
    assert len(rec.fails) == 1, rec.calls
    code, _ = sent_close(written)
    assert code == rec.fails[0][1]
    return code


def feed(core: WebSocketCore, data: bytes, bytewise: bool) -> None:
    if bytewise:
        for i in range(len(data)):
            core.receive_data(data[i : i + 1])
    else:
        core.receive_data(data)


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_core_inflates_a_compressed_text_frame(client: bool) -> None:
    core, rec, written = deflate_core(client=client)
    peer = codec()
    text = "héllo wörld " * 50
    core.receive_data(frame(TEXT, peer.compress(text.encode()), rsv=RSV1, mask=not client))
    core.receive_data(frame(TEXT, peer.compress(text.encode()), rsv=RSV1, mask=not client))  # context kept
    core.receive_data(frame(TEXT, "plain", mask=not client))  # RSV1 clear: not compressed
    core.receive_data(frame(BINARY, peer.compress(b"\x00" * 1000), rsv=RSV1, mask=not client))
    assert rec.calls == [
        ("text", text),
        ("text", text),
        ("text", "plain"),
        ("binary_start",),
        ("binary", b"\x00" * 1000, True),
    ]
    assert written == []


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_core_inflates_a_text_in_three_fragments(bytewise: bool) -> None:
    core, rec, _ = deflate_core()
    peer = codec()
    text = "ünïcødé ✓ fragments " * 30
    raw = text.encode()
    parts = [raw[:101], raw[101:333], raw[333:]]  # cuts inside multi-byte characters
    data = (
        frame(TEXT, peer.compress(parts[0], fin=False), fin=False, rsv=RSV1)
        + frame(PING, b"in between")
        + frame(CONT, peer.compress(parts[1], fin=False), fin=False)
        + frame(CONT, peer.compress(parts[2], fin=True), fin=True)
    )
    feed(core, data, bytewise)
    assert rec.calls == [("ping", b"in between"), ("text", text)]
    # The next message uses the kept context.
    feed(core, frame(TEXT, peer.compress(raw), rsv=RSV1), bytewise)
    assert rec.calls[-1] == ("text", text)


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_core_inflates_a_fragmented_binary(bytewise: bool) -> None:
    core, rec, _ = deflate_core()
    peer = codec()
    pieces = [TEXTISH[:3000], b"", RANDOM_KIB]
    data = (
        frame(BINARY, peer.compress(pieces[0], fin=False), fin=False, rsv=RSV1)
        + frame(CONT, peer.compress(pieces[1], fin=False), fin=False)
        + frame(CONT, peer.compress(pieces[2]), fin=True)
    )
    feed(core, data, bytewise)
    assert rec.merged() == [("binary_start",), ("binary", b"".join(pieces), True)]


def test_core_rsv1_on_a_continuation_is_1002() -> None:
    core, rec, written = deflate_core()
    peer = codec()
    core.receive_data(frame(TEXT, peer.compress(b"abc", fin=False), fin=False, rsv=RSV1))
    core.receive_data(frame(CONT, peer.compress(b"def"), rsv=RSV1))
    assert fail_code(rec, written) == 1002
    assert not core.reading


def test_core_rsv1_on_a_continuation_of_an_uncompressed_message_is_1002() -> None:
    core, rec, written = deflate_core()
    core.receive_data(frame(BINARY, b"abc", fin=False))
    core.receive_data(frame(CONT, codec().compress(b"def"), rsv=RSV1))
    assert fail_code(rec, written) == 1002


@pytest.mark.parametrize("opcode", [PING, PONG, 0x8])
def test_core_rsv1_on_a_control_frame_is_1002(opcode: int) -> None:
    core, rec, written = deflate_core()
    payload = b"\x03\xe8" if opcode == 0x8 else b"ping"
    core.receive_data(frame(opcode, payload, rsv=RSV1))
    assert fail_code(rec, written) == 1002
    assert ("ping", b"ping") not in rec.calls and ("close", 1000, "") not in rec.calls


@pytest.mark.parametrize("rsv", [RSV2, RSV3, RSV1 | RSV2, RSV1 | RSV3, RSV2 | RSV3, 0b111])
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_core_rsv2_rsv3_are_1002_even_with_deflate(rsv: int, opcode: int) -> None:
    core, rec, written = deflate_core()
    core.receive_data(frame(opcode, codec().compress(b"x" * 200), rsv=rsv))
    assert fail_code(rec, written) == 1002
    assert not any(c[0] in ("text", "binary") for c in rec.calls)


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_core_rsv1_without_deflate_is_1002(client: bool, opcode: int) -> None:
    core, rec, written = make_core(client=client)
    core.receive_data(frame(opcode, codec().compress(b"x" * 200), rsv=RSV1, mask=not client))
    assert fail_code(rec, written) == 1002
    assert rec.calls == [("fail", 1002, "ProtocolError")]


@pytest.mark.parametrize("fragmented", [False, True])
def test_core_invalid_utf8_after_inflating_is_1007(fragmented: bool) -> None:
    core, rec, written = deflate_core()
    peer = codec()
    raw = b"valid start " * 20 + b"\xc3\x28" + b" more" * 20
    if fragmented:
        data = frame(TEXT, peer.compress(raw[:100], fin=False), fin=False, rsv=RSV1) + frame(
            CONT, peer.compress(raw[100:]), fin=True
        )
    else:
        data = frame(TEXT, peer.compress(raw), rsv=RSV1)
    core.receive_data(data)
    assert fail_code(rec, written) == 1007
    assert not any(c[0] == "text" for c in rec.calls)


def test_core_invalid_deflate_data_is_1007() -> None:
    core, rec, written = deflate_core()
    core.receive_data(frame(BINARY, b"\xff\xfe\xfd\xfc" * 10, rsv=RSV1))
    assert fail_code(rec, written) == 1007


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_core_inflated_size_over_max_message_size_is_1009(opcode: int) -> None:
    core, rec, written = deflate_core(max_message_size=10_000)
    payload = codec().compress(b"a" * 100_000)
    assert len(payload) < 1000  # small on the wire
    core.receive_data(frame(opcode, payload, rsv=RSV1))
    assert fail_code(rec, written) == 1009
    assert rec.fails == [("fail", 1009, "MessageTooBig")]
    assert not any(c[0] in ("text", "binary") for c in rec.calls)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_core_inflated_size_is_counted_over_fragments(opcode: int) -> None:
    # Each fragment inflates to 4,000 bytes, under the bound alone; 12,000 in all is not.
    core, rec, written = deflate_core(max_message_size=10_000)
    peer = codec()
    core.receive_data(frame(opcode, peer.compress(b"a" * 4000, fin=False), fin=False, rsv=RSV1))
    core.receive_data(frame(CONT, peer.compress(b"b" * 4000, fin=False), fin=False))
    assert rec.fails == []
    core.receive_data(frame(CONT, peer.compress(b"c" * 4000), fin=True))
    assert fail_code(rec, written) == 1009


def test_core_inflated_size_exactly_max_message_size_passes() -> None:
    core, rec, written = deflate_core(max_message_size=10_000)
    peer = codec()
    core.receive_data(frame(TEXT, peer.compress(b"a" * 10_000), rsv=RSV1))
    core.receive_data(frame(BINARY, peer.compress(b"b" * 5000, fin=False), fin=False, rsv=RSV1))
    core.receive_data(frame(CONT, peer.compress(b"c" * 5000), fin=True))
    assert rec.merged() == [
        ("text", "a" * 10_000),
        ("binary_start",),
        ("binary", b"b" * 5000 + b"c" * 5000, True),
    ]
    assert written == []


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "split"])
def test_core_compressed_bomb_split_on_the_wire_is_1009(bytewise: bool) -> None:
    core, rec, written = deflate_core(max_message_size=1 << 20)
    data = frame(BINARY, codec(level=9).compress(b"\x00" * (8 << 20)), rsv=RSV1)
    if bytewise:
        for i in range(0, len(data), 7):
            core.receive_data(data[i : i + 7])
    else:
        core.receive_data(data)
    assert fail_code(rec, written) == 1009
    assert sum(len(c[1]) for c in rec.calls if c[0] == "binary") <= 1 << 20


def test_core_streamed_binary_piece_inflating_past_its_bound_is_1009() -> None:
    core, rec, written = deflate_core(max_message_size=10_000, bound_binary=False)
    payload = codec().compress(b"\x00" * 20_000)
    assert len(payload) + 10_000 < 20_000
    core.receive_data(frame(BINARY, payload, rsv=RSV1))
    assert fail_code(rec, written) == 1009
    assert rec.calls[0] == ("binary_start",)


def test_core_streamed_binary_big_messages_pass() -> None:
    # Incompressible: each piece inflates to about its own size; the whole is far over the bound.
    core, rec, written = deflate_core(max_message_size=10_000, bound_binary=False)
    peer = codec()
    data = _rng.randbytes(200_000)
    core.receive_data(frame(BINARY, peer.compress(data), rsv=RSV1))
    # Compressible, in many fragments that each inflate to less than their size plus the bound.
    chunks = [TEXTISH[i : i + 8000] for i in range(0, 160_000, 8000)]
    wire = [peer.compress(c, fin=False) for c in chunks[:-1]] + [peer.compress(chunks[-1])]
    core.receive_data(frame(BINARY, wire[0], fin=False, rsv=RSV1))
    for i, w in enumerate(wire[1:], 1):
        core.receive_data(frame(CONT, w, fin=i == len(wire) - 1))
    assert rec.fails == [] and written == []
    binaries = [c for c in rec.merged() if c[0] == "binary"]
    assert binaries == [("binary", data, True), ("binary", b"".join(chunks), True)]


def peer_codec_for(core_codec: PerMessageDeflate) -> PerMessageDeflate:
    return codec(
        decompress_bits=core_codec.compress_bits, decompress_no_context=core_codec.compress_no_context
    )


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_core_send_text_at_or_over_threshold_is_compressed(client: bool) -> None:
    mine = codec(compress_bits=12)
    core, _, written = deflate_core(client=client, deflate=mine)
    theirs = peer_codec_for(mine)
    texts = ["é" * 64, "x" * 128, "y" * 5000, "y" * 5000, TEXTISH[:20_000].decode()]
    for text in texts:
        core.send_text(text)
    frames = parse_frame_details(b"".join(written))
    assert len(frames) == len(texts)
    for f, text in zip(frames, texts, strict=True):
        assert (f.fin, f.rsv, f.opcode, f.masked) == (True, RSV1, TEXT, client)
        assert theirs.decompress(f.payload, True, None) == text.encode()
    assert len(frames[3].payload) < len(frames[2].payload)  # context takeover
    assert len(frames[4].payload) < 20_000 // 2


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_core_send_below_threshold_is_not_compressed(client: bool) -> None:
    core, _, written = deflate_core(client=client)
    core.send_text("x" * 127)
    core.send_text("")
    core.send_binary(b"\x00" * 127)
    core.send_binary(b"\x00" * 128)
    frames = parse_frame_details(b"".join(written))
    assert [(f.rsv, f.opcode, f.payload) for f in frames[:3]] == [
        (0, TEXT, b"x" * 127),
        (0, TEXT, b""),
        (0, BINARY, b"\x00" * 127),
    ]
    assert frames[3].rsv == RSV1 and len(frames[3].payload) < 128


def test_core_send_threshold_is_configurable() -> None:
    for threshold, expected_rsv in ((0, RSV1), (1000, 0)):
        core, _, written = deflate_core(deflate=codec(threshold=threshold))
        core.send_text("a" * 500)
        core.send_text("")
        assert [f.rsv for f in parse_frame_details(b"".join(written))] == [expected_rsv, expected_rsv]


def test_core_send_with_8_bit_window_goes_uncompressed() -> None:
    core, _, written = deflate_core(deflate=codec(compress_bits=8))
    core.send_text("z" * 1000)
    core.send_data_frame(BINARY, b"a" * 1000, False)
    core.send_data_frame(CONT, b"b" * 1000, True)
    frames = parse_frame_details(b"".join(written))
    assert [(f.rsv, f.payload) for f in frames] == [(0, b"z" * 1000), (0, b"a" * 1000), (0, b"b" * 1000)]


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("no_context", [False, True])
def test_core_send_data_frame_stream(client: bool, no_context: bool) -> None:
    mine = codec(compress_no_context=no_context)
    core, _, written = deflate_core(client=client, deflate=mine)
    theirs = peer_codec_for(mine)
    for round_ in range(2):
        chunks = [TEXTISH[i * 5000 + round_ : (i + 1) * 5000 + round_] for i in range(4)] + [b"", RANDOM_KIB]
        written.clear()
        core.send_data_frame(BINARY, chunks[0], False)
        for c in chunks[1:-1]:
            core.send_data_frame(CONT, c, False)
        core.send_data_frame(CONT, chunks[-1], True)
        frames = parse_frame_details(b"".join(written))
        assert [(f.rsv, f.opcode, f.fin, f.masked) for f in frames] == [(RSV1, BINARY, False, client)] + [
            (0, CONT, False, client)
        ] * (len(chunks) - 2) + [(0, CONT, True, client)]
        payload = b"".join(f.payload for f in frames)
        assert theirs.decompress(payload, True, None) == b"".join(chunks)
        # A whole message after the stream still inflates with the receiver's state.
        written.clear()
        core.send_text("after the stream " * 20)
        (after,) = parse_frame_details(b"".join(written))
        assert after.rsv == RSV1
        assert theirs.decompress(after.payload, True, None) == ("after the stream " * 20).encode()


@pytest.mark.parametrize("no_context", [False, True])
def test_core_to_core_roundtrip(no_context: bool) -> None:
    client_codec = codec(compress_bits=10, compress_no_context=no_context, decompress_bits=11)
    server_codec = codec(compress_bits=11, decompress_bits=10, decompress_no_context=no_context)
    client, client_rec, to_server = deflate_core(client=True, deflate=client_codec)
    server, server_rec, to_client = deflate_core(client=False, deflate=server_codec)
    expected: list[tuple[Any, ...]] = []
    for i in range(100):
        text = TEXTISH[i * 50 : i * 50 + 20 * i].decode()
        client.send_text(text)
        expected.append(("text", text))
    client.send_data_frame(BINARY, b"x" * 3000, False)
    client.send_data_frame(CONT, b"y" * 3000, True)
    expected += [("binary_start",), ("binary", b"x" * 3000 + b"y" * 3000, True)]
    server.receive_data(b"".join(to_server))
    assert server_rec.merged() == expected
    for i in range(50):
        server.send_binary(RANDOM_KIB * (i % 3 + 1))
    client.receive_data(b"".join(to_client))
    binaries = [c[1] for c in client_rec.merged() if c[0] == "binary"]
    assert binaries == [RANDOM_KIB * (i % 3 + 1) for i in range(50)]
