"""Logging through the "wsevents" logger: connections at INFO, messages at DEBUG, never print."""

from __future__ import annotations

import asyncio
import logging

import pytest

import wsevents


async def test_connections_at_info_and_messages_at_debug(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG, logger="wsevents"):
        server = await wsevents.create_server(lambda c: c.on("text", c.send_text)).listen(0, "127.0.0.1")
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/chat") as client:
            await client.send_text("hello")
            assert await asyncio.wait_for(client.recv(), 5) == "hello"
            await client.send_binary(b"\x00\x01")
        await server.close()
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "wsevents"]
    assert any(level == logging.INFO and "listening on" in msg for level, msg in records)
    assert any(
        level == logging.INFO and msg.startswith("connection from") and "/chat" in msg
        for level, msg in records
    )
    assert any(
        level == logging.DEBUG and "sent text message of 5 characters" in msg for level, msg in records
    )
    assert any(level == logging.DEBUG and "received text message of 5 bytes" in msg for level, msg in records)
    assert any(level == logging.DEBUG and "sent binary message of 2 bytes" in msg for level, msg in records)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # the library never prints


async def test_no_debug_records_unless_enabled(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="wsevents"):
        server = await wsevents.create_server(lambda c: c.on("text", c.send_text)).listen(0, "127.0.0.1")
        async with wsevents.connect(f"ws://127.0.0.1:{server.port}/") as client:
            await client.send_text("hello")
            await asyncio.wait_for(client.recv(), 5)
        await server.close()
    assert not [r for r in caplog.records if r.levelno == logging.DEBUG]
