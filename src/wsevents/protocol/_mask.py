"""XOR masking (RFC 6455 section 5.3) behind one name, and the compiled frame scan.

Uses the optional compiled ``wsevents._speedups`` when it is importable; the
pure-Python fallback XORs the whole payload as one big integer, which runs at
C speed inside CPython's long arithmetic instead of a Python loop per byte.
Setting ``WSEVENTS_NO_SPEEDUPS=1`` in the environment forces the pure path
(the test suite runs once each way). The same switch gives :data:`scan`, the
compiled parser of runs of plain data frames that :mod:`.reader` uses ahead of
its own steps (None on the pure path, where the reader's steps do it all).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["mask", "mask_python", "scan", "Scan", "SPEEDUPS"]


class Scan(Protocol):
    """The type of :data:`scan` (a protocol, not a Callable: a class attribute holding it is no method)."""

    def __call__(
        self, buf: memoryview, pos: int, mask_bit: int, limit: int | None, /
    ) -> tuple[list[Any], int]: ...


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
