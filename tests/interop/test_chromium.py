"""A real browser as the peer: headless Chromium (Debian's package, installed by .ci/run) talks
to a wsevents server, with the permessage-deflate it offers by itself."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import wsevents
from browsers import chromium_command

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>wsevents interop</title>
<script>
const results = {};
const ws = new WebSocket("ws://127.0.0.1:%(port)d/browser?from=chromium", ["echo.v1"]);
ws.binaryType = "arraybuffer";
const big = "wsevents ✓ ".repeat(20000);
const bytes = new Uint8Array(300000).map((_, i) => (i * 31 + 7) & 255);
let step = 0;
ws.onopen = () => {
  results.extensions = ws.extensions;
  results.protocol = ws.protocol;
  ws.send(big);
};
ws.onmessage = (event) => {
  step += 1;
  if (step === 1) {
    results.big_text_echo = event.data === big;
    ws.send(bytes.buffer);
  } else if (step === 2) {
    const got = new Uint8Array(event.data);
    results.binary_echo = got.length === bytes.length && got.every((v, i) => v === bytes[i]);
    ws.send("send me something");
  } else if (step === 3) {
    results.server_text = event.data;
    ws.send("RESULT " + JSON.stringify(results));
  }
};
ws.onclose = (event) => { document.title = "closed " + event.code + " " + event.reason; };
</script>
"""

SERVER_TEXT = "from the server: " + "compressible " * 500


async def test_chromium_exchanges_compressed_messages(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[dict[str, Any]] = loop.create_future()
    closed: asyncio.Future[tuple[int, str]] = loop.create_future()
    seen: dict[str, Any] = {}

    def on_connection(conn: wsevents.Connection) -> None:
        seen["offer"] = conn.headers.get("sec-websocket-extensions", "")
        seen["deflate"] = conn.deflate
        seen["path"] = conn.path

        def on_text(text: str) -> None:
            if text.startswith("RESULT "):
                result.set_result(json.loads(text[7:]))
                conn.close(4100, "test done")
            elif text == "send me something":
                conn.send_text(SERVER_TEXT)
            else:
                conn.send_text(text)

        async def on_binary(stream: wsevents.InStream) -> None:
            conn.send_binary(await stream.read())

        conn.on("text", on_text)
        conn.on("binary", on_binary)
        conn.on("close", lambda code, reason: closed.set_result((code, reason)))

    server = wsevents.create_server(on_connection, valid_protocols=["echo.v1"], max_buffer_length=4 << 20)
    await server.listen(0, "127.0.0.1")
    page = tmp_path / "page.html"
    page.write_text(PAGE % {"port": server.port})
    proc = await asyncio.create_subprocess_exec(
        *chromium_command(tmp_path / "profile", page.as_uri()),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        report = await asyncio.wait_for(result, 60)
        assert await asyncio.wait_for(closed, 10) == (4100, "test done")
    finally:
        proc.kill()
        await proc.wait()
        await asyncio.wait_for(server.close(), 10)

    # Chromium offered permessage-deflate and both sides agreed on it.
    assert seen["offer"].startswith("permessage-deflate"), seen["offer"]
    assert seen["deflate"] is not None
    assert report["extensions"].startswith("permessage-deflate")
    assert report["protocol"] == "echo.v1"
    assert seen["path"] == "/browser?from=chromium"
    assert report["big_text_echo"] is True
    assert report["binary_echo"] is True
    assert report["server_text"] == SERVER_TEXT
