"""The application the worker tests serve with ``wsevents run worker_app:handler``.

Each connection is first told which process serves it (``pid <pid> worker <index>``),
then gets its text messages back; ``"exit"`` makes the worker exit at once with status 3.
"""

from __future__ import annotations

import os

import wsevents
from wsevents.workers import worker_index


def handler(conn: wsevents.Connection) -> None:
    conn.send_text(f"pid {os.getpid()} worker {worker_index()}")

    def on_text(text: str) -> None:
        if text == "exit":
            os._exit(3)
        conn.send_text(text)

    conn.on("text", on_text)


async def async_handler(conn: wsevents.Connection) -> None:
    """The same as :func:`handler`, as a coroutine function."""
    handler(conn)
