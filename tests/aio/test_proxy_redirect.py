"""The client behind proxies (HTTP CONNECT run here, SOCKS5 by pproxy) and through handshake redirects."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections.abc import AsyncIterator, Callable

import pytest
import trustme

import wsevents
from helpers import round_trip, url_of
from proxies import ConnectProxy, Redirector, Route, free_port, socks5_fixture  # noqa: F401  (the socks5 fixture)

pytestmark = pytest.mark.timeout(30)

_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the machine's environment: each test sets its own."""
    for name in _PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., object]]:
    """``port = await serve(handler, tls=None)``: an asyncio server on 127.0.0.1, closed at teardown."""
    servers: list[asyncio.Server] = []
    tasks: set[asyncio.Task[None]] = set()

    async def factory(handler, tls: ssl.SSLContext | None = None) -> int:  # noqa: ANN001
        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                await handler(reader, writer)

        server = await asyncio.start_server(wrapped, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield factory
    for server in servers:
        server.close()
    for task in list(tasks):
        task.cancel()


@pytest.fixture
async def proxy(serve) -> ConnectProxy:  # noqa: ANN001
    p = ConnectProxy()
    p.port = await serve(p.handle)
    return p


# -- HTTP CONNECT ----------------------------------------------------------------------


async def test_connect_proxy_option_tunnels_the_connection(echo_server, ws_connect, proxy):
    conn = await ws_connect(url_of(echo_server), proxy=f"http://127.0.0.1:{proxy.port}")
    await round_trip(conn)
    assert proxy.tunnels == [f"127.0.0.1:{echo_server.port}"]


async def test_proxy_basic_auth_from_the_url(echo_server, ws_connect, serve):
    p = ConnectProxy(credentials="alice:s3cret")
    p.port = await serve(p.handle)
    conn = await ws_connect(url_of(echo_server), proxy=f"http://alice:s3cret@127.0.0.1:{p.port}")
    await round_trip(conn)
    assert len(p.tunnels) == 1


@pytest.mark.parametrize("userinfo", ["", "alice:wrong@"])
async def test_proxy_407_is_named(echo_server, serve, userinfo):
    p = ConnectProxy(credentials="alice:s3cret")
    p.port = await serve(p.handle)
    conn = wsevents.connect(url_of(echo_server), proxy=f"http://{userinfo}127.0.0.1:{p.port}")
    with pytest.raises(wsevents.HandshakeError, match="proxy authentication required") as info:
        await asyncio.wait_for(conn, 5)
    assert info.value.status == 407
    assert f"127.0.0.1:{p.port}" in str(info.value)
    assert "s3cret" not in str(info.value) and "wrong" not in str(info.value)
    assert p.tunnels == []


async def test_refused_proxy_is_named():
    port = free_port()
    conn = wsevents.connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectionRefusedError, match=f"proxy http://127.0.0.1:{port}"):
        await asyncio.wait_for(conn, 5)


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
async def test_ws_proxy_from_the_environment(echo_server, ws_connect, proxy, monkeypatch, name):
    monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    conn = await ws_connect(url_of(echo_server))
    await round_trip(conn)
    assert len(proxy.tunnels) == 1


async def test_https_proxy_env_is_not_used_for_ws(echo_server, ws_connect, proxy, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    await round_trip(await ws_connect(url_of(echo_server)))
    assert proxy.tunnels == []


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*", "other.example,127.0.0.1:{port}", ".0.0.1"]
)
async def test_no_proxy_bypasses(echo_server, ws_connect, proxy, monkeypatch, no_proxy):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", no_proxy.format(port=echo_server.port))
    await round_trip(await ws_connect(url_of(echo_server)))
    assert proxy.tunnels == []


async def test_proxy_none_turns_the_environment_off(echo_server, ws_connect, proxy, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    await round_trip(await ws_connect(url_of(echo_server), proxy=None))
    assert proxy.tunnels == []


@pytest.mark.parametrize("proxy_tls", [False, True], ids=["http-proxy", "https-proxy"])
async def test_wss_through_the_tunnel(
    make_server, echo_handler, ws_connect, serve, server_context, client_context, monkeypatch, proxy_tls
):
    server = await make_server(ssl=server_context)
    server.on("connection", echo_handler)
    p = ConnectProxy()
    p.port = await serve(p.handle, tls=server_context if proxy_tls else None)
    scheme = "https" if proxy_tls else "http"
    monkeypatch.setenv("HTTPS_PROXY", f"{scheme}://localhost:{p.port}")
    conn = await ws_connect(url_of(server, scheme="wss", host="localhost"), ssl=client_context)
    await round_trip(conn)
    assert p.tunnels == [f"localhost:{server.port}"]


def test_bad_proxy_option_is_refused_before_io():
    with pytest.raises(ValueError, match="scheme must be one of"):
        wsevents.connect("ws://127.0.0.1:9/", proxy="ftp://proxy:21")
    with pytest.raises(TypeError, match="proxy must be"):
        wsevents.connect("ws://127.0.0.1:9/", proxy=3128)


# -- SOCKS (pproxy, a real SOCKS server, through python-socks) --------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_socks5_proxy(echo_server, ws_connect, socks5, scheme):
    conn = await ws_connect(url_of(echo_server, host="localhost"), proxy=f"{scheme}://127.0.0.1:{socks5}")
    await round_trip(conn)
    assert conn.socket.getpeername()[1] == socks5


# -- redirects ------------------------------------------------------------------------


@pytest.fixture
def redirector(serve) -> Callable[..., object]:  # noqa: ANN001
    async def factory(route: Route, tls: ssl.SSLContext | None = None) -> Redirector:
        r = Redirector(route)
        r.port = await serve(r.handle, tls=tls)
        return r

    return factory


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_is_followed(echo_server, ws_connect, redirector, status):
    target = url_of(echo_server, "/there").replace("ws://", "http://")
    r = await redirector(lambda path: (status, target))
    paths: list[str] = []
    echo_server.on("connection", lambda c: paths.append(c.path))
    conn = await ws_connect(f"ws://127.0.0.1:{r.port}/here")
    await round_trip(conn)
    assert paths == ["/there"] and conn.path == "/there"
    assert [path for path, _ in r.requests] == ["/here"]


async def test_relative_location_and_same_origin_credentials(echo_server, ws_connect, redirector):
    final = url_of(echo_server, "/end")
    r = await redirector(lambda path: (302, "next?x=1") if path == "/a/start" else (307, final))
    got: list[dict[str, str]] = []
    echo_server.on("connection", lambda c: got.append(dict(c.headers)))
    headers = {"Authorization": "Bearer t0k", "Cookie": "s=1", "X-Trace": "abc"}
    conn = await ws_connect(f"ws://127.0.0.1:{r.port}/a/start", extra_headers=headers)
    await round_trip(conn)
    assert [path for path, _ in r.requests] == ["/a/start", "/a/next?x=1"]
    # Same origin: the credentials follow; another origin (the echo server's port): they stay behind.
    assert r.requests[1][1]["authorization"] == "Bearer t0k" and r.requests[1][1]["cookie"] == "s=1"
    assert got[0]["x-trace"] == "abc"
    assert "authorization" not in got[0] and "cookie" not in got[0]


async def test_redirect_loop_fails_naming_the_count(redirector):
    r = await redirector(lambda path: (302, "/again"))
    conn = wsevents.connect(f"ws://127.0.0.1:{r.port}/")
    with pytest.raises(wsevents.HandshakeError, match="too many redirects: more than max_redirects=10"):
        await asyncio.wait_for(conn, 10)
    assert len(r.requests) == 11


async def test_max_redirects_zero_does_not_follow(redirector):
    r = await redirector(lambda path: (301, "/elsewhere"))
    conn = wsevents.connect(f"ws://127.0.0.1:{r.port}/", max_redirects=0)
    with pytest.raises(wsevents.HandshakeError) as info:
        await asyncio.wait_for(conn, 5)
    assert info.value.status == 301
    assert len(r.requests) == 1


async def test_wss_to_ws_is_refused(echo_server, redirector, server_context, client_context):
    r = await redirector(lambda path: (302, url_of(echo_server)), tls=server_context)
    conn = wsevents.connect(f"wss://localhost:{r.port}/", ssl=client_context)
    with pytest.raises(wsevents.HandshakeError, match="wss:// to .* refused: it would give up TLS"):
        await asyncio.wait_for(conn, 5)


async def test_ws_to_wss_is_followed(
    make_server, echo_handler, ws_connect, redirector, server_context, ca, tmp_path, monkeypatch
):
    server = await make_server(ssl=server_context)
    server.on("connection", echo_handler)
    # The default context of the wss:// hop trusts the test CA through OpenSSL's SSL_CERT_FILE.
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    r = await redirector(lambda path: (308, url_of(server, "/secure", scheme="https", host="localhost")))
    conn = await ws_connect(f"ws://127.0.0.1:{r.port}/")
    await round_trip(conn)
    assert conn.url.secure and conn.path == "/secure"


async def test_socks_without_python_socks_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if python-socks were not installed: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, "python_socks", None)
    conn = wsevents.connect("ws://127.0.0.1:9/", proxy="socks5://user:secret@127.0.0.1:1080")
    with pytest.raises(ImportError, match=r"needs python-socks: pip install 'wsevents\[socks\]'") as info:
        await asyncio.wait_for(conn, 5)
    assert "socks5://" in str(info.value) and "secret" not in str(info.value)
