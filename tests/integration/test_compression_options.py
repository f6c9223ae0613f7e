"""The ``compression`` option between wsevents peers: on by default, off on either side, settings agreed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import wsevents


@pytest.fixture
async def server_with() -> AsyncIterator[Any]:
    servers: list[wsevents.Server] = []

    async def start(**options: Any) -> tuple[wsevents.Server, asyncio.Queue[wsevents.Connection]]:
        accepted: asyncio.Queue[wsevents.Connection] = asyncio.Queue()

        def on_connection(conn: wsevents.Connection) -> None:
            accepted.put_nowait(conn)

            async def echo() -> None:
                async for message in conn:
                    await conn.send(message)

            asyncio.ensure_future(echo())

        server = wsevents.create_server(on_connection, **options)
        await server.listen(0, "127.0.0.1")
        servers.append(server)
        return server, accepted

    yield start
    for server in servers:
        await asyncio.wait_for(server.close(graceful=True, timeout=1), 5)


async def roundtrip(conn: wsevents.Connection) -> None:
    for message in (
        "",
        "short",
        "x" * 127,
        "y" * 128,
        "ünïcødé ✓ " * 10_000,
        b"",
        b"\x00" * 128,
        bytes(range(256)) * 4096,
    ):
        await conn.send(message)
        assert await asyncio.wait_for(conn.recv(), 5) == message
    async with conn.begin_binary() as out:
        for i in range(20):
            await out.write(bytes([i]) * 50_000)
    assert await asyncio.wait_for(conn.recv(), 5) == b"".join(bytes([i]) * 50_000 for i in range(20))
    for i in range(200):  # context takeover across many messages
        await conn.send_text(f"message number {i} " * 20)
    for i in range(200):
        assert await asyncio.wait_for(conn.recv(), 5) == f"message number {i} " * 20


async def test_on_by_default_on_both_sides(server_with: Any) -> None:
    server, accepted = await server_with()
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/", binary_fragmentation=10_000) as client:
        server_conn = await asyncio.wait_for(accepted.get(), 5)
        assert client.deflate is not None and server_conn.deflate is not None
        assert client.headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        )
        assert server_conn.headers["sec-websocket-extensions"] == "permessage-deflate; client_max_window_bits"
        await roundtrip(client)


@pytest.mark.parametrize(
    ("on_server", "on_client"),
    [(False, True), (True, False), (False, False)],
    ids=["server-off", "client-off", "both-off"],
)
async def test_off_on_either_side(server_with: Any, on_server: bool, on_client: bool) -> None:
    server, accepted = await server_with(compression=on_server)
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/", compression=on_client) as client:
        server_conn = await asyncio.wait_for(accepted.get(), 5)
        assert client.deflate is None and server_conn.deflate is None
        assert "sec-websocket-extensions" not in client.headers
        assert ("sec-websocket-extensions" in server_conn.headers) is on_client
        await roundtrip(client)


@pytest.mark.parametrize(
    ("server_cfg", "client_cfg", "expect"),
    [
        ({"server_no_context_takeover": True}, True, {"server_nct": True}),
        (True, {"client_no_context_takeover": True}, {"client_nct": True}),
        ({"server_max_window_bits": 9}, True, {"server_bits": 9}),
        (True, {"client_max_window_bits": 9}, {"client_bits": 9}),
        (True, {"server_max_window_bits": 10}, {"server_bits": 10}),
        ({"client_max_window_bits": 8}, True, {"client_bits": 8}),
    ],
)
async def test_settings_are_agreed_on_both_sides(
    server_with: Any, server_cfg: Any, client_cfg: Any, expect: dict[str, Any]
) -> None:
    server, accepted = await server_with(compression=server_cfg)
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/", compression=client_cfg) as client:
        server_conn = await asyncio.wait_for(accepted.get(), 5)
        s, c = server_conn.deflate, client.deflate
        assert s is not None and c is not None
        assert s.compress_no_context == c.decompress_no_context == expect.get("server_nct", False)
        assert c.compress_no_context == s.decompress_no_context == expect.get("client_nct", False)
        assert s.compress_bits == expect.get("server_bits", 12)
        assert c.compress_bits == expect.get("client_bits", 12)
        # Window 8 is zlib's quirk: that side sends uncompressed, and all still works.
        assert c.can_compress == (c.compress_bits >= 9)
        await roundtrip(client)


async def test_threshold_leaves_small_messages_uncompressed(server_with: Any) -> None:
    """Seen on the wire: a message under the threshold has RSV1 clear, one at it has RSV1 set."""
    server, accepted = await server_with(compression={"threshold": 100})
    written: list[bytes] = []
    async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
        server_conn = await asyncio.wait_for(accepted.get(), 5)
        # The writes as the connection takes them from the core (any event loop).
        original = server_conn._write

        def spy(data: bytes) -> None:
            written.append(bytes(data))
            original(data)

        server_conn._write = spy
        server_conn.send_text("a" * 99)
        server_conn.send_text("b" * 100)
        del server_conn._write
        assert await asyncio.wait_for(client.recv(), 5) == "a" * 99
        assert await asyncio.wait_for(client.recv(), 5) == "b" * 100
    assert [w[0] & 0x40 for w in written] == [0, 0x40]
