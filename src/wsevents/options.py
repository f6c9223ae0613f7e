"""Options of servers and client connections, and the module-wide defaults.

Shared by the asyncio API and the threaded one (:mod:`wsevents.sync`), below both;
``wsevents.aio.options`` re-exports it for code that imported it from there.

Options arrive as a dict (as in Node), keyword arguments, or both; unknown
names are refused with a ``TypeError`` that names them and points at the fix
(the snake_case spelling of a camelCase name, a near miss, an option of the
other side, ``listen()`` for a server's port), so that a typo does not
silently fall back to a default. Values are checked when the options are
built, at the ``connect()`` / ``create_server()`` call, before any I/O.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import ssl as _ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from .protocol.closecodes import CloseCode, is_valid_wire_code
from .protocol.deflate import DeflateConfig
from .protocol.handshake import MAX_HEAD_SIZE, MAX_HEADERS, check_header_field, is_token
from .protocol.proxy import parse_proxy

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


def _port(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{name} must be an int in 1..65535, not {value!r}")
    return value


def _protocol_list(name: str, value: object) -> list[str]:
    """A list of subprotocol names: each a token, none twice (RFC 6455 section 4.1)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of str, not {type(value).__name__}")
    protocols = list(value)
    for p in protocols:
        if not isinstance(p, str):
            raise TypeError(f"{name} must be a list of str, not of {type(p).__name__}")
        if not is_token(p):
            raise ValueError(f"invalid subprotocol name {p!r} in {name}: not a token (no spaces or commas)")
    for i, p in enumerate(protocols):
        if p in protocols[:i]:
            raise ValueError(f"subprotocol {p!r} is listed twice in {name}")
    return protocols


def _path(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str), not {type(value).__name__}")
    return os.fspath(value)


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


def _check_callable(name: str, hook: object) -> None:
    """A hook option is None or callable."""
    if hook is not None and not callable(hook):
        raise TypeError(f"{name} must be callable")


def _origin_list(origins: Iterable[str | None]) -> list[str | None]:
    """``origins`` as a list of str (None: requests without ``Origin``)."""
    if isinstance(origins, str):
        raise TypeError("origins must be a list (of str, or None for requests without Origin)")
    listed = list(origins)
    for origin in listed:
        if origin is not None and not isinstance(origin, str):
            raise TypeError(f"origins must hold str (or None), not {type(origin).__name__}")
    return listed


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
    broker: Any = None
    cluster: str = "wsevents"

    def __post_init__(self) -> None:
        self._check_common()
        if not isinstance(self.cluster, str) or not self.cluster:
            raise ValueError(f"cluster must be a non-empty str, not {self.cluster!r}")
        self._check_tls_files()
        _check_callable("verify_client", self.verify_client)
        if self.origins is not None:
            self.origins = _origin_list(self.origins)
        if self.max_connections is not None:
            _positive_int("max_connections", self.max_connections)
        _check_callable("http_handler", self.http_handler)
        if self.ssl is not None and not isinstance(self.ssl, _ssl.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext")
        if self.secure and self.ssl is None and not self.certfile:
            raise ValueError("secure=True needs certfile (and keyfile) or ssl=SSLContext")
        if self.valid_protocols is not None:
            self.valid_protocols = _protocol_list("valid_protocols", self.valid_protocols)
        _check_callable("select_protocol", self.select_protocol)

    def _check_tls_files(self) -> None:
        if not isinstance(self.secure, bool):
            raise TypeError(f"secure must be True or False, not {self.secure!r}")
        self.certfile = _path("certfile", self.certfile)
        self.keyfile = _path("keyfile", self.keyfile)
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("keyfile without certfile: give the certificate chain too")

    def ssl_context(self) -> _ssl.SSLContext | None:
        """The TLS context to serve with, or None for plain ``ws://``."""
        if self.ssl is not None:
            return self.ssl
        if self.secure or self.certfile:
            certfile = self.certfile or ""
            for name, path in (("certfile", certfile), ("keyfile", self.keyfile)):
                if path is not None and not os.path.isfile(path):
                    raise FileNotFoundError(errno.ENOENT, f"{name} not found", path)
            ctx = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
            try:
                ctx.load_cert_chain(certfile, self.keyfile)
            except _ssl.SSLError as exc:
                files = certfile if self.keyfile is None else f"{certfile} and {self.keyfile}"
                raise _ssl.SSLError(exc.errno, f"cannot use the certificate/key in {files}: {exc}") from exc
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
    unix_path: str | None = None
    reconnect: bool = False
    reconnect_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    reconnect_stop_codes: Iterable[int] = frozenset({int(CloseCode.POLICY_VIOLATION)})
    reconnect_queue: int = 0
    proxy: str | bool | None = True
    max_redirects: int = 10

    def __post_init__(self) -> None:
        self._check_common()
        self._check_reconnect()
        self._check_proxy()
        self.protocols = _protocol_list("protocols", self.protocols)
        _check_headers(self.extra_headers)
        if self.ssl is not None and not isinstance(self.ssl, _ssl.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext")
        if self.host is not None and (not isinstance(self.host, str) or not self.host):
            raise ValueError(f"host must be a non-empty str or None, not {self.host!r}")
        if self.port is not None:
            _port("port", self.port)
        self.unix_path = _path("unix_path", self.unix_path)
        if self.unix_path is not None and self.port is not None:
            raise ValueError("port and unix_path exclude each other: a Unix socket has no port")

    def _check_proxy(self) -> None:
        if self.proxy is False:
            self.proxy = None
        if self.proxy is not None and self.proxy is not True:
            parse_proxy(self.proxy)
        redirects = self.max_redirects
        if isinstance(redirects, bool) or not isinstance(redirects, int) or redirects < 0:
            raise ValueError(f"max_redirects must be an int >= 0 (0 = do not follow), not {redirects!r}")

    def _check_reconnect(self) -> None:
        if not isinstance(self.reconnect, bool):
            raise TypeError(f"reconnect must be True or False, not {self.reconnect!r}")
        delay = _timeout("reconnect_delay", self.reconnect_delay)
        max_delay = _timeout("reconnect_max_delay", self.reconnect_max_delay)
        if delay is None or max_delay is None:
            raise ValueError("reconnect_delay and reconnect_max_delay must be positive numbers of seconds")
        if max_delay < delay:
            raise ValueError(f"reconnect_max_delay ({max_delay}) is below reconnect_delay ({delay})")
        self.reconnect_delay, self.reconnect_max_delay = delay, max_delay
        self.reconnect_stop_codes = _close_codes("reconnect_stop_codes", self.reconnect_stop_codes)
        queue = self.reconnect_queue
        if isinstance(queue, bool) or not isinstance(queue, int) or queue < 0:
            raise ValueError(f"reconnect_queue must be an int >= 0 (messages), not {queue!r}")
        if not self.reconnect:
            # A reconnect option without reconnect=True would silently do nothing.
            defaults = ClientOptions.__dataclass_fields__
            for name in _RECONNECT_OPTIONS:
                if getattr(self, name) != defaults[name].default:
                    raise ValueError(f"{name} is an option of the reconnecting client: add reconnect=True")

    def header_items(self) -> list[tuple[str, str]]:
        """``extra_headers`` as a list of pairs."""
        if isinstance(self.extra_headers, Mapping):
            return [(str(k), str(v)) for k, v in self.extra_headers.items()]
        return [(str(k), str(v)) for k, v in self.extra_headers]


_RECONNECT_OPTIONS = ("reconnect_delay", "reconnect_max_delay", "reconnect_stop_codes", "reconnect_queue")


def _close_codes(name: str, value: object) -> frozenset[int]:
    """A set of close codes a peer may send (1000-1014 registered ones, 3000-4999)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a collection of close codes (int), not {type(value).__name__}")
    codes = frozenset(value)
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"{name} must hold close codes (int), not {code!r}")
        if not is_valid_wire_code(code):
            raise ValueError(f"{name}: {code} is not a close code a peer may send")
    return codes


_HEADERS_SHAPE = "extra_headers must be a dict or a list of (name, value) pairs"


def _check_headers(headers: object) -> None:
    """Check ``extra_headers`` (a dict or a list of pairs) header by header."""
    if isinstance(headers, Mapping):
        items: Iterable[Any] = headers.items()
    elif isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable):
        raise TypeError(f"{_HEADERS_SHAPE}, not {type(headers).__name__}")
    else:
        items = headers
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(f"{_HEADERS_SHAPE}, not hold {item!r}")
        check_header_field(item[0], item[1])


def merge_options(cls: type[Any], options: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> Any:
    """Build ``cls`` from a dict of options and keyword options (keywords win)."""
    merged: dict[str, Any] = {}
    if options is not None:
        if not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict, not {type(options).__name__}")
        merged.update(options)
    merged.update(kwargs)
    known = _option_names(cls)
    unknown = sorted(set(merged) - known, key=str)
    if unknown:
        raise TypeError("; ".join(_unknown_option(name, cls) for name in unknown))
    # The reference shows an empty collection's default as "none": None asks for that default.
    for f in fields(cls):
        if merged.get(f.name, MISSING) is None and f.default_factory is not MISSING:
            merged[f.name] = f.default_factory()
    return cls(**merged)


def _option_names(cls: type[Any]) -> set[str]:
    return {f.name for f in fields(cls) if f.init}


# Names Node (or another library) users may bring, and the option they mean.
_ALIASES = {"cert": "certfile", "key": "keyfile", "headers": "extra_headers"}


def _unknown_option(name: object, cls: type[Any]) -> str:
    """The message for one unknown option, pointing at what was probably meant."""
    call = "create_server()" if cls is ServerOptions else "connect()"
    text = f"unknown option {name!r} of {call}"
    if not isinstance(name, str):
        return text
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    snake = _ALIASES.get(snake, snake)
    known = _option_names(cls)
    if cls is ServerOptions and snake in ("port", "host"):
        return f"{text}: pass the {snake} to listen(port, host)"
    other: type[_Common]
    if cls is ServerOptions:
        other, side, other_call = ClientOptions, "client", "connect()"
    else:
        other, side, other_call = ServerOptions, "server", "create_server()"
    if snake not in known and snake in _option_names(other):
        return f"{text}: {snake!r} is a {side}-only option (of {other_call})"
    if snake != name and snake in known:
        return f"{text}: did you mean {snake!r}?"
    close = difflib.get_close_matches(snake, sorted(known), n=1)
    if close:
        return f"{text}: did you mean {close[0]!r}?"
    return text
