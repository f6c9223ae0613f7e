"""The public names: what API.md promises is importable from ``wsevents`` and documented."""

from __future__ import annotations

import inspect

import wsevents

API_NAMES = [
    "create_server",
    "connect",
    "set_binary_fragmentation",
    "set_max_buffer_length",
    "run",
    "serve",
    "Server",
    "HttpRequest",
    "Connection",
    "InStream",
    "OutStream",
    "EventEmitter",
    "ReadyState",
    "ReconnectingConnection",
    "CloseCode",
    "WebSocketError",
    "HandshakeError",
    "ProtocolError",
    "MessageTooBig",
    "InvalidState",
    "ConcurrencyError",
    "ConnectionClosed",
    # The finer errors of issue 10, each under one of the classes above.
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidStatus",
    "InvalidMessage",
    "InvalidUpgrade",
    "NegotiationError",
    "ProxyError",
    "HandshakeTimeout",
    # The monitoring page's helper (issue 14): /metrics as an http_handler.
    "metrics_handler",
]


def test_all_matches_api() -> None:
    assert sorted(wsevents.__all__) == sorted(API_NAMES)
    for name in API_NAMES:
        assert hasattr(wsevents, name), name


def test_every_public_name_has_a_docstring() -> None:
    for name in wsevents.__all__:
        obj = getattr(wsevents, name)
        assert inspect.getdoc(obj), f"wsevents.{name} has no docstring"
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"wsevents.{name}.{attr} has no docstring"


def test_error_hierarchy() -> None:
    errors = ("HandshakeError", "ProtocolError", "MessageTooBig", "InvalidState", "ConcurrencyError")
    for name in (*errors, "ConnectionClosed"):
        assert issubclass(getattr(wsevents, name), wsevents.WebSocketError)
    # Also a RuntimeError, as in websockets, so code written for it catches it.
    assert issubclass(wsevents.ConcurrencyError, RuntimeError)
    assert wsevents.MessageTooBig("x").code == 1009
    assert wsevents.HandshakeError("x", 403).status == 403
    closed = wsevents.ConnectionClosed(4000, "bye")
    assert (closed.code, closed.reason) == (4000, "bye")


def test_ready_state_constants() -> None:
    conn = wsevents.Connection
    assert (conn.CONNECTING, conn.OPEN, conn.CLOSING, conn.CLOSED) == (0, 1, 2, 3)
    assert [s.name for s in wsevents.ReadyState] == ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]
