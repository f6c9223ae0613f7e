"""The ``wsevents`` command line, in subprocesses: serve + connect, pipe and TTY, errors, TLS, the page."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import wsevents

CLI = [sys.executable, "-m", "wsevents"]
ROOT = Path(__file__).resolve().parents[1]


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
    return Served(proc, _banner(proc))


def _banner(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    assert ready, "serve printed nothing"
    return proc.stdout.readline()


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
        [*CLI, "connect", chat.ws_url, "--wait", "0.2"],
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


async def fetch(http_url: str, method: str, path: str) -> bytes:
    """One plain HTTP request to the WebSocket port; the whole response."""
    host_port = http_url.split("//", 1)[1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host_port}\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def test_echo_mode_and_its_page() -> None:
    served = start_serve("--echo")
    try:
        assert served.banner.startswith("wsevents echo server: open http://127.0.0.1:")
        done = await asyncio.to_thread(run_connect, served.ws_url, "ping 1\nping 2\n")
        assert done.returncode == 0
        assert done.stdout.splitlines() == ["ping 1", "ping 2"]
        page = await fetch(served.http_url, "GET", "/")
        assert b"<title>wsevents echo</title>" in page and b'<body data-mode="echo">' in page
    finally:
        stop(served)


class Terminal:
    """``wsevents connect`` on a pseudo-terminal, as a person at a shell runs it."""

    def __init__(self, url: str) -> None:
        self.master, slave = pty.openpty()
        self.before = termios.tcgetattr(slave)
        self.slave = slave
        self.proc = subprocess.Popen(
            [*CLI, "connect", url, "--wait", "0.3"], stdin=slave, stdout=slave, stderr=slave, close_fds=True
        )
        self.seen = b""

    def read_until(self, needle: bytes, timeout: float = 10, count: int = 1) -> bool:
        deadline = time.monotonic() + timeout
        while self.seen.count(needle) < count:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return False
            try:
                self.seen += os.read(self.master, 4096)
            except OSError:
                return self.seen.count(needle) >= count
        return True

    def type_in(self, data: bytes) -> None:
        time.sleep(0.2)  # readline may drop typeahead sent before it set the terminal up
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.parametrize("ending", ["ctrl-d", "ctrl-c", "server stops"])
def test_tty_session(ending: str) -> None:
    """A pseudo-terminal: a prompt, typed lines sent, replies shown above the prompt, readline history
    (up arrow), and however the session ends, a clean close and the terminal settings given back."""
    served = start_serve()
    term = Terminal(served.ws_url)
    try:
        assert term.read_until(b"connected to "), term.seen
        assert term.read_until(b"> "), term.seen
        term.type_in(b"dave\n")
        assert term.read_until(b"\r\x1b[K< dave entered\r\n> "), term.seen
        term.type_in(b"typed on a tty\n")
        assert term.read_until(b"< [dave] typed on a tty"), term.seen
        term.type_in(b"\x1b[A\n")  # up arrow: the last line again
        assert term.read_until(b"< [dave] typed on a tty\r\n> ", 5, count=2), term.seen
        if ending == "ctrl-d":
            for _ in range(3):  # bounded retries for a keystroke lost while readline sets up
                term.type_in(b"\x04")
                if term.read_until(b"closed: ", 3):
                    break
            expected = b"closed: 1000"
        elif ending == "ctrl-c":  # the pty is not its controlling terminal: send the signal itself
            term.proc.send_signal(signal.SIGINT)
            expected = b"closed: 1000"
        else:
            stop(served)
            expected = b"closed: 1001 going away"
        assert term.read_until(expected), term.seen
        assert term.proc.wait(10) == 0
        assert b"Traceback" not in term.seen
        assert termios.tcgetattr(term.slave) == term.before  # echo and line mode are back
    finally:
        term.close()
        if served.proc.poll() is None:
            stop(served)


async def test_binary_messages_and_abnormal_close_codes() -> None:
    """Binary messages are shown as their length and first bytes; a close other than 1000/1001 exits 1."""

    async def on_connection(conn: wsevents.Connection) -> None:
        await conn.send_binary(b"\x00\x01\xff")
        await conn.send_binary(bytes(range(100)))
        await conn.send_text("plain text")
        await conn.close(4000, "bye now")

    server = await wsevents.create_server(on_connection).listen(0, "127.0.0.1")
    try:
        done = await asyncio.to_thread(run_connect, f"ws://127.0.0.1:{server.port}/", "")
    finally:
        await server.close()
    first32 = " ".join(f"{i:02x}" for i in range(32))
    assert done.stdout.splitlines() == [
        "[binary, 3 bytes] 00 01 ff",
        f"[binary, 100 bytes] {first32} …",
        "plain text",
    ]
    assert "closed: 4000 bye now" in done.stderr
    assert done.returncode == 1


async def test_not_a_websocket_server() -> None:
    """A server that answers 200, one that answers garbage, and TLS spoken to a plain server."""
    replies = iter([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"hello, this is not HTTP\r\n\r\n"])

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.read(1) == b"\x16":  # a TLS ClientHello: answer in plain HTTP
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        else:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(next(replies))
        await writer.drain()
        writer.close()

    plain = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = plain.sockets[0].getsockname()[1]
    try:
        done = await asyncio.to_thread(run_connect, f"ws://127.0.0.1:{port}/", "")
        assert done.returncode == 4 and "handshake rejected (HTTP 200)" in done.stderr, done.stderr
        done = await asyncio.to_thread(run_connect, f"ws://127.0.0.1:{port}/", "")
        assert done.returncode == 4 and "handshake failed" in done.stderr, done.stderr
        done = await asyncio.to_thread(run_connect, f"wss://127.0.0.1:{port}/", "")
        assert done.returncode == 5 and "TLS failure" in done.stderr, done.stderr
    finally:
        plain.close()
        await plain.wait_closed()


def test_console_script_and_make_demo_recipe() -> None:
    """``make demo`` runs the installed ``wsevents`` console script with ``serve``."""
    recipe = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n")[1].strip()
    assert recipe == "$(BIN)/wsevents serve"
    script = Path(sys.executable).parent / "wsevents"
    assert script.exists(), "pip install -e . creates the console script"
    proc = subprocess.Popen(
        [str(script), "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    served = Served(proc, _banner(proc))
    try:
        assert served.banner.startswith("wsevents chat: open http://127.0.0.1:")
        done = run_connect(served.ws_url, "eve\n")
        assert done.stdout.splitlines() == ["eve entered"]
    finally:
        stop(served)


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
    """HEAD gets the head a GET gets, its Content-Length included, and no body."""
    lengths: dict[str, bytes] = {}
    for method, path, status in (
        ("GET", "/", b"200 OK"),
        ("GET", "/index.html?x=1", b"200 OK"),
        ("HEAD", "/", b"200 OK"),
        ("GET", "/nope", b"404 Not Found"),
    ):
        data = await fetch(chat.http_url, method, path)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.split(b"\r\n", 1)[0].endswith(status), (method, path, head)
        if status == b"200 OK":
            assert b"content-type: text/html; charset=utf-8" in head.lower()
            if method == "GET":
                assert b"<title>wsevents chat</title>" in body and b"data-mode" not in body
            else:
                assert body == b""
            if path == "/":
                lengths[method] = re.findall(rb"(?im)^content-length: *(\d+)", head)[0]
    assert lengths["HEAD"] == lengths["GET"] != b"0"


def test_busy_port_is_reported() -> None:
    """Exit 3 (as a network error of ``connect``), one line that says what to do, no traceback."""
    served = start_serve()
    try:
        port = served.ws_url.rsplit(":", 1)[1].rstrip("/")
        done = subprocess.run([*CLI, "serve", "--port", port], capture_output=True, text=True, timeout=20)
        assert done.returncode == 3
        assert done.stderr.splitlines() == [
            f"wsevents: cannot listen on 127.0.0.1 port {port}: address already in use "
            "(another program uses it: choose another --port, or 0 for any free one)"
        ]
    finally:
        stop(served)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("192.0.2.1", "cannot assign requested address (--host must be an address of this machine)"),
        ("no-such-host.invalid", "(--host must be a name or address of this machine)"),
    ],
)
def test_host_that_is_not_this_machine(host: str, message: str) -> None:
    done = subprocess.run([*CLI, "serve", "--host", host, "--port", "0"], capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 3
    [line] = done.stderr.splitlines()
    assert line.startswith(f"wsevents: cannot listen on {host} port 0: ") and line.endswith(message), line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "99999"], "wsevents serve: argument --port: 99999 is not a port number (0-"),
        (["serve", "--port", "-1"], "wsevents serve: argument --port: -1 is not a port number (0-65535)"),
        (["serve", "--port", "http"], "wsevents serve: argument --port: 'http' is not a port number"),
        (["serve", "--hots", "x"], "wsevents: unrecognized arguments: --hots x"),
        (["connect", "ws://127.0.0.1:1/", "--wait", "-1"], "wsevents connect: argument --wait: -1 is not"),
        (["connect", "ws://127.0.0.1:1/", "--ping-interval", "soon"], "--ping-interval: 'soon' is not"),
        ([], "wsevents: the following arguments are required: command"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(args: list[str], message: str) -> None:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()  # not argparse's usage block, and no traceback
    assert message in line and line.endswith("--help')"), line


def test_version() -> None:
    done = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0
    assert done.stdout == f"wsevents {wsevents.__version__}\n"


def test_package_metadata() -> None:
    """The version has one source (what ``--version`` prints), and the license is an SPDX expression:
    the TOML-table form makes setuptools warn three times in ``make demo``'s ``pip install -e .``
    (checked by hand in fresh venvs on Python 3.10 and 3.13; the test suite does not download setuptools)."""
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', text, re.M)
    assert 'version = { attr = "wsevents.__version__" }' in text
    assert re.search(r'^license = "MIT"$', text, re.M)
    assert re.search(r'^requires = \["setuptools>=77"\]', text, re.M)  # the first to take SPDX expressions


@pytest.mark.parametrize(
    ("host", "shown", "which"),
    [
        ("0.0.0.0", "127.0.0.1", "every interface"),
        ("::", "[::1]", "every IPv6 interface, not IPv4 (--host 0.0.0.0 for IPv4)"),
    ],
)
def test_every_interface_shows_a_url_a_browser_can_open(host: str, shown: str, which: str) -> None:
    """``0.0.0.0`` is not an address to connect to: the banner shows loopback and says where it listens."""
    served = start_serve("--host", host)
    try:
        assert served.banner.startswith(f"wsevents chat: open http://{shown}:"), served.banner
        assert served.ws_url.startswith(f"ws://{shown}:")
        assert served.proc.stdout is not None
        assert served.proc.stdout.readline() == (
            f"listening on {which} ({host}): from another machine, use this machine's name or "
            f"address instead of {shown}\n"
        )
        done = run_connect(served.ws_url, "fay\n")
        assert done.stdout.splitlines() == ["fay entered"], done.stderr
    finally:
        stop(served)


def read_until(proc: subprocess.Popen[bytes], needle: bytes, timeout: float = 10) -> bytes:
    """What ``proc`` wrote to its stderr up to and including ``needle`` (or all of it at the deadline)."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(proc.stderr.fileno(), 65536) if ready else b""
        if not chunk:
            break
        seen += chunk
    return seen


def test_verbose_logs_connections_broadcasts_and_closes() -> None:
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "-v"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        done = run_connect(banner.rsplit("endpoint ", 1)[1].rstrip(")\n"), "gus\nhi\n")
        assert done.returncode == 0, done.stderr
        log = read_until(proc, b" closed: 1000").decode()
        assert "wsevents connection from ('127.0.0.1', " in log
        assert "wsevents.demo broadcast a text message of 11 characters (recipients: 1)" in log  # gus entered
        assert "wsevents.demo broadcast a text message of 8 characters (recipients: 1)" in log  # [gus] hi
        assert re.search(r"wsevents\.demo connection from \('127\.0\.0\.1', \d+\) closed: 1000\n", log), log
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--tls-cert", "cert.pem"], 2, "--tls-cert and --tls-key go together"),
        (["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"], 5, "cannot use --tls-cert"),
        (["--tls-cert", __file__, "--tls-key", __file__], 5, "cannot use --tls-cert"),  # not PEM
    ],
)
def test_serve_errors(args: list[str], code: int, message: str) -> None:
    done = subprocess.run([*CLI, "serve", "--port", "0", *args], capture_output=True, text=True, timeout=20)
    assert done.returncode == code and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


async def test_ctrl_c_while_the_handshake_hangs() -> None:
    """A server that accepts TCP and never answers: Ctrl-C ends ``connect`` quietly with 130."""
    accepted = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        accepted.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        *CLI, "connect", f"ws://127.0.0.1:{port}/", stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        await asyncio.wait_for(accepted.wait(), 10)
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 130
        assert proc.stderr is not None
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
