"""wsevents.sync.connect() behind an HTTP CONNECT proxy and a SOCKS5 one (pproxy), and through redirects.

The proxy and the redirecting server are the asyncio ones of tests/proxies.py, run on a loop
in a thread of the test; the client under test is the threaded one.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from proxies import ConnectProxy, Redirector, Route, socks5_fixture  # noqa: F401  (the socks5 fixture)
from wsevents import HandshakeError
from wsevents.sync import Connection, connect

from .conftest import SyncServe, url

pytestmark = pytest.mark.timeout(30)

_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


Serve = Callable[[Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]], int]


@pytest.fixture
def aserve() -> Iterator[Serve]:
    """``port = aserve(handler)``: an asyncio server on 127.0.0.1 in a loop thread, stopped at teardown."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-proxy-loop")
    thread.start()
    servers: list[asyncio.Server] = []

    def factory(handler: Any) -> int:
        async def start() -> int:
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            servers.append(server)
            port: int = server.sockets[0].getsockname()[1]
            return port

        return asyncio.run_coroutine_threadsafe(start(), loop).result(10)

    yield factory

    async def stop() -> None:
        for server in servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _round_trip(conn: Connection) -> None:
    conn.send("through")
    assert conn.recv(timeout=5) == "through"


def test_connect_proxy_option(sync_serve: SyncServe, aserve: Serve) -> None:
    server = sync_serve()
    proxy = ConnectProxy(credentials="bob:pw")
    proxy.port = aserve(proxy.handle)
    with connect(url(server), proxy=f"http://bob:pw@127.0.0.1:{proxy.port}") as conn:
        _round_trip(conn)
    assert proxy.tunnels == [f"127.0.0.1:{server.port}"]


def test_proxy_407_is_named(sync_serve: SyncServe, aserve: Serve) -> None:
    server = sync_serve()
    proxy = ConnectProxy(credentials="bob:pw")
    proxy.port = aserve(proxy.handle)
    with pytest.raises(HandshakeError, match="proxy authentication required") as info:
        connect(url(server), proxy=f"http://127.0.0.1:{proxy.port}")
    assert info.value.status == 407


def test_proxy_from_the_environment_and_no_proxy(
    sync_serve: SyncServe, aserve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = sync_serve()
    proxy = ConnectProxy()
    proxy.port = aserve(proxy.handle)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    with connect(url(server)) as conn:
        _round_trip(conn)
    assert len(proxy.tunnels) == 1
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with connect(url(server)) as conn:
        _round_trip(conn)
    with connect(url(server), proxy=None) as conn:
        _round_trip(conn)
    assert len(proxy.tunnels) == 1


def test_socks5_proxy(sync_serve: SyncServe, socks5: int) -> None:
    server = sync_serve()
    with connect(url(server), proxy=f"socks5://127.0.0.1:{socks5}") as conn:
        _round_trip(conn)
        assert conn._sock.getpeername()[1] == socks5  # the socket goes to the proxy


def _redirector(aserve: Serve, route: Route) -> Redirector:
    r = Redirector(route)
    r.port = aserve(r.handle)
    return r


def test_redirects_relative_and_cross_origin(sync_serve: SyncServe, aserve: Serve) -> None:
    seen: list[dict[str, str]] = []

    def record(conn: Connection) -> None:
        seen.append({k.lower(): v for k, v in conn.headers.items()})
        for message in conn:
            conn.send(message)

    server = sync_serve(record)
    final = url(server, "/end").replace("ws://", "http://")
    r = _redirector(aserve, lambda path: (301, "next") if path == "/a/start" else (307, final))
    headers = {"Authorization": "Bearer t", "Cookie": "c=1", "X-Trace": "1"}
    with connect(f"ws://127.0.0.1:{r.port}/a/start", extra_headers=headers) as conn:
        _round_trip(conn)
        assert conn.path == "/end"
    assert [p for p, _ in r.requests] == ["/a/start", "/a/next"]
    assert r.requests[1][1]["authorization"] == "Bearer t"
    assert seen[0]["x-trace"] == "1" and "authorization" not in seen[0] and "cookie" not in seen[0]


def test_redirect_loop_and_max_redirects_zero(aserve: Serve) -> None:
    r = _redirector(aserve, lambda path: (302, "/again"))
    with pytest.raises(HandshakeError, match="too many redirects: more than max_redirects=3"):
        connect(f"ws://127.0.0.1:{r.port}/", max_redirects=3)
    assert len(r.requests) == 4
    with pytest.raises(HandshakeError) as info:
        connect(f"ws://127.0.0.1:{r.port}/", max_redirects=0)
    assert info.value.status == 302
    assert len(r.requests) == 5


def test_socks_without_python_socks_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if python-socks were not installed: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, "python_socks", None)
    with pytest.raises(ImportError, match=r"needs python-socks: pip install 'wsevents\[socks\]'") as info:
        connect("ws://127.0.0.1:9/", proxy="socks5://user:secret@127.0.0.1:1080", handshake_timeout=5)
    assert "socks5://" in str(info.value) and "secret" not in str(info.value)
