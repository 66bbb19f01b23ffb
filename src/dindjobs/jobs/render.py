"""JJB YAML -> rendered jobs and views. The only module that imports ``jenkins_jobs``.

It drives JJB 6.x's library API (``JJBConfig`` -> ``Roots`` -> ``load_files`` ->
``ModuleRegistry`` -> ``XmlJobGenerator``/``XmlViewGenerator``) and never imports
``jenkins_jobs.cli``, which configures root logging on import. The JJB config is always
explicit: only the ``[job_builder]`` and ``[plugin "..."]`` sections of the user's ini are
passed on, never the ambient ``~/.config`` or ``/etc`` files and never credentials.

Every failure is a :class:`~dindjobs.errors.RenderError` whose message starts with
``file:line:col:`` and whose ``lines`` attribute holds the full report (JJB's context chain,
the offending line and a caret), so nothing is sent to Jenkins before all of it is valid.

It is a little over 400 lines on purpose: every use of JJB's internals (including the two
render-speed shims at the end) stays in this one file, so a JJB upgrade touches one module.
"""

from __future__ import annotations

import configparser
import contextlib
import difflib
import functools
import importlib.metadata
import inspect
import io
import logging
import os
import re
import tempfile
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pkg_resources
import yaml
from jenkins_jobs.config import JJBConfig
from jenkins_jobs.constants import MAGIC_MANAGE_STRING
from jenkins_jobs.errors import JenkinsJobsException
from jenkins_jobs.loader import enum_expanded_paths, load_files
from jenkins_jobs.registry import ModuleRegistry
from jenkins_jobs.roots import Roots
from jenkins_jobs.utils import recurse_path
from jenkins_jobs.xml_config import XmlJob, XmlJobGenerator, XmlViewGenerator
from jenkins_jobs.yaml_objects import BaseYamlObject

from dindjobs.errors import RenderError

#: The text JJB appends to descriptions of the items it manages.
MANAGED_MARKER = MAGIC_MANAGE_STRING

FOLDER_CLASS = "com.cloudbees.hudson.plugins.folder.Folder"

YAML_SUFFIXES = (".yaml", ".yml")  # what JJB's loader reads from a directory

#: The JJB release that renders (part of the render cache's key).
JJB_VERSION = importlib.metadata.version("jenkins-job-builder")

# Jenkins.checkGoodName: characters Jenkins rejects in an item or view name.
UNSAFE_CHARS = "?*/\\%!@#$^&|<>[]:;"


@dataclass(frozen=True)
class RenderedItem:
    """One job, folder or view as JJB rendered it."""

    kind: str  # "job" or "view"
    name: str  # full name; folder levels joined with "/"
    xml_text: str | None  # JJB's output, or None to make it from the tree when first asked
    root_tag: str
    source: str = ""  # "file:line:col" of the definition, for messages
    snippet: tuple[str, ...] = ()  # the definition's line and a caret, for messages
    element: Any = field(default=None, repr=False, compare=False)  # the rendered tree
    # The tree serialised compactly (``ET.tostring``): what a rendering keeps instead of the tree,
    # so 5 000 items cost their bytes, not their element objects; the tree is parsed back only
    # for an item whose XML is asked for (one that differs from Jenkins, or is shown).
    signature_text: str | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def xml(self) -> str:
        """JJB's output: XML declaration plus pretty-printed document (what is pushed and shown).

        Made on first use: JJB pretty-prints through minidom, a third of a no-op sync's CPU,
        and a sync that finds an item unchanged never needs it."""
        return self.make_xml()

    def make_xml(self) -> str:
        """:attr:`xml` made afresh and not kept (a cold push of 5 000 items makes each once)."""
        if self.xml_text is not None:
            return self.xml_text
        element = self.element if self.element is not None else ET.fromstring(self.signature_text)
        return XmlJob(element, self.name).output().decode("utf-8")

    @functools.cached_property
    def signature(self) -> str:
        """A cheap exact serialisation of the rendered tree, for byte fingerprints."""
        if self.signature_text is not None:
            return self.signature_text
        if self.element is None:
            return self.xml
        return ET.tostring(self.element, encoding="unicode")

    @property
    def is_folder(self) -> bool:
        return self.kind == "job" and self.root_tag == FOLDER_CLASS

    @property
    def depth(self) -> int:
        """0 for a top-level item, 1 inside one folder, and so on."""
        return self.name.count("/")

    @property
    def parent(self) -> str | None:
        """Full name of the containing folder, or None at the top level."""
        return self.name.rsplit("/", 1)[0] if "/" in self.name else None


@dataclass
class Rendered:
    """Everything rendered from a set of YAML paths, in a stable order."""

    jobs: list[RenderedItem] = field(default_factory=list)
    views: list[RenderedItem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    cached: bool = False  # True when it came from the render cache, without running JJB

    @property
    def items(self) -> list[RenderedItem]:
        return [*self.jobs, *self.views]

    def as_text(self) -> str:
        """Every document, each after a ``<!-- job NAME -->`` or ``<!-- view NAME -->`` line."""
        return "".join(f"<!-- {item.kind} {item.name} -->\n{item.xml}" for item in self.items)


def write_xml(rendered: Rendered, output_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``jobs/<name>/config.xml`` and ``views/<name>/config.xml`` under ``output_dir``."""
    root = Path(output_dir)
    written = []
    for item in rendered.items:
        # Names are validated (no "..", no backslash), so they cannot escape output_dir.
        path = root / f"{item.kind}s" / Path(*item.name.split("/")) / "config.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.xml, encoding="utf-8")
        written.append(path)
    return written


def error_details(exc: RenderError) -> list[str]:
    """The lines to show above the one-line error: JJB's context chain and the offending line."""
    lines = list(getattr(exc, "lines", []) or [])
    return [] if lines == [exc.message] else lines


def render(
    paths: Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    excludes: Iterable[str] = (),
    conf_path: str | os.PathLike[str] | None = None,
    on_include: Callable[[Path], None] | None = None,
) -> Rendered:
    """Render JJB YAML files and directories into jobs and views, validated, nothing sent.

    Directories are walked recursively unless ``recursive`` is False; ``excludes`` are JJB's
    ``-x`` patterns (a bare name matches any directory of that name). ``conf_path`` is a
    JJB-style ini whose ``[job_builder]`` options (``include_path``, ``keep_descriptions``,
    ``allow_duplicates``, ...) apply. ``on_include`` is called with every path an include
    (``!include``, ``!include-raw*``, ``!include-jinja2``, a Jinja2 ``include``) looked at, found
    or not (the render cache's dependencies). Raises :class:`RenderError`.
    """
    files = _expand(paths, recursive, list(excludes))
    with (_jjb_config(conf_path) as cfg, _quiet_jjb_logs(), _entry_points_resolved_only(),
          _includes_reported(on_include)):
        try:
            roots = Roots(cfg)
            load_files(cfg, roots, files)
            registry = _Registry(cfg, None)  # None: the newest plugin formats
            registry.set_macros(roots.macros)
            job_data = roots.generate_jobs()
            view_data = roots.generate_views()
            registry.amend_job_dicts(job_data)
        except yaml.YAMLError as exc:
            raise _yaml_error(exc) from None
        except JenkinsJobsException as exc:
            raise _jjb_error(exc) from None
        job_generator, view_generator = _JobGenerator(registry), _ViewGenerator(registry)
        jobs = [_generate(job_generator, data, "job") for data in job_data]
        views = [_generate(view_generator, data, "view") for data in view_data]
    rendered = Rendered(
        jobs=sorted(jobs, key=lambda i: i.name.lower()),
        views=sorted(views, key=lambda i: i.name),
        files=files,
    )
    validate(rendered)
    return rendered


def yaml_files(
    paths: Sequence[str | os.PathLike[str]], *, recursive: bool = True, excludes: Iterable[str] = (),
) -> list[Path]:
    """The YAML files :func:`render` would load for these arguments, in JJB's order, resolved."""
    return list(enum_expanded_paths(_expand(paths, recursive, list(excludes))))


def jjb_options(conf_path: str | os.PathLike[str] | None) -> str:
    """The part of a JJB-style ini that reaches JJB (``[job_builder]``, ``[plugin ...]``,
    ``[__future__]``), as ini text; never ``[jenkins]`` and its credentials. Raises RenderError."""
    parser = configparser.ConfigParser(interpolation=None)
    if conf_path:
        source = configparser.ConfigParser(interpolation=None)
        try:
            with open(conf_path, encoding="utf-8") as fh:
                source.read_file(fh)
        except (OSError, configparser.Error) as exc:
            raise RenderError(f"{conf_path}: cannot read JJB options: {type(exc).__name__}") from None
        for section in source.sections():
            # Credentials live in [jenkins]: they have no business in rendering.
            if section == "job_builder" or section.startswith("plugin ") or section == "__future__":
                parser[section] = dict(source.items(section, raw=True))
    if not parser.has_section("job_builder"):
        parser.add_section("job_builder")
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def _expand(paths: Sequence[str | os.PathLike[str]], recursive: bool, excludes: list[str]) -> list[Path]:
    if not paths:
        raise RenderError("no YAML path given")
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise RenderError(f"{raw}: no such file or directory")
        if path.is_dir() and recursive:
            out.extend(Path(d) for d in recurse_path(str(path), excludes))
        else:
            out.append(path)
    if not any(p.is_file() or any(f.suffix in YAML_SUFFIXES for f in p.iterdir() if f.is_file()) for p in out):
        raise RenderError(f"no JJB YAML found under {' '.join(str(p) for p in paths)}")
    return out


@contextlib.contextmanager
def _jjb_config(conf_path: str | os.PathLike[str] | None) -> Iterator[JJBConfig]:
    """A JJBConfig from an explicit temporary ini holding only the rendering sections."""
    options = jjb_options(conf_path)
    with tempfile.TemporaryDirectory(prefix="dindjobs-jjb-") as tmp:
        ini = Path(tmp) / "jenkins_jobs.ini"
        ini.write_text(options, encoding="utf-8")
        try:
            cfg = JJBConfig(str(ini))
        except JenkinsJobsException as exc:
            raise RenderError(f"{conf_path}: {exc}") from None
        yield cfg


@contextlib.contextmanager
def _includes_reported(on_include: Callable[[Path], None] | None) -> Iterator[None]:
    """Tell ``on_include`` every candidate path JJB's includes and Jinja2's loader look at."""
    if on_include is None:
        yield
        return
    find_file = BaseYamlObject._find_file
    get_source = jinja2.FileSystemLoader.get_source

    def reported_find_file(self, rel_path, pos):
        try:
            return find_file(self, rel_path, pos)
        finally:  # the search path now holds every directory JJB tried (it appends ".")
            for directory in self._search_path:
                on_include(Path(directory).expanduser().joinpath(rel_path))

    def reported_get_source(self, environment, template):
        try:
            return get_source(self, environment, template)
        finally:
            for directory in self.searchpath:
                on_include(Path(directory).joinpath(*template.split("/")))

    BaseYamlObject._find_file = reported_find_file
    jinja2.FileSystemLoader.get_source = reported_get_source
    try:
        yield
    finally:
        BaseYamlObject._find_file = find_file
        jinja2.FileSystemLoader.get_source = get_source


@contextlib.contextmanager
def _quiet_jjb_logs() -> Iterator[None]:
    # JJB logs an ERROR line for each problem it also raises; we report those ourselves.
    logger = logging.getLogger("jenkins_jobs")
    previous = logger.level
    if not logger.isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _entry_points_resolved_only() -> Iterator[None]:
    """JJB loads ~330 entry points (every builder, publisher, ...) for any job set, and
    pkg_resources re-resolves the whole dependency tree of the distribution on each load: about
    0.45 s. pip already installed those requirements, so while rendering a load only imports."""
    original = pkg_resources.EntryPoint.load
    pkg_resources.EntryPoint.load = pkg_resources.EntryPoint.resolve
    try:
        yield
    finally:
        pkg_resources.EntryPoint.load = original


class _ModuleCache:
    """JJB's generators resolve the item type's entry point on every item, and pkg_resources
    re-checks the distribution's requirements each time: that was most of the render time of a
    big job set. Here the first item of each type goes through JJB unchanged and its module class
    is remembered; later items of that type reuse it."""

    def _getXMLForData(self, data):  # noqa: N802 - JJB's method name
        kind = data.get(self.kind_attribute, self.kind_default)
        cache = self.__dict__.setdefault("_module_classes", {})
        module_class = cache.get(kind)
        if module_class is None:
            found = list(pkg_resources.iter_entry_points(group=self.entry_point_group, name=kind))
            if found:
                cache[kind] = found[0].load()  # the one full load, requirements checked
            return super()._getXMLForData(data)  # JJB's own path (and its errors)
        root = module_class(self.registry).root_xml(data)
        if "view-type" not in data:
            self._gen_xml(root, data)
        return XmlJob(root, data["name"])


class _Registry(ModuleRegistry):
    """JJB reads each component function's signature on every call (``getfullargspec``, about
    5 500 times for 500 jobs); a function's argument names never change, so read them once."""

    @staticmethod
    def _filter_kwargs(func, **kwargs):  # JJB's name and signature
        names = _argument_names(func)
        return {key: value for key, value in kwargs.items() if key in names}


@functools.cache
def _argument_names(func) -> frozenset[str]:
    return frozenset(inspect.getfullargspec(func).args)


class _JobGenerator(_ModuleCache, XmlJobGenerator):
    pass


class _ViewGenerator(_ModuleCache, XmlViewGenerator):
    pass


def _generate(generator, data, kind: str) -> RenderedItem:
    try:
        (xml_obj,) = generator.generateXML([data])
        root_tag = xml_obj.xml.tag
    except JenkinsJobsException as exc:
        err = _jjb_error(exc, fallback_pos=getattr(data.data, "pos", None))
        suggestion = _suggest(generator.registry, exc.message)
        if suggestion:
            err = _error([*err.lines, suggestion], f"{err.message} ({suggestion})")
        raise err from None
    except Exception as exc:  # noqa: BLE001 - a JJB module crashed on odd input: report it with its position
        raise _jjb_error(
            JenkinsJobsException(f"{type(exc).__name__}: {exc}", pos=getattr(data.data, "pos", None),
                                 ctx=list(data.context)),
        ) from None
    pos = getattr(data.data, "value_pos", {}).get("name") or getattr(data.data, "pos", None)
    return RenderedItem(kind=kind, name=str(data.name), xml_text=None, root_tag=root_tag,
                        signature_text=ET.tostring(xml_obj.xml, encoding="unicode"),
                        source=_pos_text(pos), snippet=tuple(_pos_lines("", pos)[1:]))


_UNKNOWN = re.compile(r"Unknown entry point or macro '(?P<name>[^']+)' for component type: '(?P<type>[^']+)'")


def _suggest(registry, message: str) -> str | None:
    """"did you mean ...?" for a misspelt module name, from the modules JJB has loaded."""
    match = _UNKNOWN.search(message)
    if not match:
        return None
    known = set(registry.macros.get(match["type"], {}))
    try:
        entry_point = registry.modules_by_component_type[match["type"]]
        known |= set(registry._entry_points_cache.get(registry.get_component_list_type(entry_point)) or {})
    except (KeyError, AttributeError):
        pass
    close = difflib.get_close_matches(match["name"], sorted(known), n=3)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None


# --- validation --------------------------------------------------------------------------


def check_name(name: str, kind: str = "job") -> str | None:
    """Why Jenkins would reject ``name`` (checkGoodName, per folder level), or None if it is fine."""
    segments = name.split("/") if kind == "job" else [name]
    for segment in segments:
        problem = _check_segment(segment)
        if problem:
            return problem if len(segments) == 1 or not segment else f"{problem} (in {segment!r})"
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
    return None


def validate(rendered: Rendered) -> None:
    """Jenkins' naming rules, case-insensitive duplicates and folder parents, all before any request."""
    by_lower: dict[str, RenderedItem] = {}
    for item in rendered.jobs:
        problem = check_name(item.name, "job")
        if problem:
            raise _item_error(item, f"job name {item.name!r}: {problem}")
        other = by_lower.get(item.name.lower())
        if other is not None:
            raise _item_error(
                item,
                f"job {item.name!r} and job {other.name!r} differ only in case; Jenkins names are "
                f"case-insensitive (other definition at {other.source or 'unknown'})",
            )
        by_lower[item.name.lower()] = item
    for item in rendered.jobs:
        parent = item.parent
        if parent is not None and parent.lower() in by_lower:
            defined = by_lower[parent.lower()]
            if not defined.is_folder:
                raise _item_error(item, f"job {item.name!r}: its parent {defined.name!r} is not a folder")
    for item in rendered.views:
        problem = check_name(item.name, "view")
        if problem:
            raise _item_error(item, f"view name {item.name!r}: {problem}")


def _item_error(item: RenderedItem, message: str) -> RenderError:
    headline = f"{item.source}: {message}" if item.source else message
    return _error([headline, *item.snippet], headline)


# --- error formatting ----------------------------------------------------------------------


def _error(lines: list[str], headline: str | None = None) -> RenderError:
    err = RenderError(headline or lines[0])
    err.lines = lines  # the full report; the CLI prints it above the one-line summary
    return err


def _display_path(path: object) -> str:
    text = str(path)
    with contextlib.suppress(ValueError):
        rel = os.path.relpath(text)
        if not rel.startswith(".."):
            return rel
    return text


def _pos_text(pos) -> str:
    if pos is None:
        return ""
    return f"{_display_path(pos.path)}:{pos.line + 1}:{pos.column + 1}"


def _pos_lines(message: str, pos) -> list[str]:
    if pos is None:
        return [message]
    snippet = [line.rstrip() for line in (pos.snippet or "").splitlines()]
    return [f"{_pos_text(pos)}: {message}", *snippet]


def _jjb_error(exc: JenkinsJobsException, fallback_pos=None) -> RenderError:
    """JJB's own report (context chain and snippets), with paths shown relative to the CWD."""
    lines: list[str] = []
    for ctx in exc.ctx:
        lines += _pos_lines(ctx.message, ctx.pos)
    lines += _pos_lines(exc.message, exc.pos)
    positioned = [c for c in exc.ctx if c.pos is not None]
    message = " ".join(str(exc.message).split())
    duplicates = [c for c in positioned if c.message.startswith("Duplicate ")]
    if exc.message.startswith("Previous ") and duplicates:
        # JJB's innermost message points at the *first* definition; lead with the duplicate.
        dup = duplicates[0]
        headline = f"{_pos_text(dup.pos)}: {dup.message} (previous definition at {_pos_text(exc.pos)})"
    elif exc.pos is not None:
        headline = f"{_pos_text(exc.pos)}: {message}"
    elif positioned:
        inner = positioned[-1]
        headline = f"{_pos_text(inner.pos)}: {inner.message}: {message}"
    elif fallback_pos is not None:
        headline = f"{_pos_text(fallback_pos)}: {message}"
        lines = _pos_lines(message, fallback_pos)
    else:
        headline = message
    return _error(lines, headline)


def _yaml_error(exc: yaml.YAMLError) -> RenderError:
    """``file:line:col: problem`` plus the offending line, instead of PyYAML's traceback."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return _error([f"YAML error: {problem}"])
    where = f"{_display_path(mark.name)}:{mark.line + 1}:{mark.column + 1}"
    lines = [f"{where}: {problem}"]
    snippet = mark.get_snippet() if mark.buffer is not None else None
    if snippet:
        lines += [line.rstrip() for line in snippet.splitlines()]
    context_mark = getattr(exc, "context_mark", None)
    context = getattr(exc, "context", None)
    if context and context_mark is not None:
        cwhere = f"{_display_path(context_mark.name)}:{context_mark.line + 1}:{context_mark.column + 1}"
        lines.append(f"{cwhere}: {context}")
        csnippet = context_mark.get_snippet() if context_mark.buffer is not None else None
        if csnippet:
            lines += [line.rstrip() for line in csnippet.splitlines()]
    return _error(lines, f"{where}: {problem}")
