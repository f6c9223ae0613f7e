"""What the connection classes show or do the same way, whatever their I/O.

Mixins with no state of their own (empty ``__slots__``): the asyncio ``Connection`` and
the threaded ``wsevents.sync.Connection`` report how they ended and print alike; the
asyncio ``Connection`` and ``ReconnectingConnection`` dispatch ``send()`` alike.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, ClassVar

from ._types import BytesLike, Failed, SendCallback

__all__ = ["_ClosingInfo", "_SendByKind"]


class _ClosingInfo:
    """``close_code``, ``close_reason`` and the repr, over the attributes the class keeps."""

    __slots__ = ()

    #: The class name shown by ``repr()``.
    _repr_name: ClassVar[str] = "Connection"

    if TYPE_CHECKING:
        _close_code: int | None
        _close_reason: str
        _client: bool
        path: str

    def _state_name(self) -> str:
        raise NotImplementedError

    @property
    def close_code(self) -> int | None:
        """How the connection ended, once known (the code the ``"close"`` event carries, where
        there is one): the close frame's code, 1005 when it had none, 1006 when the connection
        ended without one; ``None`` before."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        """The reason that goes with :attr:`close_code` (``""`` when none)."""
        return self._close_reason

    def __repr__(self) -> str:
        side = "client" if self._client else "server"
        return f"<{self._repr_name} {side} {self.path!r} {self._state_name()}>"


class _SendByKind:
    """``send()``: :meth:`send_text` for a ``str``, :meth:`send_binary` for a bytes-like object."""

    __slots__ = ()

    if TYPE_CHECKING:

        def send_text(self, text: str, callback: SendCallback | None = None) -> Awaitable[None]: ...

        def send_binary(self, data: BytesLike, callback: SendCallback | None = None) -> Awaitable[None]: ...

        def listener_count(self, event: str) -> int: ...

        def _emit_safe(self, event: str, *args: object) -> None: ...

    def send(self, data: str | BytesLike, callback: SendCallback | None = None) -> Awaitable[None]:
        """``send_text`` for a ``str``, ``send_binary`` for a bytes-like object.

        Raises:
            TypeError: for anything else.
        """
        if isinstance(data, str):
            return self.send_text(data, callback)
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self.send_binary(data, callback)
        raise TypeError(f"send takes a str or a bytes-like object, not {type(data).__name__}")

    def _misuse(self, error: Exception, callback: SendCallback | None) -> Awaitable[None]:
        """A send refused with ``error``: to ``callback``, else as "error" if listened to, else raised."""
        if callback is not None:
            callback(error)
            return Failed(error)
        if self.listener_count("error"):
            self._emit_safe("error", error)
            return Failed(error)
        raise error
