"""docs/howto-nginx.md is true: its nginx configuration, run in Debian's nginx (which ``make test``
installs), proxies WebSocket connections to a wsevents server."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import wsevents

HOWTO = Path(__file__).resolve().parents[1] / "docs" / "howto-nginx.md"


def nginx() -> str:
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    assert found, "nginx is not installed: `make test` installs it (apt-get install nginx)"
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def documented_config(listen: int, upstream: int) -> str:
    """The page's nginx block, listening on ``listen`` and proxying to ``upstream`` (both local)."""
    block = re.findall(r"```nginx\n(.*?)```", HOWTO.read_text(), re.S)
    assert len(block) == 1
    config = block[0].replace("listen 80;", f"listen 127.0.0.1:{listen};")
    config = config.replace("http://127.0.0.1:8000;", f"http://127.0.0.1:{upstream};")
    assert f":{listen};" in config and f":{upstream};" in config, "the page listens on 80 and proxies to 8000"
    return config


@pytest.fixture
def proxy() -> Iterator[tuple[int, int]]:
    """nginx running the page's configuration: yields (its port, the upstream port it proxies to)."""
    listen, upstream = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp, "nginx.conf")
        temp_paths = "\n".join(f"    {kind}_temp_path {tmp}/{kind};"
                               for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf.write_text(
            f"worker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
            f"events {{ worker_connections 64; }}\n"
            f"http {{\n    access_log off;\n{temp_paths}\n{documented_config(listen, upstream)}\n}}\n"
        )
        proc = subprocess.Popen([nginx(), "-p", tmp, "-c", str(conf), "-g", "daemon off;"],
                                stderr=subprocess.PIPE)
        try:
            yield listen, upstream
        finally:
            proc.terminate()
            proc.wait(10)


async def until_listening(port: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert loop.time() < deadline, "nginx did not listen within 10 s"
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


async def test_the_documented_config_proxies_websockets_and_plain_http(proxy: tuple[int, int]) -> None:
    listen, upstream = proxy
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def on_connection(conn: wsevents.Connection) -> None:
        forwarded = conn.headers.get("x-forwarded-for"), conn.headers.get("x-forwarded-proto")
        conn.send_text("from {} over {}".format(*forwarded))
        conn.on("text", lambda text: conn.send_text(text.upper()))
        conn.on("close", lambda code, reason: closed.set_result((code, reason)))

    def page(request: wsevents.HttpRequest) -> tuple[int, dict[str, str], str]:
        return 200, {"Content-Type": "text/plain"}, f"page for {request.headers.get('host')}\n"

    server = await wsevents.create_server(on_connection, http_handler=page).listen(upstream, "127.0.0.1")
    try:
        await until_listening(listen)
        async with wsevents.connect(f"ws://127.0.0.1:{listen}/chat") as client:
            assert await client.recv() == "from 127.0.0.1 over http"
            await client.send_text("through nginx")
            assert await client.recv() == "THROUGH NGINX"
            await client.close(1000, "bye")
        assert await asyncio.wait_for(closed, 5) == (1000, "bye")
        reader, writer = await asyncio.open_connection("127.0.0.1", listen)
        writer.write(b"GET / HTTP/1.1\r\nHost: chat.example.com\r\nConnection: close\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"page for chat.example.com\n")
    finally:
        await server.close(graceful=True)
