"""One module per contender. Each server module has::

    async def serve(ready, *, compression: bool, style: str) -> None

an echo server on 127.0.0.1 (text and binary, each message sent back as it came) that calls
``ready(port)`` once it listens and runs until cancelled; on the path ``/control``, any text
message makes it send ``BCAST_TEXT`` to every connection (the broadcast scenario). Library
modules also have::

    async def client(url, scenario, seconds, max_count) -> float

that library's client doing serial round trips for ``seconds`` (at most ``max_count``):
``rtt`` (64-byte text, returns round trips/s) or ``big`` (1 MiB binary, returns MiB/s).
Every library is set up the same way: keepalive pings off, messages up to 4 MiB, and
compression only when ``compression`` is true.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: contender name -> module; "raw" is the raw-limit server (no client).
MODULES = {
    "wsevents": "lib_wsevents",
    "websockets": "lib_websockets",
    "aiohttp": "lib_aiohttp",
    "picows": "lib_picows",
    "raw": "raw_limit",
}


def load(name: str) -> ModuleType:
    return importlib.import_module(f"contenders.{MODULES[name]}")
