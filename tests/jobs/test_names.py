"""jobs/names.py: Jenkins' naming rules in one place."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dindjobs.jobs.names import MAX_SEGMENT_BYTES, check_name, first_problem


@dataclass
class Item:
    name: str
    kind: str = "job"
    is_folder: bool = False

    @property
    def parent(self):
        return self.name.rsplit("/", 1)[0] if "/" in self.name else None


@pytest.mark.parametrize("name, ok", [
    ("a" * MAX_SEGMENT_BYTES, True),
    ("a" * (MAX_SEGMENT_BYTES + 1), False),
    ("é" * 127, True),  # 254 bytes
    ("é" * 128, False),  # 256 bytes, 128 characters
    ("f/" + "b" * MAX_SEGMENT_BYTES, True),  # the limit is per folder level
    ("f/" + "b" * (MAX_SEGMENT_BYTES + 1), False),
])
def test_segment_length_is_counted_in_utf8_bytes(name, ok):
    problem = check_name(name)
    assert (problem is None) is ok, problem
    if not ok:
        assert f"at most {MAX_SEGMENT_BYTES} bytes" in problem and len(problem) < 300  # the name is shortened


def test_first_problem_finds_case_duplicates_and_non_folder_parents_but_views_keep_case():
    assert first_problem([Item("App"), Item("lib")], [Item("V", "view"), Item("v", "view")]) is None
    item, problem, other = first_problem([Item("App"), Item("app")], [])
    assert (item.name, other.name) == ("app", "App") and "differ only in case" in problem
    item, problem, other = first_problem([Item("tools"), Item("tools/lint")], [])
    assert item.name == "tools/lint" and other.name == "tools" and "not a folder" in problem
    assert first_problem([Item("tools", is_folder=True), Item("tools/lint")], []) is None
    item, problem, _ = first_problem([], [Item("a/b", "view")])
    assert "'/' is an unsafe character" in problem
