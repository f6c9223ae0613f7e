"""The messages a reconnecting client was asked to send while disconnected
(``reconnect_queue=N``): they wait, then go out in order on the next connection."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable

from .._types import SendCallback
from ..protocol.core import ReadyState
from .client import ClientConnection
from .sending import _DrainWaiter

__all__ = ["PendingSends"]

logger = logging.getLogger("wsevents")


class PendingSends:
    """The waiting messages, each with the future its sender awaits and its callback."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: deque[tuple[str | bytes, asyncio.Future[None], SendCallback | None]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, data: str | bytes, callback: SendCallback | None) -> Awaitable[None]:
        """Queue ``data``; the result resolves once it went out on a later connection."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.append((data, future, callback))
        return _DrainWaiter(future)

    def flush(self, leg: ClientConnection) -> None:
        """Send what waits on ``leg``, first in first out, while it stays open."""
        queue = self._queue
        while queue and leg.ready_state is ReadyState.OPEN:
            data, future, callback = queue.popleft()
            leg.send(data, functools.partial(_settle, future, callback))

    def fail_all(self, error: BaseException) -> None:
        """Reconnection ended: every waiting message fails with ``error``."""
        while self._queue:
            _, future, callback = self._queue.popleft()
            _settle(future, callback, error)


def _settle(future: asyncio.Future[None], callback: SendCallback | None, error: BaseException | None) -> None:
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
            future.exception()  # mark retrieved: fire-and-forget senders never look
    if callback is not None:
        try:
            callback(error)
        except Exception:
            logger.exception("exception in a send callback")
