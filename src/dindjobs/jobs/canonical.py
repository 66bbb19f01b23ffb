"""Canonical config.xml: the text form sync compares, hashes and diffs.

Jenkins never stores a config byte for byte (identity transform on push, XStream on its own
saves) and JJB pretty-prints with minidom, so both sides are reduced to one stable form first.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

from dindjobs.jobs.render import MANAGED_MARKER


def parse(xml_text: str | bytes) -> ET.Element:
    """The root element of a config.xml (a fresh tree the caller may change)."""
    return ET.fromstring(xml_text.encode("utf-8") if isinstance(xml_text, str) else xml_text)


def canonical(xml_text: str | bytes | ET.Element, drop: Iterable[str] = ()) -> str:
    """A stable text form of a config.xml: what Jenkins or JJB may reformat does not show.

    Ignored: the XML declaration, comments, indentation between elements, attribute order,
    quoting and entity style, ``<a></a>`` vs ``<a/>``, plugin versions in ``plugin="name@1.2"``.
    Top-level elements named in ``drop`` are left out (``disabled`` when the YAML omits it).
    An element from :func:`parse` is used as is (and loses the dropped children).
    """
    root = xml_text if isinstance(xml_text, ET.Element) else parse(xml_text)
    for tag in drop:
        for child in root.findall(tag):
            root.remove(child)
    out: list[str] = []
    _emit(root, 0, out)
    return "\n".join(out)


def _attrs(element: ET.Element) -> str:
    parts = []
    for key in sorted(element.attrib):
        value = element.attrib[key]
        if key == "plugin":
            value = value.split("@", 1)[0]
        parts.append(f" {key}={quoteattr(value)}")
    return "".join(parts)


def _emit(element: ET.Element, depth: int, out: list[str]) -> None:
    indent = "  " * depth
    head = f"{element.tag}{_attrs(element)}"
    children = list(element)
    text = element.text or ""
    if not children:
        out.append(f"{indent}<{head}>{escape(text)}</{element.tag}>" if text else f"{indent}<{head}/>")
        return
    out.append(f"{indent}<{head}>" + (escape(text.strip()) if text.strip() else ""))
    for child in children:
        _emit(child, depth + 1, out)
        if child.tail and child.tail.strip():
            out.append(f"{indent}  {escape(child.tail.strip())}")
    out.append(f"{indent}</{element.tag}>")


def digest(text: str) -> str:
    """Short content hash of a canonical text, as kept in the ledger."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def fingerprint(rendered: str, stored_xml: str) -> str:
    """Hash of the exact bytes on both sides: the YAML's rendering (its signature) and what
    Jenkins returned.

    When it equals the one recorded at the last sync, neither side changed since an outcome we
    know was "in sync", so the plan can skip parsing both (the bytes were read from the server
    this run: this is a shortcut, never a cache that replaces asking Jenkins).
    """
    h = hashlib.sha256(rendered.encode("utf-8"))
    h.update(b"\0")
    h.update(stored_xml.encode("utf-8"))
    return h.hexdigest()[:32]


_DECLARATION = re.compile(r'<\?xml version="1\.0" encoding="utf-8"\?>\s*', re.IGNORECASE)
_EMPTY_PAIR = re.compile(r"<([A-Za-z_][\w.:-]*)((?:\s[^<>]*)?)(?<!/)></\1>")
_TAG_OR_QUOTE = re.compile(r"(<[^>]*>)|&quot;")


def as_jenkins_stores(xml_text: str) -> str:
    """The bytes Jenkins most likely stores for pushed JJB output (create or config.xml POST).

    Jenkins runs a pushed job config through the JDK identity transform (see the REST contract,
    config.xml normalisation): declaration in double quotes with ``UTF-8`` and no new line after
    it or the root, ``<a></a>`` as ``<a/>``, ``&quot;`` in text as a plain quote. Only used for
    the byte fingerprint of the next sync, so a wrong guess costs one parse then, never a wrong
    plan: every rewrite here leaves :func:`canonical` unchanged.
    """
    head = _DECLARATION.match(xml_text)
    if head is None or "<!" in xml_text or "<?" in xml_text[head.end():]:
        return xml_text  # a form we do not predict: the next sync compares by parsing
    body = _EMPTY_PAIR.sub(r"<\1\2/>", xml_text[head.end():].rstrip())
    if "&quot;" in body:
        body = _TAG_OR_QUOTE.sub(lambda m: m.group(1) or '"', body)
    return '<?xml version="1.0" encoding="UTF-8"?>' + body


def top_level_text(xml_text: str | ET.Element, tag: str) -> str | None:
    """Text of a top-level element (e.g. ``disabled``), or None if absent."""
    root = xml_text if isinstance(xml_text, ET.Element) else parse(xml_text)
    element = root.find(tag)
    return None if element is None else (element.text or "")


def is_marked(xml_text: str) -> bool:
    """True when the description ends with JJB's "Managed by Jenkins Job Builder" marker."""
    element = ET.fromstring(xml_text.encode("utf-8")).find("description")
    return element is not None and (element.text or "").rstrip().endswith(MANAGED_MARKER)


def with_disabled(xml_text: str, value: str) -> str:
    """``xml_text`` with a top-level ``<disabled>value</disabled>`` (used to keep the server's value)."""
    root = ET.fromstring(xml_text.encode("utf-8"))
    for old in root.findall("disabled"):
        root.remove(old)
    ET.SubElement(root, "disabled").text = value
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
