"""Where a server listens: binding (before ``listen()`` returns when it can), the asyncio
server over the bound socket, a bind that fails or that ``close()`` calls off."""

from __future__ import annotations

import asyncio
import logging
import os
import socket as _socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from . import runner
from .server_base import _resolve, _ServerBase
from .unix import bind_unix

if TYPE_CHECKING:
    from .server import Server

__all__ = ["_Bind", "_Listening"]

logger = logging.getLogger("wsevents")

_BACKLOG = 511


def _dual_stack_socket(port: int) -> _socket.socket:
    """One socket for all IPv6 and IPv4 addresses (so that port 0 means one port)."""
    if _socket.has_ipv6:
        try:
            sock = _socket.socket(_socket.AF_INET6, _socket.SOCK_STREAM)
        except OSError:
            pass
        else:
            try:
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 0)
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                sock.bind(("::", port))
                return sock
            except OSError:
                sock.close()
                raise
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def _literal_address(host: str, port: int) -> tuple[int, Any] | None:
    """``(family, sockaddr)`` when ``host`` is an IP literal (no DNS is asked), else None."""
    try:
        infos = _socket.getaddrinfo(
            host, port, type=_socket.SOCK_STREAM, flags=_socket.AI_PASSIVE | _socket.AI_NUMERICHOST
        )
    except (_socket.gaierror, UnicodeError):
        return None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _bind_now(port: int, host: str | None) -> _socket.socket | None:
    """Bind and listen at once when that needs no name resolution (``host`` None or an IP literal).

    A socket that listens queues connections in the kernel before asyncio
    serves it, so a client started right after ``listen()`` is not refused
    (as in Node, whose ``listen()`` on an address binds synchronously).
    Returns None for a host name, which must be resolved first.
    """
    if host is None:
        try:
            sock = _dual_stack_socket(port)
        except OSError as exc:
            raise _bind_error(exc, ("::", port)) from None
    else:
        literal = _literal_address(host, port)
        if literal is None:
            return None
        family, sockaddr = literal
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if family == _socket.AF_INET6:
                # As asyncio does for an explicit host: "::" means IPv6 only here.
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
        except OSError as exc:
            sock.close()
            raise _bind_error(exc, sockaddr) from None
    try:
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _unix_path(path: str | os.PathLike[str] | None, port: int, host: str | None) -> str | None:
    """``listen()``'s ``path`` as a str (None: no Unix socket), refused with a port or a host."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    if port or host is not None:
        raise ValueError("listen(path=...) takes no port or host: a Unix socket is named by its path alone")
    unix_path = os.fspath(path)
    if not unix_path:
        raise ValueError("path must not be empty")
    return unix_path


def _bind_error(exc: OSError, sockaddr: Any) -> OSError:
    """The bind error with the address in its message, as asyncio words it."""
    reason = (exc.strerror or str(exc)).lower()
    return OSError(exc.errno, f"error while attempting to bind on address {sockaddr[:2]!r}: {reason}")


class _Bind:
    """One ``listen()`` call until its socket serves (or fails, or ``close()`` calls it off)."""

    __slots__ = ("port", "host", "path", "fut", "sock", "error", "cancelled", "awaited", "started")

    def __init__(
        self, port: int, host: str | None, fut: asyncio.Future[None], path: str | None = None
    ) -> None:
        self.port = port
        self.host = host
        self.path = path
        self.fut = fut
        self.sock: _socket.socket | None = None
        self.error: OSError | None = None
        self.cancelled = False
        self.awaited = False
        # asyncio owns ``sock`` from create_server() on.
        self.started = False

    def describe(self) -> str:
        if self.path is not None:
            return f"listen(path={self.path!r})"
        host = "" if self.host is None else f", {self.host!r}"
        return f"listen({self.port}{host})"


class _Listening(_ServerBase):
    """``listen()``, a worker's socket (``_listen_socket``), and the loop held while listening."""

    def listen(
        self,
        port: int = 0,
        host: str | None = None,
        callback: Callable[[], Any] | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> Server:
        """Start accepting on ``port`` (0: a free one) and ``host`` (None: every address, IPv4 and IPv6).

        With ``path``, on that Unix socket instead (``address`` is the path,
        ``port`` None), bound before ``listen`` returns; the file gets the
        permissions the umask leaves and is removed by :meth:`close`. A socket
        file left there by a server that is gone is replaced; a live one, or
        another kind of file, is an ``OSError`` naming the path.

        With ``host`` None or an IP address the socket is bound before
        ``listen`` returns (``port`` is known and a client may connect at
        once); a host name is resolved first, and clients of the same loop
        wait for that bind. ``callback`` is added as a ``"listening"``
        listener. A bind error is emitted as ``"error"`` and raised by
        ``await``; with neither, :func:`wsevents.run` raises it.
        """
        if self._server is not None or (self._bind is not None and not self._bind.cancelled):
            raise RuntimeError("the server is already listening")
        if self._bind is not None:
            raise RuntimeError(
                "the server is still calling off its last listen(): await server.close() first"
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, not {port!r}")
        unix_path = _unix_path(path, port, host)
        bind = self._begin_listening(callback, port, host, unix_path)
        try:
            if unix_path is not None:
                bind.sock, self._unix_file = bind_unix(unix_path, _BACKLOG)
            else:
                bind.sock = _bind_now(port, host)
        except OSError as exc:
            bind.error = exc
        if bind.sock is not None and unix_path is not None:
            self.address, self.port = unix_path, None
        elif bind.sock is not None:
            self.address, self.port = bind.sock.getsockname()[:2]
        elif bind.error is None:
            runner.binding(self._loop, bind.fut)
        self._loop.create_task(self._listen(bind))
        return cast("Server", self)

    def _listen_socket(self, sock: _socket.socket, callback: Callable[[], Any] | None = None) -> Server:
        """Accept on ``sock``, already bound and listening (a worker's socket, from
        :mod:`wsevents.workers`); otherwise as :meth:`listen`. ``sock`` is the server's from now on."""
        if self._server is not None or self._bind is not None:
            raise RuntimeError("the server is already listening")
        bind = self._begin_listening(callback, 0, None)
        sock.setblocking(False)
        bind.sock = sock
        self.address, self.port = sock.getsockname()[:2]
        self._loop.create_task(self._listen(bind))
        return cast("Server", self)

    def _begin_listening(
        self, callback: Callable[[], Any] | None, port: int, host: str | None, path: str | None = None
    ) -> _Bind:
        """What both ways of listening start with, once the call is checked: the
        ``"listening"`` callback, the close flags reset, the loop held, the bind to settle."""
        if callback is not None:
            self.once("listening", callback)
        self._closing = False
        self._close_emitted = False
        self._hold()
        fut: asyncio.Future[None] = self._loop.create_future()
        self._op = fut
        bind = self._bind = _Bind(port, host, fut, path)
        return bind

    async def _listen(self, bind: _Bind) -> None:
        try:
            server = await self._serve(bind)
        except Exception as exc:
            self._bind = None
            self._bind_failed(bind, exc)
            return
        except asyncio.CancelledError:
            # The loop is being torn down (asyncio.run's end, or the interpreter's exit).
            self._bind = None
            if bind.sock is not None:
                bind.sock.close()
            self._remove_unix_file()
            self._release()
            raise
        self._bind = None
        if server is None or bind.cancelled:
            # close() came first: never accept anything.
            if server is not None:
                server.close()
            self._bind_settled(bind)
            return
        self._server = server
        self._listening = True
        if self.broker is not None:
            self.broker.attach(cast("Server", self))
        _resolve(bind.fut)
        if bind.path is not None:
            logger.info("listening on the Unix socket %s", self.address)
        else:
            sockname = server.sockets[0].getsockname()
            self.address, self.port = sockname[0], sockname[1]
            logger.info("listening on %s port %d", self.address, self.port)
        self._emit_safe("listening")

    async def _serve(self, bind: _Bind) -> asyncio.Server | None:
        """The asyncio server for ``bind`` (None when it was called off before it started)."""
        if bind.error is not None:
            raise bind.error
        if bind.cancelled:
            return None
        bind.started = True
        if bind.path is not None and bind.sock is not None:
            return await self._loop.create_unix_server(
                self._make_connection, sock=bind.sock, ssl=self._ssl, backlog=_BACKLOG
            )
        if bind.sock is not None:
            return await self._loop.create_server(
                self._make_connection, sock=bind.sock, ssl=self._ssl, backlog=_BACKLOG
            )
        return await self._loop.create_server(
            self._make_connection,
            host=bind.host,
            port=bind.port,
            ssl=self._ssl,
            backlog=_BACKLOG,
            reuse_address=True,
        )

    def _bind_failed(self, bind: _Bind, exc: Exception) -> None:
        """The bind failed: ``"error"`` if anyone listens, else the awaiter, else ``run()`` raises it."""
        if bind.sock is not None:
            bind.sock.close()
        self._remove_unix_file()
        if bind.cancelled:
            self._bind_settled(bind)
            return
        self._release()
        fut = bind.fut
        fut.set_exception(exc)
        if self.listener_count("error"):
            fut.exception()
            self._emit_safe("error", exc)
        elif not bind.awaited:
            fut.exception()
            runner.report(self._loop, exc, f"server.{bind.describe()} failed")

    def _bind_settled(self, bind: _Bind) -> None:
        """A bind that ``close()`` called off is over: release the loop, finish the close."""
        _resolve(bind.fut)
        self._release()
        self._maybe_emit_close()

    def _hold(self) -> None:
        if not self._held:
            self._held = True
            runner.hold(self._loop, self)

    def _release(self) -> None:
        if self._held:
            self._held = False
            runner.release(self._loop, self)

    def _stop_listening(self) -> None:
        """For ``close()``: call off a bind in progress, stop accepting, remove the socket file."""
        bind = self._bind
        if bind is not None and not bind.cancelled:
            bind.cancelled = True
            if bind.sock is not None and not bind.started:
                # Refuse connections from now on; the bind task only settles.
                bind.sock.close()
        if self._server is not None:
            self._server.close()
            self._server = None
            logger.info("stopped listening on %s port %s", self.address, self.port)
        self._remove_unix_file()
        if self._listening:
            self._listening = False
            self._release()

    def _remove_unix_file(self) -> None:
        if self._unix_file is not None:
            self._unix_file.remove()
            self._unix_file = None

