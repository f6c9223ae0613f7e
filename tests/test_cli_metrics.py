"""``wsevents serve --metrics`` and ``wsevents run MODULE:HANDLER --metrics``, in a subprocess: a short
chat, then a scrape of ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wsevents
from helpers import metric_samples

CLI = [sys.executable, "-m", "wsevents"]
SRC = Path(__file__).resolve().parents[1] / "src"


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


@contextlib.contextmanager
def cli(args: list[str], **popen: Any) -> Iterator[str]:
    """``wsevents ARGS`` in a subprocess: its banner line; at the end, Ctrl-C and a clean exit (status 0)."""
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **popen
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, f"{args[0]} printed nothing"
        yield proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


ECHO_APP = '''
def handler(conn):
    conn.on("text", conn.send_text)
'''


@contextlib.contextmanager
def run_echo_app(tmp_path: Path, *options: str) -> Iterator[str]:
    """``wsevents run echo_app:handler --port 0 OPTIONS`` (an echo handler in ``tmp_path``): its ws:// URL."""
    (tmp_path / "echo_app.py").write_text(ECHO_APP)
    args = ["run", "echo_app:handler", "--port", "0", *options]
    with cli(args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(SRC)}) as banner:
        yield banner.rsplit(" at ", 1)[1].strip()


async def chat(ws_url: str) -> None:
    """alice and bob enter, alice says hello, both leave; bob reads everything to the end."""
    alice = await asyncio.wait_for(wsevents.connect(ws_url), 5)
    bob = await asyncio.wait_for(wsevents.connect(ws_url), 5)
    await alice.send_text("alice")
    assert await asyncio.wait_for(alice.recv(), 5) == "alice entered"
    await bob.send_text("bob")
    assert await asyncio.wait_for(bob.recv(), 5) == "bob entered"
    await alice.send_text("hello")
    assert await asyncio.wait_for(bob.recv(), 5) == "[alice] hello"
    await asyncio.wait_for(alice.close(1000), 5)
    assert await asyncio.wait_for(bob.recv(), 5) == "alice left"
    await asyncio.wait_for(bob.close(1001), 5)


def test_serve_metrics_after_a_chat() -> None:
    with cli(["serve", "--port", "0", "--metrics"]) as banner:
        http_url = banner.split("open ", 1)[1].split(" ", 1)[0]
        ws_url = banner.rsplit("endpoint ", 1)[1].rstrip(")\n")
        asyncio.run(chat(ws_url))
        ctype, text = scrape(http_url.rstrip("/") + "/metrics")
        # The page is still served next to it.
        assert scrape(http_url)[0].startswith("text/html")
    assert ctype.startswith("text/plain; version=0.0.4")
    found = metric_samples(text)
    assert found[("wsevents_connections_total", ())] == 2
    assert found[("wsevents_connections_open", ())] == 0
    assert found[("wsevents_messages_received_total", (("kind", "text"),))] == 3
    # alice entered (1), bob entered (2), [alice] hello (2), alice left (1).
    assert found[("wsevents_messages_sent_total", (("kind", "text"),))] == 6
    assert found[("wsevents_close_codes_received_total", (("code", "1000"),))] == 1
    assert found[("wsevents_close_codes_received_total", (("code", "1001"),))] == 1
    assert found[("wsevents_handshake_seconds_count", ())] == 2


async def echo_twice(ws_url: str) -> None:
    conn = await asyncio.wait_for(wsevents.connect(ws_url), 5)
    for text in ("one", "two"):
        await conn.send_text(text)
        assert await asyncio.wait_for(conn.recv(), 5) == text
    await asyncio.wait_for(conn.close(1000), 5)


def test_run_metrics_serves_the_handler_s_figures(tmp_path: Path) -> None:
    with run_echo_app(tmp_path, "--metrics") as ws_url:
        asyncio.run(echo_twice(ws_url))
        ctype, text = scrape(ws_url.replace("ws://", "http://", 1).rstrip("/") + "/metrics")
        # Other plain HTTP requests are answered as without --metrics.
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(ws_url.replace("ws://", "http://", 1))
        assert refused.value.code == 426
    assert ctype.startswith("text/plain; version=0.0.4")
    found = metric_samples(text)
    assert found[("wsevents_connections_total", ())] == 1
    assert found[("wsevents_messages_received_total", (("kind", "text"),))] == 2
    assert found[("wsevents_messages_sent_total", (("kind", "text"),))] == 2
    assert found[("wsevents_close_codes_received_total", (("code", "1000"),))] == 1


def test_run_without_metrics_has_no_metrics_page(tmp_path: Path) -> None:
    with run_echo_app(tmp_path) as ws_url:
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(ws_url.replace("ws://", "http://", 1).rstrip("/") + "/metrics")
        assert refused.value.code == 426
