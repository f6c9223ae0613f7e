"""Brokers: what makes ``publish`` and ``broadcast`` reach the connections of other servers.

A :class:`Broker` is attached to the servers that share it (``create_server(broker=...)``
attaches on ``listen()`` and detaches once closed). A message published
through one server goes at once to the members of every attached server of
this process, and :meth:`Broker._send` passes it on to the other processes of
the cluster (nothing for :class:`LocalBroker`; a Redis stream for
:class:`~wsevents.aio.redis_broker.RedisBroker`). Messages coming from the
cluster are handed to :meth:`Broker._deliver`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import TYPE_CHECKING

from ..errors import InvalidState
from . import runner
from .rooms import Message
from .server_api import deliver, loop_of

if TYPE_CHECKING:
    from .connection import Connection
    from .server import Server

__all__ = ["Broker", "BrokerBacklogFull", "LocalBroker"]

#: The counters a broker adds to ``server.stats``.
STATS = (
    "broker_published",
    "broker_received",
    "broker_outages",
    "broker_gaps",
    "broker_missed",
    "broker_refused",
)



class BrokerBacklogFull(ConnectionError):
    """``publish``/``broadcast`` refused: the broker is unreachable and its backlog is full.

    The message was delivered nowhere, not even to this process's members.
    """


class Broker:
    """The base of brokers: the attached servers, and delivery to those of this process.

    Subclasses override :meth:`_start`, :meth:`_stop`, :meth:`_reserve` and
    :meth:`_send`. Everything runs on the servers' event loop; nothing is thread-safe.
    """

    #: The cluster name: brokers of the same cluster exchange messages.
    cluster = ""

    def __init__(self) -> None:
        self._servers: list[Server] = []

    @property
    def servers(self) -> list[Server]:
        """A snapshot of the attached servers."""
        return list(self._servers)

    def attach(self, server: Server) -> None:
        """Deliver to ``server``'s connections from now on; the first attach starts the broker."""
        if server in self._servers:
            return
        for name in STATS:
            server.stats.setdefault(name, 0)
        self._servers.append(server)
        if len(self._servers) == 1:
            self._start(loop_of(server))

    def detach(self, server: Server) -> asyncio.Task[None] | None:
        """Stop delivering to ``server``; the last detach stops the broker: the task doing it.

        The loop is held (``run()`` goes on) until the stop is done.
        """
        if server not in self._servers:
            return None
        self._servers.remove(server)
        if self._servers:
            return None
        loop = loop_of(server)
        runner.hold(loop, self)
        return loop.create_task(self._stopped(loop))

    async def _stopped(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await self._stop()
        finally:
            runner.release(loop, self)

    def publish(self, message: Message, source: Server, skip: Collection[Connection] = ()) -> int:
        """Deliver ``message`` in this process at once and send it to the cluster.

        Returns how many connections of this process got it.

        Raises:
            BrokerBacklogFull: the cluster cannot take it now (nothing was delivered).
            InvalidState: no server of this broker is listening (before ``listen()``
                or after ``close()``): the broker is stopped and would only hoard it.
        """
        if not self._servers:
            raise InvalidState(
                f"{source!r} cannot publish through its broker: no server of that broker is listening "
                "(publish between listen() and close())"
            )
        self._reserve(source)
        sent = 0
        if source not in self._servers:
            sent += deliver(source, message, skip)
        for server in list(self._servers):
            sent += deliver(server, message, skip)
        self._send(message)
        return sent

    def _deliver(self, message: Message) -> int:
        """A message from another process: to the members of every attached server."""
        return sum(deliver(server, message) for server in list(self._servers))

    def _count(self, name: str, n: int = 1) -> None:
        for server in self._servers:
            server.stats[name] = server.stats.get(name, 0) + n

    def _shutdown(self) -> None:
        # runner.run()'s signal handling: the servers' own shutdown stops the broker.
        pass

    # -- what a broker over a network overrides --------------------------------

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Begin exchanging with the cluster (must not block: connect in the background)."""

    async def _stop(self) -> None:
        """Stop exchanging with the cluster (flush what is kept, within a bound)."""

    def _reserve(self, source: Server) -> None:
        """Raise :class:`BrokerBacklogFull` if one more message cannot be kept for the cluster."""

    def _send(self, message: Message) -> None:
        """Pass ``message`` on to the other processes of the cluster."""


class LocalBroker(Broker):
    """The in-process broker: servers of one process sharing it share their rooms.

    A server without a broker behaves as if it had its own ``LocalBroker``.
    """

    def __repr__(self) -> str:
        return f"<LocalBroker servers={len(self._servers)}>"
