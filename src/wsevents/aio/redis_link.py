"""The Redis broker's link to Redis: its keys, whether Redis answers, and which dataset it holds.

The base of :class:`~wsevents.aio.redis_broker.RedisBroker`: the state both of
its loops (adding to the stream, reading it) share, how they note an outage
and a return, and how they learn that Redis lost its data (a new token in
``wsevents:<cluster>:epoch``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import deque
from urllib.parse import parse_qsl, urlencode, urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from .broker import Broker
from .redis_replay import EPOCH_SCRIPT, ReplayLog
from .rooms import Message

__all__ = ["BACKOFF", "DOWN", "RedisLink"]

logger = logging.getLogger("wsevents")

#: Redis errors and the OS errors of a socket that redis-py lets through.
DOWN = (RedisError, OSError, asyncio.TimeoutError)
#: Reconnection backoff: first and largest delay (seconds).
BACKOFF = (0.05, 2.0)


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



class RedisLink(Broker):
    """What the Redis broker's loops share: the keys, the link's state, the dataset's token."""

    def __init__(self, url: str, cluster: str, max_backlog: int, replay: int) -> None:
        super().__init__()
        if not isinstance(cluster, str) or not cluster:
            raise ValueError(f"cluster must be a non-empty str, not {cluster!r}")
        self.url = url
        # What logs and errors show: a password in the URL stays out of them.
        self._shown_url = _without_password(url)
        self.cluster = cluster
        self.key = f"wsevents:{cluster}"
        self._epoch_key = f"{self.key}:epoch"
        self._read_key = f"{self.key}:read"
        self.max_backlog = max_backlog
        # Published here, not yet in the stream: (sequence number, message), oldest first.
        self._backlog: deque[tuple[int, Message]] = deque()
        # What was added and may have to go in again (Redis lost its data).
        self._log = ReplayLog(replay, max_backlog)
        # The dataset's token as last seen (None until Redis first answers); a new one means
        # Redis lost its data: the writer adds its last entries again, the reader rereads.
        self._epoch: bytes | None = None
        self._replay_due = False
        self._reread = False
        self._down_since: float | None = None
        self._answered = False
        self._running = False
        self._wake: asyncio.Event | None = None
        self._flushed: asyncio.Event | None = None

    @property
    def backlog(self) -> int:
        """Messages published here and not yet in the stream."""
        return len(self._backlog)

    @property
    def connected(self) -> bool:
        """Whether the last exchange with Redis succeeded (False before the first)."""
        return self._down_since is None and self._answered

    def _new_client(self, answer_timeout: float) -> Redis:
        # No retries inside redis-py: a failure must reach the loops, which note the outage.
        return Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=5.0,
            socket_timeout=answer_timeout,
        )

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

    async def _fetch_epoch(self, client: Redis) -> None:
        """Learn the dataset's token (setting one if Redis has none): see :meth:`_dataset`."""
        token = await client.eval(EPOCH_SCRIPT, 1, self._epoch_key, uuid.uuid4().hex)
        self._dataset(token)

    def _dataset(self, token: bytes) -> None:
        """Note the dataset's token: a new one (Redis lost its data) calls for a replay and a reread."""
        known, self._epoch = self._epoch, token
        if known is None or token == known:
            return
        logger.info(
            "%r: Redis was restarted without its data (or emptied); adding the last %d entries again",
            self,
            len(self._log),
        )
        self._replay_due = self._reread = self._log.held = True
        if self._wake is not None:
            self._wake.set()

