"""Root views: the default ``all`` view and list views, persisted in the home's ``config.xml``.

View names are case-sensitive, except that ``All`` resolves to the default view ``all``. A
view's config.xml is always re-serialised (``<?xml version="1.1" encoding="UTF-8"?>``), unlike a
job's, and its name cannot be changed through it.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from dindjobs.standin.api import Bean, Prop
from dindjobs.standin.items import check_good_name, encode_name
from dindjobs.standin.responses import Failure, Oops
from dindjobs.standin.xmlconfig import BadConfig, normalise

ALL_VIEW = "hudson.model.AllView"
LIST_VIEW = "hudson.model.ListView"
VIEW_TYPES = (ALL_VIEW, LIST_VIEW)


class View(Bean):
    """A view: its XML (an ElementTree element) and the jobs it shows."""

    def __init__(self, root: Any, elem: ET.Element) -> None:
        self.root = root
        self.elem = elem

    @property
    def java_class(self) -> str:  # type: ignore[override]
        return self.elem.tag

    @property
    def name(self) -> str:
        return self.elem.findtext("name") or ""

    @property
    def url_path(self) -> str:
        # The primary view's URL is the root's.
        return "" if self is self.root.views.primary else f"view/{encode_name(self.name)}/"

    def jobs(self) -> list[Any]:
        """The items this view shows."""
        if self.elem.tag == ALL_VIEW:
            return self.root.items()
        recurse = (self.elem.findtext("recurse") or "").strip() == "true"
        candidates = list(self.root.walk()) if recurse else self.root.items()
        names = {(e.text or "") for e in self.elem.findall("jobNames/string")}
        regex = self.elem.findtext("includeRegex")
        pattern = None
        if regex:
            try:
                pattern = re.compile(regex)
            except re.error:
                pattern = None
        shown = []
        for item in candidates:
            key = item.full_name if recurse else item.name
            if item.full_name in names or item.name in names or (pattern and pattern.fullmatch(key)):
                shown.append(item)
        return sorted(shown, key=lambda i: i.name.casefold())

    def xml(self) -> str:
        """The view's config.xml as Jenkins serialises it."""
        return '<?xml version="1.1" encoding="UTF-8"?>\n' + ET.tostring(self.elem, encoding="unicode")

    def props(self, ctx: Any) -> list[Prop]:
        return [
            Prop("description", self.elem.findtext("description")),
            Prop("jobs", lambda: [i for i in self.jobs() if ctx.can_read(i)]),
            Prop("name", self.name, 2),
            Prop("property", []),
            Prop("url", lambda: ctx.root_url + self.url_path, 2),
        ]


def _parse_view(data: bytes | str, name: str) -> ET.Element:
    try:
        elem = ET.fromstring(normalise(data).encode("utf-8"))
    except (BadConfig, ET.ParseError) as exc:
        raise Oops(f"bad view XML: {exc}") from None
    if elem.tag not in VIEW_TYPES:
        raise Oops(f"{elem.tag} is not a view type")
    for owner in elem.findall("owner"):
        elem.remove(owner)
    name_elem = elem.find("name")
    if name_elem is None:
        name_elem = ET.Element("name")
        elem.insert(0, name_elem)
    name_elem.text = name
    return elem


def _empty(kind: str, name: str) -> ET.Element:
    elem = ET.Element(kind)
    ET.SubElement(elem, "name").text = name
    ET.SubElement(elem, "filterExecutors").text = "false"
    ET.SubElement(elem, "filterQueue").text = "false"
    ET.SubElement(elem, "properties", {"class": "hudson.model.View$PropertyList"})
    if kind == LIST_VIEW:
        ET.SubElement(elem, "jobNames")
        ET.SubElement(elem, "jobFilters")
        ET.SubElement(elem, "columns")
        ET.SubElement(elem, "recurse").text = "false"
    return elem


class Views:
    """The root's views, in order; ``all`` is the primary view."""

    def __init__(self, root: Any, home: Path) -> None:
        self.root = root
        self.path = home / "config.xml"
        self.views: list[View] = []
        self.primary: View | None = None

    def load(self) -> None:
        try:
            doc = ET.parse(self.path).getroot()
            found = doc.find("views")
            elems = list(found) if found is not None else []
            primary = doc.findtext("primaryView") or "all"
        except (OSError, ET.ParseError):
            elems, primary = [], "all"
        self.views = [View(self.root, e) for e in elems if e.tag in VIEW_TYPES]
        if not self.views:
            self.views = [View(self.root, _empty(ALL_VIEW, "all"))]
        self.primary = next((v for v in self.views if v.name == primary), self.views[0])

    def save(self) -> None:
        doc = ET.Element("hudson")
        ET.SubElement(doc, "version").text = self.root.version
        ET.SubElement(doc, "numExecutors").text = str(self.root.queue.executors)
        ET.SubElement(doc, "mode").text = "NORMAL"
        ET.SubElement(doc, "useSecurity").text = "true"
        views = ET.SubElement(doc, "views")
        views.extend(v.elem for v in self.views)
        ET.SubElement(doc, "primaryView").text = self.primary.name if self.primary else "all"
        tmp = self.path.with_suffix(".xml.tmp")
        tmp.write_text("<?xml version='1.1' encoding='UTF-8'?>\n" + ET.tostring(doc, encoding="unicode"),
                       encoding="utf-8")
        os.replace(tmp, self.path)

    def get(self, name: str) -> View | None:
        for view in self.views:
            if view.name == name:
                return view
        if name == "All" and self.primary is not None and self.primary.elem.tag == ALL_VIEW:
            return self.primary
        return None

    def create(self, name: str | None, content_type: str | None, body: bytes, mode: str | None) -> View:
        """``createView``: from an XML body, or an empty view of type ``mode``."""
        if content_type is None:
            raise Failure("No Content-Type header set")
        is_xml = content_type.startswith(("application/xml", "text/xml"))
        check_good_name(name)
        assert name is not None
        if self.get(name) is not None:
            raise Failure(f'A view already exists with the name "{name}"')
        if not mode:
            if not is_xml:
                raise Failure("No view type is specified")
            view = View(self.root, _parse_view(body, name))
        elif mode in VIEW_TYPES:
            view = View(self.root, _empty(mode, name))
        else:
            raise Failure(f"No view type \u2018{mode}\u2019 is known")
        self.views.append(view)
        self.save()
        return view

    def update(self, view: View, body: str) -> None:
        """POST config.xml: replace the view's settings, keeping its name and type."""
        elem = _parse_view(body, view.name)
        if elem.tag != view.elem.tag:
            raise Oops(f"Expecting view type {view.elem.tag} but got {elem.tag} instead")
        view.elem = elem
        self.save()

    def delete(self, view: View) -> None:
        if len(self.views) <= 1 or view is self.primary:
            raise Oops("Cannot delete last view" if len(self.views) <= 1 else "Cannot delete primary view")
        self.views.remove(view)
        self.save()
