"""What the connection classes share (src/wsevents/_connection.py): written once, used by the
asyncio and threaded connections alike."""

from __future__ import annotations

import pytest

import wsevents
import wsevents.sync
from wsevents._connection import _ClosingInfo, _SendByKind


@pytest.mark.parametrize("name", ["close_code", "close_reason", "__repr__"])
def test_asyncio_and_threaded_connections_share_close_info_and_repr(name: str) -> None:
    shared = vars(_ClosingInfo)[name]
    assert getattr(wsevents.Connection, name) is shared
    assert getattr(wsevents.sync.Connection, name) is shared


def test_connection_and_reconnecting_connection_share_send() -> None:
    assert wsevents.Connection.send is _SendByKind.send
    assert wsevents.ReconnectingConnection.send is _SendByKind.send


async def test_send_dispatches_by_type(make_pair: object) -> None:
    _, server_conn, client = await make_pair()  # type: ignore[operator]
    await client.send("text")
    assert await server_conn.recv() == "text"
    await client.send(bytearray(b"\x01\x02"))
    assert await server_conn.recv() == b"\x01\x02"
    with pytest.raises(TypeError, match="send takes a str or a bytes-like object, not int"):
        client.send(42)


def test_repr_and_close_info_read_the_class_state() -> None:
    class Fake(_ClosingInfo):
        _repr_name = "Fake"

        def __init__(self) -> None:
            self._close_code: int | None = 1006
            self._close_reason = "gone"
            self._client = True
            self.path = "/chat"

        def _state_name(self) -> str:
            return "CLOSED"

    fake = Fake()
    assert (fake.close_code, fake.close_reason, repr(fake)) == (1006, "gone", "<Fake client '/chat' CLOSED>")
