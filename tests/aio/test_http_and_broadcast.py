"""``http_handler`` (plain HTTP on the WebSocket port) and ``server.broadcast``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import wsevents
from helpers import wait_until


async def http_get(port: int, path: str = "/", extra: str = "") -> tuple[str, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)  # the server closes after answering
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, body


async def test_http_handler_answers_plain_requests_and_upgrades_still_work() -> None:
    seen: list[wsevents.HttpRequest] = []

    def handler(request: wsevents.HttpRequest) -> Any:
        seen.append(request)
        if request.path == "/":
            return 200, {"Content-Type": "text/html"}, "<h1>chat</h1>"
        return None

    server = await wsevents.create_server(http_handler=handler).listen(0, "127.0.0.1")
    server.on("connection", lambda c: c.on("text", c.send_text))
    try:
        status, headers, body = await http_get(server.port, "/", "X-Test: 1\r\n")
        assert status == "HTTP/1.1 200 OK"
        assert headers["content-type"] == "text/html"
        assert headers["content-length"] == str(len(body))
        assert body == b"<h1>chat</h1>"
        assert seen[0].method == "GET" and seen[0].path == "/" and seen[0].headers["x-test"] == "1"
        assert seen[0].remote_address[0] == "127.0.0.1"
        # None falls through to 426 with Upgrade: websocket.
        status, headers, _ = await http_get(server.port, "/missing")
        assert status == "HTTP/1.1 426 Upgrade Required"
        assert headers["upgrade"] == "websocket"
        # Upgrade requests never reach the handler.
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
            await client.send_text("hi")
            assert await asyncio.wait_for(client.recv(), 5) == "hi"
        assert [r.path for r in seen] == ["/", "/missing"]
    finally:
        await asyncio.wait_for(server.close(), 5)


async def test_async_http_handler_and_a_handler_that_raises() -> None:
    async def handler(request: wsevents.HttpRequest) -> Any:
        await asyncio.sleep(0)
        if request.path == "/boom":
            raise RuntimeError("boom")
        return 404, [("X-Why", "nothing here")], b"no"

    server = await wsevents.create_server({"http_handler": handler}).listen(0, "127.0.0.1")
    try:
        status, headers, body = await http_get(server.port, "/x")
        assert (status, headers["x-why"], body) == ("HTTP/1.1 404 Not Found", "nothing here", b"no")
        status, _, _ = await http_get(server.port, "/boom")
        assert status == "HTTP/1.1 500 Internal Server Error"
    finally:
        await asyncio.wait_for(server.close(), 5)


async def test_broadcast_reaches_everyone_but_the_excluded() -> None:
    server = await wsevents.create_server().listen(0, "127.0.0.1")
    url = f"ws://127.0.0.1:{server.port}"
    # Three uncompressed peers get the same pre-built frame; the compressing one its own.
    clients = [await wsevents.connect(f"{url}/{i}", compression=False) for i in range(3)]
    clients.append(await wsevents.connect(f"{url}/3"))
    try:
        while len(server.connections) < 4:
            await asyncio.sleep(0.01)
        by_path = {conn.path: conn for conn in server.connections}
        assert by_path["/3"].deflate is not None and by_path["/0"].deflate is None
        assert server.broadcast("hello all") == 4
        assert server.broadcast("x" * 1000, exclude=by_path["/0"]) == 3
        assert server.broadcast(b"\x00\x01", exclude=[by_path["/0"], by_path["/1"]]) == 2
        assert server.broadcast("end") == 4
        expected = {
            0: ["hello all", "end"],
            1: ["hello all", "x" * 1000, "end"],
            2: ["hello all", "x" * 1000, b"\x00\x01", "end"],
            3: ["hello all", "x" * 1000, b"\x00\x01", "end"],
        }
        for i, client in enumerate(clients):
            got = [await asyncio.wait_for(client.recv(), 5) for _ in expected[i]]
            assert got == expected[i], i
        # A connection sending an OutStream is skipped (a frame may not cut into its message).
        out = by_path["/2"].begin_binary()
        assert server.broadcast("not for /2") == 3
        out.end()
        assert await asyncio.wait_for(clients[2].recv(), 5) == b""
    finally:
        for client in clients:
            await client.close()
        await asyncio.wait_for(server.close(), 5)


@pytest.mark.parametrize("compression", [False, True])
async def test_broadcast_skips_connections_that_are_not_open(compression: bool) -> None:
    """A connection closing (its close frame sent) gets nothing more, compressed path or not."""
    server = await wsevents.create_server(compression=compression).listen(0, "127.0.0.1")
    clients = [await wsevents.connect(f"ws://127.0.0.1:{server.port}/{i}") for i in range(2)]
    try:
        await wait_until(lambda: len(server.connections) == 2)
        closing, open_one = sorted(server.connections, key=lambda conn: conn.path)
        closing.close()
        assert closing.ready_state is wsevents.ReadyState.CLOSING
        message = "after the close " * 20  # long enough to be compressed when compression is on
        assert server.broadcast(message) == 1
        assert await asyncio.wait_for(clients[1].recv(), 5) == message
        with pytest.raises(wsevents.ConnectionClosed):
            await asyncio.wait_for(clients[0].recv(), 5)
    finally:
        for client in clients:
            await client.close()
        await asyncio.wait_for(server.close(), 5)
