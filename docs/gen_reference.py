"""Writes docs/reference.md from the docstrings of every public name (``python docs/gen_reference.py``).

tests/test_docs.py checks that the file is up to date and covers all of ``wsevents.__all__``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import wsevents

OUT = Path(__file__).resolve().parent / "reference.md"


def signature(obj: object) -> str:
    """The call signature without annotations: ``(url, options=None, callback=None, **kwargs)``."""
    try:
        sig = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def doc(obj: object) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "").strip()


def members(cls: type) -> list[tuple[str, object]]:
    found = []
    for name, member in cls.__dict__.items():
        if name.startswith("_") or name in ("CONNECTING", "OPEN", "CLOSING", "CLOSED"):
            continue
        if callable(member) or isinstance(member, property):
            found.append((name, member))
    return sorted(found)


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/gen_reference.py`; every name of",
        "`wsevents.__all__` is here. The options of `create_server` and `connect` are in the",
        "[README](../README.md#options).",
        "",
    ]
    def order(n: str) -> tuple[bool, str]:
        return inspect.isclass(getattr(wsevents, n)), n

    for name in sorted(wsevents.__all__, key=order):
        obj = getattr(wsevents, name)
        kind = "class" if inspect.isclass(obj) else "function"
        lines += [f"## `wsevents.{name}`{signature(obj) if kind == 'function' else ''}", ""]
        if inspect.isclass(obj):
            bases = [b.__name__ for b in obj.__bases__ if b is not object]
            if bases:
                lines += [f"*class*, based on {', '.join(f'`{b}`' for b in bases)}", ""]
        lines += [doc(obj), ""]
        fields = getattr(obj, "__dataclass_fields__", None)
        if fields:
            lines += ["Fields: " + ", ".join(f"`{f}`" for f in fields) + ".", ""]
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
