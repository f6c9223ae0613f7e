"""XOR masking (RFC 6455 section 5.3) behind one name, and the compiled frame scan.

Uses the optional compiled ``wsevents._speedups`` when it is importable; the
pure-Python fallback XORs the whole payload as one big integer, which runs at
C speed inside CPython's long arithmetic instead of a Python loop per byte.
Setting ``WSEVENTS_NO_SPEEDUPS=1`` in the environment forces the pure path
(the test suite runs once each way). The same switch gives :data:`scan`, the
compiled parser of runs of plain data frames that :mod:`.reader` uses ahead of
its own steps (None on the pure path, where the reader's steps do it all), and
:data:`new_collector`, which gathers a binary message whole, each piece unmasked
straight into the message's final buffer (compiled) or kept and joined once (pure).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from .events import append_piece

__all__ = ["mask", "mask_python", "scan", "Scan", "Collector", "CollectorPython", "new_collector", "SPEEDUPS"]


class Scan(Protocol):
    """The type of :data:`scan` (a protocol, not a Callable: a class attribute holding it is no method)."""

    def __call__(
        self, buf: memoryview, pos: int, mask_bit: int, limit: int | None, /
    ) -> tuple[list[Any], int]: ...


class Collector(Protocol):
    """A binary message gathered whole (:data:`new_collector` makes one).

    ``add(data, key, more)`` appends ``data``, XOR-ed with the 4-byte ``key`` (lined up with
    ``data``'s first byte) when one is given; ``more`` is what the frame header still announces
    after ``data`` (-1: not known), a hint that only lowers what is reserved: the compiled
    collector grows its buffer to at most twice what has arrived (plus 64 KiB), never to what a
    header announces alone. ``finish()`` returns everything added as one bytes object and
    empties the collector.
    """

    @property
    def size(self) -> int:
        """The bytes added so far."""
        ...

    def add(self, data: bytes | bytearray | memoryview, key: bytes | None = None, more: int = -1, /) -> None:
        """Append ``data``, unmasked with ``key`` when one is given."""
        ...

    def finish(self) -> bytes:
        """Everything added, as one bytes object; the collector is empty again."""
        ...


class CollectorPython:
    """The pure-Python :class:`Collector`: the pieces are kept (tiny ones joined as they come, as
    :func:`~.events.append_piece` does) and joined once at the end."""

    __slots__ = ("_parts", "size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        #: The bytes added so far.
        self.size = 0

    def add(self, data: bytes | bytearray | memoryview, key: bytes | None = None, more: int = -1, /) -> None:
        """Append ``data``, unmasked with ``key`` when one is given (``more`` is only a hint)."""
        if key is not None and len(key) != 4:
            raise ValueError("the mask key must be 4 bytes")
        if not data:
            return
        piece = mask_python(data, key) if key is not None else bytes(data)
        append_piece(self._parts, piece)  # tiny pieces joined as they come, not kept one by one
        self.size += len(piece)

    def finish(self) -> bytes:
        """Everything added, as one bytes object; the collector is empty again."""
        parts = self._parts
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self.size = 0
        return data


def mask_python(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """Return ``data`` XOR-ed with the 4-byte ``key`` repeated."""
    n = len(data)
    if n == 0:
        return b""
    repeated = key * (n // 4 + 1)
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")
    return value.to_bytes(n, "little")


mask: Callable[[bytes | bytearray | memoryview, bytes], bytes] = mask_python
#: ``scan(buf, pos, mask_bit, limit) -> (pending, new_pos)``: see ``_speedups.c``.
scan: Scan | None = None
#: ``new_collector() -> Collector``: the compiled ``Collector`` or :class:`CollectorPython`.
new_collector: Callable[[], Collector] = CollectorPython
#: Whether the compiled ``_speedups`` module is in use.
SPEEDUPS = False
if not os.environ.get("WSEVENTS_NO_SPEEDUPS"):
    try:
        from wsevents._speedups import mask as _c_mask  # type: ignore[import-not-found]
        from wsevents._speedups import scan as _c_scan
    except ImportError:  # no compiler at install time (or an older build): the pure path is complete
        pass
    else:
        mask = _c_mask
        scan = _c_scan
        SPEEDUPS = True
    try:
        from wsevents._speedups import Collector as _c_collector
    except ImportError:  # a build from before the collector: its pure equivalent
        pass
    else:
        new_collector = _c_collector
