"""XOR masking (RFC 6455 section 5.3) behind one name.

Uses the optional compiled ``wsevents._speedups`` when it is importable; the
pure-Python fallback XORs the whole payload as one big integer, which runs at
C speed inside CPython's long arithmetic instead of a Python loop per byte.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["mask", "mask_python"]


def mask_python(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """Return ``data`` XOR-ed with the 4-byte ``key`` repeated."""
    n = len(data)
    if n == 0:
        return b""
    repeated = key * (n // 4 + 1)
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")
    return value.to_bytes(n, "little")


mask: Callable[[bytes | bytearray | memoryview, bytes], bytes]
try:  # pragma: no cover - depends on the build
    from wsevents._speedups import mask as _c_mask  # type: ignore[import-not-found]

    mask = _c_mask
except ImportError:
    mask = mask_python
