"""permessage-deflate (RFC 7692): negotiation both sides, the codec, its bounds and zlib's quirk."""

from __future__ import annotations

import itertools
import zlib

import pytest

from wsevents.errors import HandshakeError, MessageTooBig, ProtocolError
from wsevents.protocol.deflate import (
    DeflateConfig,
    PerMessageDeflate,
    client_accept,
    client_offer,
    parse_extensions,
    server_accept,
)

DEFAULT = DeflateConfig()


def answer_params(header: str) -> dict[str, str | None]:
    ((name, params),) = parse_extensions(header)
    assert name == "permessage-deflate"
    return dict(params)


# -- parsing -------------------------------------------------------------------------


def test_parse_several_offers_with_values_quotes_and_spaces() -> None:
    header = (
        'permessage-deflate ;client_max_window_bits; server_max_window_bits="10" ,'
        " x-other, permessage-deflate"
    )
    assert parse_extensions(header) == [
        ("permessage-deflate", [("client_max_window_bits", None), ("server_max_window_bits", "10")]),
        ("x-other", []),
        ("permessage-deflate", []),
    ]


@pytest.mark.parametrize("bad", ["; a", "permessage-deflate; =1", 'permessage-deflate; a="1'])
def test_parse_syntax_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_extensions(bad)


# -- the server's choice --------------------------------------------------------------


def test_no_offer_or_other_extensions_only() -> None:
    assert server_accept(None, DEFAULT) is None
    assert server_accept("", DEFAULT) is None
    assert server_accept("x-webkit-deflate-frame", DEFAULT) is None


@pytest.mark.parametrize(
    "invalid",
    [
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=8x",
        "permessage-deflate; client_no_context_takeover=1",
    ],
)
def test_an_invalid_offer_is_declined_and_the_next_taken(invalid: str) -> None:
    assert server_accept(invalid, DEFAULT) is None
    agreed = server_accept(f"{invalid}, permessage-deflate; client_no_context_takeover", DEFAULT)
    assert agreed is not None
    assert "client_no_context_takeover" in answer_params(agreed[0])


def test_the_first_acceptable_offer_wins() -> None:
    agreed = server_accept(
        "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_no_context_takeover",
        DEFAULT,
    )
    assert agreed is not None
    params = answer_params(agreed[0])
    assert params["server_max_window_bits"] == "10"
    assert "server_no_context_takeover" not in params
    assert agreed[1].compress_bits == 10


FLAGS = [
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits=9",
    "client_max_window_bits",
]


@pytest.mark.parametrize(
    "params",
    [c for n in range(len(FLAGS) + 1) for c in itertools.combinations(FLAGS, n)],
    ids=lambda c: "+".join(c) or "none",
)
def test_every_combination_of_the_four_parameters(params: tuple[str, ...]) -> None:
    offer = "; ".join(["permessage-deflate", *params])
    agreed = server_accept(offer, DEFAULT)
    assert agreed is not None
    header, codec = agreed
    got = answer_params(header)
    assert ("server_no_context_takeover" in got) == ("server_no_context_takeover" in params)
    assert codec.compress_no_context == ("server_no_context_takeover" in params)
    assert ("client_no_context_takeover" in got) == ("client_no_context_takeover" in params)
    assert codec.decompress_no_context == ("client_no_context_takeover" in params)
    # The server always says its window (12 by default, 9 when the client limits it).
    assert got["server_max_window_bits"] == ("9" if "server_max_window_bits=9" in params else "12")
    # client_max_window_bits is answered only when offered (12 by default).
    if "client_max_window_bits" in params:
        assert got["client_max_window_bits"] == "12"
        assert codec.decompress_bits == 12
    else:
        assert "client_max_window_bits" not in got
        assert codec.decompress_bits == 15
    # Whatever the server answers, the client accepts it.
    client = client_accept(header, DeflateConfig())
    assert client.compress_no_context == ("client_no_context_takeover" in params)


def test_server_config_limits_and_requirements() -> None:
    config = DeflateConfig(
        server_max_window_bits=10, client_max_window_bits=9, server_no_context_takeover=True
    )
    agreed = server_accept("permessage-deflate; client_max_window_bits=11", config)
    assert agreed is not None
    params = answer_params(agreed[0])
    assert params == {
        "server_no_context_takeover": None,
        "server_max_window_bits": "10",
        "client_max_window_bits": "9",
    }
    # The client did not offer client_max_window_bits: it cannot be asked to limit its window.
    assert server_accept("permessage-deflate", config) is None


# -- the client's check ---------------------------------------------------------------


def test_client_offers() -> None:
    assert client_offer(DEFAULT) == "permessage-deflate; client_max_window_bits"
    assert client_offer(
        DeflateConfig(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=10,
            client_max_window_bits=11,
        )
    ) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=11"
    )


def test_client_accepts_valid_answers() -> None:
    codec = client_accept("permessage-deflate", DEFAULT)
    assert (codec.compress_bits, codec.decompress_bits) == (12, 15)
    codec = client_accept("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9", DEFAULT)
    assert (codec.compress_bits, codec.decompress_bits) == (9, 10)
    codec = client_accept(
        "permessage-deflate; client_no_context_takeover; server_no_context_takeover", DEFAULT
    )
    assert codec.compress_no_context and codec.decompress_no_context


@pytest.mark.parametrize(
    ("answer", "config"),
    [
        ("permessage-deflate, permessage-deflate", DEFAULT),
        ("x-other", DEFAULT),
        ("permessage-deflate; unknown", DEFAULT),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", DEFAULT),
        ("permessage-deflate; server_max_window_bits=16", DEFAULT),
        ("permessage-deflate; client_max_window_bits", DEFAULT),
        ("permessage-deflate; client_max_window_bits=12", DeflateConfig(client_max_window_bits=10)),
        ("permessage-deflate; server_max_window_bits=12", DeflateConfig(server_max_window_bits=10)),
        ("permessage-deflate", DeflateConfig(server_max_window_bits=10)),
        ("permessage-deflate", DeflateConfig(server_no_context_takeover=True)),
    ],
)
def test_client_refuses_answers_its_offer_does_not_allow(answer: str, config: DeflateConfig) -> None:
    with pytest.raises(HandshakeError) as info:
        client_accept(answer, config)
    assert str(info.value).startswith("Invalid handshake")


@pytest.mark.parametrize(
    "option",
    [
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 7},
        {"nonsense": 1},
        {"threshold": -1},
        "yes",
    ],
)
def test_bad_compression_options(option: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        DeflateConfig.from_option(option)  # type: ignore[arg-type]


def test_compression_option_forms() -> None:
    assert DeflateConfig.from_option(False) is None
    assert DeflateConfig.from_option(None) is None
    assert DeflateConfig.from_option(True) == DEFAULT
    assert DeflateConfig.from_option({"threshold": 0}) == DeflateConfig(threshold=0)


# -- the codec ------------------------------------------------------------------------------


def pair(no_context: bool = False, bits: int = 12) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    sender = PerMessageDeflate(
        compress_bits=bits,
        compress_no_context=no_context,
        decompress_bits=15,
        decompress_no_context=False,
        config=DEFAULT,
    )
    receiver = PerMessageDeflate(
        compress_bits=15,
        compress_no_context=False,
        decompress_bits=bits,
        decompress_no_context=no_context,
        config=DEFAULT,
    )
    return sender, receiver


def test_context_takeover_shrinks_repeated_messages() -> None:
    sender, receiver = pair()
    message = bytes(range(256)) * 4
    first = sender.compress(message)
    second = sender.compress(message)
    assert len(second) < len(first) / 4
    for wire in (first, second):
        assert not wire.endswith(b"\x00\x00\xff\xff")
        assert receiver.decompress(wire, True, None) == message


def test_without_context_takeover_every_message_compresses_alike() -> None:
    sender, receiver = pair(no_context=True)
    message = b"the same message, again and again " * 10
    wires = [sender.compress(message) for _ in range(3)]
    assert wires[0] == wires[1] == wires[2]
    assert all(receiver.decompress(w, True, None) == message for w in wires)


def test_fragment_wise_compression() -> None:
    sender, receiver = pair()
    pieces = [b"first piece " * 50, b"second piece " * 50, b"last piece"]
    wire = [sender.compress(p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)]
    out = b"".join(receiver.decompress(w, i == len(wire) - 1, None) for i, w in enumerate(wire))
    assert out == b"".join(pieces)


def test_decompression_is_bounded() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    wire = bomb.compress(bytes(10 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(wire) < 20_000
    _, receiver = pair(bits=15)
    with pytest.raises(MessageTooBig):
        receiver.decompress(wire[:-4], True, 1 << 20)
    _, receiver = pair(bits=15)
    exact = zlib.compressobj(6, zlib.DEFLATED, -15)
    wire = exact.compress(bytes(1000)) + exact.flush(zlib.Z_SYNC_FLUSH)
    assert receiver.decompress(wire[:-4], True, 1000) == bytes(1000)
    _, receiver = pair(bits=15)
    with pytest.raises(MessageTooBig):
        receiver.decompress(wire[:-4], True, 999)


def test_invalid_deflate_data_is_1007() -> None:
    _, receiver = pair()
    with pytest.raises(ProtocolError) as info:
        receiver.decompress(b"\xff\xff\xff\xff", True, None)
    assert info.value.code == 1007


def test_window_bits_8_quirk() -> None:
    """zlib cannot compress with an 8-bit window, so such a side sends uncompressed;
    inflating uses at least 9 bits and reads what zlib produced "for 8 bits"."""
    sender8 = PerMessageDeflate(
        compress_bits=8,
        compress_no_context=False,
        decompress_bits=8,
        decompress_no_context=False,
        config=DEFAULT,
    )
    assert not sender8.can_compress
    assert sender8.decompress_bits == 9
    zlib9 = zlib.compressobj(6, zlib.DEFLATED, -9)
    wire = zlib9.compress(b"abc" * 1000) + zlib9.flush(zlib.Z_SYNC_FLUSH)
    assert sender8.decompress(wire[:-4], True, None) == b"abc" * 1000
