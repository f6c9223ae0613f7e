"""XOR masking (RFC 6455 section 5.3) behind one name.

Uses the optional compiled ``wsevents._speedups`` when it is importable; the
pure-Python fallback XORs the whole payload as one big integer, which runs at
C speed inside CPython's long arithmetic instead of a Python loop per byte.
Setting ``WSEVENTS_NO_SPEEDUPS=1`` in the environment forces the pure path
(the test suite runs once each way).
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["mask", "mask_python", "SPEEDUPS"]


def mask_python(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """Return ``data`` XOR-ed with the 4-byte ``key`` repeated."""
    n = len(data)
    if n == 0:
        return b""
    repeated = key * (n // 4 + 1)
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")
    return value.to_bytes(n, "little")


mask: Callable[[bytes | bytearray | memoryview, bytes], bytes] = mask_python
#: Whether the compiled ``_speedups`` module is in use.
SPEEDUPS = False
if not os.environ.get("WSEVENTS_NO_SPEEDUPS"):
    try:
        from wsevents._speedups import mask as _c_mask  # type: ignore[import-not-found]
    except ImportError:  # no compiler at install time: the pure path is complete
        pass
    else:
        mask = _c_mask
        SPEEDUPS = True
