"""wss:// over loopback, with a CA and a server certificate made by trustme at test time."""

from __future__ import annotations

import asyncio
import ssl

import pytest
import trustme

import wsevents
from helpers import wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1", "::1")


@pytest.fixture
def cert_files(tmp_path, server_cert):
    """``(certfile, keyfile)`` paths of the server certificate chain and its key."""
    certfile = tmp_path / "cert.pem"
    keyfile = tmp_path / "key.pem"
    certfile.write_bytes(b"".join(blob.bytes() for blob in server_cert.cert_chain_pems))
    keyfile.write_bytes(server_cert.private_key_pem.bytes())
    return str(certfile), str(keyfile)


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def server_context(server_cert: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(ctx)
    return ctx


@pytest.fixture(params=["certfile", "ssl-context"])
async def tls_server(request, make_server, echo_handler, cert_files, server_context):
    """An echoing wss server, configured by files (secure=True) or by an SSLContext."""
    if request.param == "certfile":
        certfile, keyfile = cert_files
        server = await make_server(
            {"secure": True, "certfile": certfile, "keyfile": keyfile}, close_timeout=1
        )
    else:
        server = await make_server(ssl=server_context, close_timeout=1)
    server.on("connection", echo_handler)
    return server


async def test_wss_echo_text_and_binary(tls_server, ws_connect, client_context):
    accepted: list[wsevents.Connection] = []
    tls_server.on("connection", accepted.append)
    url = f"wss://localhost:{tls_server.port}/secure?q=1"
    conn = await ws_connect(url, ssl=client_context, host="127.0.0.1", close_timeout=1)
    conn.send_text("over tls ✓")
    assert await asyncio.wait_for(conn.recv(), 5) == "over tls ✓"
    conn.send_binary(b"\x00\x01" * 40_000)
    assert await asyncio.wait_for(conn.recv(), 5) == b"\x00\x01" * 40_000
    await wait_until(lambda: accepted)
    server_conn = accepted[0]
    assert server_conn.path == "/secure?q=1"
    assert server_conn.headers["host"] == f"localhost:{tls_server.port}"
    # Both sides are really encrypted.
    assert server_conn.transport.get_extra_info("ssl_object") is not None
    assert conn.transport.get_extra_info("ssl_object") is not None
    assert conn.transport.get_extra_info("ssl_object").server_hostname == "localhost"
    assert server_conn.socket is not None
    assert server_conn.socket.getsockname()[1] == tls_server.port


async def test_wss_over_localhost_name(make_server, echo_handler, ws_connect, client_context, server_context):
    # The URL's host is where to connect (localhost resolves to loopback) and what to verify.
    server = await make_server(ssl=server_context, host=None)
    server.on("connection", echo_handler)
    conn = await ws_connect(f"wss://localhost:{server.port}/", ssl=client_context)
    conn.send_text("by name")
    assert await asyncio.wait_for(conn.recv(), 5) == "by name"


async def test_wss_default_port_in_host_header(tls_server, ws_connect, client_context):
    hosts: list[str] = []
    tls_server.on("connection", lambda c: hosts.append(c.headers["host"]))
    await ws_connect("wss://localhost/", ssl=client_context, host="127.0.0.1", port=tls_server.port)
    await wait_until(lambda: hosts)
    assert hosts == ["localhost"]


async def test_wss_closing_handshake(tls_server, ws_connect, client_context):
    accepted: list[wsevents.Connection] = []
    tls_server.on("connection", accepted.append)
    conn = await ws_connect(
        f"wss://localhost:{tls_server.port}/", ssl=client_context, host="127.0.0.1", close_timeout=10
    )
    await wait_until(lambda: accepted)
    server_closes: list[tuple[int, str]] = []
    accepted[0].on("close", lambda code, reason: server_closes.append((code, reason)))
    await asyncio.wait_for(conn.close(4000, "tls bye"), 5)
    await asyncio.wait_for(accepted[0].wait_closed(), 5)  # "close" is emitted as it ends
    assert server_closes == [(4000, "tls bye")]
    assert conn.close_code == 4000
    assert conn.ready_state == wsevents.Connection.CLOSED


async def test_wss_untrusted_certificate_fails(tls_server):
    # The default context does not know the test CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.wait_for(wsevents.connect(f"wss://localhost:{tls_server.port}/", host="127.0.0.1"), 5)


async def test_wss_untrusted_certificate_emits_error_and_close(tls_server):
    conn = wsevents.connect(f"wss://localhost:{tls_server.port}/", host="127.0.0.1")
    errors: list[BaseException] = []
    closes: list[tuple[int, str]] = []
    conn.on("error", errors.append)
    conn.on("close", lambda code, reason: closes.append((code, reason)))
    await wait_until(lambda: closes)
    assert len(errors) == 1
    assert isinstance(errors[0], ssl.SSLCertVerificationError)
    assert closes == [(1006, "")]


async def test_wss_wrong_hostname_fails(make_server, client_context, ca):
    other = ca.issue_cert("other.example")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    other.configure_cert(ctx)
    server = await make_server(ssl=ctx)
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.wait_for(
            wsevents.connect(f"wss://localhost:{server.port}/", ssl=client_context, host="127.0.0.1"), 5
        )


async def test_plain_client_to_tls_server_fails(tls_server):
    with pytest.raises((wsevents.WebSocketError, OSError)):
        await asyncio.wait_for(wsevents.connect(f"ws://127.0.0.1:{tls_server.port}/", handshake_timeout=2), 5)


def test_secure_without_certificate_is_refused():
    with pytest.raises(ValueError):
        wsevents.create_server(secure=True)


def test_ssl_option_must_be_a_context():
    with pytest.raises(TypeError):
        wsevents.create_server(ssl="not a context")
    with pytest.raises(TypeError):
        wsevents.connect("wss://localhost/", ssl="not a context")


async def test_failed_tls_handshake_does_not_keep_the_server_open(tls_server):
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.wait_for(wsevents.connect(f"wss://localhost:{tls_server.port}/", host="127.0.0.1"), 5)
    assert tls_server.connections == []
    # No connection is left over: "close" follows at once.
    await asyncio.wait_for(tls_server.close(), 2)
