"""The opening handshake of one connection, each side as a sans-I/O object.

:class:`ServerHandshake` and :class:`ClientHandshake` take the bytes the
socket received (:meth:`~ServerHandshake.receive_data`, and
:meth:`~ServerHandshake.receive_eof` when it ended), collect the HTTP head
within ``max_header_size`` bytes, parse and check it, and say what happens
next through their :attr:`~ServerHandshake.state`; the bytes to write come
out of :meth:`~ServerHandshake.data_to_send`. They call no application code:
the server's hooks (``verify_client``, ``select_protocol``, ``http_handler``)
are called by the I/O layer, sync or async, whose answers are handed back
(:meth:`ServerHandshake.verify`, :meth:`ServerHandshake.accept`,
:meth:`ServerHandshake.answer_http`). Both the asyncio layer and the threaded
``wsevents.sync`` drive these objects, so the flow exists once.

Server states::

    READING --(request head)--> UPGRADE --admit/verify/accept--> ACCEPTED
       |                           '--(refused)--> REFUSED
       |--(plain HTTP, http_handler set)--> HTTP --answer_http--> ANSWERED
       |--(bad or oversize head)--> REFUSED
       '--(EOF)--> FAILED

Client states::

    READING --(101, checked)--> ACCEPTED
       |--(redirect, redirects followed)--> REDIRECT
       '--(bad answer, refusal, EOF)--> FAILED

The I/O layer enforces :attr:`~ServerHandshake.timeout` (the
``handshake_timeout`` option) from the moment the socket connected until the
state leaves READING/UPGRADE/HTTP; on expiry it closes the socket.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ..errors import HandshakeError, InvalidMessage, InvalidUpgrade
from .deflate import DeflateConfig, PerMessageDeflate, client_accept, client_offer, server_accept
from .handshake import (
    MAX_HEAD_SIZE,
    MAX_HEADERS,
    Request,
    Response,
    build_accept_response,
    build_error_response,
    build_request,
    check_request,
    check_response,
    generate_key,
    is_upgrade,
    parse_protocols,
    parse_request,
    parse_response,
)
from .head import HeadBuffer
from .hooks import error_response, refusal, response_parts, strip_body
from .proxy import REDIRECT_STATUSES, strip_credentials
from .url import WebSocketURL, client_headers

__all__ = ["HandshakeState", "ServerHandshake", "ClientHandshake", "LINGER_BYTES", "LINGER_SECONDS"]

# After a refusal the server half-closes, then reads and throws away what the client still
# sends before it closes: closing with unread input makes the kernel answer with a reset, which a
# client still sending (say, a head over max_header_size) would see instead of the response.
#: At most this many bytes are read so.
LINGER_BYTES = 1024 * 1024
#: For at most ``close_timeout`` seconds, or this many when it is None.
LINGER_SECONDS = 5.0


class HandshakeState(enum.Enum):
    """Where an opening handshake stands (see the module docstring for the transitions)."""

    #: Collecting the head.
    READING = "reading"
    #: Server: a valid upgrade request waits for admission, ``verify_client`` and ``select_protocol``.
    UPGRADE = "upgrade"
    #: Server: a plain HTTP request waits for ``http_handler``'s answer.
    HTTP = "http"
    #: The connection is upgraded: the server wrote 101, or the client checked it.
    ACCEPTED = "accepted"
    #: Server: the upgrade is refused with an HTTP error response.
    REFUSED = "refused"
    #: Server: ``http_handler``'s response was written instead of an upgrade.
    ANSWERED = "answered"
    #: Client: the answer is a redirect to follow (:attr:`ClientHandshake.response`).
    REDIRECT = "redirect"
    #: The handshake failed with nothing (more) to write: the socket is closed.
    FAILED = "failed"


class _Settings(Protocol):
    """The options both sides read (the server's and the client's options objects have them)."""

    @property
    def max_header_size(self) -> int: ...
    @property
    def max_headers(self) -> int: ...
    @property
    def handshake_timeout(self) -> float | None: ...
    def deflate_config(self) -> DeflateConfig | None: ...


class ServerSettings(_Settings, Protocol):
    """What :meth:`ServerHandshake.from_options` reads from the server's options."""

    @property
    def origins(self) -> Sequence[str | None] | None: ...
    @property
    def http_handler(self) -> Any: ...


class ClientSettings(_Settings, Protocol):
    """What :meth:`ClientHandshake.from_options` reads from the client's options."""

    @property
    def protocols(self) -> Sequence[str]: ...
    @property
    def max_redirects(self) -> int: ...
    def header_items(self) -> list[tuple[str, str]]: ...


class ServerHandshake:
    """The server side of one opening handshake (RFC 6455 section 4.2), without I/O.

    Feed it with :meth:`receive_data` while :attr:`state` is READING. Then:

    - UPGRADE: :attr:`request` is a valid upgrade request; the I/O layer calls
      :meth:`admit`, then :meth:`verify` with ``verify_client``'s answer, then
      :meth:`accept` with ``select_protocol``'s, each of which may refuse.
    - HTTP: a plain request (only with ``http=True``); :meth:`answer_http`.
    - REFUSED / ANSWERED: write :meth:`data_to_send`, then close.
    - ACCEPTED: write :meth:`data_to_send` (the 101); :attr:`protocol`,
      :attr:`deflate` and :attr:`leftover` (the first frames) are set.
    - FAILED: the client closed first; close the socket.

    Every refusal leaves its :class:`~wsevents.errors.HandshakeError` in
    :attr:`error` and its status in :attr:`status`.
    """

    def __init__(
        self,
        *,
        max_header_size: int = MAX_HEAD_SIZE,
        max_headers: int = MAX_HEADERS,
        deflate: DeflateConfig | None = None,
        origins: Sequence[str | None] | None = None,
        http: bool = False,
        timeout: float | None = None,
    ) -> None:
        self._head = HeadBuffer(max_header_size)
        self._max_headers = max_headers
        self._deflate_config = deflate
        self._origins = origins
        self._http = http
        #: Seconds the I/O layer allows from the connection to the end of the handshake (None: no limit).
        self.timeout = timeout
        self.state = HandshakeState.READING
        #: The request, once its head parsed.
        self.request: Request | None = None
        #: The client's ``Sec-WebSocket-Key``, once checked.
        self.key = ""
        #: The subprotocols the client offered, most preferred first.
        self.offered: list[str] = []
        #: The agreed subprotocol (ACCEPTED), or None.
        self.protocol: str | None = None
        #: The permessage-deflate codec agreed (ACCEPTED), or None.
        self.deflate: PerMessageDeflate | None = None
        #: Why the handshake was refused or failed.
        self.error: HandshakeError | None = None
        #: A fault of the application's hook answer worth logging at ERROR (set with a 500 refusal).
        self.problem: str | None = None
        #: The status of the response written (101, the refusal's, http_handler's).
        self.status: int | None = None
        self._out = b""

    @classmethod
    def from_options(cls, options: ServerSettings) -> ServerHandshake:
        """A handshake with the limits, compression, ``origins`` and timeout of the server's ``options``."""
        return cls(
            max_header_size=options.max_header_size,
            max_headers=options.max_headers,
            deflate=options.deflate_config(),
            origins=options.origins,
            http=options.http_handler is not None,
            timeout=options.handshake_timeout,
        )

    @property
    def leftover(self) -> bytes:
        """The bytes received after the head (the client's first frames), to feed to the frame core."""
        return self._head.leftover

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the socket; once the head is complete they go to :attr:`leftover`."""
        if self.state is not HandshakeState.READING:
            self._head.leftover += data
            return
        try:
            head = self._head.feed(data, response=False)
            if head is not None:
                self._request(parse_request(head, self._max_headers))
        except HandshakeError as exc:
            self.refuse(exc)

    def receive_eof(self) -> None:
        """The client ended its side before the head was complete: FAILED."""
        if self.state is HandshakeState.READING:
            self.state = HandshakeState.FAILED
            self.error = InvalidMessage("the client closed the connection during the handshake")

    def _request(self, request: Request) -> None:
        self.request = request
        if self._http and not is_upgrade(request):
            self.state = HandshakeState.HTTP
            return
        self.key = check_request(request)
        self.offered = parse_protocols(request.headers.get("sec-websocket-protocol"))
        self.state = HandshakeState.UPGRADE

    def refuse(self, error: HandshakeError, headers: Iterable[tuple[str, str]] | None = None) -> None:
        """Refuse with ``error.status`` (400 when None) and ``headers``: REFUSED."""
        self.state = HandshakeState.REFUSED
        self.error = error
        self.status = error.status or 400
        self._out = error_response(error, headers)

    def admit(self, full: bool) -> bool:
        """The admission checks that need no application code; False when refused.

        ``full``: the server has ``max_connections`` (503). Then the
        ``Origin`` header must be one of ``origins`` (403).
        """
        if full:
            self.refuse(HandshakeError("too many connections", 503))
            return False
        if self._origins is not None:
            assert self.request is not None
            origin = self.request.headers.get("origin")
            if origin not in self._origins:
                self.refuse(HandshakeError(f"origin {origin!r} is not allowed", 403))
                return False
        return True

    def verify(self, verdict: Any) -> bool:
        """Apply ``verify_client``'s answer; False when it refused (see :func:`~.hooks.refusal`)."""
        refused = refusal(verdict)
        if refused is None:
            return True
        status, headers, self.problem = refused
        self.refuse(HandshakeError("refused by verify_client", status), headers)
        return False

    def accept(self, chosen: Any) -> bool:
        """Upgrade with ``select_protocol``'s answer (a str, or None/"" for none): ACCEPTED.

        Negotiates permessage-deflate and queues the 101 response. Anything
        but a str or None refuses with 500 and returns False.
        """
        if chosen is not None and not isinstance(chosen, str):
            self.problem = f"select_protocol returned {chosen!r}, not a str or None"
            self.refuse(HandshakeError("select_protocol returned a non-str", 500))
            return False
        assert self.request is not None
        self.protocol = chosen or None
        extra: list[tuple[str, str]] = []
        if self._deflate_config is not None:
            agreed = server_accept(self.request.headers.get("sec-websocket-extensions"), self._deflate_config)
            if agreed is not None:
                extra.append(("Sec-WebSocket-Extensions", agreed[0]))
                self.deflate = agreed[1]
        self.state = HandshakeState.ACCEPTED
        self.status = 101
        self._out = build_accept_response(self.key, self.protocol, extra)
        return True

    def answer_http(self, result: Any) -> bool:
        """Answer a plain request with ``http_handler``'s ``result``: ANSWERED.

        None answers 426 (as without ``http_handler``); ``(status, headers,
        body)`` that response, headers only for HEAD. A malformed result
        refuses with 500 (REFUSED, :attr:`problem` says why) and returns False.
        """
        assert self.request is not None
        if result is None:
            response = error_response(InvalidUpgrade("not a WebSocket upgrade request", 426))
            self.status = 426
        else:
            try:
                status, headers, body = response_parts(result)
                response = build_error_response(status, headers, body)
            except (TypeError, ValueError) as exc:
                self.problem = f"bad http_handler response: {exc}"
                self.refuse(HandshakeError(str(exc), 500))
                return False
            self.status = status
        if self.request.method == "HEAD":
            # The head a GET would get, Content-Length included, without the body (RFC 9110 9.3.2).
            response = strip_body(response)
        self.state = HandshakeState.ANSWERED
        self._out = response
        return True

    def data_to_send(self) -> bytes:
        """The response to write (once): the 101, a refusal or ``http_handler``'s answer."""
        out, self._out = self._out, b""
        return out


class ClientHandshake:
    """The client side of one opening handshake (RFC 6455 section 4.1), without I/O.

    :meth:`data_to_send` first gives the upgrade request; then feed the
    answer with :meth:`receive_data` while :attr:`state` is READING. Then:

    - ACCEPTED: :attr:`protocol`, :attr:`deflate`, :attr:`response` and
      :attr:`leftover` (the server's first frames) are set.
    - REDIRECT (only with ``redirects=True``): :attr:`response` is a 3xx
      whose target the I/O layer follows with a new handshake.
    - FAILED: :attr:`error` says why (its status is the server's when it refused).
    """

    def __init__(
        self,
        url: WebSocketURL,
        *,
        protocols: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
        deflate: DeflateConfig | None = None,
        max_header_size: int = MAX_HEAD_SIZE,
        max_headers: int = MAX_HEADERS,
        redirects: bool = False,
        timeout: float | None = None,
        key: str | None = None,
    ) -> None:
        self._head = HeadBuffer(max_header_size)
        self._max_headers = max_headers
        self._deflate_config = deflate
        self._redirects = redirects
        #: Seconds the I/O layer allows from the connection to the end of the handshake (None: no limit).
        self.timeout = timeout
        #: The ``Sec-WebSocket-Key`` sent.
        self.key = key or generate_key()
        #: The subprotocols offered, most preferred first.
        self.protocols = list(protocols)
        self.state = HandshakeState.READING
        #: The server's answer, once its head parsed.
        self.response: Response | None = None
        #: The agreed subprotocol (ACCEPTED), or None.
        self.protocol: str | None = None
        #: The permessage-deflate codec agreed (ACCEPTED), or None.
        self.deflate: PerMessageDeflate | None = None
        #: Why the handshake failed.
        self.error: HandshakeError | None = None
        offer = client_offer(deflate) if deflate is not None else None
        extra = client_headers(url, list(headers), offer)
        self._out = build_request(url.host_header, url.path, self.key, self.protocols, extra)

    @classmethod
    def from_options(
        cls, url: WebSocketURL, options: ClientSettings, *, cross_origin: bool = False, key: str | None = None
    ) -> ClientHandshake:
        """A handshake to ``url`` with the client's ``options``.

        ``cross_origin``: a redirect left the first URL's origin, so the
        application's credentials (``Authorization``, ``Cookie``) stay behind.
        """
        items = options.header_items()
        return cls(
            url,
            protocols=options.protocols,
            headers=strip_credentials(items) if cross_origin else items,
            deflate=options.deflate_config(),
            max_header_size=options.max_header_size,
            max_headers=options.max_headers,
            redirects=options.max_redirects > 0,
            timeout=options.handshake_timeout,
            key=key,
        )

    @property
    def leftover(self) -> bytes:
        """The bytes received after the response head (the server's first frames), for the frame core."""
        return self._head.leftover

    def data_to_send(self) -> bytes:
        """The upgrade request (once)."""
        out, self._out = self._out, b""
        return out

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the socket; once the head is complete they go to :attr:`leftover`."""
        if self.state is not HandshakeState.READING:
            self._head.leftover += data
            return
        try:
            head = self._head.feed(data, response=True)
            if head is not None:
                self._response(parse_response(head, self._max_headers))
        except HandshakeError as exc:
            self.state = HandshakeState.FAILED
            self.error = exc

    def receive_eof(self) -> None:
        """The server ended its side before the head was complete: FAILED."""
        if self.state is HandshakeState.READING:
            self.state = HandshakeState.FAILED
            self.error = InvalidMessage("the server closed the connection during the handshake")

    def _response(self, response: Response) -> None:
        self.response = response
        if self._redirects and response.status in REDIRECT_STATUSES:
            self.state = HandshakeState.REDIRECT
            return
        config = self._deflate_config
        self.protocol = check_response(response, self.key, self.protocols, config is not None)
        answer = response.headers.get("sec-websocket-extensions")
        if answer and config is not None:
            self.deflate = client_accept(answer, config)
        self.state = HandshakeState.ACCEPTED
