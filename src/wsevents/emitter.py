"""A Node-style event emitter.

Listeners run in registration order, synchronously, when :meth:`EventEmitter.emit`
is called. A coroutine function may be registered too: each call then creates a
task on the running loop (exceptions in that task are logged, never lost).
As in Node, emitting ``"error"`` with no ``"error"`` listener raises the error,
and an emit calls the listeners registered when it starts: one added or removed
by a listener takes effect from the next emit.

A subclass names the events it emits in ``_events``: registering any other
name (a typo such as ``"txt"``) raises ``ValueError`` with a "did you mean".
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import logging
from collections.abc import Callable
from types import CoroutineType
from typing import Any, ClassVar, TypeVar, overload

__all__ = ["EventEmitter", "Listener"]

Listener = Callable[..., Any]
_F = TypeVar("_F", bound=Listener)

logger = logging.getLogger("wsevents")

# Tasks created for coroutine listeners; kept referenced until they finish.
_tasks: set[asyncio.Task[Any]] = set()


def _task_done(emitter: EventEmitter, event: str, args: tuple[Any, ...], task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled():
        exc = task.exception()
        if exc is not None:
            emitter._listener_failed(event, args, exc)


class _Once:
    """Wraps a listener so that it removes itself before its first call."""

    __slots__ = ("emitter", "event", "fn")

    def __init__(self, emitter: EventEmitter, event: str, fn: Listener) -> None:
        self.emitter = emitter
        self.event = event
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        self.emitter.off(self.event, self)
        return self.fn(*args)


class EventEmitter:
    """Registers listeners by event name and calls them on :meth:`emit`."""

    __slots__ = ("_listeners",)

    #: The events that may be listened for; ``None`` allows any name.
    _events: ClassVar[frozenset[str] | None] = None

    def __init__(self) -> None:
        # The lists are never changed in place, only replaced: an emit in progress
        # goes on with the list it started with (Node copies the array instead).
        self._listeners: dict[str, list[Listener]] = {}

    def _check_event(self, event: str) -> None:
        events = self._events
        if events is None or event in events:
            return
        names = sorted(events)
        close = difflib.get_close_matches(str(event), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        # The class that names the events (Connection, not a private subclass of it).
        owner = next(cls for cls in type(self).__mro__ if "_events" in vars(cls))
        raise ValueError(
            f"{owner.__name__} has no event {event!r}{hint}; its events are: "
            + ", ".join(repr(name) for name in names)
        )

    @overload
    def on(self, event: str) -> Callable[[_F], _F]: ...
    @overload
    def on(self, event: str, fn: _F) -> _F: ...

    def on(self, event: str, fn: Listener | None = None) -> Any:
        """Add ``fn`` as a listener of ``event`` and return it.

        Without ``fn``, returns a decorator: ``@emitter.on("text")``.

        Raises:
            ValueError: ``event`` is not one of the events this emitter emits.
        """
        self._check_event(event)
        if fn is None:
            def decorator(f: _F) -> _F:
                self.on(event, f)
                return f

            return decorator
        self._listeners[event] = [*self._listeners.get(event, ()), fn]
        self._listener_added(event)
        return fn

    add_listener = on

    @overload
    def once(self, event: str) -> Callable[[_F], _F]: ...
    @overload
    def once(self, event: str, fn: _F) -> _F: ...

    def once(self, event: str, fn: Listener | None = None) -> Any:
        """Like :meth:`on`, but the listener is removed before its first call."""
        self._check_event(event)
        if fn is None:
            def decorator(f: _F) -> _F:
                self.once(event, f)
                return f

            return decorator
        self.on(event, _Once(self, event, fn))
        return fn

    def off(self, event: str, fn: Listener) -> None:
        """Remove one registration of ``fn`` (or of a :meth:`once` wrapper of it)."""
        self._check_event(event)
        listeners = self._listeners.get(event)
        if not listeners:
            return
        for i, registered in enumerate(listeners):
            if registered is fn or (isinstance(registered, _Once) and registered.fn is fn):
                self._listeners[event] = listeners[:i] + listeners[i + 1 :]
                return

    remove_listener = off

    def remove_all_listeners(self, event: str | None = None) -> None:
        """Remove every listener of ``event``, or of all events when it is ``None``."""
        if event is None:
            self._listeners.clear()
        else:
            self._listeners.pop(event, None)

    def listeners(self, event: str) -> list[Listener]:
        """A copy of the listeners of ``event``, in call order."""
        return [f.fn if isinstance(f, _Once) else f for f in self._listeners.get(event, ())]

    def listener_count(self, event: str) -> int:
        """How many listeners ``event`` has."""
        return len(self._listeners.get(event, ()))

    def emit(self, event: str, *args: Any) -> bool:
        """Call the listeners of ``event`` with ``args``; return whether there were any.

        Raises:
            The error itself when ``event`` is ``"error"`` and nobody listens
            (wrapped in ``RuntimeError`` if it is not an exception).
            Whatever a synchronous listener raises propagates to the caller.
        """
        listeners = self._listeners.get(event)
        if not listeners:
            if event == "error":
                err = args[0] if args else None
                if isinstance(err, BaseException):
                    raise err
                raise RuntimeError(f"unhandled 'error' event: {err!r}")
            return False
        for fn in listeners:
            result = fn(*args)
            if isinstance(result, CoroutineType):
                self._run_coroutine(result, event, args)
        return True

    def _run_coroutine(
        self, coroutine: CoroutineType[Any, Any, Any], event: str, args: tuple[Any, ...]
    ) -> None:
        """A coroutine listener's call: run it as a task; its failure goes to :meth:`_listener_failed`."""
        task = asyncio.ensure_future(coroutine)
        _tasks.add(task)
        task.add_done_callback(functools.partial(_task_done, self, event, args))

    def _emit_message(self, listeners: list[Listener], event: str, message: Any) -> None:
        """:meth:`_emit_safe` of one argument to ``listeners`` (the caller looked them up): the
        path of every message received, without packing and unpacking ``*args``."""
        try:
            for fn in listeners:
                result = fn(message)
                if isinstance(result, CoroutineType):
                    self._run_coroutine(result, event, (message,))
        except Exception:
            logger.exception("exception in %r listener of %r", event, self)

    def _emit_safe(self, event: str, *args: Any) -> None:
        """Emit on behalf of the library (a socket event, a timer): a listener's exception is
        logged, never raised into the I/O code that emitted."""
        try:
            self.emit(event, *args)
        except Exception:
            logger.exception("exception in %r listener of %r", event, self)

    def _listener_added(self, event: str) -> None:
        """Hook for subclasses that react to new listeners (e.g. streams)."""

    def _listener_failed(self, event: str, args: tuple[Any, ...], exc: BaseException) -> None:
        """A coroutine listener of ``event`` (called with ``args``) raised ``exc``: log it.

        Subclasses that own the emit (a connection) extend this to act on the
        failure, e.g. close with 1011 instead of leaving the peer waiting.
        """
        logger.error("exception in coroutine listener of %r", event, exc_info=exc)
