"""Unix sockets without asyncio, for the asyncio API and the threaded one alike.

``wsevents.aio.unix`` re-exports it for code that imported it from there.

Listening: the socket file's life (a stale one replaced, ours removed on close).
Connecting: which socket a URL and the options name, and errors that name the path.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import ssl
import stat

from .options import ClientOptions
from .protocol.url import WebSocketURL

__all__ = ["UnixFile", "bind_unix", "unix_error", "unix_url"]


class UnixFile:
    """The socket file a server created, removed by :meth:`remove` only while it is still that file."""

    __slots__ = ("path", "_identity")

    def __init__(self, path: str) -> None:
        self.path = path
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def remove(self) -> None:
        """Unlink the file unless something else (e.g. another server's socket) has taken the path."""
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)
        except FileNotFoundError:
            # Removed by someone else already: nothing to clean up.
            return


def bind_unix(path: str, backlog: int) -> tuple[socket.socket, UnixFile]:
    """A non-blocking socket bound to ``path`` and listening, and its file.

    A socket file left by a server that is gone (connecting to it is
    refused) is replaced; a live one, or a file that is not a socket, is not
    touched.

    Raises:
        OSError: ``EADDRINUSE`` when a server listens on ``path``, ``EEXIST``
            when ``path`` is another kind of file, or the bind error; each
            with ``path`` as its ``filename``.
    """
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        unix_file = UnixFile(path)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.filename is None:
            raise OSError(exc.errno, f"cannot listen on the Unix socket: {exc.strerror}", path) from None
        raise
    return sock, unix_file


def _remove_stale(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(
            errno.EEXIST, "cannot listen on a Unix socket there: the file is not a socket", path
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        # Nobody accepts there: the file of a server that did not clean up (killed, crashed).
        os.unlink(path)
        return
    except BlockingIOError:
        # Its backlog is full: a server is there, just busy.
        pass
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "address already in use: a server listens on this Unix socket", path)


def unix_url(url: WebSocketURL, options: ClientOptions) -> WebSocketURL:
    """``url`` with the ``unix_path`` option in it (a ``ws+unix://`` URL names its socket already).

    Raises:
        ValueError: both a ``ws+unix://`` URL and ``unix_path``, or ``port`` with a Unix socket.
    """
    if url.unix_path is not None:
        if options.unix_path is not None:
            raise ValueError("unix_path was given with a ws+unix:// URL, which names the socket already")
        if options.port is not None:
            raise ValueError("the port option was given with a ws+unix:// URL: a Unix socket has no port")
        return url
    if options.unix_path is not None:
        return dataclasses.replace(url, unix_path=options.unix_path)
    return url


def unix_error(exc: Exception, path: str) -> Exception:
    """``exc`` from connecting to the Unix socket ``path``, with ``path`` in its message."""
    if not isinstance(exc, OSError) or isinstance(exc, ssl.SSLError) or exc.filename is not None:
        return exc
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ECONNREFUSED and _is_other_file(path):
        # Connecting to a plain file is "refused" too: say what is really wrong.
        reason = "not a socket"
    explained = type(exc)(exc.errno, f"cannot connect to the Unix socket: {reason}", path)
    explained.__cause__ = exc
    return explained


def _is_other_file(path: str) -> bool:
    """Whether ``path`` exists and is not a socket."""
    try:
        return not stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
