"""The sum of the workers' metrics (:mod:`wsevents.workers`), gathered when ``/metrics`` is scraped.

The supervisor is the hub. Each worker has a Unix socket pair to it, made
before the fork, which carries lines of JSON:

* a worker answering ``GET /metrics`` (``metrics_handler``) asks for the sum
  (``scrape``);
* the supervisor asks every worker for its figures (``snapshot``) and waits
  up to :data:`GATHER_WAIT` seconds for them;
* it answers the asking worker with the exposition (``sum``): every worker's
  latest figures added up, the counters and histograms of the workers that
  ended included (their last figures, kept when the supervisor reaps them),
  and ``wsevents_workers_reporting``, how many workers answered in time (a
  worker that did not counts with its last figures).

The supervisor keeps refreshing the figures every :data:`REFRESH` seconds
while someone scrapes, so that a worker killed outright (SIGKILL, the OOM
killer) loses at most that much of its counts; nothing is asked of the
workers when nobody scrapes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any

from .metrics import Family, ServerMetrics, merge_families, render_families, unlabelled_families

__all__ = ["GATHER_WAIT", "REFRESH", "MetricsHub", "WorkerLink"]

logger = logging.getLogger("wsevents.workers")

#: Seconds the supervisor waits for the workers' figures of one scrape.
GATHER_WAIT = 1.0
#: Seconds between two refreshes of the figures while someone scrapes.
REFRESH = 1.0
# Someone scrapes: a scrape came in the last _WATCHED seconds.
_WATCHED = 600.0
# A worker asking for the sum waits this long for it, then answers 503.
_ASK_WAIT = GATHER_WAIT + 2.0
_LINE_LIMIT = 1 << 24


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


def _decode_families(data: list[Any]) -> list[Family]:
    return [Family(name, kind, text, [(s, labels, v) for s, labels, v in samples])
            for name, kind, text, samples in data]


# -- the worker side -----------------------------------------------------------------------


class WorkerLink:
    """A worker's end of the link: gives its figures when asked, and asks for the sum.

    Sets ``metrics.gather_workers``, which ``metrics_handler`` calls.
    """

    def __init__(self, metrics: ServerMetrics, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._metrics = metrics
        self._loop = loop
        self._asks: dict[int, asyncio.Future[str]] = {}
        self._last_ask = 0
        self._writer: asyncio.StreamWriter | None = None
        self._connected = loop.create_future()
        self._task = loop.create_task(self._serve(sock))
        metrics.gather_workers = self.gather

    async def _serve(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=_LINE_LIMIT)
        self._writer = writer
        self._connected.set_result(None)
        while line := await reader.readline():
            message = json.loads(line)
            if message["op"] == "snapshot":
                # Without the worker label: the supervisor sums the figures of every worker.
                families = unlabelled_families(self._metrics)
                writer.write(_encode({"op": "snapshot", "round": message["round"], "families": families}))
                await writer.drain()
            elif message["op"] == "sum":
                asked = self._asks.get(message["id"])
                if asked is not None and not asked.done():
                    asked.set_result(message["text"])

    async def gather(self) -> str | None:
        """The exposition of every worker's figures summed; None if the supervisor did not answer."""
        try:
            await asyncio.wait_for(asyncio.shield(self._connected), _ASK_WAIT)
        except asyncio.TimeoutError:
            return None
        assert self._writer is not None
        self._last_ask += 1
        ident = self._last_ask
        answer: asyncio.Future[str] = self._loop.create_future()
        self._asks[ident] = answer
        try:
            self._writer.write(_encode({"op": "scrape", "id": ident}))
            return await asyncio.wait_for(answer, _ASK_WAIT)
        except (asyncio.TimeoutError, OSError):
            return None
        finally:
            del self._asks[ident]


# -- the supervisor side -------------------------------------------------------------------


class _Link:
    """The supervisor's end of one worker's link."""

    __slots__ = ("sock", "inbox", "outbox", "open")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = b""
        self.outbox = b""
        self.open = True


class _Round:
    """One gathering: the workers asked, those that answered, the scrapes waiting for it."""

    __slots__ = ("ident", "deadline", "asked", "answered", "waiters")

    def __init__(self, ident: int, deadline: float, asked: set[int], waiters: list[tuple[int, int]]) -> None:
        self.ident = ident
        self.deadline = deadline
        self.asked = asked
        self.answered: set[int] = set()
        self.waiters = waiters


class MetricsHub:
    """The supervisor's side: every worker's latest figures, and the sum for each scrape.

    Driven by the supervisor's ``select`` loop: :meth:`fds` to watch,
    :meth:`timeout` until the next thing to do, :meth:`ready` with what
    ``select`` found, then :meth:`tick`. It never blocks.
    """

    def __init__(self, count: int) -> None:
        self.links: list[_Link | None] = [None] * count
        # The latest figures of each slot's current worker, and those of the workers that ended.
        self.latest: list[list[Family] | None] = [None] * count
        self.ended: list[Family] = []
        self.round: _Round | None = None
        self.queued: list[tuple[int, int]] = []  # (worker index, its request id), for the next round
        self.rounds = 0
        self.watched_until = 0.0
        self.next_refresh = 0.0

    def attach(self, index: int) -> socket.socket:
        """A new worker in slot ``index``: the worker's end of its link (closed here after the fork)."""
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        self.links[index] = _Link(ours)
        return theirs

    def own_fds(self) -> list[int]:
        """The supervisor's ends, which a worker closes."""
        return [link.sock.fileno() for link in self.links if link is not None]

    def detach(self, index: int) -> None:
        """Slot ``index``'s worker ended: its counters and histograms stay in the sum, its gauges leave it."""
        link = self.links[index]
        if link is not None:
            link.sock.close()
            self.links[index] = None
        last = self.latest[index]
        if last is not None:
            self.ended = merge_families([self.ended, [fam for fam in last if fam.type != "gauge"]])
            self.latest[index] = None
        self.queued = [waiter for waiter in self.queued if waiter[0] != index]
        if self.round is not None:
            self.round.asked.discard(index)

    def close(self) -> None:
        """Close every link."""
        for link in self.links:
            if link is not None:
                link.sock.close()
        self.links = [None] * len(self.links)

    def fds(self) -> tuple[list[int], list[int]]:
        """The fds to watch for reading, and for writing."""
        live = [link for link in self.links if link is not None and link.open]
        return [link.sock.fileno() for link in live], [link.sock.fileno() for link in live if link.outbox]

    def timeout(self, now: float) -> float | None:
        """Seconds until :meth:`tick` has something to do, or None."""
        if self.round is not None:
            return max(0.0, self.round.deadline - now)
        if self.queued:
            return 0.0
        if now < self.watched_until:
            return max(0.0, self.next_refresh - now)
        return None

    def ready(self, readable: list[int], writable: list[int], now: float) -> None:
        """Read and write what ``select`` found ready."""
        for index, link in enumerate(self.links):
            if link is None or not link.open:
                continue
            fd = link.sock.fileno()
            if fd in writable:
                self._flush(link)
            if fd in readable:
                self._read(index, link, now)

    def tick(self, now: float) -> None:
        """End the round if everyone answered or its time is up; start the next one if due."""
        current = self.round
        if current is not None and (current.asked <= current.answered or now >= current.deadline):
            self.round = None
            self._finish(current)
        if self.round is None and (self.queued or self.next_refresh <= now < self.watched_until):
            self._start(now)

    def _start(self, now: float) -> None:
        self.rounds += 1
        asked = {i for i, link in enumerate(self.links) if link is not None and link.open}
        self.round = _Round(self.rounds, now + GATHER_WAIT, asked, self.queued)
        self.queued = []
        self.next_refresh = now + REFRESH
        for index in asked:
            self._send(index, {"op": "snapshot", "round": self.rounds})
        if not asked:
            self.tick(now)

    def _finish(self, done: _Round) -> None:
        if not done.waiters:
            return
        families = merge_families([self.ended, *(last for last in self.latest if last is not None)])
        families += [
            Family("wsevents_workers", "gauge", "Worker processes.", [("", {}, len(self.links))]),
            Family("wsevents_workers_reporting", "gauge",
                   "Workers whose figures this scrape gathered in time (the others count with their last).",
                   [("", {}, len(done.answered))]),
        ]
        text = render_families(families)
        for index, ident in done.waiters:
            self._send(index, {"op": "sum", "id": ident, "text": text})

    def _read(self, index: int, link: _Link, now: float) -> None:
        try:
            data = link.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            link.open = False  # the worker is gone: reaping it detaches the link
            return
        *lines, link.inbox = (link.inbox + data).split(b"\n")
        for line in lines:
            try:
                self._handle(index, json.loads(line), now)
            except (ValueError, KeyError, TypeError) as exc:
                # The supervisor must outlive anything a worker sends: that worker stops counting.
                logger.error("worker %d sent a malformed metrics message (%r): ignoring it from now on",
                             index, exc)
                link.open = False
                return

    def _handle(self, index: int, message: dict[str, Any], now: float) -> None:
        if message["op"] == "snapshot":
            self.latest[index] = _decode_families(message["families"])
            if self.round is not None and message["round"] == self.round.ident:
                self.round.answered.add(index)
        elif message["op"] == "scrape":
            self.queued.append((index, message["id"]))
            self.watched_until = now + _WATCHED

    def _send(self, index: int, message: dict[str, Any]) -> None:
        link = self.links[index]
        if link is not None and link.open:
            link.outbox += _encode(message)
            self._flush(link)

    def _flush(self, link: _Link) -> None:
        try:
            sent = link.sock.send(link.outbox)
        except BlockingIOError:
            return  # the rest when select finds the socket writable
        except OSError:
            link.open = False
            return
        link.outbox = link.outbox[sent:]
