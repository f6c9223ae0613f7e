"""The demo as a person uses it: headless Chromium opens the chat page served by ``wsevents serve``,
two tabs chat with each other, and each page shows what it should. Chromium is driven through the
DevTools Protocol, itself a WebSocket, with the wsevents client. A screenshot is saved to
``test-artifacts/chat.png``."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import wsevents
from browsers import chromium_command

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class DevTools:
    """A minimal Chrome DevTools Protocol client over a wsevents connection."""

    def __init__(self, conn: wsevents.Connection) -> None:
        self.conn = conn
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        conn.on("text", self._on_text)

    def _on_text(self, text: str) -> None:
        message = json.loads(text)
        future = self.pending.pop(message.get("id", -1), None)
        if future is not None and not future.done():
            future.set_result(message)

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.conn.send_text(json.dumps(message))
        reply = await asyncio.wait_for(future, 20)
        assert "error" not in reply, reply
        return reply["result"]  # type: ignore[no-any-return]

    async def evaluate(self, session: str, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, session: str, expression: str, timeout: float = 15) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            value = await self.evaluate(session, expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")


async def serve(*args: str) -> AsyncIterator[str]:
    """``wsevents serve`` in a subprocess on a free port; yields the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsevents", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 15)
        yield banner.split("open ", 1)[1].split(" ", 1)[0]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def chat_url() -> AsyncIterator[str]:
    async for url in serve():
        yield url


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async for url in serve("--echo"):
        yield url


@pytest.fixture
async def devtools(tmp_path: Path) -> AsyncIterator[DevTools]:
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        chromium_command(profile, "--remote-debugging-port=0", "--window-size=900,700", "about:blank"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"
        for _ in range(300):  # bounded: 15 s
            if active.exists() and len(active.read_text().splitlines()) >= 2:
                break
            await asyncio.sleep(0.05)
        port, path = active.read_text().splitlines()[:2]
        conn = await wsevents.connect(
            f"ws://127.0.0.1:{port}{path}", max_buffer_length=32 << 20, compression=False, ping_interval=None
        )
        yield DevTools(conn)
        await conn.close()
    finally:
        proc.kill()
        proc.wait(10)


async def open_page(tools: DevTools, url: str) -> tuple[str, str]:
    """A new tab on ``url``, once its WebSocket is open: (session id, target id)."""
    target = await tools.call("Target.createTarget", url=url)
    attached = await tools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
    session = attached["sessionId"]
    await tools.wait_for(session, "document.getElementById('status')?.textContent.startsWith('connected')")
    return str(session), str(target["targetId"])


async def say(tools: DevTools, session: str, text: str) -> None:
    """Type ``text`` into the page's input box and press Enter, as keyboard input."""
    await tools.evaluate(session, "document.getElementById('input').focus(); true")
    await tools.call("Input.insertText", session, text=text)
    for kind in ("keyDown", "keyUp"):
        await tools.call(
            "Input.dispatchKeyEvent", session, type=kind, key="Enter", code="Enter",
            windowsVirtualKeyCode=13, **({"text": "\r"} if kind == "keyDown" else {}),
        )


async def test_two_pages_chat_in_a_real_browser(chat_url: str, devtools: DevTools) -> None:
    alice, _ = await open_page(devtools, chat_url)
    bob, bob_target = await open_page(devtools, chat_url)
    await say(devtools, alice, "alice")
    await say(devtools, bob, "bob")
    await devtools.wait_for(alice, "document.getElementById('log').innerText.includes('bob entered')")
    await say(devtools, alice, "héllo bob ✓")
    await say(devtools, bob, "hi alice")
    log = "document.getElementById('log').innerText"
    await devtools.wait_for(
        bob, f"{log}.includes('[alice] héllo bob ✓') && {log}.includes('[bob] hi alice')"
    )
    await devtools.wait_for(alice, f"{log}.includes('[bob] hi alice')")
    bob_lines = (await devtools.evaluate(bob, log)).splitlines()
    alice_lines = (await devtools.evaluate(alice, log)).splitlines()
    assert bob_lines == ["bob entered", "[alice] héllo bob ✓", "[bob] hi alice"]
    assert alice_lines == ["alice entered", "bob entered", "[alice] héllo bob ✓", "[bob] hi alice"]
    assert await devtools.evaluate(alice, "document.getElementById('status').textContent") == (
        "connected as alice"
    )
    await devtools.call("Target.closeTarget", targetId=bob_target)
    await devtools.wait_for(alice, f"{log}.includes('bob left')")
    assert (await devtools.evaluate(alice, log)).splitlines()[-1] == "bob left"
    shot = await devtools.call("Page.captureScreenshot", alice, format="png")
    ARTIFACTS.mkdir(exist_ok=True)
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    (ARTIFACTS / "chat.png").write_bytes(png)


async def test_the_echo_page_in_a_real_browser(echo_url: str, devtools: DevTools) -> None:
    page, _ = await open_page(devtools, echo_url)
    assert await devtools.evaluate(page, "document.title") == "wsevents echo"
    await say(devtools, page, "first")
    await say(devtools, page, "second 𝄞")  # outside the BMP: a surrogate pair in JS
    log = "document.getElementById('log').innerText"
    await devtools.wait_for(page, f"{log}.includes('second')")
    assert (await devtools.evaluate(page, log)).splitlines() == ["first", "second 𝄞"]
    assert await devtools.evaluate(page, "document.querySelectorAll('#log li.system').length") == 0
