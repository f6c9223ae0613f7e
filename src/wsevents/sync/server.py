"""The threaded server: an accept loop, and a thread per connection that runs the handler.

Each accepted socket gets its own thread: TLS, the server side of the
handshake (with the hooks of :func:`wsevents.create_server`, called as plain
functions), then ``handler(connection)``; when the handler returns the
connection is closed with 1000 (1011 if it raised).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import selectors
import socket
import ssl as _ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..errors import ConnectionClosed, HandshakeError, InvalidState
from ..options import ServerOptions, merge_options
from ..protocol.closecodes import CloseCode
from ..protocol.handshake import build_error_response
from ..protocol.hooks import HttpRequest, choose
from ..protocol.opening import LINGER_BYTES, LINGER_SECONDS, HandshakeState, ServerHandshake
from .connection import Connection, ReadyState, shut_down, start
from .handshake import Deadline, receive_head

__all__ = ["Server", "serve"]

logger = logging.getLogger("wsevents")

Handler = Callable[[Connection], object]


class _Refused(Exception):
    """The handshake ends with this HTTP response instead of an upgrade."""

    def __init__(self, response: bytes) -> None:
        super().__init__("refused")
        self.response = response


def serve(handler: Handler, host: str | None, port: int, **options: Any) -> Server:
    """Listen on ``host``:``port`` (port 0: any free port) and return the :class:`Server`.

    Nothing is accepted until :meth:`Server.serve_forever` runs. ``handler``
    is called with each open :class:`~wsevents.sync.Connection`, in the
    connection's own thread. ``host`` None listens on every IPv4 interface.
    Takes the options of :func:`wsevents.create_server` (``verify_client``,
    ``http_handler`` and ``select_protocol`` must be plain functions).

    Raises:
        TypeError, ValueError: an unknown option or a bad value.
        OSError: the address cannot be bound.
    """
    if not callable(handler):
        raise TypeError("handler must be callable with the connection")
    opts: ServerOptions = merge_options(ServerOptions, None, options)
    context = opts.ssl_context()
    sock = socket.create_server((host or "", port))
    return Server(handler, sock, opts, context)


class Server:
    """A listening threaded WebSocket server (made by :func:`serve`)."""

    def __init__(
        self, handler: Handler, sock: socket.socket, options: ServerOptions, context: _ssl.SSLContext | None
    ) -> None:
        #: The listening socket.
        self.socket = sock
        #: The server's options.
        self.options = options
        self._handler = handler
        self._context = context
        self._lock = threading.Lock()
        self._open: set[Connection] = set()
        self._handshaking: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._serving = False
        self._wake_r, self._wake_w = socket.socketpair()
        # Kept: the socket cannot say once shutdown() has closed it.
        self._port = int(sock.getsockname()[1])

    @property
    def port(self) -> int:
        """The port it listens on (useful after ``port=0``)."""
        return self._port

    @property
    def connections(self) -> list[Connection]:
        """The open connections."""
        with self._lock:
            return list(self._open)

    def __repr__(self) -> str:
        return f"<wsevents.sync.Server port={self.port} connections={len(self._open)}>"

    # -- accepting -----------------------------------------------------------

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown` (from another thread) stops it.

        Returns at once if :meth:`shutdown` came first: a thread started to
        serve may begin after a quick ``with serve(...)`` block has ended.

        Raises:
            RuntimeError: it is already running.
        """
        with self._lock:
            if self._stopping.is_set():
                return
            if self._serving:
                raise RuntimeError("serve_forever() is already running")
            self._serving = True
        self.socket.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    for key, _ in selector.select():
                        if key.fileobj is self.socket:
                            self._accept()
        finally:
            self._stopped.set()

    def _accept(self) -> None:
        try:
            sock, address = self.socket.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            # E.g. out of file descriptors: this client is not served, the server goes on.
            logger.error("accept() failed: %s", exc)
            # The client still waits in the backlog: back off instead of spinning on it.
            self._stopping.wait(0.1)
            return
        sock.setblocking(True)
        thread = threading.Thread(target=self._run, args=(sock, address), name=f"wsevents-conn-{address}")
        thread.daemon = True
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, sock: socket.socket, address: Any) -> None:
        """One connection's thread: handshake, handler, close."""
        try:
            conn = self._open_connection(sock, address)
            if conn is not None:
                self._call_handler(conn)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _call_handler(self, conn: Connection) -> None:
        code = CloseCode.NORMAL
        try:
            self._handler(conn)
        except ConnectionClosed:
            pass  # The peer went away while the handler was reading or sending: nothing to report.
        except InvalidState as exc:
            if conn.state is ReadyState.OPEN:
                logger.exception("the handler raised on %r", conn)
                code = CloseCode.INTERNAL_ERROR
            else:
                # A send that lost the race with the peer's close: the usual end of an echo loop.
                logger.debug("%r: %s", conn, exc)
        except Exception:
            logger.exception("the handler raised on %r", conn)
            code = CloseCode.INTERNAL_ERROR
        finally:
            conn.close(code)
            with self._lock:
                self._open.discard(conn)

    # -- the handshake -------------------------------------------------------

    def _open_connection(self, sock: socket.socket, address: Any) -> Connection | None:
        with self._lock:
            self._handshaking.add(sock)
        deadline = Deadline(self.options.handshake_timeout)
        raw = sock
        conn: Connection | None = None
        refusal_response: bytes | None = None
        try:
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                with self._lock:
                    # The plain socket is detached now: shutdown() must reach the TLS one.
                    self._handshaking.discard(raw)
                    self._handshaking.add(sock)
                raw = sock
                deadline.apply(sock)
                sock.do_handshake()
            conn = self._handshake(sock, address, deadline)
        except _Refused as refused:
            refusal_response = refused.response
        except (OSError, HandshakeError) as exc:
            logger.debug("handshake with %s failed: %r", address, exc)
            sock.close()
        except Exception:
            logger.exception("the handshake with %s failed", address)
            sock.close()
        finally:
            with self._lock:
                self._handshaking.discard(raw)
        if refusal_response is not None:
            # After leaving the count of max_connections: the answer may linger a while.
            self._respond(sock, refusal_response)
        return conn

    def _handshake(self, sock: socket.socket, address: Any, deadline: Deadline) -> Connection | None:
        opts = self.options
        handshake = ServerHandshake.from_options(opts)
        receive_head(sock, deadline, handshake)
        if handshake.state is HandshakeState.FAILED:
            assert handshake.error is not None
            raise handshake.error
        if handshake.state is HandshakeState.REFUSED:
            raise _Refused(handshake.data_to_send())
        request = handshake.request
        assert request is not None
        http = HttpRequest(request.method, request.path, request.headers, address)
        if handshake.state is HandshakeState.HTTP:
            raise _Refused(self._http_response(handshake, http))
        if not handshake.admit(self._full()):
            raise _Refused(handshake.data_to_send())
        self._verify(handshake, http)
        chosen = _call_hook(
            "select_protocol", choose, handshake.offered, opts.valid_protocols, opts.select_protocol, http
        )
        if not handshake.accept(chosen):
            logger.error("%s", handshake.problem)
            raise _Refused(handshake.data_to_send())
        return self._upgrade(sock, handshake, http)

    def _upgrade(
        self, sock: socket.socket, handshake: ServerHandshake, http: HttpRequest
    ) -> Connection | None:
        if self._stopping.is_set():
            raise _Refused(build_error_response(503))
        # Still bounded by the handshake's deadline (the socket's timeout).
        sock.sendall(handshake.data_to_send())
        sock.settimeout(None)
        conn = Connection(
            sock,
            client=False,
            options=self.options,
            path=http.path,
            headers=http.headers,
            protocol=handshake.protocol,
            deflate=handshake.deflate,
        )
        logger.info("connection from %s to %s", http.remote_address, http.path)
        start(conn, handshake.leftover)
        with self._lock:
            # shutdown() sets _stopping before it takes the list of open connections.
            stopping = self._stopping.is_set()
            if not stopping:
                self._open.add(conn)
        if stopping:
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
            return None
        return conn

    def _full(self) -> bool:
        """Whether ``max_connections`` are open or handshaking, besides this handshake."""
        limit = self.options.max_connections
        if limit is None:
            return False
        with self._lock:
            # This handshake is among those counted.
            busy = len(self._open) + len(self._handshaking) - 1
        return busy >= limit

    def _verify(self, handshake: ServerHandshake, http: HttpRequest) -> None:
        hook = self.options.verify_client
        if hook is None:
            return
        if not handshake.verify(_call_hook("verify_client", hook, http)):
            if handshake.problem is not None:
                logger.error("%s", handshake.problem)
            raise _Refused(handshake.data_to_send())

    def _http_response(self, handshake: ServerHandshake, http: HttpRequest) -> bytes:
        """``http_handler``'s answer to a request that is not an upgrade (None: 426)."""
        assert self.options.http_handler is not None
        result = _call_hook("http_handler", self.options.http_handler, http)
        if not handshake.answer_http(result):
            logger.error("%s", handshake.problem)
        return handshake.data_to_send()

    def _respond(self, sock: socket.socket, response: bytes) -> None:
        """Send a final HTTP response and close, reading (bounded) what the client still sends.

        Closing with unread input would make the kernel send a reset, which a
        client still sending its request would see instead of the response.
        """
        limit = self.options.close_timeout
        try:
            sock.settimeout(LINGER_SECONDS if limit is None else limit)
            sock.sendall(response)
            if not isinstance(sock, _ssl.SSLSocket):
                sock.shutdown(socket.SHUT_WR)
            left = LINGER_BYTES
            while left > 0:
                data = sock.recv(65536)
                if not data:
                    break
                left -= len(data)
        except OSError:
            pass  # The client is gone or too slow: closing is all that is left.
        finally:
            sock.close()

    # -- stopping ------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop accepting, close every connection with 1001, wait for the connection threads.

        Safe to call from any thread (not from :meth:`serve_forever`'s own),
        and more than once. Waits at most about ``close_timeout`` for the
        connections, then as long again for the handlers to return.
        """
        with self._lock:
            # Under the lock: serve_forever() either sees this and returns, or is waited for.
            self._stopping.set()
            serving = self._serving
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        if serving:
            self._stopped.wait()
        self.socket.close()
        with self._lock:
            conns = list(self._open)
            handshaking = list(self._handshaking)
        for sock in handshaking:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._close_all(conns)
        self._join_threads()
        self._wake_r.close()
        self._wake_w.close()

    def _close_all(self, conns: list[Connection]) -> None:
        """Close every connection with 1001, all at once.

        A connection whose peer does not read takes up to ``close_timeout``
        to give up on: one after another, shutdown() would take that many
        times as long. One short-lived thread per connection, joined here.
        """
        timeout = self.options.close_timeout

        closers = [
            threading.Thread(
                target=shut_down, args=(conn, timeout), name=f"wsevents-shutdown-{conn.remote_address}"
            )
            for conn in conns
        ]
        for thread in closers:
            thread.start()
        for thread in closers:
            thread.join()

    def _join_threads(self) -> None:
        with self._lock:
            threads = list(self._threads)
        timeout = self.options.close_timeout
        current = threading.current_thread()
        for thread in threads:
            if thread is current:
                continue  # shutdown() called from a handler: that thread ends after it.
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("a connection handler is still running after shutdown(): %s", thread.name)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def _call_hook(name: str, hook: Callable[..., Any], *args: Any) -> Any:
    """Call an application hook; it raised or is async: log it and refuse with 500."""
    try:
        result = hook(*args)
    except Exception:
        logger.exception("%s raised", name)
        raise _Refused(build_error_response(500)) from None
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        logger.error("%s returned an awaitable: wsevents.sync takes plain functions only", name)
        raise _Refused(build_error_response(500))
    return result
