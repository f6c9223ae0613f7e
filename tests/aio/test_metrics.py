"""``server.metrics``: the counters after scripted sessions, the exposition, ``metrics_handler``."""

from __future__ import annotations

import asyncio
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import wsevents
from helpers import attach_echo, close_event, metric_samples, url_of
from wsevents.metrics import CONTENT_TYPE, merge_families, render_families

Until = Callable[..., Awaitable[None]]
KiB = 1024


async def echo_server(make_server: Any, **options: Any) -> wsevents.Server:
    server: wsevents.Server = await make_server(close_timeout=1, **options)
    server.on("connection", attach_echo)
    return server


async def echoed(client: wsevents.Connection, messages: list[str | bytes]) -> None:
    """Send ``messages`` and wait for each one's echo."""
    got: list[str | bytes] = []
    done = asyncio.get_running_loop().create_future()

    def on_message(message: str | bytes) -> None:
        got.append(message)
        if len(got) == len(messages) and not done.done():
            done.set_result(None)

    client.on("message", on_message)
    for message in messages:
        client.send(message)
    await asyncio.wait_for(done, 5)
    assert got == messages


async def test_messages_bytes_and_close_codes_both_ways(make_server: Any, until: Until) -> None:
    server = await echo_server(make_server)
    client = await asyncio.wait_for(wsevents.connect(url_of(server)), 5)
    await until(lambda: len(server.connections) == 1)
    assert server.metrics.families()[0].samples[0][2] == 1  # connections_open
    await echoed(client, ["héllo", "abc", b"\x00" * 10])
    counts = server.metrics.counts()  # while open: read from the live connection
    assert counts == {
        "text_in": 2, "text_in_bytes": 9, "binary_in": 1, "binary_in_bytes": 10,
        "text_out": 2, "text_out_bytes": 9, "binary_out": 1, "binary_out_bytes": 10,
    }
    server_closed = close_event(server.connections[0])
    await asyncio.wait_for(client.close(4001, "bye"), 5)
    await asyncio.wait_for(server_closed, 5)
    assert server.metrics.counts() == counts  # the same once it ended: folded into the totals
    assert server.metrics.close_codes_received == {4001: 1}
    assert server.metrics.close_codes_sent == {4001: 1}  # the echo of the code
    found = metric_samples(server.metrics.render())
    assert found[("wsevents_connections_total", ())] == 1
    assert found[("wsevents_connections_open", ())] == 0
    assert found[("wsevents_messages_received_total", (("kind", "text"),))] == 2
    assert found[("wsevents_message_bytes_sent_total", (("kind", "binary"),))] == 10
    assert found[("wsevents_close_codes_received_total", (("code", "4001"),))] == 1
    assert found[("wsevents_close_codes_sent_total", (("code", "4001"),))] == 1
    assert found[("wsevents_handshake_seconds_count", ())] == 1
    assert found[("wsevents_handshake_seconds_bucket", (("le", "+Inf"),))] == 1


async def test_broadcast_and_server_close_are_counted(make_server: Any, until: Until) -> None:
    server = await echo_server(make_server)
    clients = [await asyncio.wait_for(wsevents.connect(url_of(server)), 5) for _ in range(2)]
    await until(lambda: len(server.connections) == 2)
    got: list[str] = []
    for client in clients:
        client.on("text", got.append)
    assert server.broadcast("to all") == 2
    await until(lambda: len(got) == 2)
    assert server.metrics.counts()["text_out"] == 2
    assert server.metrics.counts()["text_out_bytes"] == 12
    closes = [close_event(conn) for conn in server.connections]
    for conn in server.connections:
        conn.close(1001)
    await asyncio.wait_for(asyncio.gather(*closes), 5)
    assert server.metrics.close_codes_sent == {1001: 2}
    assert server.metrics.close_codes_received == {1001: 2}


async def test_refused_handshakes_are_counted_by_status(make_server: Any) -> None:
    def verify(request: wsevents.HttpRequest) -> Any:
        return 401 if request.path == "/secret" else request.path != "/nope"

    server = await make_server(verify_client=verify)
    for path, status in (("/secret", 401), ("/nope", 403), ("/nope", 403)):
        with pytest.raises(wsevents.HandshakeError) as caught:
            await asyncio.wait_for(wsevents.connect(url_of(server, path)), 5)
        assert caught.value.status == status
    assert server.metrics.refused == {401: 1, 403: 2}
    assert server.stats["rejected"] == 3  # stats is kept as documented
    found = metric_samples(server.metrics.render())
    assert found[("wsevents_handshakes_refused_total", (("status", "403"),))] == 2
    assert found[("wsevents_connections_total", ())] == 0


async def test_compression_ratio(make_server: Any) -> None:
    server = await echo_server(make_server, compression=True)
    client = await asyncio.wait_for(wsevents.connect(url_of(server), compression=True), 5)
    text = "compressible " * 1000
    await echoed(client, [text])
    deflate = server.metrics.deflate_bytes()
    assert deflate["raw_in"] == deflate["raw_out"] == len(text)
    assert 0 < deflate["wire_in"] < len(text) // 10
    assert 0 < deflate["wire_out"] < len(text) // 10
    found = metric_samples(server.metrics.render())
    ratio = found[("wsevents_deflate_ratio", (("direction", "out"),))]
    assert ratio == pytest.approx(deflate["wire_out"] / len(text))
    await asyncio.wait_for(client.close(1000), 5)


async def test_keepalive_round_trips_fill_the_histogram(make_server: Any, until: Until) -> None:
    server = await make_server(ping_interval=0.02, ping_timeout=5)
    client = await asyncio.wait_for(wsevents.connect(url_of(server)), 5)
    await until(lambda: server.metrics.keepalive_rtt_seconds.count >= 2)
    hist = server.metrics.keepalive_rtt_seconds
    assert sum(hist.counts) == hist.count and hist.sum > 0
    found = metric_samples(server.metrics.render())
    assert found[("wsevents_keepalive_rtt_seconds_bucket", (("le", "+Inf"),))] == hist.count
    await asyncio.wait_for(client.close(1000), 5)


async def test_keepalive_timeout_is_counted(make_server: Any, until: Until) -> None:
    server = await make_server(ping_interval=0.02, ping_timeout=0.05)
    client = await asyncio.wait_for(wsevents.connect(url_of(server)), 5)
    assert client.transport is not None
    client.transport.pause_reading()  # the pings go unanswered
    await until(lambda: server.stats["keepalive_timeouts"] == 1)
    await until(lambda: server.metrics.close_codes_sent == {1011: 1})
    assert metric_samples(server.metrics.render())[("wsevents_keepalive_timeouts_total", ())] == 1


async def test_write_overflow_is_counted(make_server: Any, until: Until) -> None:
    server = await make_server(max_write_buffer=64 * KiB)
    client = await asyncio.wait_for(wsevents.connect(url_of(server)), 5)
    await until(lambda: len(server.connections) == 1)
    side = server.connections[0]
    side.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
    assert client.transport is not None
    client.transport.pause_reading()
    closed = close_event(side)
    chunk = os.urandom(32 * KiB)
    errors: list[BaseException | None] = []
    while side.ready_state == wsevents.Connection.OPEN:
        side.send_binary(chunk, errors.append)  # the send that finds the overflow fails
        await asyncio.sleep(0)
    assert (await asyncio.wait_for(closed, 5))[0] == 1008
    found = metric_samples(server.metrics.render())
    assert found[("wsevents_write_overflows_total", ())] == 1
    assert found[("wsevents_close_codes_sent_total", (("code", "1008"),))] == 1


async def test_prometheus_client_collector(make_server: Any) -> None:
    server = await echo_server(make_server)
    client = await asyncio.wait_for(wsevents.connect(url_of(server)), 5)
    await echoed(client, ["one"])
    registry = CollectorRegistry()
    collector = server.metrics.register(registry)
    text = generate_latest(registry).decode()
    found = metric_samples(text)
    assert found[("wsevents_messages_received_total", (("kind", "text"),))] == 1
    assert found[("wsevents_connections_open", ())] == 1
    # The same figures as our own exposition.
    assert metric_samples(server.metrics.render()) == found
    registry.unregister(collector)
    await asyncio.wait_for(client.close(1000), 5)


def test_worker_label(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSEVENTS_WORKER", "3")
    server = wsevents.create_server()
    found = metric_samples(server.metrics.render())
    assert found[("wsevents_connections_total", (("worker", "3"),))] == 0
    assert found[("wsevents_handshake_seconds_bucket", (("le", "+Inf"), ("worker", "3")))] == 0
    assert all(dict(labels).get("worker") == "3" for _, labels in found)


def test_merge_families_sums_every_sample_and_works_out_the_ratio_again() -> None:
    one, two = wsevents.create_server().metrics, wsevents.create_server().metrics
    one.connections_total, two.connections_total = 2, 3
    one._refuse(403)
    two._refuse(503)
    one.handshake_seconds.observe(0.0002)
    two.handshake_seconds.observe(3.0)
    one._deflate[:] = [100, 10, 0, 0]  # raw_out, wire_out, wire_in, raw_in
    two._deflate[:] = [300, 90, 0, 0]
    found = metric_samples(render_families(merge_families([one.families(), two.families()])))
    assert found[("wsevents_connections_total", ())] == 5
    assert found[("wsevents_handshakes_refused_total", (("status", "403"),))] == 1
    assert found[("wsevents_handshakes_refused_total", (("status", "503"),))] == 1
    assert found[("wsevents_handshake_seconds_bucket", (("le", "0.0005"),))] == 1
    assert found[("wsevents_handshake_seconds_bucket", (("le", "5.0"),))] == 2
    assert found[("wsevents_handshake_seconds_count", ())] == 2
    assert found[("wsevents_handshake_seconds_sum", ())] == pytest.approx(3.0002)
    assert found[("wsevents_deflate_wire_bytes_total", (("direction", "out"),))] == 100
    # 100 / 400, not the sum of 0.1 and 0.3.
    assert found[("wsevents_deflate_ratio", (("direction", "out"),))] == pytest.approx(0.25)


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


async def test_metrics_handler_over_http(make_server: Any) -> None:
    def page(request: wsevents.HttpRequest) -> Any:
        return (200, {"Content-Type": "text/plain"}, b"page") if request.path == "/" else None

    server = await echo_server(make_server)
    server.options.http_handler = wsevents.metrics_handler(server, page)
    client = await asyncio.wait_for(wsevents.connect(url_of(server)), 5)
    await echoed(client, ["ping"])
    status, ctype, body = await asyncio.to_thread(_get, url_of(server, "/metrics", "http"))
    assert (status, ctype) == (200, CONTENT_TYPE)
    assert metric_samples(body)[("wsevents_messages_sent_total", (("kind", "text"),))] == 1
    assert await asyncio.to_thread(_get, url_of(server, "/", "http")) == (200, "text/plain", "page")
    assert (await asyncio.to_thread(_get, url_of(server, "/other", "http")))[0] == 426
    await asyncio.wait_for(client.close(1000), 5)
