"""The library's default loop and :func:`run`, which drives it the way a Node process runs.

Servers that listen and connections that are not yet closed *hold* their
loop; :func:`run` returns once nothing holds the default loop (and its
``main`` coroutine, if any, has finished). SIGINT and SIGTERM make every
holder shut down cleanly (servers stop listening, connections close with
1001), after which :func:`run` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine
from typing import Any, Protocol

__all__ = ["get_loop", "hold", "release", "run", "shutdown"]

logger = logging.getLogger("wsevents")


class _Holder(Protocol):
    def _shutdown(self) -> None: ...


class _Activity:
    __slots__ = ("holders", "idle")

    def __init__(self) -> None:
        self.holders: dict[_Holder, None] = {}
        self.idle: asyncio.Future[None] | None = None


_default_loop: asyncio.AbstractEventLoop | None = None
_activity: dict[asyncio.AbstractEventLoop, _Activity] = {}


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
    global _default_loop
    if _default_loop is None or _default_loop.is_closed():
        _default_loop = _new_loop()
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
    activity = _activity.get(loop)
    if activity is None or not activity.holders:
        return
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
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if main is not None:
            main.close()
        raise RuntimeError("wsevents.run() cannot be called from a running event loop")
    loop = get_loop()
    asyncio.set_event_loop(loop)
    main_task: asyncio.Task[Any] | None = None
    interrupted = False

    def on_signal(signame: str) -> None:
        nonlocal interrupted
        logger.info("%s: closing servers and connections", signame)
        interrupted = True
        if main_task is not None and not main_task.done():
            main_task.cancel()
        shutdown(loop)

    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)

    async def drive() -> Any:
        nonlocal main_task
        result = None
        if main is not None:
            main_task = asyncio.ensure_future(main)
            try:
                result = await main_task
            except asyncio.CancelledError:
                if not interrupted:
                    raise
        await _until_idle()
        return result

    try:
        return loop.run_until_complete(drive())
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
