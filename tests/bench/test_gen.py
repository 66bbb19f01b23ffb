"""The generated job tree renders with JJB into exactly the jobs, folders and views announced."""

from __future__ import annotations

import pytest

from bench.gen import EDITED_NOTE, generate, job_names
from dindjobs.jobs.render import render


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("tree"), projects=4, templates=6, folders=2)


def test_tree_renders_to_the_announced_jobs_folders_and_views(small):
    rendered = render([small.path])
    jobs = {j.name for j in rendered.jobs if not j.is_folder}
    folders = {j.name for j in rendered.jobs if j.is_folder}
    assert jobs == set(job_names(4, 6, 2)) and len(jobs) == small.jobs == 24
    assert folders == {"team0", "team1"} == {n.split("/")[0] for n in jobs}
    assert {v.name for v in rendered.views} == {"team0-all", "team1-all"}
    assert small.items == 24 + 2 + 2


def test_editing_one_template_changes_one_job_per_project(small, tmp_path):
    edited = generate(tmp_path, projects=4, templates=6, folders=2, edited=3)
    before = {j.name: j.xml for j in render([small.path]).jobs}
    after = {j.name: j.xml for j in render([edited.path]).jobs}
    changed = sorted(n for n in before if before[n] != after[n])
    assert len(changed) == 4 and all("-t003-" in n for n in changed)
    assert all(EDITED_NOTE in after[n] for n in changed)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, projects=2, folders=3)
    with pytest.raises(ValueError):
        generate(tmp_path, projects=2, templates=5, edited=5)
