"""The ``wsevents`` command line, in subprocesses: serve + connect, pipe and TTY, errors, TLS, the page."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import wsevents

CLI = [sys.executable, "-m", "wsevents"]


class Served:
    def __init__(self, proc: subprocess.Popen[str], banner: str) -> None:
        self.proc = proc
        self.banner = banner
        self.ws_url = banner.rsplit("endpoint ", 1)[1].rstrip(")\n")
        self.http_url = banner.split("open ", 1)[1].split(" ", 1)[0]


def start_serve(*args: str) -> Served:
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    assert ready, "serve printed nothing"
    return Served(proc, proc.stdout.readline())


def stop(served: Served) -> None:
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(10) == 0


@pytest.fixture
def chat() -> Iterator[Served]:
    served = start_serve()
    yield served
    stop(served)


def run_connect(url: str, stdin: str, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "connect", url, "--wait", "0.5", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_prints_where_to_go(chat: Served) -> None:
    assert chat.banner.startswith("wsevents chat: open http://127.0.0.1:")
    assert chat.ws_url.startswith("ws://127.0.0.1:")


def test_pipe_mode_chats_and_exits_cleanly(chat: Served) -> None:
    done = run_connect(chat.ws_url, "alice\nhello there\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["alice entered", "[alice] hello there"]
    assert "closed: 1000" in done.stderr


def test_two_clients_see_each_other(chat: Served) -> None:
    listener = subprocess.Popen(
        [*CLI, "connect", chat.ws_url, "--wait", "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert listener.stdin is not None and listener.stdout is not None
    listener.stdin.write("bob\n")
    listener.stdin.flush()
    assert listener.stdout.readline() == "bob entered\n"
    done = run_connect(chat.ws_url, "carol\nhi bob\n")
    assert done.returncode == 0
    assert listener.stdout.readline() == "carol entered\n"
    assert listener.stdout.readline() == "[carol] hi bob\n"
    assert listener.stdout.readline() == "carol left\n"
    listener.stdin.close()
    assert listener.wait(10) == 0


def test_echo_mode_and_binary_display() -> None:
    served = start_serve("--echo")
    try:
        done = run_connect(served.ws_url, "ping 1\nping 2\n")
        assert done.returncode == 0
        assert done.stdout.splitlines() == ["ping 1", "ping 2"]
    finally:
        stop(served)


def test_tty_session(chat: Served) -> None:
    """A pseudo-terminal: typed lines are sent, replies shown, Ctrl-D ends the session."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, "connect", chat.ws_url, "--wait", "0.3"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    seen = b""

    def read_until(needle: bytes, timeout: float = 10) -> bool:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while needle not in seen:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return False
            try:
                seen += os.read(master, 4096)
            except OSError:
                return needle in seen
        return True

    def type_in(data: bytes) -> None:
        time.sleep(0.2)  # readline may drop typeahead sent before it set the terminal up
        os.write(master, data)

    try:
        assert read_until(b"connected to "), seen
        type_in(b"dave\n")
        assert read_until(b"dave entered"), seen
        type_in(b"typed on a tty\n")
        assert read_until(b"[dave] typed on a tty"), seen
        for _ in range(3):  # Ctrl-D ends the session (bounded retries for a lost keystroke)
            type_in(b"\x04")
            if read_until(b"closed: 1000", 3):
                break
        assert b"closed: 1000" in seen, seen
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [("http://127.0.0.1:1/", 2, "scheme must be ws or wss"), ("ws://127.0.0.1:1/", 3, "cannot connect")],
)
def test_errors_and_exit_codes(url: str, code: int, message: str) -> None:
    done = run_connect(url, "")
    assert done.returncode == code
    assert message in done.stderr


def test_bad_header_is_a_usage_error(chat: Served) -> None:
    done = run_connect(chat.ws_url, "", "-H", "no colon here")
    assert done.returncode == 2 and "bad header" in done.stderr


async def test_rejected_handshake_shows_the_status_and_headers_arrive() -> None:
    seen: list[wsevents.HttpRequest] = []

    def verify(request: wsevents.HttpRequest) -> bool | int:
        seen.append(request)
        return True if request.headers.get("x-token") == "secret" else 401

    server = await wsevents.create_server(verify_client=verify, valid_protocols=["chat.v1"]).listen(
        0, "127.0.0.1"
    )
    server.on("connection", lambda c: c.on("text", c.send_text))
    url = f"ws://127.0.0.1:{server.port}/"
    try:
        done = await asyncio.to_thread(run_connect, url, "x\n")
        assert done.returncode == 4
        assert "handshake rejected (HTTP 401)" in done.stderr
        done = await asyncio.to_thread(
            run_connect,
            url,
            "echo me\n",
            "-H",
            "X-Token: secret",
            "--protocol",
            "chat.v1",
            "--ping-interval",
            "5",
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["echo me"]
        assert "(protocol chat.v1)" in done.stderr
    finally:
        await server.close()


def test_tls_serve_and_certificate_checks(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")  # a dev dependency
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    served = start_serve("--echo", "--tls-cert", str(cert_file), "--tls-key", str(key_file))
    try:
        assert served.ws_url.startswith("wss://127.0.0.1:")
        done = run_connect(served.ws_url, "secure\n")
        assert done.returncode == 5 and "TLS failure" in done.stderr  # self-signed CA: not trusted
        done = run_connect(served.ws_url, "secure\n", "--no-check-certificate")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["secure"]
    finally:
        stop(served)


async def test_the_page_is_served_on_the_websocket_port(chat: Served) -> None:
    host_port = chat.http_url.split("//", 1)[1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    for path, status in (("/", b"200 OK"), ("/index.html", b"200 OK"), ("/nope", b"404 Not Found")):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert data.split(b"\r\n", 1)[0].endswith(status)
        if status == b"200 OK":
            assert b"<title>wsevents chat</title>" in data


def test_busy_port_is_reported() -> None:
    served = start_serve()
    try:
        port = served.ws_url.rsplit(":", 1)[1].rstrip("/")
        done = subprocess.run([*CLI, "serve", "--port", port], capture_output=True, text=True, timeout=20)
        assert done.returncode == 3 and "cannot listen" in done.stderr
    finally:
        stop(served)
