"""Reading job YAML within limits: size, encoding, control characters, nesting and aliases.

PyYAML only (``render.py`` mixes :class:`LimitedComposer` into JJB's loader). Every refusal is
a :class:`YamlLimitError`, a marked YAML error, so it reaches the user as ``file:line:col:``
like any other YAML error. The limits are far above what a job tree needs: JJB accepts
everything that passes them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 100
# Nodes that aliases may add on top of the document's own (an anchor of 50 nodes used 2 000
# times is fine; ten levels of ten aliases, the "billion laughs", is 10^10).
MAX_ALIAS_NODES = 200_000

# What YAML 1.1 allows in a stream (PyYAML's Reader checks the same, but names no line).
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_PYTHON_TAGS = "tag:yaml.org,2002:python/"


class YamlLimitError(yaml.MarkedYAMLError):
    """The YAML is refused before JJB sees it (too big, not UTF-8, too deep, alias bomb, ...)."""


def _mark(name: str, text: str, index: int) -> yaml.Mark:
    line = text.count("\n", 0, index)
    column = index - (text.rfind("\n", 0, index) + 1)
    return yaml.Mark(name, index, line, column, text, index)


def _refuse(problem: str, mark: yaml.Mark | None) -> YamlLimitError:
    return YamlLimitError(problem=problem, problem_mark=mark)


def read_text(path: str | os.PathLike[str]) -> str:
    """The UTF-8 text of a YAML (or included) file, refused with its position if it is too big,
    not UTF-8, or holds a character YAML forbids."""
    name = str(path)
    size = os.stat(path).st_size
    if size > MAX_FILE_BYTES:
        raise _refuse(f"the file is {size / 2**20:.1f} MiB; job YAML files are limited to "
                      f"{MAX_FILE_BYTES // 2**20} MiB", yaml.Mark(name, 0, 0, 0, None, None))
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = data.decode("utf-8", "replace")
        index = len(data[: exc.start].decode("utf-8"))
        raise _refuse(f"byte 0x{data[exc.start]:02x} is not UTF-8 (job YAML must be UTF-8 text)",
                      _mark(name, shown, index)) from None
    check_printable(text, name)
    return text


def check_printable(text: str, name: str) -> None:
    """Refuse a control character with its line and column (YAML allows tab, CR and LF only)."""
    found = _NOT_PRINTABLE.search(text)
    if found:
        char = ord(found.group())
        raise _refuse(f"control character #x{char:04x} is not allowed in YAML "
                      f"(write it as an escape in a double-quoted string, e.g. \"\\x{char:02x}\")",
                      _mark(name, text, found.start()))


def expansion_problem(root: yaml.Node) -> tuple[str, yaml.Mark] | None:
    """Why the node graph of a document is refused (aliases expanding it beyond
    :data:`MAX_ALIAS_NODES`, or an alias inside its own anchor), or None.

    Counts each distinct node once, so a bomb is measured without being expanded."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    order: list[yaml.Node] = []
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            order.append(node)
            continue
        if key in sizes:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                return "an alias refers to its own anchor (a recursive structure)", child.start_mark
            if id(child) not in sizes:
                stack.append((child, False))
    if sizes[id(root)] - len(sizes) <= MAX_ALIAS_NODES:
        return None
    first = next(node for node in order if sizes[id(node)] > MAX_ALIAS_NODES)
    return (f"aliases expand this document to {sizes[id(root)]:,} nodes (limit: {MAX_ALIAS_NODES:,} "
            "more than written); refusing a possible alias bomb", first.start_mark)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class LimitedComposer:
    """A mixin for a PyYAML loader: bounded nesting, no alias bombs, no ``!!python/`` tags."""

    _depth = 0
    root_mark: yaml.Mark | None = None  # where the document's top-level node starts

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _refuse(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            self.root_mark = node.start_mark
            problem = expansion_problem(node)
            if problem:
                raise _refuse(*problem)
        return node

    def construct_object(self, node, deep=False):
        if node.tag.startswith(_PYTHON_TAGS):
            raise _refuse(f"the tag {node.tag!r} is not allowed: it would run Python code", node.start_mark)
        return super().construct_object(node, deep)
