"""Proxies and redirects of the client's opening handshake, before any I/O.

Which proxy a URL goes through (the ``proxy`` option or the environment's
``https_proxy`` / ``http_proxy`` / ``all_proxy`` / ``no_proxy``), the HTTP
``CONNECT`` request and its answer, and where a redirect of the handshake
leads. The I/O layers send and read the bytes.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib import request as _request
from urllib.parse import unquote, urljoin, urlsplit

from ..errors import InvalidStatus, ProxyError
from .handshake import Response
from .url import WebSocketURL, parse_url

__all__ = [
    "ProxyURL",
    "REDIRECT_STATUSES",
    "build_connect_request",
    "check_connect_response",
    "parse_proxy",
    "proxy_for",
    "redirect_target",
    "same_origin",
    "select_proxy",
    "strip_credentials",
]

# Default ports of the proxy schemes; socks4a/socks5h resolve the target's name at the proxy.
_PROXY_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL: ``http://``, ``https://``, ``socks5://``, ``socks5h://``, ``socks4://``, ``socks4a://``."""

    scheme: str
    host: str
    port: int
    user_info: tuple[str, str] | None = None
    url: str = ""

    @property
    def is_socks(self) -> bool:
        """A SOCKS proxy (through ``python-socks``) rather than HTTP ``CONNECT``."""
        return self.scheme.startswith("socks")

    @property
    def address(self) -> str:
        """``host:port``, to name the proxy in errors."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        """The URL without its password (for errors and logs)."""
        return f"{self.scheme}://{self.address}"

    @property
    def socks_version(self) -> str:
        """``"SOCKS5"`` or ``"SOCKS4"``: the name of python-socks' ``ProxyType`` member."""
        return "SOCKS5" if self.scheme.startswith("socks5") else "SOCKS4"

    def socks_arguments(self) -> dict[str, Any]:
        """The keyword arguments of python-socks' ``Proxy.create`` after the proxy type."""
        username, password = self.user_info or (None, None)
        # socks5h and socks4a leave name resolution to the proxy.
        rdns = self.scheme in ("socks5h", "socks4a")
        return {
            "host": self.host,
            "port": self.port,
            "username": username,
            "password": password,
            "rdns": rdns,
        }

    def socks_missing(self) -> ImportError:
        """The error for a SOCKS proxy without python-socks installed."""
        return ImportError(
            f"the proxy {self} is a SOCKS proxy, which needs python-socks: pip install 'wsevents[socks]'"
        )


def parse_proxy(url: str) -> ProxyURL:
    """Parse a proxy URL; one without a scheme (``host:3128``) is an HTTP proxy, as in curl.

    Raises:
        ValueError: a scheme that is not a proxy's, no host, or a bad port.
    """
    if not isinstance(url, str):
        raise TypeError(f"proxy must be a URL (str), True (from the environment) or None, not {url!r}")
    text = url if "://" in url else f"http://{url}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid proxy URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _PROXY_PORTS:
        known = ", ".join(f"{s}://" for s in _PROXY_PORTS)
        raise ValueError(f"invalid proxy URL {url!r}: the scheme must be one of {known}")
    if not parts.hostname:
        raise ValueError(f"invalid proxy URL {url!r}: no host")
    user_info = None
    if parts.username is not None:
        user_info = (unquote(parts.username), unquote(parts.password or ""))
    return ProxyURL(scheme, parts.hostname, port or _PROXY_PORTS[scheme], user_info, text)


def proxy_for(url: WebSocketURL, proxies: Mapping[str, str]) -> ProxyURL | None:
    """The proxy of ``url`` given the environment's ``proxies`` (``urllib.request.getproxies()``).

    ``wss://`` goes through the ``https`` proxy and ``ws://`` through the
    ``http`` one, ``all`` being the fallback of both; hosts that ``no_proxy``
    names (a host, a domain and its subdomains, ``host:port``, or ``*``) are
    reached directly.
    """
    chosen = proxies.get("https" if url.secure else "http") or proxies.get("all")
    if not chosen:
        return None
    if proxies.get("no") and _request.proxy_bypass_environment(  # type: ignore[attr-defined]  # public, not in typeshed
        f"{url.host}:{url.port}", dict(proxies)
    ):
        return None
    return parse_proxy(chosen)


def select_proxy(url: WebSocketURL, option: str | bool | None, proxies: Mapping[str, str]) -> ProxyURL | None:
    """The proxy of ``url``: the ``proxy`` option's URL, the environment's (``True``), or none."""
    if option is None or option is False:
        return None
    if option is True:
        return proxy_for(url, proxies)
    return parse_proxy(option)


def build_connect_request(host: str, port: int, user_info: tuple[str, str] | None) -> bytes:
    """The ``CONNECT`` request of a tunnel to ``host:port``, with Basic ``Proxy-Authorization``."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if user_info is not None:
        token = base64.b64encode(":".join(user_info).encode("utf-8")).decode("ascii")
        lines.append(f"Proxy-Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def check_connect_response(response: Response, proxy: ProxyURL) -> None:
    """Check the proxy's answer to ``CONNECT``: any 2xx opens the tunnel.

    Raises:
        ProxyError: naming the proxy and its answer (``status`` is the proxy's).
    """
    if 200 <= response.status < 300:
        return
    answer = f"{response.status} {response.reason}".strip()
    if response.status == 407:
        if proxy.user_info:
            sent = "the credentials in the proxy URL were refused"
        else:
            sent = "put user:password@ in the proxy URL"
        raise ProxyError(
            f"proxy {proxy} answered {answer}: proxy authentication required ({sent})", response.status
        )
    raise ProxyError(f"proxy {proxy} refused the tunnel: {answer}", response.status)


def same_origin(a: WebSocketURL, b: WebSocketURL) -> bool:
    """Whether two URLs share scheme, host and port, or scheme and Unix socket.

    Credentials (``Authorization``, cookies) go from one to the other only then.
    """
    if a.unix_path is not None or b.unix_path is not None:
        return (a.secure, a.unix_path) == (b.secure, b.unix_path)
    return (a.secure, a.host.lower(), a.port) == (b.secure, b.host.lower(), b.port)


_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})


def strip_credentials(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without ``Authorization`` and ``Cookie`` (not sent to another origin)."""
    return [(k, v) for k, v in headers if k.lower() not in _CREDENTIAL_HEADERS]


def _absolute(location: str) -> bool:
    """Whether a ``Location`` names a server (a scheme, or ``//host``), not just a resource."""
    parts = urlsplit(location.strip())
    return bool(parts.scheme or parts.netloc)


def _checked_path(path: str, location: str, status: int) -> str:
    """``path`` quoted as a request target, as :func:`parse_url` does it."""
    try:
        return parse_url(f"ws://localhost{path}").path
    except ValueError as exc:
        raise InvalidStatus(f"redirect {status} to {location!r}: {exc}", status) from None


def redirect_target(url: WebSocketURL, response: Response) -> WebSocketURL:
    """Where a 3xx answer to the handshake of ``url`` leads.

    ``Location`` may be relative; ``http://`` and ``https://`` map to ``ws://``
    and ``wss://``. From a Unix socket, a relative ``Location`` (a path) stays
    on that socket; an absolute one leads where it says (``ws://`` over TCP).
    A server reached over TCP cannot send the client to a Unix socket.

    Raises:
        InvalidStatus: no ``Location``, a location that is not a WebSocket
            URL, one from ``wss://`` to ``ws://`` (TLS is not given up), or
            one to a ``ws+unix://`` URL from a server reached over TCP.
    """
    location = response.headers.get("location")
    if not location:
        raise InvalidStatus(f"redirect {response.status} without a Location header", response.status)
    base = f"{'wss' if url.secure else 'ws'}://{url.host_header}{url.path}"
    if url.unix_path is not None and not _absolute(location):
        # The same server, so the same socket: only the resource changes.
        moved = urlsplit(urljoin(base, location.strip()))
        path = moved.path + (f"?{moved.query}" if moved.query else "")
        return dataclasses.replace(url, path=_checked_path(path, location, response.status))
    target = urljoin(base, location.strip())
    scheme, sep, rest = target.partition("://")
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    try:
        new = parse_url(f"{scheme}{sep}{rest}")
    except ValueError as exc:
        raise InvalidStatus(f"redirect {response.status} to {location!r}: {exc}", response.status) from None
    if new.unix_path is not None and url.unix_path is None:
        raise InvalidStatus(
            f"redirect {response.status} to {location!r} refused: a server reached over TCP cannot send "
            "the client to a Unix socket of this machine",
            response.status,
        )
    if url.secure and not new.secure:
        raise InvalidStatus(
            f"redirect {response.status} from wss:// to {location!r} refused: it would give up TLS",
            response.status,
        )
    if url.user_info is not None and new.user_info is None and same_origin(url, new):
        new = dataclasses.replace(new, user_info=url.user_info)
    return new
