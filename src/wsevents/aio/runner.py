"""The library's default loop and :func:`run`, which drives it the way a Node process runs.

Servers that listen and connections that are not yet closed *hold* their
loop; :func:`run` returns once nothing holds the default loop (and its
``main`` coroutine, if any, has finished). SIGINT and SIGTERM make every
holder shut down cleanly (servers stop listening, connections close with
1001), after which :func:`run` returns.

An error that nobody handles (a failed ``listen()`` with no ``"error"``
listener and no awaiter) makes :func:`run` raise it. A script that sets
things up on the default loop and never calls :func:`run` is told so at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

__all__ = ["binding", "binds_settled", "get_loop", "hold", "release", "report", "run", "shutdown"]

logger = logging.getLogger("wsevents")


class _Holder(Protocol):
    """What :func:`hold` asks of a holder (a server, a connection, a broker, a reconnecting
    client): the hook :func:`shutdown` calls on SIGINT/SIGTERM, declared here and implemented
    by each of them."""

    def _shutdown(self) -> None: ...


class _Activity:
    __slots__ = ("holders", "idle")

    def __init__(self) -> None:
        self.holders: dict[_Holder, None] = {}
        self.idle: asyncio.Future[None] | None = None


_default_loop: asyncio.AbstractEventLoop | None = None
# Whether run() ever drove _default_loop (else work left on it at exit was forgotten).
_default_ran = False
_activity: dict[asyncio.AbstractEventLoop, _Activity] = {}
# Binds in progress per loop (listen() on a host name): clients of that loop wait for them.
_binds: dict[asyncio.AbstractEventLoop, set[asyncio.Future[None]]] = {}
# Per loop that run() drives: completed with the first error nobody handled.
_failures: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (``pip install wsevents[uvloop]``), unless
    ``WSEVENTS_NO_UVLOOP=1``; else asyncio's."""
    if not os.environ.get("WSEVENTS_NO_UVLOOP"):
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def get_loop() -> asyncio.AbstractEventLoop:
    """The running loop, or (outside any) the library's default loop that :func:`run` drives.

    The default loop is uvloop's when uvloop is installed, unless the
    environment sets ``WSEVENTS_NO_UVLOOP=1``.
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    global _default_loop, _default_ran
    if _default_loop is None or _default_loop.is_closed():
        _default_loop = _new_loop()
        _default_ran = False
    return _default_loop


def hold(loop: asyncio.AbstractEventLoop, obj: _Holder) -> None:
    """``obj`` keeps ``loop`` busy until :func:`release`."""
    activity = _activity.get(loop)
    if activity is None:
        activity = _activity[loop] = _Activity()
    activity.holders[obj] = None


def release(loop: asyncio.AbstractEventLoop, obj: _Holder) -> None:
    """``obj`` no longer keeps ``loop`` busy."""
    activity = _activity.get(loop)
    if activity is None:
        return
    activity.holders.pop(obj, None)
    if not activity.holders:
        idle = activity.idle
        if idle is not None and not idle.done():
            idle.set_result(None)
        if idle is None:
            # Nothing waits on this loop: forget it so closed loops are not kept alive.
            del _activity[loop]


def binding(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None:
    """A server of ``loop`` is binding until ``fut`` is done; see :func:`binds_settled`."""
    pending = _binds.setdefault(loop, set())
    pending.add(fut)

    def settled(done: asyncio.Future[None]) -> None:
        pending.discard(done)
        if not pending and _binds.get(loop) is pending:
            del _binds[loop]

    fut.add_done_callback(settled)


async def binds_settled(loop: asyncio.AbstractEventLoop) -> None:
    """Wait for the binds of ``loop`` in progress (a client started right after ``listen()``
    then finds the server listening, as in Node). Their errors are left to their owners."""
    pending = [fut for fut in _binds.get(loop, ()) if not fut.done()]
    if pending:
        await asyncio.wait(pending)


def report(loop: asyncio.AbstractEventLoop, error: BaseException, what: str) -> None:
    """``error`` reached nobody (no listener, no awaiter): :func:`run` raises it, else it is logged."""
    failure = _failures.get(loop)
    if failure is not None and not failure.done():
        failure.set_exception(error)
        return
    logger.error('%s: %s (nobody listens for "error" or awaits it)', what, error, exc_info=error)


def shutdown(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Close every server and connection of ``loop`` (default: the running one) with 1001."""
    loop = loop or asyncio.get_running_loop()
    activity = _activity.get(loop)
    if activity is None:
        return
    for holder in list(activity.holders):
        try:
            holder._shutdown()
        except Exception:
            logger.exception("error while shutting down %r", holder)


async def _until_idle() -> None:
    loop = asyncio.get_running_loop()
    # Again after each wake-up: the callback that released the last holder may have taken a new
    # hold after it (a server's close releases the server, then its broker holds while it stops).
    while (activity := _activity.get(loop)) is not None and activity.holders:
        activity.idle = loop.create_future()
        try:
            await activity.idle
        finally:
            activity.idle = None
            if not activity.holders:
                _activity.pop(loop, None)


def run(main: Coroutine[Any, Any, Any] | None = None) -> Any:
    """Drive the default loop until no server listens and no connection is open.

    The default loop is uvloop's when uvloop is installed (and
    ``WSEVENTS_NO_UVLOOP=1`` is not set), asyncio's otherwise.

    With ``main`` (a coroutine), run it first, then keep going the same way;
    its result is returned. SIGINT (Ctrl-C) and SIGTERM close servers and
    connections cleanly (code 1001) and make ``run`` return.

    Raises:
        RuntimeError: when called from a running event loop.
        OSError: a ``listen()`` failed and nobody listened for its ``"error"``
            nor awaited it (``run`` stops there, as Node exits on an
            unhandled ``"error"``).
    """
    _refuse_nested(main)
    global _default_ran
    loop = get_loop()
    if loop is _default_loop:
        _default_ran = True
    asyncio.set_event_loop(loop)
    session = _Session(loop, main)
    installed = _add_signal_handlers(loop, session.on_signal)
    # Set before the loop runs: tasks scheduled earlier (a listen() before run()) run first.
    failure: asyncio.Future[None] = loop.create_future()
    _failures[loop] = failure
    try:
        return loop.run_until_complete(_first_of(asyncio.ensure_future(session.work(), loop=loop), failure))
    finally:
        _failures.pop(loop, None)
        for sig in installed:
            loop.remove_signal_handler(sig)


def _refuse_nested(main: Coroutine[Any, Any, Any] | None) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    if main is not None:
        main.close()  # never awaited: close it, or Python warns about it too
    raise RuntimeError("wsevents.run() cannot be called from a running event loop")


def _add_signal_handlers(
    loop: asyncio.AbstractEventLoop, handler: Callable[[str], None]
) -> list[signal.Signals]:
    """Call ``handler(name)`` on SIGINT and SIGTERM, where the loop can; the signals it could."""
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler, sig.name)
            installed.append(sig)
    return installed


class _Session:
    """One ``run()``: its ``main`` coroutine, then the wait until idle; a signal ends both."""

    def __init__(self, loop: asyncio.AbstractEventLoop, main: Coroutine[Any, Any, Any] | None) -> None:
        self.loop = loop
        self.main = main
        self.main_task: asyncio.Task[Any] | None = None
        self.interrupted = False

    def on_signal(self, signame: str) -> None:
        logger.info("%s: closing servers and connections", signame)
        self.interrupted = True
        if self.main_task is not None and not self.main_task.done():
            self.main_task.cancel()
        shutdown(self.loop)

    async def work(self) -> Any:
        result = None
        if self.main is not None:
            self.main_task = asyncio.ensure_future(self.main)
            try:
                result = await self.main_task
            except asyncio.CancelledError:
                if not self.interrupted:
                    raise
        await _until_idle()
        return result


async def _first_of(work: asyncio.Future[Any], failure: asyncio.Future[None]) -> Any:
    """``work``'s result, unless an unhandled error comes first: then stop ``work`` and raise it."""
    try:
        await asyncio.wait({work, failure}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        raise
    if not failure.done():
        failure.cancel()
        return work.result()
    work.cancel()
    await asyncio.wait({work})
    if not work.cancelled() and work.exception() is not None:
        logger.debug("run(): after an unhandled error", exc_info=work.exception())
    error = failure.exception()
    assert error is not None
    raise error


def _describe(holders: list[_Holder]) -> str:
    return ", ".join(repr(holder) for holder in holders)


@atexit.register
def _at_exit() -> None:
    """Work left on the default loop at exit: say that ``run()`` was never called, then discard it.

    Without this, Python reports only "Task was destroyed but it is pending!"
    for each task that never ran.
    """
    loop = _default_loop
    if loop is None or loop.is_closed() or loop.is_running():
        return
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    activity = _activity.get(loop)
    holders = list(activity.holders) if activity is not None else []
    if not tasks and not holders:
        return
    if not _default_ran:
        logger.warning(
            "wsevents.run() was never called, so nothing ran (%s): end the script with wsevents.run()",
            _describe(holders) or f"{len(tasks)} pending task(s)",
        )
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        # Tasks that never started end at once when cancelled.
        loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
    loop.close()
