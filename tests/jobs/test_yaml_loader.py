"""jobs/yaml_loader.py and the loader render.py builds on it: limits that refuse hostile YAML
without refusing anything a job tree needs."""

from __future__ import annotations

import resource

import pytest
import yaml

from dindjobs.errors import RenderError
from dindjobs.jobs import yaml_loader
from dindjobs.jobs.render import render


class Loader(yaml_loader.LimitedComposer, yaml.SafeLoader):
    pass


def load(text: str):
    return yaml.load(text, Loader=Loader)  # noqa: S506 - SafeLoader with limits


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def bomb(levels: int, width: int = 10) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_nesting_up_to_the_limit_loads_and_one_more_is_refused_with_its_position():
    assert load(nested(yaml_loader.MAX_DEPTH)) is not None
    with pytest.raises(yaml_loader.YamlLimitError, match=f"nested more than {yaml_loader.MAX_DEPTH} levels") as info:
        load(nested(yaml_loader.MAX_DEPTH + 1))
    assert (info.value.problem_mark.line, info.value.problem_mark.column) == (0, yaml_loader.MAX_DEPTH)


def test_aliases_are_fine_until_they_expand_beyond_the_limit():
    assert len(load(bomb(4))["a3"]) == 10  # 10^4 nodes through aliases: an ordinary reuse
    with pytest.raises(yaml_loader.YamlLimitError, match="alias bomb"):
        load(bomb(9))


def test_a_billion_laughs_is_refused_with_bounded_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(yaml_loader.YamlLimitError, match=r"aliases expand this document to \d{2},\d{3},\d{3},\d{3} nodes"):
        load(bomb(10))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(yaml_loader.YamlLimitError, match="refers to its own anchor"):
        load("a: &x [1, *x]\n")


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['true']", "!!python/name:os.system",
                                 "!!python/tuple [1, 2]"])
def test_python_tags_are_refused(tmp_path, tag):
    (tmp_path / "a.yaml").write_text(f"- job:\n    name: a\n    description: {tag}\n")
    with pytest.raises(RenderError, match=r"a\.yaml:3:18: the tag .*python.* is not allowed"):
        render([tmp_path / "a.yaml"])


def test_read_text_names_the_line_of_a_bad_byte_and_of_a_control_character(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_bytes(b"- job:\n    name: caf\xe9\n")
    with pytest.raises(yaml_loader.YamlLimitError, match="byte 0xe9 is not UTF-8") as info:
        yaml_loader.read_text(path)
    assert (info.value.problem_mark.line, info.value.problem_mark.column) == (1, 13)
    path.write_text("- job:\n    name: a\n    # \x1b[31m\n")
    with pytest.raises(yaml_loader.YamlLimitError, match="control character #x001b") as info:
        yaml_loader.read_text(path)
    assert (info.value.problem_mark.line, info.value.problem_mark.column) == (2, 6)
    path.write_text("- job:\n    name: \"tab\\there\"\n\t# a tab, and an escape: fine\n")
    assert "\t#" in yaml_loader.read_text(path)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(yaml_loader, "MAX_FILE_BYTES", 100)
    path = tmp_path / "big.yaml"
    path.write_text("- job:\n    name: a\n" + "# pad\n" * 30)
    with pytest.raises(RenderError, match=r"big\.yaml:1:1: the file is 0\.0 MiB; job YAML files are limited"):
        render([path])


def test_anchors_and_aliases_jjb_style_still_render(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "- builder: &b\n    name: common\n    builders:\n      - shell: echo common\n"
        "- job:\n    name: one\n    builders: [common]\n    wrappers: &w\n      - timestamps\n"
        "- job:\n    name: two\n    builders: [common]\n    wrappers: *w\n")
    rendered = render([tmp_path])
    assert [j.name for j in rendered.jobs] == ["one", "two"]
    assert all("echo common" in j.xml and "Timestamper" in j.xml for j in rendered.jobs)
