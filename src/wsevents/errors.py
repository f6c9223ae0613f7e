"""The exception hierarchy of wsevents.

::

    WebSocketError                 base of everything wsevents raises
    ├── HandshakeError             the opening handshake failed (.status: HTTP status or None)
    ├── ProtocolError              the peer broke RFC 6455 (.code: 1002 or 1007)
    ├── MessageTooBig              a message or frame exceeded a limit (.code: 1009)
    ├── InvalidState               a call that the connection's state forbids (local misuse)
    │   └── ConcurrencyError       a second reader while one waits (also a RuntimeError)
    └── ConnectionClosed           the connection is closed (.code, .reason)

Errors caused by the peer (``ProtocolError``, ``MessageTooBig``) carry the close
code the connection was failed with; errors caused by the caller
(``InvalidState``, plus the standard ``ValueError``/``TypeError`` for bad
arguments) are raised at the call. Network errors stay the standard
``OSError`` subclasses (``ConnectionRefusedError``, ...).
"""

from __future__ import annotations

__all__ = [
    "WebSocketError",
    "HandshakeError",
    "ProtocolError",
    "MessageTooBig",
    "InvalidState",
    "ConcurrencyError",
    "ConnectionClosed",
]


class WebSocketError(Exception):
    """Base class of every exception raised by wsevents."""


class HandshakeError(WebSocketError):
    """The opening handshake failed.

    ``status`` is the HTTP status of a rejected handshake (e.g. 403), or
    ``None`` when there was no usable HTTP response (or on the server side,
    the status that was sent back to the client).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455; ``code`` is the close code sent (1002 or 1007)."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


class MessageTooBig(ProtocolError):
    """A message exceeded ``max_buffer_length``; the connection closes with 1009."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 1009)


class InvalidState(WebSocketError):
    """A call that the connection's current state forbids (a local misuse)."""


class ConcurrencyError(InvalidState, RuntimeError):
    """Two coroutines read at once (``recv()`` on a connection, or reads of one InStream).

    Only one reader may wait at a time; the second is refused at once instead
    of waiting for data that the first would take.
    """


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code`` and ``reason`` say how it ended."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason
