"""What a Redis broker keeps to survive a Redis that lost its data, and the scripts that notice it.

A publisher keeps the entries it added to the stream until every running
reader has read them (each reader reports the last stream id it read), and
at least its last ``floor`` ones, at most ``cap``. When Redis comes back
without its data (restarted without persistence, or emptied), the broker
takes them all back (:meth:`ReplayLog.take`) and adds them again before
anything newer. The Lua scripts below make that order hold: an add goes in
only while the dataset is the one the publisher knows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from .rooms import Message

__all__ = ["ADD_SCRIPT", "EPOCH_SCRIPT", "FORGET_AFTER", "STALE_AFTER", "ReplayLog", "id_key"]

#: A reader whose report has not changed for this long is taken for gone: its lag no longer holds
#: entries back (seconds; a reader reports at least twice a second while it runs).
STALE_AFTER = 10.0
#: A report unchanged for this long is removed from the hash (a process that ended).
FORGET_AFTER = 60.0

# The dataset's token (KEYS[1]), set to ARGV[1] when there is none (a new or emptied Redis).
EPOCH_SCRIPT = """
local token = redis.call('GET', KEYS[1])
if token then return token end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

# Adds the entries to the stream (KEYS[1]) only while the dataset's token (KEYS[2]) is ARGV[1],
# and returns {1, the last entry's id}; else returns the token (nil if none), so that nothing newer
# goes in before the replay.
# ARGV: the token, '~' or '=', maxlen, then per entry its number of field/value arguments and them.
ADD_SCRIPT = """
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

StreamId = tuple[int, int]


def id_key(entry_id: bytes) -> StreamId:
    """A stream entry id (``b"<ms>-<n>"``) as a tuple that orders like the ids."""
    ms, _, n = entry_id.partition(b"-")
    return int(ms), int(n or 0)


class ReplayLog:
    """The entries a publisher added and may have to add again, trimmed by the readers' reports."""

    def __init__(self, floor: int, cap: int) -> None:
        self.floor = floor
        self.cap = cap
        # (sequence number, message, id of its batch's last entry), oldest first.
        self.entries: deque[tuple[int, Message, StreamId]] = deque()
        #: The last id every other running reader has read (None: no report seen yet).
        self.acked: StreamId | None = None
        #: True from the moment Redis is found without its data until :meth:`take`: trim nothing.
        self.held = False
        # Each reader's report as last seen, and when it last changed (this process's clock).
        self.reports: dict[bytes, tuple[bytes, float]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def added(self, items: Iterable[tuple[int, Message]], last_id: StreamId) -> None:
        """``items`` are in the stream, the last one (of one batch) at ``last_id``."""
        self.entries.extend((seq, message, last_id) for seq, message in items)
        self.trim()

    def take(self) -> list[tuple[int, Message]]:
        """Every entry kept, oldest first, to add again to a new dataset; the log starts afresh."""
        taken = [(seq, message) for seq, message, _ in self.entries]
        self.entries.clear()
        self.acked, self.reports, self.held = None, {}, False
        return taken

    def read_reports(self, reports: dict[bytes, bytes], own: bytes, now: float) -> list[bytes]:
        """Take the readers' reports (``field: b"<counter> <last id>"``); the readers long gone.

        A report changes at each report (its counter), so that a running reader is told from a
        gone one with this process's clock, whatever the clocks of the other hosts say.
        """
        seen, fresh, gone = self.reports, [], []
        for reader, value in reports.items():
            if reader == own:
                continue
            known = seen.get(reader)
            if known is None or known[0] != value:
                seen[reader] = known = (value, now)
            if now - known[1] < STALE_AFTER:
                fresh.append(id_key(value.partition(b" ")[2]))
            elif now - known[1] > FORGET_AFTER:
                gone.append(reader)
        for reader in [r for r in seen if r not in reports]:
            del seen[reader]
        self.acked = min(fresh) if fresh else (1 << 62, 0)
        self.trim()
        return gone

    def trim(self) -> None:
        """Forget what no replay needs: read by every running reader, beyond the last ``floor``."""
        entries, acked = self.entries, None if self.held else self.acked
        while len(entries) > self.floor and acked is not None and entries[0][2] <= acked:
            entries.popleft()
        # A reader further behind would lose the oldest if Redis lost its data now.
        while len(entries) > self.cap:
            entries.popleft()

    def clear(self) -> None:
        """Forget everything (a copy of the broker in a forked process publishes afresh)."""
        self.take()
