"""The server's handshake hooks, as data: what they are given and what their answers mean.

``verify_client``, ``http_handler`` and ``select_protocol`` are application
code that both I/O layers (asyncio and threads) call; reading their answers
and building the HTTP responses that follow is done here, without I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import HandshakeError
from .handshake import build_error_response, choose_protocol

__all__ = ["HttpRequest", "error_response", "response_parts", "strip_body", "refusal", "choose"]


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as the server's hooks see it (``http_handler``)."""

    #: The method, e.g. ``"GET"``.
    method: str
    #: The request target, query included, e.g. ``"/chat?room=1"``.
    path: str
    #: The headers: read-only, case-insensitive, names lower-cased.
    headers: Mapping[str, str]
    #: The peer's address as the socket reports it.
    remote_address: Any


def error_response(error: HandshakeError, headers: Iterable[tuple[str, str]] | None = None) -> bytes:
    """The HTTP response refusing an upgrade with ``error.status`` (400 when None)."""
    status = error.status or 400
    extra = list(headers or ())
    if status == 426:
        if "version" in str(error).lower():
            extra.append(("Sec-WebSocket-Version", "13"))
        else:
            extra.append(("Upgrade", "websocket"))
    elif status == 405:
        extra.append(("Allow", "GET"))
    return build_error_response(status, extra)


def response_parts(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Check an ``http_handler`` result ``(status, headers, body)``.

    Raises:
        TypeError: it is not such a triple, or one part has the wrong type.
    """
    if not isinstance(result, tuple) or len(result) != 3:
        raise TypeError(f"http_handler must return None or (status, headers, body), not {result!r}")
    status, headers, body = result
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise TypeError(f"invalid HTTP status {status!r}")
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is None:
        body = b""
    elif not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"the response body must be bytes or str, not {type(body).__name__}")
    return status, [(str(k), str(v)) for k, v in items], bytes(body)


def strip_body(response: bytes) -> bytes:
    """The head of a complete HTTP ``response`` (for HEAD)."""
    end = response.find(b"\r\n\r\n")
    return response if end < 0 else response[: end + 4]


def refusal(verdict: Any) -> tuple[int, list[tuple[str, str]], str | None] | None:
    """Read ``verify_client``'s answer: None to accept, else ``(status, headers, problem)``.

    True accepts; False refuses with 403, an int with that status,
    ``(status, headers)`` with both. Anything else, or a status outside
    400..599, refuses with 500 and ``problem`` says why (for the log).
    """
    if verdict is True:
        return None
    status: Any = 403
    raw: Any = []
    if isinstance(verdict, tuple) and len(verdict) == 2:
        status, raw = verdict
    elif isinstance(verdict, int) and not isinstance(verdict, bool):
        status = verdict
    elif verdict is not False:
        return 500, [], f"verify_client returned {verdict!r}; refusing with 500"
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        return 500, [], f"verify_client returned status {status!r}; refusing with 500"
    items = list(raw.items()) if isinstance(raw, Mapping) else list(raw or ())
    return status, [(str(k), str(v)) for k, v in items], None


def choose(offered: list[str], valid_protocols: list[str] | None, select: Any, subject: Any) -> Any:
    """The subprotocol to agree on: ``select(subject, offered)`` when given, else from ``valid_protocols``.

    Nothing offered: None, and ``select`` is not asked (as in nodejs-websocket).
    What ``select`` returns is returned as is (the asyncio layer awaits it).
    """
    if not offered:
        return None
    if select is not None:
        return select(subject, list(offered))
    if valid_protocols is not None:
        return choose_protocol(offered, valid_protocols)
    return None
