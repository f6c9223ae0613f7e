"""The Redis Streams broker: ``publish`` and ``broadcast`` across processes and hosts.

Every process of a cluster appends what it publishes to one stream (the key
``wsevents:<cluster>``) and reads that stream from the last entry id it has
seen, so a Redis restart or a network cut resumes where it stopped instead
of losing what was published meanwhile (as long as the stream, trimmed to
about ``maxlen`` entries, still holds it). Each entry carries its origin (a
random id per broker object, i.e. per process) and the origin's sequence
number: a process skips its own entries (it delivered them at once), skips
an entry it has seen (at most once per connection, also when a publisher
adds entries again after a Redis restart) and notices a jump in a
publisher's numbers (a gap: logged at WARNING, counted in ``server.stats``).

Redis restarted without its data (no persistence, or emptied) is noticed by a
random token kept next to the stream (``wsevents:<cluster>:epoch``): each read
fetches it, and each add is a script that adds only while it is the token the
process knows. A new token makes every process add again, before anything newer, the
entries that some reader had not read yet (each reader reports the last id it
read, in the hash ``wsevents:<cluster>:read``, twice a second; a publisher keeps
its entries until every reader that reports has read them, and at least its
last ``replay``); readers skip those they saw.

While Redis is unreachable, messages are delivered in this process at once
and kept, in order, up to ``max_backlog``; past that, ``publish`` raises
:class:`~wsevents.aio.broker.BrokerBacklogFull`. Reconnection is retried
with exponential backoff (and jitter); a WARNING says when Redis is lost and
an INFO when it is back. Redis unreachable at start is the same case: the
server serves locally and catches up once Redis answers.

Uses redis-py's asyncio API (the ``wsevents[redis]`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from itertools import islice
from typing import TYPE_CHECKING, Any

try:
    from redis.asyncio import Redis
    from redis.asyncio.connection import parse_url
    from redis.commands.core import AsyncScript
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the Redis broker needs redis-py: pip install 'wsevents[redis]' (or pip install 'redis>=5')"
    ) from exc

from ..protocol.frames import Opcode
from .broker import BrokerBacklogFull
from .redis_link import BACKOFF, DOWN, RedisLink
from .redis_replay import ADD_SCRIPT, id_key
from .rooms import Message

if TYPE_CHECKING:
    from .server import Server

__all__ = ["RedisBroker"]

logger = logging.getLogger("wsevents")

#: Entries added per round trip, and read per XREAD.
BATCH = 1000
#: How long one XREAD waits for new entries (milliseconds); bounds how long a stop waits.
BLOCK_MS = 250
#: The longest the reader delivers without letting the loop run other tasks (seconds).
YIELD_AFTER = 0.02
#: How long a stop waits for the backlog to reach Redis (seconds).
FLUSH_TIMEOUT = 2.0
#: How long a stop waits, beyond an XREAD's block, for a command Redis does not answer (seconds).
STOP_MARGIN = 0.5
#: How long the reader waits, beyond an XREAD's block, for Redis's answer before it takes Redis
#: for unreachable (seconds): a connection that stopped carrying answers must not keep it silent.
ANSWER_TIMEOUT = 5.0
#: How often a reader reports the last stream id it read, and a publisher looks at the reports (s).
REPORT_EVERY = 0.5
#: Publishers whose last sequence number a process remembers (the least recently heard is
#: forgotten past it): bounds the memory a cluster whose workers restart often leaves behind.
MAX_PUBLISHERS = 10_000

class RedisBroker(RedisLink):
    """A broker over one Redis stream per cluster.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) or
            ``unix:///path/to/socket``.
        cluster: servers of the same cluster (on the same Redis) exchange messages.
        maxlen: the stream is trimmed to about this many entries (exactly
            with ``approximate=False``); it bounds what a process that was cut
            off can catch up on.
        max_backlog: messages kept for the cluster while Redis is unreachable
            (or slower than the publishers); one more raises ``BrokerBacklogFull``.
        replay: how many of its last entries a process keeps, at least, to
            add them again when Redis lost its data (restarted without
            persistence), for readers that had not read them yet; it keeps
            more while a reader reports it has not read them (up to
            ``max_backlog``). Readers skip those they saw.
    """

    def __init__(
        self,
        url: str,
        *,
        cluster: str = "wsevents",
        maxlen: int = 100_000,
        approximate: bool = True,
        max_backlog: int = 100_000,
        replay: int = 1_000,
    ) -> None:
        for name, value in (("maxlen", maxlen), ("max_backlog", max_backlog)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if isinstance(replay, bool) or not isinstance(replay, int) or replay < 0:
            raise ValueError(f"replay must be an int >= 0, not {replay!r}")
        super().__init__(url, cluster, max_backlog, replay)
        self.maxlen = maxlen
        self.approximate = approximate
        #: This process's id in the stream's entries (a new one in a forked worker).
        self.origin = uuid.uuid4().hex
        self._origin = self.origin.encode()
        self._pid = os.getpid()
        self._seq = 0
        self.replay = replay
        self._reported_at = -REPORT_EVERY
        self._reports_sent = 0
        # Readers whose report is older than FORGET_AFTER: removed from the hash with the next report.
        self._gone: list[bytes] = []
        # The last entry id read; None until Redis first answers (then: the stream's end).
        self._last_id: bytes | None = None
        self._seen: dict[bytes, int] = {}
        self._clients: list[Redis] = []
        self._tasks: list[asyncio.Task[None]] = []
        # A malformed URL fails here, at create_server(), not in the background.
        parse_url(url)

    def __repr__(self) -> str:
        state = "up" if self.connected else "down"  # down too until Redis first answers
        return f"<RedisBroker {self.key} {state} backlog={len(self._backlog)}>"

    async def flush(self) -> None:
        """Wait until every message published so far is in the stream."""
        while self._backlog:
            if self._flushed is None:
                raise RuntimeError("the broker is not started: it starts with the server's listen()")
            self._flushed.clear()
            await self._flushed.wait()

    # -- Broker ------------------------------------------------------------------

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if os.getpid() != self._pid:
            # A copy in a forked worker: a publisher of its own (the parent's backlog is the parent's).
            self._pid = os.getpid()
            self.origin = uuid.uuid4().hex
            self._origin = self.origin.encode()
            self._seq = 0
            self._backlog.clear()
            self._log.clear()
            self._epoch, self._replay_due, self._reread, self._gone = None, False, False, []
        # A client (and connection pool) per loop: the reader's blocking XREAD never delays an XADD.
        # An XREAD is answered within its block, so the reader waits little longer; the writer's
        # pipelines (up to BATCH entries of any size) get more time.
        self._clients = [self._new_client(BLOCK_MS / 1000 + ANSWER_TIMEOUT), self._new_client(30.0)]
        self._running = True
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        if self._backlog:
            self._wake.set()
        self._tasks = [
            loop.create_task(self._read_loop(self._clients[0]), name="read loop"),
            loop.create_task(self._write_loop(self._clients[1]), name="write loop"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        # A loop ends when the broker stops; a bug that ends it sooner must not pass unseen.
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "%r: %s failed: the cluster's messages no longer go through this process",
                self,
                task.get_name(),
                exc_info=task.exception(),
            )

    async def _stop(self) -> None:
        await self._flush_while_up(FLUSH_TIMEOUT)
        # The loops end by themselves (an XREAD blocks BLOCK_MS at most), unless Redis does not
        # answer (hung, or a network that drops packets): then they are cancelled, not awaited
        # for redis-py's socket timeout.
        self._running = False
        if self._wake is not None:
            self._wake.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=BLOCK_MS / 1000 + STOP_MARGIN)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=STOP_MARGIN)
        if self._backlog:  # counted once the write loop is over: it may have been adding some
            logger.warning(
                "%r stops with %d message(s) that never reached the cluster", self, len(self._backlog)
            )
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()

    async def _flush_while_up(self, timeout: float) -> None:
        """Wait for the backlog to reach Redis: not past ``timeout``, nor once Redis is found down.

        Also before Redis first answered: a server that publishes right after ``listen()`` and
        closes (a one-shot script) gets its messages out.
        """
        if self._flushed is None:
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self._backlog and self._down_since is None and (left := end - loop.time()) > 0:
            self._flushed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._flushed.wait(), left)

    def _reserve(self, source: Server) -> None:
        if len(self._backlog) < self.max_backlog:
            return
        for server in {source, *self._servers}:
            server.stats["broker_refused"] = server.stats.get("broker_refused", 0) + 1
        logger.warning(
            "%r: %d messages wait for Redis (max_backlog): publish refused", self, len(self._backlog)
        )
        raise BrokerBacklogFull(
            f"{len(self._backlog)} messages already wait for Redis at {self._shown_url} (max_backlog): "
            "the message was not sent"
        )

    def _send(self, message: Message) -> None:
        self._seq += 1
        self._backlog.append((self._seq, message))
        if self._wake is not None:
            self._wake.set()

    # -- adding to the stream ------------------------------------------------------

    async def _write_loop(self, client: Redis) -> None:
        assert self._wake is not None and self._flushed is not None
        delay = BACKOFF[0]
        add = client.register_script(ADD_SCRIPT)  # EVALSHA; loaded again into a restarted Redis
        # Connected before the first publish: a process busy delivering its own publishes may
        # spare one round trip per batch, not the several of a connection's handshake and check
        # (a large room's first messages then reached no other process for 30 s).
        try:
            await self._fetch_epoch(client)
        except DOWN as exc:
            self._lost(exc)  # retried below once there is something to add
        else:
            self._back()
        while self._running:
            if self._replay_due:
                self._replay()
            if not self._backlog:
                self._flushed.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                if self._epoch is None:
                    await self._fetch_epoch(client)
                added = await self._add(client, add)
            except DOWN as exc:
                self._lost(exc)
                delay = await self._retry(delay)
                continue
            self._back()
            delay = BACKOFF[0]
            if added is None:
                continue  # a new dataset: replay first
            sent, last_id = added
            self._log.added((self._backlog.popleft() for _ in range(sent)), last_id)
            self._count("broker_published", sent)

    def _replay(self) -> None:
        # Only here, between two adds: _add pops what it sent from the backlog's front.
        self._replay_due = False
        self._backlog.extendleft(reversed(self._log.take()))

    async def _add(self, client: Redis, script: AsyncScript) -> tuple[int, tuple[int, int]] | None:
        """Add the oldest backlog entries in one round trip: how many and the last one's id
        (None if the dataset changed)."""
        assert self._epoch is not None
        batch = list(islice(self._backlog, BATCH))
        args: list[Any] = [self._epoch, "~" if self.approximate else "=", self.maxlen]
        for seq, message in batch:
            kind = b"t" if message.opcode is Opcode.TEXT else b"b"
            fields: list[Any] = [b"o", self._origin, b"n", seq, b"k", kind, b"d", message.payload]
            if message.room is not None:
                fields += (b"r", message.room.encode("utf-8"))
            args.append(len(fields))
            args += fields
        result = await script(keys=[self.key, self._epoch_key], args=args)
        if isinstance(result, list):
            return len(batch), id_key(result[1])
        if result is None:  # no token at all: set one
            await self._fetch_epoch(client)
        else:
            self._dataset(result)
        return None

    # -- reading the stream ----------------------------------------------------------

    async def _read_loop(self, client: Redis) -> None:
        delay = BACKOFF[0]
        while self._running:
            try:
                reply = await self._read(client)
            except DOWN as exc:
                self._lost(exc)
                delay = await self._retry(delay)
                continue
            self._back()
            delay = BACKOFF[0]
            for _key, entries in reply or ():
                await self._deliver_entries(entries)

    async def _read(self, client: Redis) -> Any:
        """The next entries (None if none came within the block); the dataset's token on the way."""
        if self._reread:
            # A new dataset: all of it is new to us (readers skip what they saw by number).
            self._reread, self._last_id = False, b"0-0"
        if self._last_id is None:
            # The stream's end now; an id, not "$", so that nothing added meanwhile is missed.
            last: Any = await client.xrevrange(self.key, "+", "-", count=1)
            self._last_id = last[0][0] if last else b"0-0"
        # Not blocking while Redis is thought down: say it is back as soon as it answers.
        block = BLOCK_MS if self.connected else None
        pipe = client.pipeline(transaction=False)
        report = self._report(pipe)
        pipe.get(self._epoch_key)
        pipe.xread({self.key: self._last_id}, count=BATCH, block=block)
        results = await pipe.execute()
        token, reply = results[-2:]
        if token is None:
            await self._fetch_epoch(client)
        elif token != self._epoch:
            self._dataset(token)
        if self._reread:
            # Read again from the new dataset's start; its reports (none yet but ours) must not
            # make the publisher forget what the readers of the lost one had not read.
            return None
        if report:
            self._gone += self._log.read_reports(results[-3], self._origin, report)
        return reply

    def _report(self, pipe: Any) -> float:
        """Every REPORT_EVERY: add to ``pipe`` this reader's report and the read of everyone's.

        Returns the time of the report (0: none now). A report is a counter and the last id read:
        it changes at each report, so that a publisher can tell a running reader from a gone one
        with its own clock.
        """
        now = asyncio.get_running_loop().time()
        if now - self._reported_at < REPORT_EVERY or self._last_id is None:
            return 0.0
        self._reported_at = now
        self._reports_sent += 1
        if self._gone:
            pipe.hdel(self._read_key, *self._gone)
            self._gone = []
        pipe.hset(self._read_key, self._origin, b"%d %s" % (self._reports_sent, self._last_id))
        pipe.hgetall(self._read_key)
        return now

    async def _deliver_entries(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        loop = asyncio.get_running_loop()
        since = loop.time()
        for entry_id, fields in entries:
            self._last_id = entry_id
            try:
                self._receive(fields)
            except Exception:
                # The loop must go on: one bad entry (not ours?) must not end the cluster's traffic.
                logger.exception("%r: cannot deliver stream entry %s", self, entry_id.decode())
            if loop.time() - since > YIELD_AFTER:
                # A batch to large rooms can take seconds: let the connections of this process
                # (pings, their own messages, the drain of their buffers) run meanwhile.
                await asyncio.sleep(0)
                since = loop.time()

    def _receive(self, fields: dict[bytes, bytes]) -> None:
        origin = fields.get(b"o")
        if origin is None or origin == self._origin:
            return
        seq = int(fields[b"n"])
        # Popped and put back: the dict's order is then the order publishers were last heard in.
        last = self._seen.pop(origin, None)
        if last is not None:
            if seq <= last:
                self._seen[origin] = last
                return
            if seq > last + 1:
                self._gap(origin, seq - last - 1)
        self._seen[origin] = seq
        if len(self._seen) > MAX_PUBLISHERS:
            del self._seen[next(iter(self._seen))]
        room = fields.get(b"r")
        opcode = Opcode.TEXT if fields.get(b"k") == b"t" else Opcode.BINARY
        message = Message(None if room is None else room.decode("utf-8"), opcode, fields.get(b"d", b""))
        self._count("broker_received")
        self._deliver(message)

    def _gap(self, origin: bytes, missed: int) -> None:
        self._count("broker_gaps")
        self._count("broker_missed", missed)
        logger.warning(
            "%r: %d message(s) from publisher %s never arrived: the stream was trimmed past what this "
            "process had read (raise maxlen, currently %d) or Redis lost them",
            self,
            missed,
            origin.decode(),
            self.maxlen,
        )
