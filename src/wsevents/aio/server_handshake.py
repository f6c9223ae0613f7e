"""The server side of the opening handshake: the hooks (``http_handler``, ``verify_client``,
``select_protocol``, possibly async), admission, and refusals that do not lose their answer.

What the request says and how to answer it is decided by ``protocol/opening.py``'s
``ServerHandshake``; this module runs the hooks and writes the answer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from ..errors import HandshakeError
from ..metrics import record_refusal
from ..protocol.hooks import HttpRequest, choose, error_response
from ..protocol.opening import LINGER_BYTES, LINGER_SECONDS, HandshakeState, ServerHandshake
from .connection import Connection
from .server_base import _ServerBase
from .server_side import handshake_done, loop_of

__all__ = ["_HandshakeDriver", "reject", "respond"]

logger = logging.getLogger("wsevents")


def reject(conn: Connection, error: HandshakeError, headers: list[tuple[str, str]] | None = None) -> None:
    """Answer a failed upgrade request with ``error.status`` and close the socket (see :func:`respond`)."""
    logger.debug("rejecting handshake from %s: %s (%d)", conn.remote_address, error, error.status or 400)
    if conn.server is not None:
        record_refusal(conn.server.metrics, error.status or 400)
    respond(conn, error_response(error, headers))


def _refused(conn: Connection, handshake: ServerHandshake) -> None:
    """Write the refusal ``handshake`` holds and close the socket (see :func:`respond`)."""
    status = handshake.status or 400
    logger.debug("rejecting handshake from %s: %s (%d)", conn.remote_address, handshake.error, status)
    if conn.server is not None:
        record_refusal(conn.server.metrics, status)
    respond(conn, handshake.data_to_send())


def respond(conn: Connection, response: bytes) -> None:
    """Write a final HTTP ``response`` and close the socket without losing it to a reset.

    Closing a socket whose input was not all read makes the kernel answer
    with a reset, and a client still sending (say, a head over
    ``max_header_size``) would see that instead of the response. So the
    sending side is shut down first (when the transport can: not over TLS),
    then what the client still sends is read and thrown away, at most
    :data:`LINGER_BYTES` for at most ``close_timeout`` seconds
    (:data:`LINGER_SECONDS` when that is None), until the client closes.
    """
    transport = conn.transport
    server = conn.server
    if server is not None:
        server._admitting.discard(conn)
    if transport is None or transport.is_closing():
        return
    transport.write(response)
    limit = server.options.close_timeout if server is not None else None
    linger = _Lingering(conn, transport)
    try:
        if transport.can_write_eof():
            transport.write_eof()
        transport.set_protocol(linger)
        transport.resume_reading()
    except (OSError, RuntimeError, NotImplementedError):  # pragma: no cover - the peer vanished meanwhile
        transport.close()
        return
    linger.timer = loop_of(conn).call_later(LINGER_SECONDS if limit is None else limit, transport.close)


class _Lingering(asyncio.Protocol):
    """The socket's protocol after a final response: discard input (bounded), pass the end on."""

    def __init__(self, conn: Connection, transport: asyncio.Transport) -> None:
        self.conn = conn
        self.transport = transport
        self.left = LINGER_BYTES
        self.timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        self.left -= len(data)
        if self.left < 0:
            self.transport.close()

    def eof_received(self) -> bool | None:
        # None: asyncio closes the transport; the client has read the response or gave up.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.conn.connection_lost(exc)


def _hook_failed(conn: Connection, handshake: ServerHandshake, hook: str, exc: Exception) -> None:
    """An application hook raised: log it with its traceback and answer 500."""
    logger.error("%s raised", hook, exc_info=exc)
    handshake.refuse(HandshakeError(f"{hook} raised {exc!r}", 500))
    _refused(conn, handshake)


def _http_request(conn: Connection, handshake: ServerHandshake) -> HttpRequest:
    """The request as the hooks see it."""
    request = handshake.request
    assert request is not None
    return HttpRequest(request.method, request.path, request.headers, conn.remote_address)


class _HandshakeDriver(_ServerBase):
    """What the server does once a connection's request head is in."""

    def _on_request(self, conn: Connection, handshake: ServerHandshake) -> None:
        """The request head is in: answer plain HTTP, refuse, or run the hooks and accept."""
        request = handshake.request
        if request is not None:
            conn.path = request.path
            conn.headers = request.headers
        if handshake.state is HandshakeState.HTTP:
            self._serve_http(conn, handshake)
            return
        if not self._admitted(conn, handshake):
            return
        verify = self.options.verify_client
        if verify is None:
            self._select(conn, handshake)  # no verdict to read: as if it answered True
            return
        self._run_hook(
            conn,
            handshake,
            "verify_client",
            lambda: verify(_http_request(conn, handshake)),
            partial(self._finish_async, conn, handshake),
            partial(self._verified, conn, handshake),
        )

    def _verified(self, conn: Connection, handshake: ServerHandshake, verdict: Any) -> None:
        """``verify_client`` answered at once: apply it, then choose the subprotocol."""
        if self._verdict_ok(conn, handshake, verdict):
            self._select(conn, handshake)

    def _select(self, conn: Connection, handshake: ServerHandshake) -> None:
        """The client is verified: choose the subprotocol (``select_protocol``), then accept."""
        if self.options.select_protocol is None:
            # No application code decides: choose from valid_protocols now, as _run_hook would.
            try:
                chosen = self._choose(conn)
            except Exception as exc:
                _hook_failed(conn, handshake, "select_protocol", exc)
                return
            self._accept(conn, handshake, chosen)
            return
        self._run_hook(
            conn,
            handshake,
            "select_protocol",
            partial(self._choose, conn),
            partial(self._finish_async, conn, handshake, True),
            partial(self._accept, conn, handshake),
        )

    def _run_hook(
        self,
        conn: Connection,
        handshake: ServerHandshake,
        name: str,
        call: Callable[[], Any],
        later: Callable[[Any], Coroutine[Any, Any, None]],
        now: Callable[[Any], None],
    ) -> None:
        """Call the application hook ``name``: if it raises, answer 500; if it answers
        with an awaitable, hold the socket's bytes and go on in ``later``; else in ``now``."""
        try:
            answer = call()
        except Exception as exc:
            _hook_failed(conn, handshake, name, exc)
            return
        if inspect.isawaitable(answer):
            self._later(conn, later(answer))
            return
        now(answer)

    def _admitted(self, conn: Connection, handshake: ServerHandshake) -> bool:
        """A valid upgrade request within ``max_connections`` and ``origins``; else it is refused."""
        if handshake.state is HandshakeState.UPGRADE:
            conn.protocols = handshake.offered
            limit = self.options.max_connections
            handshake.admit(limit is not None and len(self._open) + len(self._admitting) >= limit)
        if handshake.state is not HandshakeState.UPGRADE:
            self.stats["rejected"] += 1
            _refused(conn, handshake)
            return False
        # Counted against max_connections until it opens or ends: async hooks take time.
        self._admitting.add(conn)
        return True

    def _later(self, conn: Connection, step: Coroutine[Any, Any, None]) -> None:
        """A hook answered with an awaitable: hold the socket's bytes until ``step`` is done."""
        if conn.transport is not None:
            conn.transport.pause_reading()
        self._loop.create_task(step)

    def _verdict_ok(self, conn: Connection, handshake: ServerHandshake, verdict: Any) -> bool:
        """Apply ``verify_client``'s answer: True, False (403), a status, or (status, headers)."""
        if handshake.verify(verdict):
            return True
        if handshake.problem is not None:
            logger.error("%s", handshake.problem)
        self.stats["rejected"] += 1
        _refused(conn, handshake)
        return False

    def _serve_http(self, conn: Connection, handshake: ServerHandshake) -> None:
        """Answer a plain HTTP request with ``http_handler`` (None: 426, as without it)."""
        handler = self.options.http_handler
        assert handler is not None
        self._run_hook(
            conn,
            handshake,
            "http_handler",
            lambda: handler(_http_request(conn, handshake)),
            partial(self._serve_http_async, conn, handshake),
            partial(self._answer_http, conn, handshake),
        )

    async def _serve_http_async(self, conn: Connection, handshake: ServerHandshake, pending: Any) -> None:
        try:
            result = await pending
        except Exception as exc:
            _hook_failed(conn, handshake, "http_handler", exc)
            return
        self._answer_http(conn, handshake, result)

    def _answer_http(self, conn: Connection, handshake: ServerHandshake, result: Any) -> None:
        if not handshake.answer_http(result):
            logger.error("%s", handshake.problem)
            _refused(conn, handshake)
            return
        if result is not None:
            logger.info("HTTP %d for %s %s", handshake.status, conn.remote_address, conn.path)
        respond(conn, handshake.data_to_send())

    def _choose(self, conn: Connection) -> Any:
        opts = self.options
        return choose(conn.protocols, opts.valid_protocols, opts.select_protocol, conn)

    async def _finish_async(
        self, conn: Connection, handshake: ServerHandshake, verdict: Any, chosen: Any = None
    ) -> None:
        """The handshake's remaining steps when a hook answered with an awaitable."""
        step = "verify_client"
        try:
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if conn.transport is None or conn.transport.is_closing():
                return
            if not self._verdict_ok(conn, handshake, verdict):
                return
            step = "select_protocol"
            if chosen is None:
                chosen = self._choose(conn)
            if inspect.isawaitable(chosen):
                chosen = await chosen
        except Exception as exc:
            _hook_failed(conn, handshake, step, exc)
            return
        if conn.transport is None or conn.transport.is_closing():
            return
        conn.transport.resume_reading()
        self._accept(conn, handshake, chosen)

    def _accept(self, conn: Connection, handshake: ServerHandshake, chosen: Any) -> None:
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        if not handshake.accept(chosen):
            logger.error("%s", handshake.problem)
            _refused(conn, handshake)
            return
        conn.protocol = handshake.protocol
        conn.deflate = handshake.deflate
        transport.write(handshake.data_to_send())
        if logger.isEnabledFor(logging.INFO):  # remote_address asks the transport: only when logged
            logger.info("connection from %s to %s", conn.remote_address, conn.path)
        handshake_done(conn, handshake.leftover)

