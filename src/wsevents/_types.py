"""Small shared types and awaitables used across layers."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

__all__ = ["BytesLike", "SendCallback", "Completed", "Failed", "DONE"]

BytesLike = bytes | bytearray | memoryview
SendCallback = Callable[[BaseException | None], Any]


class Completed:
    """An awaitable that is already done: what a send returns when nothing waits.

    Awaiting it returns ``None`` at once; no future or task is created.
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator

    def done(self) -> bool:
        """Always True."""
        return True

    def __repr__(self) -> str:
        return "<Completed>"


class Failed:
    """An awaitable that raises ``error`` when awaited (and only then)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __await__(self) -> Generator[Any, None, None]:
        raise self.error
        yield  # pragma: no cover - makes this a generator

    def done(self) -> bool:
        """Always True."""
        return True

    def __repr__(self) -> str:
        return f"<Failed {self.error!r}>"


#: The shared completed awaitable.
DONE = Completed()
