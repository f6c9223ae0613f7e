"""The exception hierarchy of wsevents.

::

    WebSocketError                 base of everything wsevents raises
    ├── InvalidURI                 not a usable ws://, wss:// or ws+unix:// URL (also a ValueError)
    ├── HandshakeError             the opening handshake failed (.status: HTTP status or None)
    │   ├── InvalidStatus          the server answered with a status other than 101 (.status)
    │   ├── InvalidMessage         the peer's HTTP head is malformed, too big or cut short
    │   ├── InvalidUpgrade         a well-formed head that is not a valid WebSocket upgrade
    │   ├── NegotiationError       an extension or subprotocol answer that the offer does not allow
    │   ├── ProxyError             the HTTP or SOCKS proxy refused or broke the tunnel (.status: the proxy's)
    │   └── HandshakeTimeout       the connection or the handshake took longer than its timeout
    ├── ProtocolError              the peer broke RFC 6455 (.code: 1002 or 1007)
    │   └── MessageTooBig          a message or frame exceeded a limit (.code: 1009)
    ├── InvalidState               a call that the connection's state forbids (local misuse)
    │   └── ConcurrencyError       a second reader while one waits (also a RuntimeError)
    └── ConnectionClosed           the connection is closed (.code, .reason)
        ├── ConnectionClosedOK     ... with 1000 (normal) or 1001 (going away)
        └── ConnectionClosedError  ... with any other code (1005, 1006: no close frame, 1011, ...)

Errors caused by the peer (``ProtocolError``, ``MessageTooBig``) carry the close
code the connection was failed with; errors caused by the caller
(``InvalidState``, plus the standard ``ValueError``/``TypeError`` for bad
arguments) are raised at the call. Network errors stay the standard
``OSError`` subclasses (``ConnectionRefusedError``, ...).

The subclasses only narrow: ``except HandshakeError`` or ``except
ConnectionClosed`` catches them all, as before they existed. The close code
alone decides between ``ConnectionClosedOK`` and ``ConnectionClosedError``:
``ConnectionClosed(code, reason)`` returns an instance of the one that
``code`` calls for, the same rule that ends ``async for message in conn``
quietly (1000, 1001) or with the error (any other code).
"""

from __future__ import annotations

__all__ = [
    "WebSocketError",
    "InvalidURI",
    "HandshakeError",
    "InvalidStatus",
    "InvalidMessage",
    "InvalidUpgrade",
    "NegotiationError",
    "ProxyError",
    "HandshakeTimeout",
    "ProtocolError",
    "MessageTooBig",
    "InvalidState",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "OK_CLOSE_CODES",
]

# Literals, not CloseCode members: this module is the foundation, below protocol/.
_PROTOCOL_ERROR = 1002
_MESSAGE_TOO_BIG = 1009

#: The close codes of a normal end: ``ConnectionClosedOK``, and ``async for`` stops quietly.
OK_CLOSE_CODES = frozenset({1000, 1001})


class WebSocketError(Exception):
    """Base class of every exception raised by wsevents."""


class InvalidURI(WebSocketError, ValueError):
    """A URL that cannot be connected to: not a str, another scheme, no host, a fragment, ...

    Also a ``ValueError``, which is what a bad URL raised before this class existed.
    """


class HandshakeError(WebSocketError):
    """The opening handshake failed.

    ``status`` is the HTTP status of a rejected handshake (e.g. 403), or
    ``None`` when there was no usable HTTP response (or on the server side,
    the status that was sent back to the client).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidStatus(HandshakeError):
    """The server answered with an HTTP status other than 101 (``status``).

    A page or an API at that address (2xx), a refusal (403, 404, 5xx, ...),
    or a redirect that cannot be followed (too many, no ``Location``, a
    target that is not a WebSocket URL).
    """


class InvalidMessage(HandshakeError):
    """The peer's HTTP head is malformed, over the size or header-count limit, or cut short.

    On the server side ``status`` is what was answered (400 or 431).
    """


class InvalidUpgrade(HandshakeError):
    """A well-formed HTTP head that is not a valid WebSocket upgrade (RFC 6455 section 4).

    A missing ``Upgrade: websocket`` or ``Connection: Upgrade``, a bad
    ``Sec-WebSocket-Key``, version or ``Sec-WebSocket-Accept``, a method other
    than GET. On the server side ``status`` is what was answered (400, 405, 426).
    """


class NegotiationError(HandshakeError):
    """The server chose an extension or subprotocol that was not offered, or none when one was required."""


class ProxyError(HandshakeError):
    """The HTTP or SOCKS proxy refused the tunnel or broke it; ``status`` is the proxy's, if any."""


class HandshakeTimeout(HandshakeError):
    """Connecting (TCP, TLS, proxy) or the opening handshake took longer than allowed."""


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455; ``code`` is the close code sent (1002 or 1007)."""

    def __init__(self, message: str, code: int = _PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


class MessageTooBig(ProtocolError):
    """A message exceeded ``max_buffer_length``; the connection closes with 1009."""

    def __init__(self, message: str) -> None:
        super().__init__(message, _MESSAGE_TOO_BIG)


class InvalidState(WebSocketError):
    """A call that the connection's current state forbids (a local misuse)."""


class ConcurrencyError(InvalidState, RuntimeError):
    """Two coroutines read at once (``recv()`` on a connection, or reads of one InStream).

    Only one reader may wait at a time; the second is refused at once instead
    of waiting for data that the first would take.
    """


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code`` and ``reason`` say how it ended.

    ``ConnectionClosed(code, reason)`` makes a :class:`ConnectionClosedOK`
    when ``code`` is 1000 or 1001 and a :class:`ConnectionClosedError`
    otherwise, so ``except ConnectionClosedError`` sees every abnormal end
    whichever code path raised it.
    """

    def __new__(cls, code: int, reason: str = "") -> ConnectionClosed:
        if cls is ConnectionClosed:
            cls = ConnectionClosedOK if code in OK_CLOSE_CODES else ConnectionClosedError
        return super().__new__(cls, code, reason)

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class ConnectionClosedOK(ConnectionClosed):
    """The connection ended normally: close code 1000 or 1001."""


class ConnectionClosedError(ConnectionClosed):
    """The connection ended with a close code other than 1000 and 1001.

    1006 when the TCP connection dropped without a close frame, 1005 for a
    close frame without a code, 1002/1007/1009 for a protocol failure, 1011
    for an internal error, or whatever code the peer chose.
    """
