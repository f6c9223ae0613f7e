"""``wsevents.run()`` and the default loop (src/wsevents/aio/runner.py).

``run()`` drives the library's default loop and installs signal handlers, so
each case runs in its own interpreter (``sys.executable -c SCRIPT``); the test
talks to it over loopback from its own loop.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import wsevents
from wsevents import Connection

# Each subprocess gets at most this long for any one step.
STEP = 20.0

Spawn = Callable[..., Awaitable[asyncio.subprocess.Process]]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """``proc = await spawn(script, *args)``: ``python -c script args``; killed at teardown if running."""
    procs: list[asyncio.subprocess.Process] = []

    async def factory(script: str, *args: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            textwrap.dedent(script),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
        return proc

    yield factory
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_line(proc: asyncio.subprocess.Process) -> str:
    """The next line the script prints (fails with its stderr if it died instead)."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), STEP)
    if not line:
        assert proc.stderr is not None
        err = await asyncio.wait_for(proc.stderr.read(), STEP)
        pytest.fail(f"the script ended early:\n{err.decode(errors='replace')}")
    return line.decode().strip()


async def read_port(proc: asyncio.subprocess.Process) -> int:
    line = await read_line(proc)
    label, port = line.split()
    assert label == "PORT"
    return int(port)


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """Wait for the script to exit; its return code, the rest of its stdout, its stderr."""
    out, err = await asyncio.wait_for(proc.communicate(), STEP)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def record_close(conn: Connection) -> asyncio.Future[tuple[int, str]]:
    fut: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    conn.on("close", lambda code, reason: fut.done() or fut.set_result((code, reason)))
    return fut


ECHO_SERVER = """
    import wsevents

    def on_connection(conn):
        conn.on("text", lambda text: conn.send_text("echo:" + text))

    server = wsevents.create_server(on_connection)
    server.listen(0, "127.0.0.1", lambda: print("PORT", server.port, flush=True))
    result = wsevents.run()
    print("RETURNED", result, server.listening, flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_closes_connections_with_1001_and_run_returns(
    spawn: Spawn, ws_connect: Any, sig: signal.Signals
) -> None:
    proc = await spawn(ECHO_SERVER)
    port = await read_port(proc)
    client = await ws_connect(f"ws://127.0.0.1:{port}/")
    closed = record_close(client)
    await client.send_text("hi")
    assert await asyncio.wait_for(client.recv(), STEP) == "echo:hi"

    proc.send_signal(sig)
    code, _reason = await asyncio.wait_for(closed, STEP)
    assert code == 1001
    assert client.close_code == 1001
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert "RETURNED None False" in out
    assert "Traceback" not in err


async def test_signal_ends_async_for_cleanly(spawn: Spawn, ws_connect: Any) -> None:
    proc = await spawn(ECHO_SERVER)
    port = await read_port(proc)
    client = await ws_connect(f"ws://127.0.0.1:{port}/")
    await client.send_text("one")
    received: list[str | bytes] = []

    async def read_all() -> None:
        async for message in client:
            received.append(message)
            proc.send_signal(signal.SIGINT)

    await asyncio.wait_for(read_all(), STEP)  # ends without raising: 1001 is a normal end
    assert received == ["echo:one"]
    returncode, _, err = await finish(proc)
    assert returncode == 0, err


async def test_signal_with_nothing_connected(spawn: Spawn) -> None:
    proc = await spawn(ECHO_SERVER)
    await read_port(proc)
    proc.send_signal(signal.SIGINT)
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert "RETURNED None False" in out


async def test_signal_cancels_a_running_main(spawn: Spawn) -> None:
    proc = await spawn(
        """
        import asyncio
        import wsevents

        async def main():
            print("READY", flush=True)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                print("CANCELLED", flush=True)
                raise
            return "never"

        print("RESULT", wsevents.run(main()), flush=True)
        """
    )
    assert await read_line(proc) == "READY"
    proc.send_signal(signal.SIGTERM)
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.split("\n")[:2] == ["CANCELLED", "RESULT None"]


async def test_run_main_returns_its_result(spawn: Spawn) -> None:
    proc = await spawn(
        """
        import asyncio
        import wsevents

        async def main():
            await asyncio.sleep(0.01)
            return {"answer": 42}

        print("RESULT", wsevents.run(main()), flush=True)
        """
    )
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.strip() == "RESULT {'answer': 42}"


async def test_run_main_exception_propagates(spawn: Spawn) -> None:
    proc = await spawn(
        """
        import wsevents

        async def main():
            raise KeyError("from main")

        try:
            wsevents.run(main())
        except KeyError as exc:
            print("RAISED", exc, flush=True)
        """
    )
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.strip() == "RAISED 'from main'"


async def test_run_main_then_waits_for_what_it_opened(spawn: Spawn, ws_connect: Any) -> None:
    proc = await spawn(
        """
        import wsevents

        async def main():
            server = wsevents.create_server()

            def on_connection(conn):
                server.close()  # stop accepting; this connection stays open
                conn.on("text", lambda text: conn.send_text(text.upper()))

            server.on("connection", on_connection)
            await server.listen(0, "127.0.0.1")
            print("PORT", server.port, flush=True)
            return 7

        print("RESULT", wsevents.run(main()), flush=True)
        """
    )
    port = await read_port(proc)
    client = await ws_connect(f"ws://127.0.0.1:{port}/")
    await client.send_text("abc")
    assert await asyncio.wait_for(client.recv(), STEP) == "ABC"
    await asyncio.sleep(0.2)
    assert proc.returncode is None  # main has returned, but a connection is still open
    await asyncio.wait_for(client.close(1000), STEP)
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.strip() == "RESULT 7"


async def test_run_returns_when_the_server_closed_and_its_last_connection_ended(
    spawn: Spawn, ws_connect: Any
) -> None:
    proc = await spawn(
        """
        import wsevents

        server = wsevents.create_server()

        def on_connection(conn):
            server.close()  # stop accepting; this connection stays open
            conn.on("text", lambda text: conn.send_text(text))

        server.on("connection", on_connection)
        server.on("close", lambda: print("SERVER CLOSE", flush=True))
        server.listen(0, "127.0.0.1", lambda: print("PORT", server.port, flush=True))
        wsevents.run()
        print("RETURNED", flush=True)
        """
    )
    port = await read_port(proc)
    client = await ws_connect(f"ws://127.0.0.1:{port}/")
    closed = record_close(client)
    await client.send_text("ping")
    assert await asyncio.wait_for(client.recv(), STEP) == "ping"
    await asyncio.sleep(0.2)
    assert proc.returncode is None  # the open connection keeps run() going
    client.close(1000)
    assert (await asyncio.wait_for(closed, STEP))[0] == 1000
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.split() == ["SERVER", "CLOSE", "RETURNED"]


async def test_client_created_outside_a_loop_completes_under_run(spawn: Spawn, echo_url: str) -> None:
    proc = await spawn(
        """
        import sys
        import wsevents

        conn = wsevents.connect(sys.argv[1])  # no loop is running: the default loop

        @conn.on("connect")
        def on_connect():
            conn.send_text("hello from the script")

        @conn.on("text")
        def on_text(text):
            print("GOT", text, flush=True)
            conn.close(1000)

        wsevents.run()
        print("RETURNED", conn.close_code, flush=True)
        """,
        echo_url,
    )
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.splitlines() == ["GOT hello from the script", "RETURNED 1000"]


async def test_run_can_be_called_again_after_it_returned(spawn: Spawn) -> None:
    proc = await spawn(
        """
        import wsevents

        async def first():
            return 1

        async def second():
            server = wsevents.create_server()
            await server.listen(0, "127.0.0.1")
            server.close()
            return 2

        print("RESULTS", wsevents.run(first()), wsevents.run(second()), flush=True)
        """
    )
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.strip() == "RESULTS 1 2"


async def test_run_with_nothing_to_do_returns_at_once(spawn: Spawn) -> None:
    proc = await spawn(
        """
        import wsevents

        print("RESULT", wsevents.run(), flush=True)
        """
    )
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.strip() == "RESULT None"


async def test_run_inside_a_running_loop_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError):
        wsevents.run()

    async def main() -> int:
        return 1

    coro = main()
    with pytest.raises(RuntimeError):
        wsevents.run(coro)
    # The coroutine was closed, not left to warn "never awaited".
    assert coro.cr_frame is None


# -- events style: listen() then connect() at once; errors nobody handles -----------------------


@pytest.mark.parametrize("host", ["None", "127.0.0.1", "::1", "localhost"])
async def test_connect_right_after_listen_works_and_run_returns(spawn: Spawn, host: str) -> None:
    proc = await spawn(
        """
        import socket, sys
        import wsevents

        host = None if sys.argv[1] == "None" else sys.argv[1]
        port = 0
        if host == "localhost":  # a name: the port must be chosen here to be known before the bind
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        server = wsevents.create_server(lambda conn: conn.on("text", conn.send_text))
        server.listen(port, host)
        port = port or server.port  # known at once for None and an IP address
        where = {None: "127.0.0.1", "::1": "[::1]"}.get(host, host)
        client = wsevents.connect(f"ws://{where}:{port}/")
        client.on("connect", lambda: client.send_text("ping"))
        client.on("text", lambda text: (print("GOT", text, flush=True), client.close(1000)))
        client.on("error", lambda exc: print("ERROR", exc, flush=True))
        client.on("close", lambda code, reason: (print("CLOSED", code, flush=True), server.close()))
        wsevents.run()
        print("RETURNED", flush=True)
        """,
        host,
    )
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.split("\n")[:3] == ["GOT ping", "CLOSED 1000", "RETURNED"], out + err


BUSY_PORT_SCRIPT = """
    import errno, socket, sys
    import wsevents

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    server = wsevents.create_server()
    if sys.argv[2] == "listener":
        server.on("error", lambda exc: print("ERROR EVENT", exc.errno == errno.EADDRINUSE, flush=True))
    server.listen(port, None if sys.argv[1] == "None" else sys.argv[1])
    try:
        wsevents.run()
    except OSError as exc:
        print("RAISED", exc.errno == errno.EADDRINUSE, str(port) in str(exc), flush=True)
    else:
        print("RETURNED", flush=True)
"""


@pytest.mark.parametrize("host", ["None", "127.0.0.1", "localhost"])
async def test_a_failed_listen_nobody_handles_is_raised_by_run(spawn: Spawn, host: str) -> None:
    proc = await spawn(BUSY_PORT_SCRIPT, host, "none")
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.strip() == "RAISED True True", out + err
    assert "never retrieved" not in err
    assert "Task was destroyed" not in err


async def test_a_failed_listen_goes_to_the_error_listener_and_run_returns(spawn: Spawn) -> None:
    proc = await spawn(BUSY_PORT_SCRIPT, "127.0.0.1", "listener")
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.split("\n")[:2] == ["ERROR EVENT True", "RETURNED"], out + err
    assert err == ""


async def test_forgetting_run_says_so(spawn: Spawn) -> None:
    proc = await spawn(
        """
        import wsevents

        server = wsevents.create_server()
        server.listen(0, "127.0.0.1")
        client = wsevents.connect(f"ws://127.0.0.1:{server.port}/")
        print("END", flush=True)
        """
    )
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.strip() == "END"
    assert "wsevents.run() was never called" in err
    assert "Task was destroyed" not in err
    assert "never awaited" not in err
    assert len(err.strip().splitlines()) == 1, err


async def test_a_script_that_ran_leaves_nothing_to_say_at_exit(spawn: Spawn) -> None:
    proc = await spawn(
        """
        import wsevents

        server = wsevents.create_server()
        server.listen(0, "127.0.0.1", lambda: server.close())
        wsevents.run()
        print("END", flush=True)
        """
    )
    returncode, out, err = await finish(proc)
    assert returncode == 0, err
    assert out.strip() == "END"
    assert err == ""
