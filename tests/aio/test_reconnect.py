"""The reconnecting client against a real wsevents server that is stopped and restarted on the same port.

Delays are short (``FAST``) so that every test takes well under a second; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import gc
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import wsevents
from helpers import MakeServer, RawServer, attach_echo, url_of, wait_until
from wsevents import ConnectionClosed, HandshakeError, InvalidState, ReadyState
from wsevents.aio import runner
from wsevents.aio.reconnect import ReconnectingConnection

FAST: dict[str, Any] = {"reconnect_delay": 0.02, "reconnect_max_delay": 0.1}

Reconnecting = Callable[..., ReconnectingConnection]


@pytest.fixture
async def reconnecting() -> AsyncIterator[Reconnecting]:
    """``reconnecting(url, **options)``: a fast reconnecting client, closed at teardown."""
    made: list[ReconnectingConnection] = []

    def factory(url: str, **options: Any) -> ReconnectingConnection:
        rc = wsevents.connect(url, reconnect=True, **{**FAST, **options})
        assert isinstance(rc, ReconnectingConnection)
        made.append(rc)
        return rc

    yield factory
    for rc in made:
        rc.close()
        leg = rc.connection
        if leg is not None and leg.transport is not None:
            leg.transport.abort()
        await asyncio.wait_for(rc.wait_closed(), 5)


async def stop(server: wsevents.Server, code: int = 1001) -> int:
    """Stop ``server`` as a restart would (its connections closed with ``code``); returns its port."""
    port = server.port
    assert port is not None
    for conn in server.connections:
        conn.close(code, "restart")
    await asyncio.wait_for(server.close(), 5)
    return port


async def restart(server: wsevents.Server, make_server: MakeServer, **options: Any) -> wsevents.Server:
    """``server`` stopped, and a new echo server listening on its port."""
    port = await stop(server)
    fresh = await make_server(port=port, **options)
    fresh.on("connection", attach_echo)
    return fresh


async def echo_server(make_server: MakeServer, **options: Any) -> wsevents.Server:
    server = await make_server(**options)
    server.on("connection", attach_echo)
    return server


def texts_of(server: wsevents.Server) -> asyncio.Queue[str]:
    """Every text any connection of ``server`` receives."""
    received: asyncio.Queue[str] = asyncio.Queue()
    server.on("connection", lambda conn: conn.on("text", received.put_nowait))
    return received


# -- the async style ------------------------------------------------------------------


async def test_async_for_yields_a_new_open_connection_after_a_restart(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server))
    connections = aiter(rc)
    first = await asyncio.wait_for(anext(connections), 5)
    assert first.ready_state is ReadyState.OPEN
    await first.send_text("one")
    assert await asyncio.wait_for(first.recv(), 5) == "one"

    server = await restart(server, make_server)
    second = await asyncio.wait_for(anext(connections), 5)
    assert second is not first
    assert first.ready_state.name == "CLOSED" and first.close_code == 1001
    await second.send_text("two")
    assert await asyncio.wait_for(second.recv(), 5) == "two"

    await rc.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(connections), 5)


async def test_the_documented_async_for_loop_survives_a_drop(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    received = texts_of(server)
    rc = reconnecting(url_of(server))
    rounds = 0

    async def client() -> None:
        nonlocal rounds
        async for conn in rc:
            rounds += 1
            await conn.send_text(f"round {rounds}")
            try:
                async for _ in conn:
                    pass
            except ConnectionClosed:
                continue

    task = asyncio.create_task(client())
    assert await asyncio.wait_for(received.get(), 5) == "round 1"
    for conn in server.connections:
        assert conn.transport is not None
        conn.transport.abort()  # a network cut: 1006 on the client
    assert await asyncio.wait_for(received.get(), 5) == "round 2"
    await rc.close()
    await asyncio.wait_for(task, 5)
    assert rounds == 2


async def test_await_waits_for_the_first_connection_even_if_the_server_is_late(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    port = await stop(server)
    rc = reconnecting(f"ws://127.0.0.1:{port}/")
    waiting = asyncio.ensure_future(rc._wait_open())
    await wait_until(lambda: rc._policy.backoff.attempts >= 2)  # refused twice already
    assert not waiting.done()
    await make_server(port=port)
    assert await asyncio.wait_for(waiting, 5) is rc
    assert rc.ready_state is ReadyState.OPEN
    # Awaiting an open one returns at once; so does async with.
    assert await asyncio.wait_for(rc, 1) is rc
    async with rc as same:
        assert same is rc
    assert rc.ready_state.name == "CLOSED"
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(rc, 1)


# -- the events style -----------------------------------------------------------------


async def test_one_object_emits_close_then_connect_again_with_the_same_listeners(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server))
    log: list[Any] = []
    echoes: asyncio.Queue[str] = asyncio.Queue()
    rc.on("connect", lambda: log.append("connect"))
    rc.on("close", lambda code, reason: log.append(("close", code, reason, rc.ready_state)))
    rc.on("text", echoes.put_nowait)

    await wait_until(lambda: log == ["connect"])
    rc.send_text("before")
    assert await asyncio.wait_for(echoes.get(), 5) == "before"
    server = await restart(server, make_server)
    await wait_until(lambda: len(log) == 3)
    assert log == ["connect", ("close", 1001, "restart", ReadyState.CONNECTING), "connect"]
    assert (rc.close_code, rc.close_reason) == (1001, "restart")
    rc.send_text("after")
    assert await asyncio.wait_for(echoes.get(), 5) == "after"

    await rc.close(4000, "bye")
    assert log[-1][1::2] == (4000, ReadyState.CLOSED)
    assert rc.connection is None


async def test_a_listener_added_while_connected_hears_the_current_connection(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server))
    await asyncio.wait_for(rc, 5)
    messages: asyncio.Queue[str | bytes] = asyncio.Queue()
    rc.on("message", messages.put_nowait)
    rc.send_binary(bytearray(b"\x01\x02"))
    assert await asyncio.wait_for(messages.get(), 5) == b"\x01\x02"


def test_it_allows_the_events_of_a_connection() -> None:
    """Its own "connect" and "close" and the forwarded ones: a connection's events, no more, no
    fewer (an unknown name in ``on()`` is refused alike)."""
    assert ReconnectingConnection._events == wsevents.Connection._events


async def test_the_callback_of_connect_runs_at_every_connection(make_server: MakeServer) -> None:
    server = await echo_server(make_server)
    opened = 0

    def on_connect() -> None:
        nonlocal opened
        opened += 1

    rc = wsevents.connect(url_of(server), on_connect, reconnect=True, **FAST)
    try:
        await wait_until(lambda: opened == 1)
        server = await restart(server, make_server)
        await wait_until(lambda: opened == 2)
    finally:
        await asyncio.wait_for(rc.close(), 5)


# -- when it stops, and when it goes on -------------------------------------------------


def closing_with(code: int) -> Callable[[wsevents.Connection], object]:
    return lambda conn: conn.close(code, "go away")


@pytest.mark.parametrize(("code", "stop_codes"), [(1008, None), (4001, {1008, 4001})])
async def test_a_stop_code_from_the_server_ends_reconnection(
    make_server: MakeServer, reconnecting: Reconnecting, code: int, stop_codes: set[int] | None
) -> None:
    server = await make_server()
    server.on("connection", closing_with(code))
    accepted = 0

    def count(_: wsevents.Connection) -> None:
        nonlocal accepted
        accepted += 1

    server.on("connection", count)
    options = {} if stop_codes is None else {"reconnect_stop_codes": stop_codes}
    rc = reconnecting(url_of(server), **options)
    closes: list[tuple[int, ReadyState]] = []
    rc.on("close", lambda c, r: closes.append((c, rc.ready_state)))
    with pytest.raises(ConnectionClosed) as raised:
        async for _ in rc:
            pass
    assert raised.value.code == code
    await asyncio.wait_for(rc.wait_closed(), 5)
    assert closes == [(code, ReadyState.CLOSED)]
    assert rc.ready_state is ReadyState.CLOSED and rc.connection is None and rc._timer is None
    assert accepted == 1
    with pytest.raises(InvalidState, match="does not reconnect any more"):
        rc.send_text("late")


@pytest.mark.parametrize("code", [1000, 1011, 4002])
async def test_other_close_codes_from_the_server_are_retried(
    make_server: MakeServer, reconnecting: Reconnecting, code: int
) -> None:
    server = await make_server()
    accepted: list[wsevents.Connection] = []

    def on_connection(conn: wsevents.Connection) -> None:
        accepted.append(conn)
        if len(accepted) == 1:
            conn.close(code, "again")

    server.on("connection", on_connection)
    rc = reconnecting(url_of(server), reconnect_stop_codes={1008, 4001})
    closes: list[int] = []
    rc.on("close", lambda c, r: closes.append(c))
    await wait_until(lambda: len(accepted) == 2)
    assert await asyncio.wait_for(rc, 5) is rc
    assert closes == [code]


async def test_http_403_at_the_handshake_ends_reconnection(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    calls = 0

    def refuse(request: Any) -> bool:
        nonlocal calls
        calls += 1
        return False

    server = await make_server(verify_client=refuse)
    rc = reconnecting(url_of(server))
    errors: list[BaseException] = []
    closes: list[int] = []
    rc.on("error", errors.append)
    rc.on("close", lambda code, reason: closes.append(code))
    with pytest.raises(HandshakeError) as raised:
        await asyncio.wait_for(rc, 5)
    assert raised.value.status == 403
    await asyncio.wait_for(rc.wait_closed(), 5)
    assert rc.ready_state is ReadyState.CLOSED and calls == 1
    assert errors == [raised.value] and closes == [1006]
    with pytest.raises(HandshakeError):
        async for _ in rc:
            pass


@pytest.mark.parametrize("status", [503, 429, 408])
async def test_http_503_429_and_408_at_the_handshake_are_retried(
    make_server: MakeServer, reconnecting: Reconnecting, status: int
) -> None:
    calls = 0

    def busy_twice(request: Any) -> bool | int:
        nonlocal calls
        calls += 1
        return status if calls <= 2 else True

    server = await make_server(verify_client=busy_twice)
    rc = reconnecting(url_of(server))
    errors: list[BaseException] = []
    rc.on("error", errors.append)
    assert await asyncio.wait_for(rc, 5) is rc
    assert calls == 3 and errors == []


async def test_a_refused_tcp_connect_is_retried_until_the_server_comes_back(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server))
    await asyncio.wait_for(rc, 5)
    port = await stop(server)
    await wait_until(lambda: rc._policy.backoff.attempts >= 3)
    assert rc.ready_state is ReadyState.CONNECTING
    await echo_server(make_server, port=port)
    await asyncio.wait_for(rc, 5)


async def test_close_while_waiting_to_reconnect_ends_at_once(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server), reconnect_delay=30, reconnect_max_delay=60)
    await asyncio.wait_for(rc, 5)
    closes: list[int] = []
    rc.on("close", lambda code, reason: closes.append(code))
    await stop(server)
    await wait_until(lambda: rc._timer is not None)
    await asyncio.wait_for(rc.close(), 1)
    assert rc.ready_state is ReadyState.CLOSED and rc._timer is None
    assert closes == [1001]  # the drop's; the end of reconnection adds none


async def test_close_before_the_first_connection_emits_close_once(reconnecting: Reconnecting) -> None:
    rc = reconnecting("ws://127.0.0.1:9/")  # discard port: refused
    closes: list[int] = []
    rc.on("close", lambda code, reason: closes.append(code))
    await asyncio.wait_for(rc.close(), 5)
    assert closes == [1006] and rc.ready_state is ReadyState.CLOSED
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(rc, 1)


async def test_close_during_an_attempt_leaves_no_unretrieved_exception(
    raw_server: RawServer, reconnecting: Reconnecting
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the handshake

    port = await raw_server(silent)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        rc = reconnecting(f"ws://127.0.0.1:{port}/")
        await wait_until(lambda: rc.connection is not None and rc.connection.transport is not None)
        await asyncio.wait_for(rc.close(), 5)
        gc.collect()
        await asyncio.sleep(0)  # a finalizer's report goes through call_soon
    finally:
        loop.set_exception_handler(previous)
    assert reported == []


async def test_the_users_close_ends_reconnection(make_server: MakeServer, reconnecting: Reconnecting) -> None:
    server = await echo_server(make_server)
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    server.on("connection", lambda conn: conn.on("close", lambda c, r: closed.set_result((c, r))))
    rc = reconnecting(url_of(server))
    await asyncio.wait_for(rc, 5)
    await asyncio.wait_for(rc.close(1000, "done"), 5)
    assert await asyncio.wait_for(closed, 5) == (1000, "done")
    assert rc.ready_state is ReadyState.CLOSED and rc.connection is None and rc._timer is None
    assert len(server.connections) == 0


async def test_run_shutdown_closes_with_1001_and_does_not_reconnect(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    codes: list[int] = []
    server.on("connection", lambda conn: conn.on("close", lambda c, r: codes.append(c)))
    rc = reconnecting(url_of(server))
    await asyncio.wait_for(rc, 5)
    runner.shutdown()  # what run() does on SIGINT/SIGTERM (the server too closes with 1001)
    await asyncio.wait_for(rc.wait_closed(), 5)
    assert rc.ready_state is ReadyState.CLOSED and rc._timer is None and codes == [1001]


# -- sends while disconnected --------------------------------------------------------


async def disconnected(rc: ReconnectingConnection, server: wsevents.Server) -> int:
    """Wait until ``rc`` is open, then stop ``server`` and wait until ``rc`` knows; returns the port."""
    await asyncio.wait_for(rc, 5)
    port = await stop(server)
    await wait_until(lambda: rc.ready_state is ReadyState.CONNECTING)
    return port


async def test_a_send_while_disconnected_raises_by_default(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server))
    await disconnected(rc, server)
    with pytest.raises(InvalidState, match="reconnect_queue=N"):
        rc.send_text("lost")
    with pytest.raises(InvalidState):
        rc.send_ping()
    with pytest.raises(InvalidState):
        rc.begin_binary()
    failures: list[BaseException | None] = []
    failed = rc.send("to the callback", failures.append)
    assert isinstance(failures[0], InvalidState)
    with pytest.raises(InvalidState):
        await failed


async def test_queued_messages_go_out_in_order_before_new_sends(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server), reconnect_queue=3)
    port = await disconnected(rc, server)
    sent: list[BaseException | None] = []
    queued = [rc.send_text("q1"), rc.send_binary(b"q2"), rc.send("q3", sent.append)]
    with pytest.raises(InvalidState, match="reconnect_queue is full"):
        rc.send_text("q4")
    rc.once("connect", lambda: rc.send_text("fresh"))
    fresh = await make_server(port=port)
    received: asyncio.Queue[str | bytes] = asyncio.Queue()
    fresh.on("connection", lambda conn: conn.on("message", received.put_nowait))
    await asyncio.wait_for(asyncio.gather(*queued), 5)
    assert sent == [None]
    got = [await asyncio.wait_for(received.get(), 5) for _ in range(4)]
    assert got == ["q1", b"q2", "q3", "fresh"]


async def test_queued_messages_fail_when_reconnection_ends(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server), reconnect_queue=2)
    await disconnected(rc, server)
    errors: list[BaseException | None] = []
    first, second = rc.send_text("a"), rc.send_text("b", errors.append)
    rc.close()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(first, 1)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(second, 1)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionClosed)


async def test_a_cancelled_wait_for_a_queued_send_does_not_withdraw_it(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server), reconnect_queue=1)
    port = await disconnected(rc, server)
    queued = rc.send_text("still sent")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(queued, 0.01)
    fresh = await make_server(port=port)
    received = texts_of(fresh)
    assert await asyncio.wait_for(received.get(), 5) == "still sent"


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"reconnect_queue": 5}, ValueError, "add reconnect=True"),
        ({"reconnect": True, "reconnect_queue": -1}, ValueError, "reconnect_queue"),
        ({"reconnect": True, "reconnect_delay": 0}, ValueError, "reconnect_delay"),
        ({"reconnect": True, "reconnect_delay": 5, "reconnect_max_delay": 1}, ValueError, "below"),
        ({"reconnect": True, "reconnect_stop_codes": {1006}}, ValueError, "1006"),
        ({"reconnect": True, "reconnect_stop_codes": "1008"}, TypeError, "reconnect_stop_codes"),
        ({"reconnect": 1}, TypeError, "reconnect"),
        ({"reconnect": True, "reconnect_dealy": 1}, TypeError, "did you mean 'reconnect_delay'"),
        ({"reconnect": True, "reconnectQueue": 1}, TypeError, "did you mean 'reconnect_queue'"),
    ],
)
def test_options_are_checked_at_the_call(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        wsevents.connect("ws://127.0.0.1:9/", **options)


def test_reconnect_is_a_client_only_option() -> None:
    with pytest.raises(TypeError, match="client-only"):
        wsevents.create_server(reconnect=True)


async def test_a_bad_url_is_refused_before_any_attempt() -> None:
    with pytest.raises(ValueError):
        wsevents.connect("http://127.0.0.1/", reconnect=True)


# -- the docs ----------------------------------------------------------------------------


def guide_examples_with(marker: str) -> list[str]:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "guide.md").read_text()
    return [code for code in re.findall(r"```python\n(.*?)```", guide, re.S) if marker in code]


def test_the_guides_reconnecting_examples_print_what_their_comments_say() -> None:
    examples = guide_examples_with("reconnect=True")
    assert len(examples) == 2
    for code in examples:
        expected = [line[2:] for line in code.splitlines() if line.startswith("# ")]
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.splitlines() == expected


async def test_the_reference_documents_every_public_attribute(
    make_server: MakeServer, reconnecting: Reconnecting
) -> None:
    server = await echo_server(make_server)
    rc = reconnecting(url_of(server))
    await asyncio.wait_for(rc, 5)
    reference = (Path(__file__).resolve().parents[2] / "docs" / "reference.md").read_text()
    for attr in vars(rc):
        if not attr.startswith("_"):
            assert f"### `ReconnectingConnection.{attr}`" in reference, attr
    for option in ("reconnect", "reconnect_delay", "reconnect_max_delay", "reconnect_stop_codes"):
        assert f"| `{option}` |" in reference
    assert "| `reconnect_queue` |" in reference
