"""What Jenkins stores for a pushed job, predicted without reading it back (canonical.as_jenkins_stores).

The stand-in reproduces Jenkins' identity transform (the REST contract's config.xml row), so it
is the reference the prediction is checked against, on every rendering of our examples and on
text that JJB escapes (quotes, ampersands, angle brackets, empty elements).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import dindjobs.jobs.apply as apply_module
from dindjobs.jobs.canonical import as_jenkins_stores, canonical
from dindjobs.jobs.render import RenderedItem, render
from dindjobs.standin.xmlconfig import normalise
from support.cli import run_cli as run

REPO = Path(__file__).resolve().parents[2]

ESCAPED = textwrap.dedent("""\
    - job:
        name: quotes
        description: 'say "hi" & <b>bold</b> it''s > that'
        builders:
          - shell: |
              echo "a 'b' c" > /tmp/x && test -n "$HOME"
              printf '%s\\t\\n' "&quot;"
    - job:
        name: empty-description
        description: ''
    - view:
        name: quoted "view"
        view-type: list
        job-name: [quotes]
    """)


def rendered_items(tmp_path: Path) -> list[RenderedItem]:
    """Every item of our examples and of :data:`ESCAPED`."""
    (tmp_path / "escaped.yaml").write_text(ESCAPED)
    return [*render([REPO / "jjb"]).items, *render([tmp_path]).items]


def test_the_prediction_is_what_the_identity_transform_stores(tmp_path):
    items = rendered_items(tmp_path)
    assert len(items) > 6
    for item in items:
        xml = item.make_xml()
        assert as_jenkins_stores(xml) == normalise(xml), item.name


def test_a_prediction_never_changes_the_canonical_form(tmp_path):
    odd = ['<?xml version="1.0" encoding="utf-8"?>\n<a><b x="&quot;q&quot;"></b><!-- &quot; --><c/></a>\n',
           "<?xml version='1.1' encoding='UTF-8'?><a><b></b></a>",
           '<?xml version="1.0" encoding="utf-8"?>\n<a><a x="1"/></a>\n']
    for xml in [*odd, *(item.make_xml() for item in rendered_items(tmp_path))]:
        assert canonical(as_jenkins_stores(xml)) == canonical(xml)


def test_the_compact_rendering_compares_like_the_pretty_one(tmp_path):
    """A create is planned from JJB's tree without its pretty-printing: both compare the same."""
    for item in rendered_items(tmp_path):
        assert canonical(item.signature) == canonical(item.make_xml()), item.name


def planned(out: str) -> dict[str, dict]:
    """The items of ``sync --json`` or ``sync --plan --json`` output, by name."""
    data = json.loads(out)
    return {c["name"]: c for c in data.get("plan", data)["items"]}


def _yaml(tmp_path: Path) -> Path:
    d = tmp_path / "yaml"
    d.mkdir()
    (d / "jobs.yaml").write_text(ESCAPED)
    return d


def test_a_pushed_job_is_not_read_back_but_a_view_is(standin_env, tmp_path, capsys):
    d = _yaml(tmp_path)
    mark = len(standin_env.requests)
    code, _, err = run(capsys, "sync", str(d))
    assert code == 0, err
    config_reads = [r.path for r in standin_env.requests[mark:] if r.method == "GET" and r.path.endswith("config.xml")]
    assert config_reads == ["/view/quoted%20%22view%22/config.xml"]  # Jenkins re-serialises views

    code, out, err = run(capsys, "sync", "--plan", "--json", str(d))
    assert code == 0, err
    reasons = {name: c["reason"] for name, c in planned(out).items()}
    assert reasons == dict.fromkeys(["quotes", "empty-description", 'quoted "view"'], "identical to the last sync")


def test_a_wrong_prediction_costs_a_parse_never_a_change(standin_env, tmp_path, capsys, monkeypatch):
    d = _yaml(tmp_path)
    with monkeypatch.context() as patched:
        patched.setattr(apply_module, "as_jenkins_stores", lambda xml: xml + " ")
        assert run(capsys, "sync", str(d))[0] == 0

    code, out, err = run(capsys, "sync", "--json", str(d))
    assert code == 0, err
    items = planned(out)
    assert {n: c["action"] for n, c in items.items()} == dict.fromkeys(items, "unchanged")
    assert items["quotes"]["reason"] == "identical"  # parsed once, and the real bytes learnt
    code, out, err = run(capsys, "sync", "--plan", "--json", str(d))
    assert planned(out)["quotes"]["reason"] == "identical to the last sync"


@pytest.mark.parametrize(("old", "new", "action"), [
    ("&lt;b&gt;bold", "&lt;b&gt;BOLD", "drifted"),
    ("</project>", "<disabled>true</disabled></project>", "unchanged"),  # `disabled` is left to Jenkins here
])
def test_an_edit_right_after_the_push_is_drift(standin_env, standin_client, tmp_path, capsys, old, new, action):
    """Nothing read back means nothing in Jenkins was mistaken for what we pushed."""
    d = _yaml(tmp_path)
    assert run(capsys, "sync", str(d))[0] == 0
    xml = standin_client.get("job/quotes/config.xml").text
    assert old in xml
    assert standin_client.post("job/quotes/config.xml", data=xml.replace(old, new).encode(),
                               headers={"Content-Type": "application/xml"}).status_code == 200
    code, out, err = run(capsys, "sync", "--plan", "--json", str(d))
    assert planned(out)["quotes"]["action"] == action, err
