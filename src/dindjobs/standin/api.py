"""The remote API's JSON export, with Stapler's ``depth`` and ``tree`` pruning.

Every exported object is a :class:`Bean`: a Java class name (``_class``) and a list of
properties, each with a visibility. Without ``tree``, the top object shows properties of
visibility >= 1 - depth, a nested one >= 2 - depth, and so on (so at depth 0 a nested job shows
only ``name``, ``url`` and ``color``). With ``tree``, only the listed properties appear, and a
bean listed without brackets shows only its ``_class``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape


@dataclasses.dataclass(frozen=True)
class Prop:
    """One exported property: its value may be a callable, evaluated only if shown."""

    name: str
    value: Any
    visibility: int = 1
    inline: bool = False


class Bean:
    """Base of everything the API exports."""

    java_class: str | None = None

    def props(self, ctx: Any) -> Iterable[Prop]:
        """The exported properties; ``ctx`` carries the request's root URL and user."""
        return ()


class Raw(Bean):
    """An ad-hoc bean: a class name and fixed properties (all visibility ``visibility``)."""

    def __init__(self, java_class: str | None, visibility: int = 1, inline: Iterable[str] = (),
                 **values: Any) -> None:
        self.java_class = java_class
        self._values = values
        self._visibility = visibility
        self._inline = frozenset(inline)

    def props(self, ctx: Any) -> Iterable[Prop]:
        return [Prop(k, v, self._visibility, k in self._inline) for k, v in self._values.items()]


class BadQuery(ValueError):
    """A malformed ``tree`` or ``depth`` (Jenkins answers 500)."""


class _ByDepth:
    def __init__(self, n: int) -> None:
        self.n = n

    def accept(self, prop: Prop) -> _ByDepth | None:
        if prop.visibility < self.n:
            return None
        return self if prop.inline else _ByDepth(self.n + 1)

    def slice(self, name: str, items: list) -> list:
        return items


class _ByTree:
    def __init__(self, spec: dict[str, tuple[dict | None, tuple[int | None, int | None] | None]]) -> None:
        self.spec = spec

    def accept(self, prop: Prop) -> _ByTree | None:
        if prop.name not in self.spec:
            return None
        sub = self.spec[prop.name][0]
        return _ByTree(sub or {})

    def slice(self, name: str, items: list) -> list:
        rng = self.spec.get(name, (None, None))[1]
        if rng is None:
            return items
        lo, hi = rng
        return items[(lo or 0):hi]


def parse_tree(text: str) -> dict:
    """Parse ``jobs[name,url,jobs[name]]{0,10}`` into {name: (subtree or None, range or None)}."""
    pos = 0

    def parse_list() -> dict:
        nonlocal pos
        result: dict = {}
        while True:
            start = pos
            while pos < len(text) and text[pos] not in ",[]{}":
                pos += 1
            name = text[start:pos].strip()
            if not name:
                raise BadQuery(f"malformed tree at {start}: {text!r}")
            sub = None
            rng = None
            if pos < len(text) and text[pos] == "[":
                pos += 1
                sub = parse_list()
                if pos >= len(text) or text[pos] != "]":
                    raise BadQuery(f"unbalanced brackets in tree: {text!r}")
                pos += 1
            if pos < len(text) and text[pos] == "{":
                end = text.find("}", pos)
                if end < 0:
                    raise BadQuery(f"unbalanced braces in tree: {text!r}")
                rng = _parse_range(text[pos + 1:end])
                pos = end + 1
            result[name] = (sub, rng)
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            return result

    spec = parse_list()
    if pos != len(text):
        raise BadQuery(f"malformed tree at {pos}: {text!r}")
    return spec


def _parse_range(text: str) -> tuple[int | None, int | None]:
    try:
        if "," not in text:
            n = int(text)
            return n, n + 1
        lo, hi = text.split(",", 1)
        return (int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)
    except ValueError:
        raise BadQuery(f"malformed range {{{text}}}") from None


def pruner_for(tree: str | None, depth: str | None):
    """The pruner for a request's ``tree`` (wins) or ``depth`` query parameters."""
    if tree is not None:
        return _ByTree(parse_tree(tree))
    try:
        d = int(depth) if depth is not None else 0
    except ValueError:
        raise BadQuery(f"depth must be a number, got {depth!r}") from None
    return _ByDepth(1 - d)


def export(value: Any, pruner, ctx: Any, name: str = "") -> Any:
    """``value`` as JSON-ready data, pruned."""
    if isinstance(value, Bean):
        out: dict[str, Any] = {}
        if value.java_class:
            out["_class"] = value.java_class
        for prop in value.props(ctx):
            child = pruner.accept(prop)
            if child is None:
                continue
            v = prop.value() if callable(prop.value) else prop.value
            out[prop.name] = _convert(v, child, ctx, prop.name, pruner)
        return out
    return _convert(value, pruner, ctx, name, pruner)


def _convert(v: Any, child, ctx: Any, name: str, parent) -> Any:
    if isinstance(v, Bean):
        return export(v, child, ctx)
    if isinstance(v, (list, tuple)):
        return [_convert(x, child, ctx, name, parent) for x in parent.slice(name, list(v))]
    if isinstance(v, dict):
        return {k: _convert(x, child, ctx, k, parent) for k, x in v.items()}
    return v


def to_xml(data: Any, root: str) -> str:
    """A minimal ``api/xml`` rendering of exported data."""

    def render(tag: str, value: Any) -> str:
        if isinstance(value, dict):
            inner = "".join(render(k, v) for k, v in value.items() if k != "_class")
            cls = value.get("_class")
            attr = f' _class="{escape(cls)}"' if cls else ""
            return f"<{tag}{attr}>{inner}</{tag}>"
        if isinstance(value, list):
            return "".join(render(tag, v) for v in value)
        if value is None:
            return ""
        if isinstance(value, bool):
            value = "true" if value else "false"
        return f"<{tag}>{escape(str(value))}</{tag}>"

    return '<?xml version="1.0" encoding="UTF-8"?>' + render(root, data)


Getter = Callable[[], Any]
