"""Writes docs/reference.md from the docstrings of every public name (``python docs/gen_reference.py``).

tests/test_docs.py checks that the file is up to date and covers all of ``wsevents.__all__``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import wsevents
from wsevents.aio.client import ClientConnection
from wsevents.options import ClientOptions, ServerOptions

OUT = Path(__file__).resolve().parent / "reference.md"

# Public instance attributes are documented by a ``#:`` comment above their assignment in the
# source; these are the ones that have none there (and those of subclasses a user meets:
# ``connect()`` returns a ``ClientConnection``).
ATTRIBUTE_DOCS = {
    ("Connection", "max_buffer_length"): "Bound in bytes on each message assembled for this connection and "
    "on data not yet consumed (the option, else the module default when it was created); 1009 past it.",
    ("Connection", "url"): "*Client side only* (a server-side connection has none): the parsed URL, with "
    "`secure`, `host`, `port`, `path` and `user_info` (from `ws://user:password@host/`, sent as Basic "
    "authorization, else `None`).",
    ("Server", "options"): "The options it was created with (a dataclass, defaults filled in).",
    ("Server", "port"): "The port it listens on (useful after `listen(0)`), `None` before it listens "
    "and on a Unix socket.",
    ("Server", "address"): "The address it listens on (the first socket's; the path for `listen(path=...)`), "
    "`None` before it listens.",
    ("InStream", "limit"): "Bytes held unconsumed past which reading from the socket pauses, and the "
    "bound of `read()` (the connection's `max_buffer_length`).",
    ("OutStream", "fragment_size"): "Bytes held before a frame goes out (the connection's "
    "`binary_fragmentation` when the stream began).",
    ("HandshakeError", "status"): "The HTTP status of a refused handshake, or `None`.",
    ("ProtocolError", "code"): "The close code the connection was failed with (1002, 1007; 1009 for "
    "`MessageTooBig`).",
    ("ConnectionClosed", "code"): "The close code (1005: the close frame had none; 1006: no closing "
    "handshake).",
    ("ConnectionClosed", "reason"): "The close reason (`\"\"` when none).",
}
SUBCLASSES = {"Connection": [ClientConnection]}
# ``#:`` comment lines (maybe none), then ``self.name = ...`` or ``self.name: type = ...``.
ASSIGNMENT = re.compile(r"((?:^[ \t]*#:.*\n)*)^[ \t]*self\.([a-z]\w*)\s*(?::[^=\n]+)?=", re.M)

# The options of create_server / connect: every field of the option dataclasses.
OPTION_DOCS = {
    "secure": "serve `wss://` with `certfile`/`keyfile`",
    "certfile": "certificate chain (PEM path) for `secure=True`",
    "keyfile": "private key (PEM path) for `secure=True`",
    "ssl": "an `ssl.SSLContext`: the server's for `wss://`, or the client's (default: a verifying one)",
    "valid_protocols": "subprotocols the server accepts; it picks the client's most preferred one",
    "select_protocol": "`(conn, protocols) -> str | None` (may be async): custom negotiation",
    "http_handler": "`(request) -> (status, headers, body) | None` (may be async): answers requests "
    "that are not upgrades; `None` gives 426",
    "verify_client": "`(request) -> True | False | status | (status, headers)` (may be async): "
    "admission; `False` is 403",
    "origins": "allow-list of `Origin` values (`None` in it admits requests without one); else 403",
    "max_connections": "open connections past it are refused with 503",
    "broker": "`\"redis://host:6379/0\"` or a broker object: `publish`/`broadcast` reach every server of "
    "the cluster (docs/scaling.md); `None`: this process only",
    "cluster": "the cluster name: servers sharing a broker and this name exchange messages",
    "extra_headers": "headers added to the handshake request (dict or list of pairs)",
    "protocols": "subprotocols asked for, most preferred first",
    "host": "where to connect, instead of the URL's host",
    "port": "where to connect, instead of the URL's port",
    "unix_path": "the Unix socket to connect to (the URL's host and path still make the request); "
    "a `ws+unix:///path/to.sock:/resource` URL does the same",
    "max_buffer_length": "bound on each message assembled and on unconsumed data; 1009 past it "
    "(`None`: the module default, 2 MiB)",
    "binary_fragmentation": "minimum frame size of an `OutStream` (`None`: the module default, 512 KiB)",
    "close_timeout": "seconds to wait for the peer's close frame (and, on a client, the TCP close)",
    "handshake_timeout": "seconds for the opening handshake; then the socket is closed",
    "max_header_size": "bytes of a handshake head; 431 past it",
    "max_headers": "header lines of a handshake head; 431 past it",
    "compression": "permessage-deflate: `True`, `False`, or a dict of its parameters "
    "(see the README's compression section)",
    "ping_interval": "seconds between keepalive pings (`None`: none)",
    "ping_timeout": "seconds to wait for the pong; then closed with 1011",
    "max_queue": "messages queued for `recv()` before reading from the socket pauses",
    "max_write_buffer": "bytes waiting unsent (64 MiB) past which sending more drops the connection "
    "with 1008",
    "reconnect": "return a `ReconnectingConnection`: a new connection after each drop (see the guide's "
    "\"Reconnecting\")",
    "reconnect_delay": "seconds: the first backoff delay (each wait is drawn between it and twice it, "
    "the range doubling after each failure)",
    "reconnect_max_delay": "seconds: the largest backoff delay",
    "reconnect_stop_codes": "close codes that, sent by the server, end reconnection (add your 4xxx ones); "
    "an HTTP 4xx other than 408/429 at the handshake and your own `close()` end it too",
    "reconnect_queue": "messages held while disconnected and sent, in order, on the next connection; "
    "`0`: sends while disconnected raise `InvalidState`",
    "proxy": "`True`: the environment's proxy (`https_proxy` for wss://, `http_proxy` for ws://, "
    "`all_proxy`, `no_proxy`); a URL (`http://`, `https://`, `socks5://`, `socks5h://`, `socks4://`) "
    "forces one; `None`: direct (docs/proxy.md)",
    "max_redirects": "redirects (301/302/303/307/308) of the handshake followed; `0`: none",
}


def signature(obj: object) -> str:
    """The call signature without annotations: ``(url, options=None, callback=None, **kwargs)``."""
    try:
        sig = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def public_bases(cls: type) -> list[str]:
    """The public base classes of ``cls``, looking through its private mixins to theirs."""
    found: list[str] = []
    for base in cls.__bases__:
        if base is object:
            continue
        names = public_bases(base) if base.__name__.startswith("_") else [base.__name__]
        found += [name for name in names if name not in found]
    return found


def doc(obj: object) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "").strip()


def members(cls: type) -> list[tuple[str, object]]:
    """The public methods and properties of ``cls``, those of its private mixins included
    (``_ClosingInfo``, ``_SendByKind``: shared code, documented as the class's own)."""
    found: dict[str, object] = {}
    mixins = [k for k in reversed(cls.__mro__)
              if k.__name__.startswith("_") and k.__module__.startswith("wsevents")]
    for klass in [*mixins, cls]:
        for name, member in klass.__dict__.items():
            if name.startswith("_") or name in ("CONNECTING", "OPEN", "CLOSING", "CLOSED"):
                continue
            if callable(member) or isinstance(member, property):
                found[name] = member
    return sorted(found.items())


def attributes(cls: type) -> list[tuple[str, str]]:
    """Public instance attributes assigned in ``__init__`` (of the class and the subclasses users
    meet), each with its ``#:`` comment or its entry in ATTRIBUTE_DOCS."""
    found: dict[str, str] = {}
    for klass in [*reversed([k for k in cls.__mro__ if k.__module__.startswith("wsevents")]),
                  *SUBCLASSES.get(cls.__name__, [])]:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        source = inspect.getsource(init)
        for match in ASSIGNMENT.finditer(source):
            comment, name = match.groups()
            if name in found or isinstance(getattr(cls, name, None), property):
                continue
            text = " ".join(line.strip()[2:].strip() for line in comment.splitlines())
            keys = [(k.__name__, name) for k in cls.__mro__]
            found[name] = text or next(ATTRIBUTE_DOCS[key] for key in keys if key in ATTRIBUTE_DOCS)
    return sorted(found.items())


def dataclass_fields(cls: type) -> list[tuple[str, str]]:
    """The fields of a dataclass with the ``#:`` comments above them."""
    source = inspect.getsource(cls)
    docs = {
        name: " ".join(line.strip()[2:].strip() for line in comment.splitlines())
        for comment, name in re.findall(r"((?:^[ \t]*#:.*\n)+)^[ \t]*(\w+)\s*:", source, re.M)
    }
    return [(f.name, docs.get(f.name, "")) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]


def options_table() -> list[str]:
    """Every option of ``create_server`` and ``connect``, with its side and default."""
    rows = {}
    for side, cls in (("server", ServerOptions), ("client", ClientOptions)):
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            sides, _ = rows.get(f.name, ([], default))
            rows[f.name] = ([*sides, side], default)
    lines = [
        "## Options of `create_server` and `connect`",
        "",
        "A dict, keyword arguments, or both (keywords win); an unknown name is a `TypeError` naming it.",
        "",
        "| option | side | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, (sides, default) in rows.items():
        side = "both" if len(sides) == 2 else sides[0]
        text = OPTION_DOCS[name].replace("|", "\\|")  # a pipe in a table cell, even in code, is escaped
        lines.append(f"| `{name}` | {side} | `{default!r}` | {text} |")
    return [*lines, ""]


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/gen_reference.py`; every name of",
        "`wsevents.__all__` is here with its public methods and attributes, and so are the options",
        "of `create_server` and `connect`. The [guide](guide.md) shows them at work.",
        "",
        "Objects created while an asyncio loop runs belong to that loop; objects created outside any",
        "running loop belong to the library's default loop, which `run()` drives. Nothing is",
        "thread-safe: from another thread, go through `loop.call_soon_threadsafe`.",
        "",
        *options_table(),
    ]
    def order(n: str) -> tuple[bool, str]:
        return inspect.isclass(getattr(wsevents, n)), n

    for name in sorted(wsevents.__all__, key=order):
        obj = getattr(wsevents, name)
        kind = "class" if inspect.isclass(obj) else "function"
        lines += [f"## `wsevents.{name}`{signature(obj) if kind == 'function' else ''}", ""]
        if inspect.isclass(obj):
            bases = public_bases(obj)
            if bases:
                lines += [f"*class*, based on {', '.join(f'`{b}`' for b in bases)}", ""]
        lines += [doc(obj), ""]
        if dataclasses.is_dataclass(obj):
            for field_name, text in dataclass_fields(obj):  # type: ignore[arg-type]
                lines += [f"### `{name}.{field_name}` *(field)*", "", text, ""]
        elif inspect.isclass(obj) and not issubclass(obj, int):
            for attr, text in attributes(obj):
                lines += [f"### `{name}.{attr}` *(attribute)*", "", text, ""]
        if obj is wsevents.Connection:
            lines += [
                "### `Connection.CONNECTING`, `.OPEN`, `.CLOSING`, `.CLOSED`",
                "",
                "The `ReadyState` values as class constants (as `conn.OPEN` in Node).",
                "",
            ]
        if inspect.isclass(obj) and not issubclass(obj, BaseException) and not issubclass(obj, int):
            for member_name, member in members(obj):
                if isinstance(member, property):
                    lines += [f"### `{name}.{member_name}` *(property)*", "", doc(member), ""]
                else:
                    target = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
                    lines += [f"### `{name}.{member_name}{signature(target)}`", "", doc(target), ""]
        if inspect.isclass(obj) and issubclass(obj, int) and obj is not bool:
            values = ", ".join(f"`{m.name}` = {int(m)}" for m in obj)  # type: ignore[attr-defined]
            lines += [f"Members: {values}.", ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
