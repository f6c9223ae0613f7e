"""permessage-deflate (RFC 7692): negotiation and the per-connection codec, without I/O.

Negotiation. The client offers ``permessage-deflate; client_max_window_bits``
(plus whatever its :class:`DeflateConfig` asks for); the server takes the
first offer whose parameters are valid (an invalid or duplicated parameter
makes it *decline* that offer, RFC 7692 section 5.1) and answers with what it
accepted. The client fails the handshake on an answer it cannot accept
(section 5.1 as well): unknown or duplicated parameters, values outside 8..15,
``client_max_window_bits`` it did not offer, a larger window than it asked for.

The codec. A message is compressed with ``Z_SYNC_FLUSH`` and sent without its
final ``00 00 ff ff`` (section 7.2.1); received ones get it back before
inflating. Inflating is bounded: the caller gives the most output it accepts
and gets :class:`~wsevents.errors.MessageTooBig` past it, so a small
compressed message can never expand in memory beyond the limit (a
"decompression bomb").

zlib's window-bits-8 quirk: zlib cannot *compress* raw deflate with an 8-bit
window (it silently uses 9), so a side asked to compress with at most 8 bits
sends its messages uncompressed, which RFC 7692 allows per message. Inflating
always uses a window of at least 9 bits, which reads 8-bit streams too.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import MessageTooBig, NegotiationError, ProtocolError

__all__ = [
    "EXTENSION",
    "DeflateConfig",
    "DeflateParams",
    "PerMessageDeflate",
    "parse_extensions",
    "client_offer",
    "server_accept",
    "client_accept",
]

EXTENSION = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_PARAMS = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


@dataclass(frozen=True)
class DeflateConfig:
    """What one side wants from permessage-deflate (the ``compression`` option as a dict).

    ``server_max_window_bits`` / ``client_max_window_bits``: the LZ77 window
    (8..15) the server / client compresses with; smaller saves memory
    (``2 ** (bits + 2)`` bytes for the compressor) at some cost in ratio.
    ``*_no_context_takeover``: that side starts every message afresh (no
    compression memory kept between messages; worse ratio on small messages).
    ``threshold``: messages shorter than this many bytes go uncompressed.
    ``level`` and ``mem_level``: zlib's ``compressobj`` settings.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    threshold: int = 128
    level: int = 6
    mem_level: int = 5

    @classmethod
    def from_option(cls, value: bool | Mapping[str, Any] | DeflateConfig | None) -> DeflateConfig | None:
        """Build from the ``compression`` option: True (defaults), False/None (off), a dict, or a config."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, DeflateConfig):
            return value
        if not isinstance(value, Mapping):
            raise TypeError("compression must be True, False or a dict of permessage-deflate settings")
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            raise TypeError(f"unknown compression setting(s): {', '.join(unknown)}")
        config = cls(**value)
        for name in ("server_max_window_bits", "client_max_window_bits"):
            bits = getattr(config, name)
            if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or not 8 <= bits <= 15):  # noqa: E501
                raise ValueError(f"{name} must be an int in 8..15, not {bits!r}")
        if not 0 <= config.threshold:
            raise ValueError("compression threshold must be >= 0")
        if not (-1 <= config.level <= 9 and 1 <= config.mem_level <= 9):
            raise ValueError("compression level must be -1..9 and mem_level 1..9")
        return config


@dataclass(frozen=True)
class DeflateParams:
    """The parameters of one offer or answer; ``client_max_window_bits`` is True when bare."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | bool | None = None


def parse_extensions(value: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Split a ``Sec-WebSocket-Extensions`` value into ``(name, [(param, value or None)])``.

    Raises:
        ValueError: a syntax error (empty name or parameter, unbalanced quotes).
    """
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    for item in value.split(","):
        if not item.strip():
            continue
        pieces = [p.strip() for p in item.split(";")]
        name = pieces[0]
        if not name:
            raise ValueError("empty extension name")
        params: list[tuple[str, str | None]] = []
        for piece in pieces[1:]:
            key, sep, raw = piece.partition("=")
            key = key.strip()
            if not key:
                raise ValueError("empty extension parameter")
            val: str | None = None
            if sep:
                raw = raw.strip()
                if raw.startswith('"'):
                    if len(raw) < 2 or not raw.endswith('"'):
                        raise ValueError("unbalanced quotes in extension parameter")
                    raw = raw[1:-1]
                val = raw
            params.append((key.lower(), val))
        result.append((name.lower(), params))
    return result


def _bits(value: str | None, name: str) -> int:
    if value is None or not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
        raise ValueError(f"{name} must be 8..15, not {value!r}")
    return int(value)


def _params(params: list[tuple[str, str | None]], answer: bool) -> DeflateParams:
    """Check one offer's or answer's parameters (RFC 7692 section 7.1)."""
    seen: dict[str, str | None] = {}
    for key, val in params:
        if key not in _PARAMS:
            raise ValueError(f"unknown parameter {key!r}")
        if key in seen:
            raise ValueError(f"duplicated parameter {key!r}")
        seen[key] = val
    for flag in ("server_no_context_takeover", "client_no_context_takeover"):
        if flag in seen and seen[flag] is not None:
            raise ValueError(f"{flag} takes no value")
    server_bits = None
    if "server_max_window_bits" in seen:
        server_bits = _bits(seen["server_max_window_bits"], "server_max_window_bits")
    client_bits: int | bool | None = None
    if "client_max_window_bits" in seen:
        raw = seen["client_max_window_bits"]
        if raw is None and not answer:
            client_bits = True
        else:
            client_bits = _bits(raw, "client_max_window_bits")
    return DeflateParams(
        "server_no_context_takeover" in seen, "client_no_context_takeover" in seen, server_bits, client_bits
    )


def _render(params: list[str]) -> str:
    return "; ".join([EXTENSION, *params])


def client_offer(config: DeflateConfig) -> str:
    """The client's ``Sec-WebSocket-Extensions`` offer."""
    params = []
    if config.server_no_context_takeover:
        params.append("server_no_context_takeover")
    if config.client_no_context_takeover:
        params.append("client_no_context_takeover")
    if config.server_max_window_bits is not None:
        params.append(f"server_max_window_bits={config.server_max_window_bits}")
    if config.client_max_window_bits is not None:
        params.append(f"client_max_window_bits={config.client_max_window_bits}")
    else:
        params.append("client_max_window_bits")
    return _render(params)


#: The window a side compresses with when nothing smaller was agreed.
DEFAULT_WINDOW_BITS = 12


def server_accept(header: str | None, config: DeflateConfig) -> tuple[str, PerMessageDeflate] | None:
    """Pick the first acceptable permessage-deflate offer; None to go without.

    Returns the response header value and the server's codec.
    """
    if not header:
        return None
    try:
        offers = parse_extensions(header)
    except ValueError:
        return None
    for name, raw in offers:
        if name != EXTENSION:
            continue
        try:
            offer = _params(raw, answer=False)
        except ValueError:
            continue  # decline this offer (RFC 7692 section 5.1), try the next one
        accepted = _answer_offer(offer, config)
        if accepted is not None:
            return accepted
    return None


def _answer_offer(offer: DeflateParams, config: DeflateConfig) -> tuple[str, PerMessageDeflate] | None:
    """The server's answer to one well-formed offer and its codec; None to decline it."""
    answer: list[str] = []
    server_nct = config.server_no_context_takeover or offer.server_no_context_takeover
    if server_nct:
        answer.append("server_no_context_takeover")
    client_nct = config.client_no_context_takeover or offer.client_no_context_takeover
    if client_nct:
        answer.append("client_no_context_takeover")
    server_bits = config.server_max_window_bits or DEFAULT_WINDOW_BITS
    if offer.server_max_window_bits is not None:
        server_bits = min(server_bits, offer.server_max_window_bits)
    if server_bits < 15 or offer.server_max_window_bits is not None:
        # Required when offered, allowed unasked (RFC 7692 section 7.1.2.1); it lets the
        # client inflate with a smaller window: 4 KiB instead of 32 KiB at the default 12 bits.
        answer.append(f"server_max_window_bits={server_bits}")
    client_bits = 15
    if offer.client_max_window_bits is not None:
        wanted = config.client_max_window_bits or DEFAULT_WINDOW_BITS
        if offer.client_max_window_bits is not True:
            wanted = min(wanted, int(offer.client_max_window_bits))
        client_bits = wanted
        answer.append(f"client_max_window_bits={client_bits}")
    elif config.client_max_window_bits is not None:
        return None  # we must limit the client's window but it cannot be asked to
    codec = PerMessageDeflate(
        compress_bits=server_bits,
        compress_no_context=server_nct,
        decompress_bits=client_bits,
        decompress_no_context=client_nct,
        config=config,
    )
    return _render(answer), codec


def client_accept(header: str, config: DeflateConfig) -> PerMessageDeflate:
    """Check the server's answer to :func:`client_offer`; return the client's codec.

    Raises:
        HandshakeError: the answer is not one the offer allows.
    """
    try:
        answers = parse_extensions(header)
        if len(answers) != 1 or answers[0][0] != EXTENSION:
            raise ValueError("the server chose an extension that was not offered")
        got = _params(answers[0][1], answer=True)
        _check_server_terms(got, config)
        client_bits = _client_bits(got, config)
    except ValueError as exc:
        raise NegotiationError(f"Invalid handshake: bad permessage-deflate answer: {exc}") from None
    return PerMessageDeflate(
        compress_bits=client_bits,
        compress_no_context=config.client_no_context_takeover or got.client_no_context_takeover,
        decompress_bits=got.server_max_window_bits or 15,
        decompress_no_context=got.server_no_context_takeover,
        config=config,
    )


def _check_server_terms(got: DeflateParams, config: DeflateConfig) -> None:
    """Raise ValueError unless the answer grants what the client asked of the server's side."""
    if config.server_no_context_takeover and not got.server_no_context_takeover:
        raise ValueError("server_no_context_takeover was asked for but not agreed")
    if (
        config.server_max_window_bits is not None
        and got.server_max_window_bits is not None
        and got.server_max_window_bits > config.server_max_window_bits
    ):
        raise ValueError("server_max_window_bits larger than offered")
    if config.server_max_window_bits is not None and got.server_max_window_bits is None:
        raise ValueError("server_max_window_bits was asked for but not agreed")


def _client_bits(got: DeflateParams, config: DeflateConfig) -> int:
    """The client's compression window the answer allows (ValueError past what was offered)."""
    client_bits = config.client_max_window_bits or 15
    if got.client_max_window_bits is not None:
        if int(got.client_max_window_bits) > client_bits:
            raise ValueError("client_max_window_bits larger than offered")
        client_bits = int(got.client_max_window_bits)
    elif config.client_max_window_bits is None:
        client_bits = DEFAULT_WINDOW_BITS
    return client_bits


class PerMessageDeflate:
    """The codec of one connection, once negotiated.

    Memory: the compressor takes about ``2 ** (compress_bits + 2) + 2 ** (mem_level + 9)``
    bytes (32 KiB with the defaults of 12 bits and mem_level 5), the decompressor
    ``2 ** decompress_bits`` bytes, while the connection lives (unless that
    side has no context takeover, in which case they are made per message).
    """

    __slots__ = (
        "compress_bits",
        "compress_no_context",
        "decompress_bits",
        "decompress_no_context",
        "threshold",
        "_level",
        "_mem_level",
        "_compressor",
        "_decompressor",
        "_stream_compressed",
        "raw_out",
        "wire_out",
        "wire_in",
        "raw_in",
    )

    def __init__(
        self,
        *,
        compress_bits: int,
        compress_no_context: bool,
        decompress_bits: int,
        decompress_no_context: bool,
        config: DeflateConfig,
    ) -> None:
        self.compress_bits = compress_bits
        self.compress_no_context = compress_no_context
        self.decompress_bits = max(9, decompress_bits)
        self.decompress_no_context = decompress_no_context
        self.threshold = config.threshold
        self._level = config.level
        self._mem_level = config.mem_level
        self._compressor: Any = None
        self._decompressor: Any = None
        # Whether the message being sent in frames is compressed (decided at its first frame).
        self._stream_compressed = False
        #: Bytes before and after deflate, sent (raw_out -> wire_out) and received (wire_in -> raw_in).
        self.raw_out = 0
        self.wire_out = 0
        self.wire_in = 0
        self.raw_in = 0

    #: RSV1 marks a compressed message (RFC 7692 section 6): the :class:`~.extensions.Extension` interface.
    rsv = 0x40

    def decode(self, data: bytes | memoryview, last: bool, limit: int | None) -> bytes:
        """:meth:`decompress`, as the :class:`~.extensions.Extension` interface names it."""
        return self.decompress(data, last, limit)

    def encode_message(self, payload: bytes) -> tuple[bytes, int]:
        """A whole message: compressed (RSV1) unless under the threshold or the window is 8 bits."""
        if len(payload) >= self.threshold and self.can_compress:
            return self.compress(payload), 0x40
        return payload, 0

    def encode_frame(self, data: bytes, first: bool, fin: bool) -> tuple[bytes, int]:
        """A frame of a streamed message, compressed as a whole: RSV1 on its first frame,
        each frame's data flushed so that the peer can inflate it as it arrives."""
        if first:
            self._stream_compressed = self.can_compress
        if not self._stream_compressed:
            return data, 0
        return self.compress(data, fin), 0x40 if first else 0

    @property
    def can_compress(self) -> bool:
        """False when the agreed window is 8 bits, which zlib cannot produce."""
        return self.compress_bits >= 9

    def compress(self, data: bytes, fin: bool = True) -> bytes:
        """Compress one whole message (``fin``) or one fragment of a streamed message."""
        comp = self._compressor
        if comp is None:
            comp = self._compressor = zlib.compressobj(
                self._level, zlib.DEFLATED, -self.compress_bits, self._mem_level
            )
        out: bytes = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            if out.endswith(_TAIL):
                out = out[:-4]
            if self.compress_no_context:
                self._compressor = None
        self.raw_out += len(data)
        self.wire_out += len(out)
        return out

    def decompress(self, data: bytes | memoryview, fin: bool, max_size: int | None) -> bytes:
        """Inflate the next piece of a message; ``fin`` marks its last piece.

        Raises:
            MessageTooBig: the output would exceed ``max_size`` bytes.
            ProtocolError: 1007, the data is not valid deflate.
        """
        dec = self._decompressor
        if dec is None:
            dec = self._decompressor = zlib.decompressobj(-self.decompress_bits)
        bound = 0 if max_size is None else max_size + 1
        try:
            out: bytes = dec.decompress(data, bound)
            if max_size is not None and len(out) > max_size:
                raise MessageTooBig(f"message inflates to over {max_size} bytes")
            if fin:
                rest = dec.decompress(_TAIL, 0 if max_size is None else bound - len(out))
                if rest:
                    out += rest
                    if max_size is not None and len(out) > max_size:
                        raise MessageTooBig(f"message inflates to over {max_size} bytes")
                if self.decompress_no_context:
                    self._decompressor = None
        except zlib.error as exc:
            self._decompressor = None
            raise ProtocolError(f"invalid compressed data: {exc}", 1007) from None
        self.wire_in += len(data)
        self.raw_in += len(out)
        return out
