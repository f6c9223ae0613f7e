"""A server's opening-handshake deadlines (``handshake_timeout``): one timer for every connection.

A timer per connection (``call_later`` when the socket connects, cancelled when the
handshake is done) is a good part of what a short connection costs the server: on
asyncio's loop a timer is a heap entry whose comparisons are Python calls, and the
cancelled ones stay in the heap until swept. Here each connection is one dict entry,
made when it connects and dropped when it opens or ends; the one timer is set for the
earliest deadline and, when it fires, times out the connections that are due and is set
again for the next one. A connection is timed out at the same moment as with its own
timer (``handshake_timeout`` seconds after it connected, by the loop's clock).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

_C = TypeVar("_C")


class Deadlines(Generic[_C]):
    """Calls ``expire(conn)`` for each connection still here ``timeout`` seconds after :meth:`add`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[_C], None]) -> None:
        self._loop = loop
        self._expire = expire
        # In the order added: with one timeout throughout, that is the order of the deadlines.
        self._due: dict[_C, float] = {}
        # False once a deadline came before one added earlier (handshake_timeout lowered on
        # the way): then every entry is looked at, until none is left.
        self._ordered = True
        self._last = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf

    def __len__(self) -> int:
        return len(self._due)

    def add(self, conn: _C, timeout: float) -> None:
        """``conn`` connected: ``expire(conn)`` in ``timeout`` seconds unless discarded by then."""
        deadline = self._loop.time() + timeout
        if deadline < self._last:
            self._ordered = False
        self._last = deadline
        self._due[conn] = deadline
        if deadline < self._at:
            self._arm(deadline)

    def discard(self, conn: _C) -> None:
        """``conn``'s handshake is over (opened, refused and gone, or lost)."""
        # The timer stays: it fires for nothing at worst, where cancelling and setting it
        # again around every short-lived connection would cost what it saves.
        if self._due.pop(conn, None) is not None and not self._due:
            self._ordered = True
            self._last = -math.inf

    def cancel(self) -> None:
        """Forget every deadline and stop the timer (the server is done)."""
        self._due.clear()
        self._ordered = True
        self._last = -math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._at = math.inf

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._at = when

    def _fire(self) -> None:
        # What the timer was set for is due even if the clock reads a hair before it (a
        # loop may run a timer up to its clock's resolution early): no spinning on it.
        now = max(self._loop.time(), self._at)
        self._timer = None
        self._at = math.inf
        due: list[_C] = []
        following = math.inf
        for conn, deadline in self._due.items():
            if deadline <= now:
                due.append(conn)
            elif self._ordered:
                following = deadline
                break
            else:
                following = min(following, deadline)
        for conn in due:
            self.discard(conn)
        if following < math.inf:
            self._arm(following)
        for conn in due:
            self._expire(conn)
