"""The UI's pages: dashboard and list views, folders, jobs, the parameters form, builds and consoles."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from typing import Any

from dindjobs.standin.items import Folder, Job
from dindjobs.standin.queue import timespan
from dindjobs.standin.responses import Response
from dindjobs.standin.runs import Run
from dindjobs.standin.server import Request
from dindjobs.standin.ui.html import (
    Page,
    ago,
    ball,
    crumbs,
    esc,
    folder_icon,
    hidden,
    link,
    run_ball,
    tabs,
    when,
)

EVIDENCE_MARK = "DINDJOBS-EVIDENCE"
CONSOLE_TAIL = 1024 * 1024  # larger logs show their end, with a link to the full text
HISTORY = 50
KINDS = {"String": "string", "Text": "text", "Boolean": "boolean", "Choice": "choice", "Password": "password"}


def description(text: str | None) -> str:
    """A description as text, without HTML comments (JJB appends one; Jenkins never shows them)."""
    return re.sub(r"<!--.*?-->", "", text or "", flags=re.S).strip()


def can(model, req: Request, perm: str, item: Any) -> bool:
    return model.policy.has(req.auth, perm, item.full_name)


def item_trail(item: Any) -> list[tuple[str, str]]:
    """Breadcrumb entries from the top-level item down to ``item``."""
    trail = []
    while isinstance(item, (Folder, Job)):
        trail.append((item.url_path, item.display_name))
        item = item.parent
    return list(reversed(trail))


# -- lists of items ---------------------------------------------------------------------------
def _build_control(page: Page, model, req: Request, job: Job, back: str) -> str:
    if job.settings.disabled or not can(model, req, "Job/Build", job):
        return ""
    if job.settings.parameters:
        return f'<a href="/{esc(job.url_path)}build?delay=0sec" title="Build with Parameters">Build\u2026</a>'
    return page.post_button(job.url_path + "build?delay=0sec", "Build", extra=hidden("redirectTo", back))


def _run_cell(run: Run | None) -> str:
    if run is None:
        return '<span class="muted">N/A</span>'
    return f"{esc(ago(run.timestamp))} ago \u2014 {link(run.url_path, f'#{run.number}')}"


def item_table(page: Page, model, req: Request, items: list[Any], back: str, full_names: bool = False) -> str:
    """The dashboard's table: status, name, last success, last failure, last duration, build."""
    rows = []
    for item in items:
        if not can(model, req, "Job/Read", item):
            continue
        name = item.full_display_name if full_names else item.display_name
        if isinstance(item, Folder):
            rows.append(f"<tr><td>{folder_icon()}</td><td>{link(item.url_path, name)}</td>"
                        '<td class="muted">\u2014</td><td class="muted">\u2014</td><td class="muted">\u2014</td><td></td></tr>')
            continue
        last = item.permalink("lastCompletedBuild")
        duration = esc(timespan(last.duration / 1000)) if last else '<span class="muted">N/A</span>'
        rows.append(f"<tr><td>{ball(item.color)}</td><td>{link(item.url_path, name)}</td>"
                    f"<td>{_run_cell(item.permalink('lastSuccessfulBuild'))}</td>"
                    f"<td>{_run_cell(item.permalink('lastFailedBuild'))}</td><td>{duration}</td>"
                    f"<td>{_build_control(page, model, req, item, back)}</td></tr>")
    if not rows:
        return '<p class="muted">No jobs here yet. Push some with <code>dindjobs sync</code>.</p>'
    return ('<table class="list"><thead><tr><th>S</th><th>Name</th><th>Last Success</th>'
            "<th>Last Failure</th><th>Last Duration</th><th></th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def dashboard(page: Page, model, req: Request, view: Any = None) -> Response:
    """``/`` (the primary view) or ``/view/NAME/``: list-view tabs and the view's items."""
    view = view or model.views.primary
    entries = [(v.url_path, v.name, v is view) for v in model.views.views]
    text = description(view.elem.findtext("description"))
    desc = f'<p class="desc">{esc(text)}</p>' if text else ""
    recursive = (view.elem.findtext("recurse") or "").strip() == "true"
    body = (tabs(entries) + desc
            + item_table(page, model, req, view.jobs(), "/" + view.url_path, full_names=recursive))
    nav = crumbs([(view.url_path, view.name)] if view is not model.views.primary else [])
    return page.render("Dashboard" if view is model.views.primary else view.name, body, nav)


def folder_page(page: Page, model, req: Request, folder: Folder) -> Response:
    desc = description(folder.settings.description)
    body = (f"<h1>{folder_icon()} {esc(folder.display_name)}</h1>"
            + (f'<p class="desc">{esc(desc)}</p>' if desc.strip() else "")
            + tabs([(folder.url_path, "All", True)])
            + item_table(page, model, req, folder.items(), "/" + folder.url_path))
    return page.render(folder.full_display_name, body, crumbs(item_trail(folder)))


# -- jobs -------------------------------------------------------------------------------------
def parameter_details(config: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (description, choices) from a job's config.xml (the stand-in's settings lack them)."""
    try:
        root = ET.fromstring(config.encode("utf-8"))
    except ET.ParseError:
        return {}
    defs = root.find("properties/hudson.model.ParametersDefinitionProperty/parameterDefinitions")
    out = {}
    for d in defs if defs is not None else []:
        choices = [c.text or "" for c in d.iter("string")] if d.tag.endswith("ChoiceParameterDefinition") else []
        out[(d.findtext("name") or "").strip()] = (d.findtext("description") or "", choices)
    return out


def kind_of(p: Any) -> str:
    return KINDS.get(p.kind.rsplit(".", 1)[-1].replace("ParameterDefinition", ""), "string")


def job_page(page: Page, model, req: Request, job: Job) -> Response:
    """A job: description, state, build control, parameters, build history."""
    desc = description(job.settings.description)
    parts = [f"<h1>{ball(job.color)} Project {esc(job.display_name)}</h1>"]
    if desc.strip():
        parts.append(f'<p class="desc">{esc(desc)}</p>')
    if job.settings.disabled:
        parts.append('<p class="error">This project is currently disabled.</p>')
    actions = []
    if not job.settings.disabled and can(model, req, "Job/Build", job):
        if job.settings.parameters:
            actions.append(f'<a class="button" href="/{esc(job.url_path)}build?delay=0sec">Build with Parameters</a>')
        else:
            actions.append(page.post_button(job.url_path + "build?delay=0sec", "Build Now",
                                            extra=hidden("redirectTo", ".")))
    if job.queue_item is not None:
        actions.append('<span class="muted">A build is waiting in the queue.</span>')
    actions.append(f'<a href="/{esc(job.url_path)}config.xml">config.xml</a>')
    parts.append('<div class="actions">' + "".join(actions) + "</div>")
    if job.settings.parameters:
        details = parameter_details(job.config)
        rows = []
        for p in job.settings.parameters:
            help_text, _ = details.get(p.name, ("", []))
            default = "****" if kind_of(p) == "password" else p.default
            rows.append(f"<tr><td><code>{esc(p.name)}</code></td><td>{esc(kind_of(p))}</td>"
                        f'<td><pre class="value">{esc(default)}</pre></td><td>{esc(help_text)}</td></tr>')
        parts.append('<h2>Parameters</h2><table class="list"><thead><tr><th>Name</th><th>Type</th>'
                     "<th>Default</th><th>Description</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    parts.append("<h2>Build History</h2>" + history(job))
    return page.render(job.full_display_name, "".join(parts), crumbs(item_trail(job)))


def history(job: Job) -> str:
    runs = job.newest_first()[:HISTORY]
    if not runs:
        return '<p class="muted">No builds yet.</p>'
    rows = []
    for run in runs:
        state = "running" if run.in_progress else (run.result or "")
        took = f"for {timespan((_now_ms() - run.timestamp) / 1000)}" if run.in_progress else timespan(run.duration / 1000)
        rows.append(f"<tr><td>{run_ball(run)}</td><td>{link(run.url_path, f'#{run.number}')}</td>"
                    f"<td>{esc(when(run.timestamp))}</td><td>{esc(state)}</td><td>{esc(took)}</td>"
                    f"<td>{link(run.url_path + 'console', 'Console Output')}</td></tr>")
    return ('<table class="list"><thead><tr><th>S</th><th>Build</th><th>Started</th><th>Result</th>'
            "<th>Duration</th><th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _now_ms() -> int:
    return int(time.time() * 1000)


def parameters_form(page: Page, job: Job) -> Response:
    """``GET build`` on a parameterized job: the form, posting to ``buildWithParameters`` with the crumb."""
    details = parameter_details(job.config)
    fields = []
    for p in job.settings.parameters:
        help_text, choices = details.get(p.name, ("", []))
        kind, name, fid = kind_of(p), esc(p.name), esc("p-" + p.name)
        if kind == "text":
            control = f'<textarea id="{fid}" name="{name}">{esc(p.default)}</textarea>'
        elif kind == "boolean":
            checked = " checked" if p.default == "true" else ""
            # The checkbox comes first: checked sends [true, false], unchecked only [false].
            control = (f'<input type="checkbox" id="{fid}" name="{name}" value="true"{checked}>'
                       + hidden(p.name, "false"))
        elif kind == "choice":
            options = "".join(f'<option value="{esc(c)}">{esc(c)}</option>' for c in choices)
            control = f'<select id="{fid}" name="{name}">{options}</select>'
        elif kind == "password":
            control = f'<input type="password" id="{fid}" name="{name}" placeholder="(empty: the default)">'
        else:
            control = f'<input type="text" id="{fid}" name="{name}" value="{esc(p.default)}">'
        help_html = f'<div class="help">{esc(help_text)}</div>' if help_text else ""
        fields.append(f'<label for="{fid}">{name}</label>{help_html}{control}')
    body = (f"<h1>Project {esc(job.display_name)}</h1><p>This build requires parameters:</p>"
            f'<form class="params" method="post" action="/{esc(job.url_path)}buildWithParameters?delay=0sec">'
            f'{page.crumb_input()}{hidden("redirectTo", ".")}' + "".join(fields)
            + '<div class="actions"><button type="submit" class="primary">Build</button></div></form>')
    return page.render(job.full_display_name, body, crumbs(item_trail(job)))


# -- builds -----------------------------------------------------------------------------------
def _run_header(page: Page, model, req: Request, run: Run) -> str:
    job = run.job
    state = "In progress" if run.in_progress else (run.result or "")
    duration = (f"running for {timespan((_now_ms() - run.timestamp) / 1000)}" if run.in_progress
                else timespan(run.duration / 1000))
    facts = [("Result", f'<span class="result" id="result">{esc(state)}</span>'),
             ("Started", f"{esc(when(run.timestamp))} ({esc(ago(run.timestamp))} ago)"),
             ("Duration", esc(duration)),
             ("Cause", "<br>".join(esc(c.short) for c in run.causes) or '<span class="muted">unknown</span>')]
    if run.params:
        values = ", ".join(f"{esc(n)}={esc('****' if c.endswith('PasswordParameterValue') else v)}"
                           for n, v, c in run.params)
        facts.append(("Parameters", f'<span class="params">{values}</span>'))
    prev_run = max((n for n in job.runs if n < run.number), default=None)
    next_run = min((n for n in job.runs if n > run.number), default=None)
    nav = []
    if prev_run is not None:
        nav.append(link(f"{job.url_path}{prev_run}/", f"\u2190 #{prev_run}"))
    nav.append(link(run.url_path, "Status"))
    nav.append(link(run.url_path + "console", "Console Output"))
    nav.append(link(run.url_path + "consoleText", "View as plain text"))
    if next_run is not None:
        nav.append(link(f"{job.url_path}{next_run}/", f"#{next_run} \u2192"))
    if run.building and can(model, req, "Job/Cancel", job):
        nav.append(page.post_button(run.url_path + "stop", "Abort", css="danger"))
    return (f"<h1>{run_ball(run)} {esc(job.display_name)} #{run.number}</h1>"
            '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"
            '<div class="actions">' + " ".join(nav) + "</div>")


def run_page(page: Page, model, req: Request, run: Run) -> Response:
    body = _run_header(page, model, req, run)
    return page.render(f"{run.job.full_display_name} #{run.number}", body,
                       crumbs(item_trail(run.job) + [(run.url_path, f"#{run.number}")]))


def console_lines(text: str) -> str:
    """Escaped log text; lines starting with the evidence mark are highlighted."""
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith(EVIDENCE_MARK):
            out.append(f'<mark class="evidence">{esc(line.rstrip(chr(10)))}</mark>\n')
        else:
            out.append(esc(line))
    return "".join(out)


# Polls progressiveText like Jenkins' console page; text is added as text nodes, never as HTML.
FOLLOW_JS = """(function(){
var log=document.getElementById('log'),note=document.getElementById('following');
var url=log.getAttribute('data-progressive'),start=parseInt(log.getAttribute('data-start'),10)||0;
var mark=%s;
function add(text){var atEnd=window.innerHeight+window.scrollY>=document.body.scrollHeight-40;
text.split(/(?<=\\n)/).forEach(function(line){if(!line)return;
if(line.indexOf(mark)===0){var m=document.createElement('mark');m.className='evidence';
m.textContent=line.replace(/\\n$/,'');log.appendChild(m);log.appendChild(document.createTextNode('\\n'));}
else{log.appendChild(document.createTextNode(line));}});
if(atEnd)window.scrollTo(0,document.body.scrollHeight);}
function poll(){fetch(url+'?start='+start,{credentials:'same-origin',cache:'no-store'}).then(function(r){
if(r.status>=400&&r.status<500){note.textContent='Stopped following the log (HTTP '+r.status+'): reload the page.';return;}
if(!r.ok)throw new Error(r.status);var size=r.headers.get('X-Text-Size'),more=r.headers.get('X-More-Data');
return r.text().then(function(t){add(t);start=parseInt(size,10)||start;
if(more==='true'){setTimeout(poll,1000);}else{note.textContent='Finished.';location.reload();}});
}).catch(function(){setTimeout(poll,3000);});}
setTimeout(poll,1000);})();"""


def console_page(page: Page, model, req: Request, run: Run) -> Response:
    """``/job/…/N/console``: the log so far; while the build runs, a script follows it live."""
    raw, offset, more = run.progressive(0)
    skipped = ""
    if len(raw) > CONSOLE_TAIL:
        cut = raw.find(b"\n", len(raw) - CONSOLE_TAIL) + 1
        skipped = (f'<p class="muted">Skipping {cut // 1024} KB. '
                   f'{link(run.url_path + "consoleText", "Full Log")}</p>')
        raw = raw[cut:]
    text = raw.decode("utf-8", "replace")
    follow = ""
    if more:
        page.script = FOLLOW_JS % json.dumps(EVIDENCE_MARK)
        follow = ('<p class="following" id="following">This build is running; the log follows live.</p>'
                  '<noscript><meta http-equiv="refresh" content="3"></noscript>')
    body = (_run_header(page, model, req, run) + "<h2>Console Output</h2>" + skipped
            + f'<pre class="console" id="log" data-start="{offset}" '
              f'data-progressive="/{esc(run.url_path)}logText/progressiveText">{console_lines(text)}</pre>'
            + follow)
    return page.render(f"{run.job.full_display_name} #{run.number} Console", body,
                       crumbs(item_trail(run.job) + [(run.url_path, f"#{run.number}"),
                                                     (run.url_path + "console", "Console Output")]))
