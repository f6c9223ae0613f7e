"""wsevents: a WebSocket (RFC 6455) server and client in the shape of Node's nodejs-websocket, for asyncio."""

from .aio.connection import Connection, ReadyState
from .aio.reconnect import ReconnectingConnection
from .aio.runner import run
from .aio.server import HttpRequest, Server
from .aio.streams import InStream, OutStream
from .api import connect, create_server, set_binary_fragmentation, set_max_buffer_length
from .emitter import EventEmitter
from .errors import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    HandshakeTimeout,
    InvalidMessage,
    InvalidState,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    MessageTooBig,
    NegotiationError,
    ProtocolError,
    ProxyError,
    WebSocketError,
)
from .metrics import metrics_handler
from .protocol.closecodes import CloseCode
from .workers import serve

__all__ = [
    "CloseCode",
    "ConcurrencyError",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "EventEmitter",
    "HandshakeError",
    "HandshakeTimeout",
    "HttpRequest",
    "InStream",
    "InvalidMessage",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUpgrade",
    "MessageTooBig",
    "NegotiationError",
    "OutStream",
    "ProtocolError",
    "ProxyError",
    "ReadyState",
    "ReconnectingConnection",
    "Server",
    "WebSocketError",
    "connect",
    "create_server",
    "metrics_handler",
    "run",
    "serve",
    "set_binary_fragmentation",
    "set_max_buffer_length",
]

__version__ = "0.1.0"
