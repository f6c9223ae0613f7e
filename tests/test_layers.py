"""The import direction of DESIGN.md: a module imports only from its own layer or below,
the sans-I/O core never imports I/O modules, and no module imports itself back through others.

Every import counts, at the top of a module or inside a function (a late import only hides a
cycle, it does not break it), and so do ``importlib.import_module("...")`` calls with a literal
name."""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wsevents"

LAYERS = {
    "wsevents.errors": 0,
    "wsevents.emitter": 0,
    "wsevents._types": 0,
    "wsevents._connection": 0,
    "wsevents._speedups": 0,
    "wsevents.protocol": 1,
    "wsevents.metrics": 1,  # server.metrics: counting and the text exposition, no I/O
    "wsevents.aio": 2,
    # Shared by aio and sync, importing neither (they use ssl/socket, so not layer 1).
    "wsevents.options": 2,
    "wsevents.unix": 2,
    "wsevents.sync": 2,  # the threaded I/O layer, beside aio (tests/sync checks it runs without asyncio)
    "wsevents.api": 3,
    "wsevents.workers": 3,
    "wsevents.worker_metrics": 3,  # the workers' metrics link: a worker's and the supervisor's side
    "wsevents.worker_sockets": 3,  # the listening sockets the supervisor binds for its workers
    "wsevents": 3,  # the package __init__: re-exports only
    "wsevents.demo": 3,  # an application of the public API: it never imports the CLI
    "wsevents.demo.__main__": 4,  # `python -m wsevents.demo`, the same as `wsevents serve`
    "wsevents.cli": 4,
    "wsevents.commands": 4,  # what each command of the CLI does, below its argument parsing
    "wsevents.__main__": 4,
}

IO_MODULES = {"asyncio", "socket", "ssl", "threading", "selectors", "select"}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_prefix(name: str) -> str:
    """The longest name of LAYERS that is ``name`` or a package holding it ("" if none)."""
    best = ""
    for prefix in LAYERS:
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return best


def layer_of(name: str) -> int:
    best = layer_prefix(name)
    assert best, f"{name} is in no layer: add it to LAYERS"
    return LAYERS[best]


def imports_of(path: Path, name: str | None = None) -> list[str]:
    """What ``path`` (module ``name``) imports, anywhere in it: ``from pkg import mod`` gives
    both ``pkg`` and ``pkg.mod`` (the checks keep the names that are modules)."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is not None:
                found.append(target)
            found.extend(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            found.append(node.args[0].value)  # type: ignore[attr-defined]
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (annotations import nothing)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _dynamic_import(node: ast.Call) -> bool:
    """``importlib.import_module("x")``, ``import_module("x")`` or ``__import__("x")``."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    first = node.args[0] if node.args else None
    return called in ("import_module", "__import__") and isinstance(first, ast.Constant) and (
        isinstance(first.value, str)
    )


SOURCES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    """Named in LAYERS, itself or by its package: "wsevents" is the package's __init__ only, not
    a default layer for a new module at the top."""
    assert SOURCES
    for path in SOURCES:
        name = module_name(path)
        layer_of(name)
        assert layer_prefix(name) != "wsevents" or name == "wsevents", f"{name}: add it to LAYERS"


MODULES = {module_name(path): path for path in SOURCES}


def violations(path: Path, name: str, modules: Iterable[str] = MODULES) -> list[str]:
    """Imports of ``path`` (module ``name``) that point to a higher layer or, in the core, to I/O."""
    mine = layer_of(name)
    known = set(modules)
    bad = set()
    for imported in imports_of(path, name):
        if imported == "wsevents" or imported.startswith("wsevents."):
            if imported in known and layer_of(imported) > mine:
                bad.add(imported)
        elif mine == 1 and imported.split(".")[0] in IO_MODULES:
            bad.add(imported.split(".")[0])
    return sorted(bad)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    assert violations(path, module_name(path)) == []


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself can fail: a core module importing asyncio and the aio layer is caught,
    late imports and ``import_module`` included."""
    bad = tmp_path / "core.py"
    bad.write_text(
        "import asyncio\nfrom ..aio import connection\nfrom ..errors import ProtocolError\n"
        "def late():\n    import ssl\n    from threading import Lock\n"
        "    importlib.import_module('socket')\n"
    )
    modules = ["wsevents.aio", "wsevents.aio.connection", "wsevents.errors", "wsevents.protocol.core"]
    assert violations(bad, "wsevents.protocol.core", modules) == [
        "asyncio", "socket", "ssl", "threading", "wsevents.aio", "wsevents.aio.connection",
    ]


def test_the_threaded_api_imports_nothing_from_aio() -> None:
    """What wsevents.sync shares with the asyncio API sits below both, not in aio/."""
    for name, path in MODULES.items():
        if name.startswith("wsevents.sync"):
            assert [m for m in imports_of(path, name) if m.startswith("wsevents.aio")] == [], name


# -- no import cycles -------------------------------------------------------------------

# Cycles known to remain while issue 10 is under way, each named once: the pair of modules.
# (aio/connection.py <-> aio/server.py is gone: the server answers its own refusals, so
# connection.py no longer imports `reject` late.)
KNOWN_CYCLES: set[frozenset[str]] = set()


def import_graph(imports: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (names that are not modules dropped)."""
    return {name: {m for m in targets if m in imports and m != name} for name, targets in imports.items()}


def cycles(graph: Mapping[str, set[str]], known: Collection[frozenset[str]] = ()) -> list[list[str]]:
    """Each group of modules that import one another (a strongly connected component of two or
    more), sorted; the edges of a known pair are left out first."""
    edges = {a: {b for b in bs if frozenset({a, b}) not in known} for a, bs in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is a few dozen modules deep
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_import_cycle() -> None:
    graph = import_graph({name: imports_of(path, name) for name, path in MODULES.items()})
    assert cycles(graph, KNOWN_CYCLES) == []


def test_known_cycles_still_exist() -> None:
    """A known cycle that was broken must leave the list, so that it cannot come back unseen."""
    graph = import_graph({name: imports_of(path, name) for name, path in MODULES.items()})
    for pair in KNOWN_CYCLES:
        a, b = sorted(pair)
        assert cycles({a: graph[a] & pair, b: graph[b] & pair}) == [[a, b]], f"{a} <-> {b} is gone"


def test_cycle_checker_sees_a_late_import(tmp_path: Path) -> None:
    """The cycle check can fail: two modules importing each other, one of them inside a function;
    an import for annotations only (``if TYPE_CHECKING:``) runs nothing and makes no cycle."""
    (tmp_path / "a.py").write_text("from . import b\nfrom .c import Y\n")
    (tmp_path / "b.py").write_text("def late():\n    from .a import thing\n")
    (tmp_path / "c.py").write_text("import typing\n\nif typing.TYPE_CHECKING:\n    from .a import X\n")
    names = {f"wsevents.{n}": tmp_path / f"{n}.py" for n in "abc"}
    graph = import_graph({name: imports_of(path, name) for name, path in names.items()})
    assert cycles(graph) == [["wsevents.a", "wsevents.b"]]
    assert cycles(graph, {frozenset({"wsevents.a", "wsevents.b"})}) == []


# Server and Connection (and the modules around them) talk through named interfaces: no module
# of one part reads or calls a ``_private`` name of another part on an object other than
# ``self``/``cls``. A part is a group of modules that share their private names on purpose (a
# class split into mixins).
PARTS: dict[str, set[str]] = {
    # The connection is one class split into mixins; server_side.py is its interface to the
    # server; it produces its streams (feeds, ends and aborts an InStream, aborts an OutStream).
    "connection": {f"aio/{n}.py" for n in ("connection", "conn_base", "transport", "receiving", "sending",
                                           "keepalive", "closing", "server_side", "streams", "outstream")},
    "server": {f"aio/{n}.py" for n in ("server", "server_base", "listening", "server_handshake", "host",
                                       "server_api", "deadlines")},
    # reconnect.py's _Leg is a ClientConnection subclass (it overrides the client's hooks and
    # reads its handshake's _opened future); the policy and the send queue are
    # ReconnectingConnection's, split into files.
    "client": {f"aio/{n}.py" for n in ("client", "reconnect", "reconnect_policy", "reconnect_queue")},
    "rooms": {"aio/rooms.py"},
    # The Redis broker subclasses Broker (redis_link.py) and broker_option.py makes a broker.
    "broker": {f"aio/{n}.py" for n in ("broker", "broker_option", "redis_broker", "redis_link",
                                       "redis_replay")},
    "runner": {"aio/runner.py"},
    # The supervisor and its workers, split into files (their metrics link, their sockets).
    "workers": {"workers.py", "worker_metrics.py", "worker_sockets.py"},
    "metrics": {"metrics.py"},
    # The threaded Connection is one class split into files (reading.py's mixin, receiver.py's
    # dispatcher, as aio/receiving.py is the asyncio one's); its server and its client are
    # parts of their own, which reach it through the functions at the end of connection.py.
    "sync connection": {"sync/connection.py", "sync/reading.py", "sync/receiver.py"},
    "sync server": {"sync/server.py"},
    "sync client": {"sync/client.py"},
    "sync handshake": {"sync/handshake.py"},
    "sync": {"sync/__init__.py"},
    "protocol": {str(p.relative_to(SRC)) for p in (SRC / "protocol").glob("*.py")},
    # The mixins the connection classes and the server inherit: their private names are hooks
    # that subclasses override and call on themselves.
    "bases": {"emitter.py", "_connection.py"},
    "types": {"_types.py"},
    "errors": {"errors.py"},
    "options": {"options.py", "aio/options.py"},  # aio/options.py re-exports options.py
    "unix": {"unix.py", "aio/unix.py"},  # aio/unix.py re-exports unix.py
    "api": {"__init__.py", "api.py", "aio/__init__.py"},
    "cli": {"cli.py", "__main__.py"} | {str(p.relative_to(SRC)) for p in (SRC / "commands").glob("*.py")},
    "demo": {"demo/__init__.py", "demo/__main__.py"},
}

# Names both parts define, read here on this part's own object (the checker goes by name only).
OWN_PART: set[str] = {
    # The receive dispatcher reading its connection and feeding the connection's streams (the
    # threaded connection, the core, the reconnecting client and sync/handshake.py's Deadline
    # have such names too); _emit_safe is the connection's own, inherited from EventEmitter.
    "aio/receiving.py: conn._emit_safe",
    "aio/receiving.py: conn._fail",
    "aio/receiving.py: conn._message",
    "aio/receiving.py: conn._options",
    "aio/receiving.py: conn._parts",
    "aio/receiving.py: conn._peer_closed",
    "aio/receiving.py: conn._pong",
    "aio/receiving.py: conn._transport",
    "aio/receiving.py: self.conn._fail",
    "aio/receiving.py: stream._end",
    "aio/receiving.py: stream._feed",
    # The connection ending its own streams (the threaded connection has an _abort).
    "aio/closing.py: self.out_stream._abort",
    "aio/closing.py: stream._abort",
    "aio/server.py: server._live",  # ConnectionHost's adapter reading its own server
    # The server's interface to its connections, reading the connection (the server has a
    # _loop, a _shutdown, an _open and a _listener_failed of its own, the threaded connection an
    # _abort and a _core).
    "aio/server_side.py: conn._abort",
    "aio/server_side.py: conn._core",
    "aio/server_side.py: conn._listener_failed",
    "aio/server_side.py: conn._loop",
    "aio/server_side.py: conn._open",
    "aio/server_side.py: conn._shutdown",
    # The broker's and the workers' interface to a server, reading the server (the connection
    # has a _loop, the broker a _deliver).
    "aio/server_api.py: server._deliver",
    "aio/server_api.py: server._loop",
    # The hook that runner.py's _Holder protocol declares, called by shutdown() on each holder
    # (servers, connections, brokers, reconnecting clients implement it).
    "aio/runner.py: holder._shutdown",
    # EventEmitter's hook for a failed coroutine listener, which connections and servers extend.
    "emitter.py: emitter._listener_failed",
    "metrics.py: metrics._refuse",  # ServerMetrics' own (an OutStream has a _refuse)
    # The threaded connection's interface to its server and client, and its receive dispatcher
    # reading it (the workers and the broker have a _start; the asyncio connection a _message,
    # a _pong; its streams and the metrics an _ended).
    "sync/connection.py: conn._start",
    "sync/receiver.py: conn._ended",
    "sync/receiver.py: conn._message",
    "sync/receiver.py: conn._pong",
    "sync/receiver.py: self._conn._message",
}

# Private calls across parts left while issue 10 is under way, as "module: expression"; each must
# leave the list once it is gone (test_private_exceptions_still_needed), so the list only shrinks.
PRIVATE_EXCEPTIONS: set[str] = set()


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own_object(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def private_names(tree: ast.AST) -> set[str]:
    """The private names a module defines on its classes: methods, class attributes, and the
    attributes its methods set on ``self``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _own_object(node.value):
            names.add(node.attr)
    return {name for name in names if _is_private(name)}


def private_calls_across(parts: Mapping[str, Collection[str]], root: Path = SRC) -> set[str]:
    """Each ``obj._name`` (``obj`` not ``self``/``cls``/``super()``) in a module of a part where
    ``_name`` is a private name of another part's module, as ``"module: expression"``."""
    trees = {rel: ast.parse((root / rel).read_text()) for modules in parts.values() for rel in modules}
    defined = {part: set().union(*(private_names(trees[rel]) for rel in modules))
               for part, modules in parts.items()}
    found: set[str] = set()
    for part, modules in parts.items():
        others = set().union(*(names for other, names in defined.items() if other != part))
        for rel in modules:
            for node in ast.walk(trees[rel]):
                if (isinstance(node, ast.Attribute) and _is_private(node.attr) and node.attr in others
                        and not _own_object(node.value)):
                    found.add(f"{rel}: {ast.unparse(node)}")
    return found


def test_every_module_is_in_one_part() -> None:
    """A new module joins a part (one of its own if it shares no private names with another)."""
    named = [rel for modules in PARTS.values() for rel in modules]
    assert sorted(named) == sorted(str(path.relative_to(SRC)) for path in SOURCES)


def test_no_private_calls_across_parts() -> None:
    assert sorted(private_calls_across(PARTS) - PRIVATE_EXCEPTIONS - OWN_PART) == []


def test_private_exceptions_still_needed() -> None:
    """An exception that was fixed must leave PRIVATE_EXCEPTIONS, so that it cannot come back unseen."""
    assert sorted((PRIVATE_EXCEPTIONS | OWN_PART) - private_calls_across(PARTS)) == []


def test_private_checker_sees_a_call_across(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("class A:\n    def _hidden(self) -> None:\n        self._x = 1\n")
    (tmp_path / "b.py").write_text("def f(a):\n    a._hidden()\n    a._own()\n    return a._x\n"
                                   "class B:\n    def _own(self) -> None:\n        self._x = None\n")
    (tmp_path / "c.py").write_text("def g(a):\n    return a._x\n")
    found = private_calls_across({"a": {"a.py"}, "b": {"b.py"}, "c": {"c.py"}}, tmp_path)
    # a._own is b's own name; a._x is defined by both a and b: the check goes by name, so it counts.
    assert found == {"b.py: a._hidden", "b.py: a._x", "c.py: a._x"}
