"""Jenkins' naming rules for items and views, checked before any request.

Jenkins refuses a name in ``Jenkins.checkGoodName`` (unsafe characters, ``.``/``..``, control
characters); it stores each item as a directory, so a folder level longer than a file name may be
(255 bytes) fails on disk; job names are case-insensitive (views are not); a job's parent must be
a folder.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Protocol

# Jenkins.checkGoodName: characters Jenkins rejects in an item or view name.
UNSAFE_CHARS = "?*/\\%!@#$^&|<>[]:;"
MAX_SEGMENT_BYTES = 255  # NAME_MAX of the file systems Jenkins runs on


class Named(Protocol):
    kind: str
    name: str

    @property
    def is_folder(self) -> bool: ...

    @property
    def parent(self) -> str | None: ...


def check_name(name: str, kind: str = "job") -> str | None:
    """Why Jenkins would reject ``name`` (per folder level for jobs), or None if it is fine."""
    segments = name.split("/") if kind == "job" else [name]
    for segment in segments:
        problem = _check_segment(segment)
        if problem:
            shown = segment if len(segment) <= 40 else segment[:37] + "..."
            return problem if len(segments) == 1 or not segment else f"{problem} (in {shown!r})"
    return None


def _check_segment(segment: str) -> str | None:
    if segment == "":
        return "an empty name (or an empty folder level) is not allowed"
    trimmed = segment.strip()
    if trimmed in (".", ".."):
        return f"{trimmed!r} is not an allowed name"
    for char in segment:
        if char in UNSAFE_CHARS:
            return f"{char!r} is an unsafe character"
        if unicodedata.category(char) == "Cc":
            return f"no control character is allowed ({char!r})"
    if trimmed.endswith("."):
        return "a name cannot end with '.'"
    if trimmed != segment:
        return "leading or trailing spaces (Jenkins would strip them and store another name)"
    size = len(segment.encode("utf-8"))
    if size > MAX_SEGMENT_BYTES:
        return (f"{size} bytes long; Jenkins stores each item as a directory, and a name (or folder "
                f"level) may be at most {MAX_SEGMENT_BYTES} bytes")
    return None


def shown(name: str) -> str:
    """``name`` quoted for a message, shortened when it is long."""
    return repr(name if len(name) <= 60 else name[:57] + "...")


def first_problem(jobs: Iterable[Named], views: Iterable[Named]) -> tuple[Named, str, Named | None] | None:
    """The first item whose name Jenkins would refuse, a case-insensitive duplicate, or a job
    whose parent is not a folder: (item, reason, the other item involved or None). None when
    every name is fine."""
    by_lower: dict[str, Named] = {}
    jobs = list(jobs)
    for item in jobs:
        problem = check_name(item.name, "job")
        if problem:
            return item, f"job name {shown(item.name)}: {problem}", None
        other = by_lower.get(item.name.lower())
        if other is not None:
            return item, (f"job {shown(item.name)} and job {shown(other.name)} differ only in case; "
                          "Jenkins job names are case-insensitive"), other
        by_lower[item.name.lower()] = item
    for item in jobs:
        parent = item.parent
        defined = by_lower.get(parent.lower()) if parent is not None else None
        if defined is not None and not defined.is_folder:
            return item, f"job {shown(item.name)}: its parent {shown(defined.name)} is not a folder", defined
    for item in views:
        problem = check_name(item.name, "view")
        if problem:
            return item, f"view name {shown(item.name)}: {problem}", None
    return None
