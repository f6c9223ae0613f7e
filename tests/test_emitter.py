"""The Node-style EventEmitter (src/wsevents/emitter.py)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import pytest

import wsevents
from wsevents import EventEmitter

SRC = Path(wsevents.__file__).parent


def test_on_and_emit_pass_arguments() -> None:
    em = EventEmitter()
    calls: list[tuple[object, ...]] = []
    em.on("x", lambda *args: calls.append(args))
    assert em.emit("x", 1, "two", b"3") is True
    assert em.emit("x") is True
    assert calls == [(1, "two", b"3"), ()]


def test_on_returns_the_listener() -> None:
    em = EventEmitter()

    def fn() -> None:
        pass

    assert em.on("x", fn) is fn
    assert em.once("y", fn) is fn


def test_emit_returns_whether_there_were_listeners() -> None:
    em = EventEmitter()
    assert em.emit("x") is False
    em.on("x", lambda: None)
    assert em.emit("x") is True
    assert em.emit("other") is False


def test_listeners_run_in_registration_order() -> None:
    em = EventEmitter()
    order: list[str] = []
    em.on("x", lambda: order.append("a"))
    em.once("x", lambda: order.append("b"))
    em.on("x", lambda: order.append("c"))
    em.emit("x")
    em.emit("x")
    assert order == ["a", "b", "c", "a", "c"]


def test_same_function_registered_twice_is_called_twice() -> None:
    em = EventEmitter()
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)

    em.on("x", fn)
    em.on("x", fn)
    em.emit("x")
    assert len(calls) == 2
    em.off("x", fn)
    em.emit("x")
    assert len(calls) == 3


def test_decorator_form_of_on() -> None:
    em = EventEmitter()
    seen: list[str] = []

    @em.on("x")
    def handler(value: str) -> None:
        seen.append(value)

    assert callable(handler)  # the decorator returns the function itself
    em.emit("x", "a")
    em.emit("x", "b")
    assert seen == ["a", "b"]
    assert em.listeners("x") == [handler]


def test_decorator_form_of_once() -> None:
    em = EventEmitter()
    seen: list[str] = []

    @em.once("x")
    def handler(value: str) -> None:
        seen.append(value)

    assert em.listeners("x") == [handler]
    em.emit("x", "a")
    em.emit("x", "b")
    assert seen == ["a"]
    assert em.listeners("x") == []


def test_once_is_called_once() -> None:
    em = EventEmitter()
    calls: list[int] = []
    em.once("x", lambda v: calls.append(v))
    assert em.emit("x", 1) is True
    assert em.emit("x", 2) is False
    assert calls == [1]


def test_once_is_removed_before_its_call() -> None:
    em = EventEmitter()
    during: list[object] = []

    def fn() -> None:
        during.append(list(em.listeners("x")))
        # Re-emitting from inside must not call it again.
        during.append(em.emit("x"))

    em.once("x", fn)
    em.emit("x")
    assert during == [[], False]


def test_off_removes_a_listener() -> None:
    em = EventEmitter()
    calls: list[str] = []

    def a() -> None:
        calls.append("a")

    def b() -> None:
        calls.append("b")

    em.on("x", a)
    em.on("x", b)
    em.off("x", a)
    em.emit("x")
    assert calls == ["b"]
    assert em.listeners("x") == [b]


def test_off_of_unknown_listener_or_event_is_harmless() -> None:
    em = EventEmitter()

    def fn() -> None:
        pass

    em.off("nothing", fn)
    em.on("x", lambda: None)
    em.off("x", fn)
    assert len(em.listeners("x")) == 1


def test_off_of_a_once_registered_function() -> None:
    em = EventEmitter()
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)

    em.once("x", fn)
    em.off("x", fn)
    assert em.emit("x") is False
    assert calls == []
    assert em.listeners("x") == []


def test_removing_a_listener_during_emit_does_not_skip_others() -> None:
    em = EventEmitter()
    calls: list[str] = []

    def b() -> None:
        calls.append("b")

    def c() -> None:
        calls.append("c")

    def a() -> None:
        calls.append("a")
        em.off("x", a)
        em.off("x", b)  # already in the emit's snapshot: still called this time

    em.on("x", a)
    em.on("x", b)
    em.on("x", c)
    em.emit("x")
    assert calls == ["a", "b", "c"]
    calls.clear()
    em.emit("x")
    assert calls == ["c"]


def test_once_listeners_removing_themselves_do_not_skip_others() -> None:
    em = EventEmitter()
    calls: list[str] = []
    em.once("x", lambda: calls.append("a"))
    em.once("x", lambda: calls.append("b"))
    em.on("x", lambda: calls.append("c"))
    em.emit("x")
    assert calls == ["a", "b", "c"]


def test_listener_added_during_emit_is_not_called_by_that_emit() -> None:
    em = EventEmitter()
    calls: list[str] = []

    def late() -> None:
        calls.append("late")

    def a() -> None:
        calls.append("a")
        em.on("x", late)

    em.once("x", a)
    em.emit("x")
    assert calls == ["a"]
    em.emit("x")
    assert calls == ["a", "late"]


def test_remove_all_listeners_of_one_event() -> None:
    em = EventEmitter()
    em.on("x", lambda: None)
    em.once("x", lambda: None)
    em.on("y", lambda: None)
    em.remove_all_listeners("x")
    assert em.listeners("x") == []
    assert len(em.listeners("y")) == 1
    assert em.emit("x") is False
    assert em.emit("y") is True


def test_remove_all_listeners_of_every_event() -> None:
    em = EventEmitter()
    em.on("x", lambda: None)
    em.on("y", lambda: None)
    em.remove_all_listeners()
    assert em.listeners("x") == []
    assert em.listeners("y") == []
    assert em.emit("x") is False
    assert em.emit("y") is False


def test_listeners_is_a_copy_in_call_order() -> None:
    em = EventEmitter()

    def a() -> None:
        pass

    def b() -> None:
        pass

    em.on("x", a)
    em.once("x", b)
    got = em.listeners("x")
    assert got == [a, b]
    got.clear()
    assert em.listeners("x") == [a, b]
    assert em.listeners("unknown") == []


def test_error_without_listener_raises_the_error() -> None:
    em = EventEmitter()
    err = ValueError("boom")
    with pytest.raises(ValueError) as info:
        em.emit("error", err)
    assert info.value is err


@pytest.mark.parametrize("args", [("not an exception",), ()])
def test_error_without_listener_and_not_an_exception_raises_runtime_error(args: tuple[object, ...]) -> None:
    em = EventEmitter()
    with pytest.raises(RuntimeError):
        em.emit("error", *args)


def test_error_with_a_listener_does_not_raise() -> None:
    em = EventEmitter()
    seen: list[BaseException] = []
    em.on("error", seen.append)
    err = ValueError("boom")
    assert em.emit("error", err) is True
    assert seen == [err]


def test_error_with_only_a_once_listener_raises_the_second_time() -> None:
    em = EventEmitter()
    seen: list[BaseException] = []
    em.once("error", seen.append)
    em.emit("error", KeyError("first"))
    with pytest.raises(KeyError):
        em.emit("error", KeyError("second"))
    assert len(seen) == 1


def test_synchronous_listener_exception_propagates_to_emit() -> None:
    em = EventEmitter()
    em.on("x", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        em.emit("x")


async def test_coroutine_listeners_are_scheduled_as_tasks() -> None:
    em = EventEmitter()
    order: list[str] = []
    done = asyncio.get_running_loop().create_future()

    async def coro_listener(value: int) -> None:
        order.append(f"coro start {value}")
        await asyncio.sleep(0)
        order.append(f"coro end {value}")
        if value == 2:
            done.set_result(None)

    em.on("x", coro_listener)
    em.on("x", lambda value: order.append(f"sync {value}"))
    assert em.emit("x", 1) is True
    # Not run inline: the coroutine only starts once the loop gets control.
    assert order == ["sync 1"]
    em.emit("x", 2)
    await asyncio.wait_for(done, 5)
    assert "coro start 1" in order and "coro end 1" in order
    assert order.index("coro start 2") < order.index("coro end 2")


async def test_coroutine_once_listener() -> None:
    em = EventEmitter()
    calls: list[int] = []
    done = asyncio.Event()

    @em.once("x")
    async def handler(value: int) -> None:
        calls.append(value)
        done.set()

    em.emit("x", 1)
    assert em.emit("x", 2) is False
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0)
    assert calls == [1]


async def test_exception_in_coroutine_listener_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    em = EventEmitter()
    ran = asyncio.Event()

    async def bad() -> None:
        ran.set()
        raise RuntimeError("listener failure 1234")

    em.on("x", bad)
    with caplog.at_level(logging.ERROR, logger="wsevents"):
        assert em.emit("x") is True  # does not raise here
        await asyncio.wait_for(ran.wait(), 5)
        for _ in range(10):  # let the task finish and its done-callback run
            await asyncio.sleep(0)
    records = [r for r in caplog.records if r.name == "wsevents" and r.levelno >= logging.ERROR]
    assert records, "the coroutine listener's exception was lost"
    exc_info = records[0].exc_info
    assert exc_info is not None
    assert isinstance(exc_info[1], RuntimeError)
    assert "listener failure 1234" in str(exc_info[1])


def test_listener_count() -> None:
    em = EventEmitter()
    assert em.listener_count("x") == 0
    em.on("x", lambda: None)
    em.once("x", lambda: None)
    assert em.listener_count("x") == 2


def test_listener_re_adding_itself_with_on_runs_once_per_emit() -> None:
    """Regression: a listener added during an emit was called by that same emit (here: without end)."""
    em = EventEmitter()
    calls: list[int] = []

    def again() -> None:
        calls.append(len(calls))
        if len(calls) > 100:  # bound the regression's failure mode: an endless emit
            raise AssertionError("the listener added during the emit was called by it")
        em.on("x", again)

    em.on("x", again)
    em.emit("x")
    assert calls == [0]
    assert em.listener_count("x") == 2
    em.emit("x")
    assert calls == [0, 1, 2]
    assert em.listener_count("x") == 4


def test_listener_added_with_on_during_emit_is_not_called_by_that_emit() -> None:
    em = EventEmitter()
    calls: list[str] = []

    def late() -> None:
        calls.append("late")

    def a() -> None:
        calls.append("a")
        em.on("x", late)
        em.once("x", late)

    em.on("x", a)
    em.emit("x")
    assert calls == ["a"]
    calls.clear()
    em.emit("x")
    assert calls == ["a", "late", "late"]


def test_a_listener_removed_by_an_earlier_one_is_still_called_by_that_emit() -> None:
    """As in Node: the emit calls the listeners it started with."""
    em = EventEmitter()
    calls: list[str] = []

    def b() -> None:
        calls.append("b")

    def a() -> None:
        calls.append("a")
        em.remove_all_listeners("x")

    em.on("x", a)
    em.on("x", b)
    em.emit("x")
    assert calls == ["a", "b"]
    assert em.emit("x") is False


class _Named(EventEmitter):
    _events = frozenset({"text", "binary", "close"})


def test_plain_emitter_accepts_any_event_name() -> None:
    em = EventEmitter()
    em.on("anything at all", lambda: None)
    em.once("txt", lambda: None)
    em.off("whatever", lambda: None)
    assert em.listener_count("anything at all") == 1


@pytest.mark.parametrize("method", ["on", "once", "off", "on-decorator", "once-decorator"])
def test_unknown_event_name_is_a_value_error_with_did_you_mean(method: str) -> None:
    em = _Named()
    name, _, form = method.partition("-")
    register = getattr(em, name)
    with pytest.raises(ValueError) as info:
        if form:
            register("txt")
        else:
            register("txt", lambda: None)
    message = str(info.value)
    assert "'txt'" in message
    assert "did you mean 'text'?" in message
    for valid in ("'binary'", "'close'", "'text'"):
        assert valid in message
    assert em.listener_count("text") == 0


def test_unknown_event_name_far_from_any_has_no_suggestion() -> None:
    with pytest.raises(ValueError) as info:
        _Named().on("zzzzzz", lambda: None)
    assert "did you mean" not in str(info.value)
    assert "'binary', 'close', 'text'" in str(info.value)


def test_known_event_names_of_a_subclass_work() -> None:
    em = _Named()
    got: list[str] = []

    def on_text(text: str) -> None:
        got.append(text)

    em.on("text", on_text)
    em.emit("text", "hi")
    em.off("text", on_text)
    assert got == ["hi"]
    assert em.listener_count("text") == 0


def _emitted(*modules: str) -> set[str]:
    """The event names that the library's code in ``modules`` emits (or checks listeners of)."""
    # _emit_message(listeners, "event", message): the listeners, looked up by the caller, come first.
    pattern = re.compile(r'(?:(?:\bemit|_emit_safe|listener_count)\(|_emit_message\(\s*\w+,)\s*"(\w+)"')
    return {name for module in modules for name in pattern.findall((SRC / module).read_text())}


@pytest.mark.parametrize(
    ("cls", "modules"),
    [
        (
            wsevents.Connection,
            (
                "aio/connection.py",
                "aio/transport.py",
                "aio/receiving.py",
                "aio/sending.py",
                "aio/keepalive.py",
                "aio/closing.py",
                "aio/client.py",
            ),
        ),
        (wsevents.Server, ("aio/server.py", "aio/listening.py", "aio/server_handshake.py")),
    ],
)
def test_each_class_allows_exactly_the_events_it_emits(
    cls: type[EventEmitter], modules: tuple[str, ...]
) -> None:
    assert cls._events == _emitted(*modules)


def test_streams_allow_exactly_the_events_they_emit() -> None:
    assert wsevents.InStream._events is not None and wsevents.OutStream._events is not None
    assert wsevents.InStream._events == _emitted("aio/streams.py")
    assert wsevents.OutStream._events == _emitted("aio/outstream.py")
    assert wsevents.InStream._events == {"data", "end", "error"}
    assert wsevents.OutStream._events == {"finish"}


async def test_typos_on_every_public_emitter_name_the_valid_events(make_server: Any, ws_connect: Any) -> None:
    server = await make_server()
    client = await ws_connect(f"ws://127.0.0.1:{server.port}/")
    stream = wsevents.InStream(lambda: None, lambda: None, 1024)
    out = client.begin_binary()
    cases: list[tuple[EventEmitter, str, str]] = [
        (client, "txt", "text"),
        (client, "mesage", "message"),
        (server, "conection", "connection"),
        (stream, "date", "data"),
        (out, "finsh", "finish"),
    ]
    for emitter, typo, meant in cases:
        with pytest.raises(ValueError, match=f"did you mean '{meant}'") as info:
            emitter.on(typo, lambda *args: None)
        public = "Connection" if isinstance(emitter, wsevents.Connection) else type(emitter).__name__
        assert str(info.value).startswith(f"{public} has no event '{typo}'")
        for valid in type(emitter)._events or ():
            assert repr(valid) in str(info.value)
    await out.end()


def test_emit_safe_logs_a_listener_error_instead_of_raising(caplog: pytest.LogCaptureFixture) -> None:
    em = EventEmitter()
    seen: list[str] = []

    def broken(text: str) -> None:
        raise ValueError(text)

    em.on("text", broken)
    em.on("text", seen.append)
    with caplog.at_level(logging.ERROR, logger="wsevents"):
        em._emit_safe("text", "boom")  # no exception reaches the I/O code that emitted
    assert seen == []  # as emit(): the first listener's error stops the others
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [ValueError]
    assert "exception in 'text' listener of <wsevents.emitter.EventEmitter object" in caplog.text


@pytest.mark.parametrize("cls", [wsevents.Connection, wsevents.Server, wsevents.InStream,
                                 wsevents.ReconnectingConnection])
def test_the_library_emits_through_one_emit_safe(cls: type[EventEmitter]) -> None:
    # Written once in EventEmitter, not once per class (issue 10).
    assert cls._emit_safe is EventEmitter._emit_safe
