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
import random
import uuid
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

try:
    from redis.asyncio import Redis
    from redis.asyncio.connection import parse_url
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.commands.core import AsyncScript
    from redis.exceptions import RedisError, ResponseError
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the Redis broker needs redis-py: pip install 'wsevents[redis]' (or pip install 'redis>=5')"
    ) from exc

from ..protocol.frames import Opcode
from .broker import Broker, BrokerBacklogFull
from .rooms import Message

if TYPE_CHECKING:
    from .server import Server

__all__ = ["RedisBroker"]

logger = logging.getLogger("wsevents")

# Redis errors and the OS errors of a socket that redis-py lets through.
_DOWN = (RedisError, OSError, asyncio.TimeoutError)

#: Entries added per round trip, and read per XREAD.
BATCH = 1000
#: How long one XREAD waits for new entries (milliseconds); bounds how long a stop waits.
BLOCK_MS = 250
#: Reconnection backoff: first and largest delay (seconds).
BACKOFF = (0.05, 2.0)
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
#: A reader whose report has not changed for this long is taken for gone: its lag no longer holds
#: entries back (seconds; a reader reports at least every REPORT_EVERY while it runs).
STALE_AFTER = 10.0
#: A report unchanged for this long is removed from the hash (a process that ended).
FORGET_AFTER = 60.0
#: Publishers whose last sequence number a process remembers (the least recently heard is
#: forgotten past it): bounds the memory a cluster whose workers restart often leaves behind.
MAX_PUBLISHERS = 10_000

# The dataset's token (KEYS[1]), set to ARGV[1] when there is none (a new or emptied Redis).
_EPOCH_SCRIPT = """
local token = redis.call('GET', KEYS[1])
if token then return token end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

# Adds the entries to the stream (KEYS[1]) only while the dataset's token (KEYS[2]) is ARGV[1],
# and returns {1, the last entry's id}; else returns the token (nil if none), so that nothing newer
# goes in before the replay.
# ARGV: the token, '~' or '=', maxlen, then per entry its number of field/value arguments and them.
_ADD_SCRIPT = """
local token = redis.call('GET', KEYS[2])
if token ~= ARGV[1] then return token end
local i, id = 4, nil
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], ARGV[3], '*', unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return {1, id}
"""


def _id_key(entry_id: bytes) -> tuple[int, int]:
    """A stream entry id (``b"<ms>-<n>"``) as a tuple that orders like the ids."""
    ms, _, n = entry_id.partition(b"-")
    return int(ms), int(n or 0)


def _without_password(url: str) -> str:
    """``url`` with its password, if any (``user:password@`` or ``?password=``), replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "password" for name, _ in query):
        hidden = [(name, "***" if name == "password" else value) for name, value in query]
        parts = parts._replace(query=urlencode(hidden, safe="*"))
    # Not urlunsplit(): it would turn unix:///path into unix:/path.
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


class RedisBroker(Broker):
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
        super().__init__()
        if not isinstance(cluster, str) or not cluster:
            raise ValueError(f"cluster must be a non-empty str, not {cluster!r}")
        for name, value in (("maxlen", maxlen), ("max_backlog", max_backlog)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if isinstance(replay, bool) or not isinstance(replay, int) or replay < 0:
            raise ValueError(f"replay must be an int >= 0, not {replay!r}")
        self.url = url
        # What logs and errors show: a password in the URL stays out of them.
        self._shown_url = _without_password(url)
        self.cluster = cluster
        self.key = f"wsevents:{cluster}"
        self._epoch_key = f"{self.key}:epoch"
        self._read_key = f"{self.key}:read"
        self.maxlen = maxlen
        self.approximate = approximate
        self.max_backlog = max_backlog
        #: This process's id in the stream's entries (a new one in a forked worker).
        self.origin = uuid.uuid4().hex
        self._origin = self.origin.encode()
        self._pid = os.getpid()
        self._seq = 0
        self._backlog: deque[tuple[int, Message]] = deque()
        self.replay = replay
        # Added entries kept for a replay: (sequence number, message, id of its batch's last entry).
        self._recent: deque[tuple[int, Message, tuple[int, int]]] = deque()
        # The last id every other reader has read, as reported (None: no report seen yet).
        self._acked: tuple[int, int] | None = None
        # Each reader's report as last seen, and when it last changed (this process's clock).
        self._reports: dict[bytes, tuple[bytes, float]] = {}
        self._reported_at = -REPORT_EVERY
        self._reports_sent = 0
        # Readers whose report is older than FORGET_AFTER: removed from the hash with the next report.
        self._gone: list[bytes] = []
        # The last entry id read; None until Redis first answers (then: the stream's end).
        self._last_id: bytes | None = None
        self._seen: dict[bytes, int] = {}
        # The dataset's token as last seen (None until Redis first answers); a new one means
        # Redis lost its data: the writer adds its last entries again, the reader rereads.
        self._epoch: bytes | None = None
        self._replay_due = False
        self._reread = False
        self._down_since: float | None = None
        self._answered = False
        self._clients: list[Redis] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._wake: asyncio.Event | None = None
        self._flushed: asyncio.Event | None = None
        # A malformed URL fails here, at create_server(), not in the background.
        parse_url(url)

    def __repr__(self) -> str:
        state = "up" if self.connected else "down"  # down too until Redis first answers
        return f"<RedisBroker {self.key} {state} backlog={len(self._backlog)}>"

    @property
    def connected(self) -> bool:
        """Whether the last exchange with Redis succeeded (False before the first)."""
        return self._down_since is None and self._answered

    @property
    def backlog(self) -> int:
        """Messages published here and not yet in the stream."""
        return len(self._backlog)

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
            self._recent.clear()
            self._epoch, self._replay_due, self._reread = None, False, False
            self._acked, self._reports, self._gone = None, {}, []
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

    def _new_client(self, answer_timeout: float) -> Redis:
        # No retries inside redis-py: a failure must reach the loops, which note the outage.
        return Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=5.0,
            socket_timeout=answer_timeout,
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

    # -- the connection state ----------------------------------------------------

    def _lost(self, exc: BaseException) -> None:
        if self._down_since is not None:
            return
        self._down_since = asyncio.get_running_loop().time()
        if self._flushed is not None:
            self._flushed.set()  # a stop waiting for the backlog to be sent waits no more
        self._count("broker_outages")
        if isinstance(exc, ResponseError):
            # Not a network matter: retrying alone will not help, someone must act.
            logger.error(
                "Redis at %s refuses the broker's commands (%s): are the keys %s and %s used by "
                "something else? Delete them or choose another cluster name. Delivering in this "
                "process only and keeping up to %d messages for the cluster; retrying",
                self._shown_url, exc, self.key, self._epoch_key, self.max_backlog,
            )
            return
        logger.warning(
            "Redis at %s unreachable (%s): delivering in this process only and keeping up to %d "
            "messages for the cluster; retrying",
            self._shown_url,
            exc or type(exc).__name__,
            self.max_backlog,
        )

    def _back(self) -> None:
        self._answered = True
        if self._down_since is None:
            return
        down = asyncio.get_running_loop().time() - self._down_since
        self._down_since = None
        logger.info(
            "Redis at %s answers again after %.1f s; %d message(s) to send",
            self._shown_url,
            down,
            self.backlog,
        )

    async def _retry(self, delay: float) -> float:
        """Sleep ``delay`` (with jitter, cut short by a stop) and return the next, longer one."""
        assert self._wake is not None
        pause = delay * random.uniform(0.5, 1.0)
        end = asyncio.get_running_loop().time() + pause
        while self._running and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(min(0.05, pause))
        return min(delay * 2, BACKOFF[1])

    # -- adding to the stream ------------------------------------------------------

    async def _write_loop(self, client: Redis) -> None:
        assert self._wake is not None and self._flushed is not None
        delay = BACKOFF[0]
        add = client.register_script(_ADD_SCRIPT)  # EVALSHA; loaded again into a restarted Redis
        # Connected before the first publish: a process busy delivering its own publishes may
        # spare one round trip per batch, not the several of a connection's handshake and check
        # (a large room's first messages then reached no other process for 30 s).
        try:
            await self._fetch_epoch(client)
        except _DOWN as exc:
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
            except _DOWN as exc:
                self._lost(exc)
                delay = await self._retry(delay)
                continue
            self._back()
            delay = BACKOFF[0]
            if added is None:
                continue  # a new dataset: replay first
            sent, last_id = added
            for _ in range(sent):
                seq, message = self._backlog.popleft()
                self._recent.append((seq, message, last_id))
            self._trim_recent()
            self._count("broker_published", sent)

    async def _fetch_epoch(self, client: Redis) -> None:
        """Learn the dataset's token (setting one if Redis has none): see :meth:`_dataset`."""
        token = await client.eval(_EPOCH_SCRIPT, 1, self._epoch_key, uuid.uuid4().hex)
        self._dataset(token)

    def _dataset(self, token: bytes) -> None:
        """Note the dataset's token: a new one (Redis lost its data) calls for a replay and a reread."""
        known, self._epoch = self._epoch, token
        if known is None or token == known:
            return
        logger.info(
            "%r: Redis was restarted without its data (or emptied); adding the last %d entries again",
            self,
            len(self._recent),
        )
        self._replay_due = self._reread = True
        if self._wake is not None:
            self._wake.set()

    def _replay(self) -> None:
        # Only here, between two adds: _add pops what it sent from the backlog's front.
        self._replay_due = False
        self._backlog.extendleft((seq, message) for seq, message, _ in reversed(self._recent))
        self._recent.clear()
        self._acked, self._reports = None, {}

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
            return len(batch), _id_key(result[1])
        if result is None:  # no token at all: set one
            await self._fetch_epoch(client)
        else:
            self._dataset(result)
        return None

    def _trim_recent(self) -> None:
        """Forget the added entries no replay needs: read by every reader, beyond the last ``replay``."""
        recent, acked = self._recent, self._acked
        if self._replay_due:
            acked = None  # the reports are of the new dataset: all of these go in again first
        while len(recent) > self.replay and acked is not None and recent[0][2] <= acked:
            recent.popleft()
        if len(recent) > self.max_backlog:
            # A reader this far behind would lose these if Redis lost its data now.
            for _ in range(len(recent) - self.max_backlog):
                recent.popleft()

    # -- reading the stream ----------------------------------------------------------

    async def _read_loop(self, client: Redis) -> None:
        delay = BACKOFF[0]
        while self._running:
            try:
                reply = await self._read(client)
            except _DOWN as exc:
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
            self._read_reports(results[-3], report)
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

    def _read_reports(self, reports: dict[bytes, bytes], now: float) -> None:
        """The last id that every other running reader has read; forget the readers long gone."""
        seen, fresh = self._reports, []
        for reader, value in reports.items():
            if reader == self._origin:
                continue
            known = seen.get(reader)
            if known is None or known[0] != value:
                seen[reader] = known = (value, now)
            if now - known[1] < STALE_AFTER:
                fresh.append(_id_key(value.partition(b" ")[2]))
            elif now - known[1] > FORGET_AFTER:
                self._gone.append(reader)
        for reader in [r for r in seen if r not in reports]:
            del seen[reader]
        self._acked = min(fresh) if fresh else (1 << 62, 0)
        self._trim_recent()

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
