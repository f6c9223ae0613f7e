"""Options of servers and client connections, and the module-wide defaults.

Options arrive as a dict (as in Node), keyword arguments, or both; unknown
names are refused with a ``TypeError`` that names them, so that a typo does
not silently fall back to a default.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..protocol.deflate import DeflateConfig
from ..protocol.handshake import MAX_HEAD_SIZE, MAX_HEADERS

__all__ = ["DEFAULTS", "Defaults", "ServerOptions", "ClientOptions", "merge_options"]


@dataclass
class Defaults:
    """Module-wide defaults, changed by ``set_binary_fragmentation`` and ``set_max_buffer_length``."""

    binary_fragmentation: int = 512 * 1024
    max_buffer_length: int = 2 * 1024 * 1024


DEFAULTS = Defaults()


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return value


def _timeout(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")
    return float(value)


@dataclass
class _Common:
    max_buffer_length: int | None = None
    binary_fragmentation: int | None = None
    close_timeout: float | None = 5.0
    handshake_timeout: float | None = 10.0
    max_header_size: int = MAX_HEAD_SIZE
    max_headers: int = MAX_HEADERS
    compression: bool | Mapping[str, Any] | DeflateConfig | None = True
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    max_queue: int = 64
    max_write_buffer: int = 64 * 1024 * 1024
    _deflate: DeflateConfig | None = field(default=None, init=False, repr=False)

    def _check_common(self) -> None:
        self._deflate = DeflateConfig.from_option(self.compression)
        self.ping_interval = _timeout("ping_interval", self.ping_interval)
        self.ping_timeout = _timeout("ping_timeout", self.ping_timeout)
        _positive_int("max_queue", self.max_queue)
        _positive_int("max_write_buffer", self.max_write_buffer)
        if self.max_buffer_length is not None:
            _positive_int("max_buffer_length", self.max_buffer_length)
        if self.binary_fragmentation is not None:
            _positive_int("binary_fragmentation", self.binary_fragmentation)
        self.close_timeout = _timeout("close_timeout", self.close_timeout)
        self.handshake_timeout = _timeout("handshake_timeout", self.handshake_timeout)
        _positive_int("max_header_size", self.max_header_size)
        _positive_int("max_headers", self.max_headers)

    def deflate_config(self) -> DeflateConfig | None:
        """The permessage-deflate settings, or None when compression is off."""
        return self._deflate

    def buffer_limit(self) -> int:
        """``max_buffer_length``, or the module default when not set."""
        return self.max_buffer_length or DEFAULTS.max_buffer_length

    def fragment_size(self) -> int:
        """``binary_fragmentation``, or the module default when not set."""
        return self.binary_fragmentation or DEFAULTS.binary_fragmentation


SelectProtocol = Callable[[Any, list[str]], "str | None | Awaitable[str | None]"]
HttpHandler = Callable[[Any], Any]
VerifyClient = Callable[[Any], Any]


@dataclass
class ServerOptions(_Common):
    """Options of :func:`wsevents.create_server`."""

    secure: bool = False
    certfile: str | None = None
    keyfile: str | None = None
    ssl: _ssl.SSLContext | None = None
    valid_protocols: list[str] | None = None
    select_protocol: SelectProtocol | None = None
    http_handler: HttpHandler | None = None
    verify_client: VerifyClient | None = None
    origins: list[str | None] | None = None
    max_connections: int | None = None

    def __post_init__(self) -> None:
        self._check_common()
        if self.verify_client is not None and not callable(self.verify_client):
            raise TypeError("verify_client must be callable")
        if self.origins is not None:
            if isinstance(self.origins, str):
                raise TypeError("origins must be a list (of str, or None for requests without Origin)")
            self.origins = list(self.origins)
        if self.max_connections is not None:
            _positive_int("max_connections", self.max_connections)
        if self.http_handler is not None and not callable(self.http_handler):
            raise TypeError("http_handler must be callable")
        if self.ssl is not None and not isinstance(self.ssl, _ssl.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext")
        if self.secure and self.ssl is None and not self.certfile:
            raise ValueError("secure=True needs certfile (and keyfile) or ssl=SSLContext")
        if self.valid_protocols is not None:
            if isinstance(self.valid_protocols, str):
                raise TypeError("valid_protocols must be a list of str, not a str")
            self.valid_protocols = [str(p) for p in self.valid_protocols]
        if self.select_protocol is not None and not callable(self.select_protocol):
            raise TypeError("select_protocol must be callable")

    def ssl_context(self) -> _ssl.SSLContext | None:
        """The TLS context to serve with, or None for plain ``ws://``."""
        if self.ssl is not None:
            return self.ssl
        if self.secure or self.certfile:
            ctx = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.certfile or "", self.keyfile)
            return ctx
        return None


@dataclass
class ClientOptions(_Common):
    """Options of :func:`wsevents.connect`."""

    extra_headers: Mapping[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    protocols: list[str] = field(default_factory=list)
    ssl: _ssl.SSLContext | None = None
    host: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        self._check_common()
        if isinstance(self.protocols, str):
            raise TypeError("protocols must be a list of str, not a str")
        self.protocols = [str(p) for p in self.protocols]
        for p in self.protocols:
            if not p or any(c in p for c in ", \t\r\n"):
                raise ValueError(f"invalid subprotocol name {p!r}")
        if self.ssl is not None and not isinstance(self.ssl, _ssl.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext")
        if self.port is not None:
            _positive_int("port", self.port)

    def header_items(self) -> list[tuple[str, str]]:
        """``extra_headers`` as a list of pairs."""
        if isinstance(self.extra_headers, Mapping):
            return [(str(k), str(v)) for k, v in self.extra_headers.items()]
        return [(str(k), str(v)) for k, v in self.extra_headers]


def merge_options(cls: type[Any], options: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> Any:
    """Build ``cls`` from a dict of options and keyword options (keywords win)."""
    merged: dict[str, Any] = {}
    if options is not None:
        if not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict, not {type(options).__name__}")
        merged.update(options)
    merged.update(kwargs)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    return cls(**merged)
