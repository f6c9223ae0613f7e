"""When a reconnecting client tries again, and when it stops: :class:`Backoff` and
:class:`ReconnectPolicy`, used by :class:`~wsevents.aio.reconnect.ReconnectingConnection`.

They do no I/O and read no clock (times are passed in), so they are tested
with a seeded RNG and made-up times. The stop rules are in the docstring of
:mod:`wsevents.aio.reconnect`.
"""

from __future__ import annotations

import math
import random

from ..errors import HandshakeError

__all__ = ["RETRY_STATUSES", "STABLE_AFTER", "Backoff", "ReconnectPolicy", "is_fatal"]

#: HTTP 4xx statuses of a refused handshake that are worth retrying (timeout, too many requests).
RETRY_STATUSES = frozenset({408, 429})
#: Seconds a connection must stay open for the backoff to start again from the first delay.
STABLE_AFTER = 5.0

class Backoff:
    """Exponential backoff with jitter, bounded by ``[initial, maximum]``.

    Attempt ``n`` (from 0) waits a delay drawn uniformly from ``[c / factor, c]``
    where ``c = min(maximum, initial * factor ** (n + 1))``, and never less than
    ``initial``: the first wait is between ``initial`` and ``factor * initial``,
    the range doubles (with ``factor=2``) at each failure, up to ``maximum``.
    The jitter spreads the clients that a server restart dropped all at once.
    """

    def __init__(
        self, initial: float, maximum: float, *, factor: float = 2.0, rng: random.Random | None = None
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff delays must satisfy 0 < initial <= maximum, not {initial}, {maximum}")
        if factor < 1:
            raise ValueError(f"backoff factor must be >= 1, not {factor}")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        #: Delays handed out since the last reset.
        self.attempts = 0
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` (from 0) may wait."""
        try:
            value = self.initial * self.factor ** (attempt + 1)
        except OverflowError:
            value = math.inf
        return min(self.maximum, value)

    def next_delay(self) -> float:
        """The delay before the next attempt (and count that attempt)."""
        high = self.ceiling(self.attempts)
        low = max(self.initial, high / self.factor)
        self.attempts += 1
        # Clamped: uniform() may round a hair past its bounds.
        return min(high, max(low, self._rng.uniform(low, high)))

    def reset(self) -> None:
        """Start again from the first delay."""
        self.attempts = 0


def is_fatal(error: BaseException | None) -> bool:
    """Whether a failed connection attempt means "do not come back": an HTTP 4xx other than 408/429."""
    if not isinstance(error, HandshakeError) or error.status is None:
        return False
    return 400 <= error.status < 500 and error.status not in RETRY_STATUSES


class ReconnectPolicy:
    """When to try again, and when to stop; fed events and times, it does no I/O.

    The backoff starts again from its first delay when a connection ends
    after staying open ``stable_after`` seconds or more (a connection that
    opens and is dropped at once keeps the delays growing).
    """

    def __init__(
        self, backoff: Backoff, stop_codes: frozenset[int], *, stable_after: float = STABLE_AFTER
    ) -> None:
        self.backoff = backoff
        self.stop_codes = stop_codes
        self.stable_after = stable_after
        self._opened_at: float | None = None

    def opened(self, now: float) -> None:
        """A connection opened at time ``now`` (seconds, any monotonic clock)."""
        self._opened_at = now

    def after_close(self, now: float, code: int, *, by_peer: bool) -> float | None:
        """An open connection ended at ``now`` with ``code``: the delay before trying again, or None to stop.

        ``by_peer``: the server started the closing handshake (only its codes
        can mean "do not come back"; ours are failures of this side).
        """
        opened_at, self._opened_at = self._opened_at, None
        if by_peer and code in self.stop_codes:
            return None
        if opened_at is not None and now - opened_at >= self.stable_after:
            self.backoff.reset()
        return self.backoff.next_delay()

    def after_failure(self, error: BaseException | None) -> float | None:
        """A connection attempt failed with ``error``: the delay before trying again, or None to stop."""
        if is_fatal(error):
            return None
        return self.backoff.next_delay()
