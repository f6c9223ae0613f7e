"""The import direction of DESIGN.md: a module imports only from its own layer or below,
and the sans-I/O core never imports I/O modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wsevents"

LAYERS = {
    "wsevents.errors": 0,
    "wsevents.emitter": 0,
    "wsevents._types": 0,
    "wsevents._speedups": 0,
    "wsevents.protocol": 1,
    "wsevents.metrics": 1,  # server.metrics: counting and the text exposition, no I/O
    "wsevents.aio": 2,
    "wsevents.sync": 2,  # the threaded I/O layer, beside aio (tests/sync checks it runs without asyncio)
    "wsevents.api": 3,
    "wsevents.workers": 3,
    "wsevents": 3,  # the package __init__: re-exports only
    "wsevents.demo": 4,
    "wsevents.cli": 4,
    "wsevents.__main__": 4,
}

IO_MODULES = {"asyncio", "socket", "ssl", "threading", "selectors", "select"}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> int:
    best = ""
    for prefix in LAYERS:
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    assert best, f"{name} is in no layer: add it to LAYERS"
    return LAYERS[best]


def imports_of(path: Path, name: str | None = None) -> list[str]:
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    found.extend(f"{target}.{alias.name}" for alias in node.names)
                else:
                    found.append(target)
            elif node.module:
                found.append(node.module)
    return found


SOURCES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert SOURCES
    for path in SOURCES:
        layer_of(module_name(path))


def violations(path: Path, name: str) -> list[str]:
    """Imports of ``path`` (module ``name``) that point to a higher layer or, in the core, to I/O."""
    mine = layer_of(name)
    bad = []
    for imported in imports_of(path, name):
        if imported == "wsevents" or imported.startswith("wsevents."):
            if layer_of(imported) > mine:
                bad.append(imported)
        elif mine == 1 and imported.split(".")[0] in IO_MODULES:
            bad.append(imported)
    return bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    assert violations(path, module_name(path)) == []


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself can fail: a core module importing asyncio and the aio layer is caught."""
    bad = tmp_path / "core.py"
    bad.write_text("import asyncio\nfrom ..aio import connection\nfrom ..errors import ProtocolError\n")
    assert violations(bad, "wsevents.protocol.core") == ["asyncio", "wsevents.aio"]
