"""JJB YAML -> rendered jobs and views. The only module that imports ``jenkins_jobs``.

It drives JJB 6.x's library API (``JJBConfig`` -> ``Roots`` -> ``load_files`` ->
``ModuleRegistry`` -> ``XmlJobGenerator``/``XmlViewGenerator``) and never imports
``jenkins_jobs.cli``, which configures root logging on import. The JJB config is always
explicit: only the ``[job_builder]`` and ``[plugin "..."]`` sections of the user's ini are
passed on, never the ambient ``~/.config`` or ``/etc`` files and never credentials.

Every failure is a :class:`~dindjobs.errors.RenderError` whose message starts with
``file:line:col:`` and whose ``details`` hold JJB's context chain and the offending line with a
caret (made in one place, :func:`_failure`), so nothing is sent to Jenkins before all of it is
valid. YAML is read by :class:`_Loader`, JJB's loader within the limits of ``yaml_loader`` and
with ``!include`` confined to the job tree (and the ini's ``include_path``).

It is long on purpose: every use of JJB's internals (the loader and include shims, the two
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
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jenkins_jobs.loader
import jinja2
import pkg_resources
import yaml
from jenkins_jobs.config import JJBConfig
from jenkins_jobs.constants import MAGIC_MANAGE_STRING
from jenkins_jobs.defaults import Defaults
from jenkins_jobs.errors import JenkinsJobsException
from jenkins_jobs.loader import enum_expanded_paths, load_files
from jenkins_jobs.loc_loader import LocDict
from jenkins_jobs.position import Pos
from jenkins_jobs.registry import ModuleRegistry
from jenkins_jobs.roots import Roots
from jenkins_jobs.utils import recurse_path
from jenkins_jobs.xml_config import XmlJob, XmlJobGenerator, XmlViewGenerator
from jenkins_jobs.yaml_objects import BaseYamlObject, J2BaseYamlObject

from dindjobs.config import read_ini
from dindjobs.errors import RenderError
from dindjobs.jobs import names, yaml_loader

#: The text JJB appends to descriptions of the items it manages.
MANAGED_MARKER = MAGIC_MANAGE_STRING

FOLDER_CLASS = "com.cloudbees.hudson.plugins.folder.Folder"
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MAX_CHAIN_LINES = 4  # JJB's "In project ... / In job template ..." lines shown above an error

YAML_SUFFIXES = (".yaml", ".yml")  # what JJB's loader reads from a directory

#: The JJB release that renders (part of the render cache's key).
JJB_VERSION = importlib.metadata.version("jenkins-job-builder")

log = logging.getLogger(__name__)


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
    # (component type, name, plugin id) for the item type and each component JJB says needs a
    # plugin, e.g. ("project", "pipeline", "workflow-aggregator"), ("wrapper", "timestamps", "timestamper").
    plugins: tuple[tuple[str, str, str], ...] = field(default=(), compare=False)

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


def render(
    paths: Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    excludes: Iterable[str] = (),
    conf_path: str | os.PathLike[str] | None = None,
    variables: Mapping[str, str] | None = None,
    on_include: Callable[[Path], None] | None = None,
) -> Rendered:
    """Render JJB YAML files and directories into jobs and views, validated, nothing sent.

    Directories are walked recursively unless ``recursive`` is False; ``excludes`` are JJB's
    ``-x`` patterns (a bare name matches any directory of that name). ``conf_path`` is a
    JJB-style ini whose ``[job_builder]`` options (``include_path``, ``keep_descriptions``,
    ``allow_duplicates``, ...) apply. ``variables`` (a target's ``vars``) are laid over the
    ``global`` defaults, so templates see them unless a project or template sets its own.
    ``on_include`` is called with every path an include (``!include``, ``!include-raw*``,
    ``!include-jinja2``, a Jinja2 ``include``) looked at, found or not, refused by the include
    guard or not (the render cache's dependencies). Raises :class:`RenderError`.
    """
    files = _expand(paths, recursive, list(excludes))
    tree = [Path(p) if Path(p).is_dir() else Path(p).parent for p in paths]
    with _jjb_config(conf_path) as (cfg, include_path), _quiet_jjb_logs(), _entry_points_resolved_only(), \
            _our_loader(_IncludeGuard([*tree, *include_path]), on_include):
        try:
            roots = Roots(cfg)
            load_files(cfg, roots, files)
            if variables:
                _set_global_variables(roots, variables)
            registry = _Registry(cfg, None)  # None: the newest plugin formats
            registry.set_macros(roots.macros)
            job_data = roots.generate_jobs()
            view_data = roots.generate_views()
            registry.amend_job_dicts(job_data)
        except _FAILURES as exc:
            raise _render_error(exc) from None
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
    ``[__future__]``), as ini text; never ``[jenkins]`` and its credentials. Raises ConfigError
    (``file:line``) for an ini that cannot be read."""
    out = io.StringIO()
    _jjb_sections(conf_path).write(out)
    return out.getvalue()


def _jjb_sections(conf_path: str | os.PathLike[str] | None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    if conf_path:
        source = read_ini(Path(conf_path))
        for section in source.sections():
            # Credentials live in [jenkins]: they have no business in rendering.
            if section == "job_builder" or section.startswith("plugin ") or section == "__future__":
                parser[section] = dict(source.items(section, raw=True))
    if not parser.has_section("job_builder"):
        parser.add_section("job_builder")
    return parser


def _set_global_variables(roots: Roots, variables: Mapping[str, str]) -> None:
    # Templates, jobs and views hold roots.defaults itself, so replacing "global" reaches them all.
    current = roots.defaults.get("global") or Defaults("global", pos=None, params={}, contents={})
    roots.defaults["global"] = replace(current, params=LocDict.merge(current.params, dict(variables)))


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
def _jjb_config(conf_path: str | os.PathLike[str] | None) -> Iterator[tuple[JJBConfig, list[Path]]]:
    """A JJBConfig from an explicit temporary ini holding only the rendering sections, and the
    directories the ini's ``include_path`` allows includes from (none unless it says so)."""
    parser = _jjb_sections(conf_path)
    with tempfile.TemporaryDirectory(prefix="dindjobs-jjb-") as tmp:
        ini = Path(tmp) / "jenkins_jobs.ini"
        with ini.open("w", encoding="utf-8") as fh:
            parser.write(fh)
        try:
            cfg = JJBConfig(str(ini))
        except (JenkinsJobsException, ValueError, configparser.Error) as exc:
            raise RenderError(f"{_display_path(conf_path)}: [job_builder]: {' '.join(str(exc).split())}") from None
        allowed = cfg.yamlparser["include_path"] if parser.has_option("job_builder", "include_path") else []
        yield cfg, [Path(d).expanduser() for d in allowed]


class _IncludeGuard:
    """Where ``!include`` and friends may read from: the job tree and the ini's include_path."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = list(dict.fromkeys(Path(root).resolve() for root in roots))

    def check(self, found: Path, rel_path: object, pos, tag: str) -> Path:
        """``found`` if it lies under an allowed directory and is readable text; else a JJB error at ``pos``."""
        real = Path(found).resolve()
        if not any(real.is_relative_to(root) for root in self.roots):
            allowed = ", ".join(_display_path(root) for root in self.roots)
            raise JenkinsJobsException(
                f"{tag} {str(rel_path)!r} is outside the job tree ({allowed}); allow its directory "
                "with include_path in the [job_builder] section of the --conf ini", pos=pos or None)
        yaml_loader.read_text(real)  # refused with file:line if it is not UTF-8 text
        return found


class _Loader(yaml_loader.LimitedComposer, jenkins_jobs.loader.Loader):
    """JJB's loader, within the limits of :mod:`yaml_loader`: strict UTF-8, includes confined to
    the tree, jinja2 syntax errors with their position, and a top level that must be a list."""

    def _with_stream(self, stream, source_path, source_dir):
        return _Loader(stream, self.jjb_config, source_path, source_dir, self.anchors)

    def load_path(self, path):
        cache = self.__dict__.setdefault("_loaded", {})
        if path not in cache:
            cache[path] = self._load_file(Path(path))
        return cache[path]

    def _load_file(self, path: Path):
        text = yaml_loader.read_text(path)
        loader = self._with_stream(text, path, path.parent)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
            if self._retain_anchors:
                self.anchors.update(loader.anchors)
        if self.source_path is None:  # the root loader: a file of the tree, not an include
            if data is None:
                log.warning("%s: empty YAML file, nothing to load from it", _display_path(path))
            elif not isinstance(data, list):
                mark = loader.root_mark
                raise JenkinsJobsException(
                    f"the top level must be a list of items (- job: ..., - project: ...), not a {_kind(data)}",
                    pos=Pos(mark, mark.name, mark.line, mark.column))
        return data

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except jinja2.TemplateSyntaxError as exc:
            pos = self.pos_from_node(node)
            # Template line 1 is the tag's line, or the next one for a block scalar (| or >).
            offset = (exc.lineno or 1) - (0 if node.style in ("|", ">") else 1)
            if offset:
                pos = pos.with_offset(offset, 0).with_contents_start()
            raise JenkinsJobsException(f"jinja2 template syntax error: {exc.message}", pos=pos) from None


def _kind(data: object) -> str:
    if isinstance(data, dict):
        return "mapping"
    if isinstance(data, int | float):
        return "number"
    return "string" if isinstance(data, str) else type(data).__name__


@contextlib.contextmanager
def _our_loader(guard: _IncludeGuard, on_include: Callable[[Path], None] | None = None) -> Iterator[None]:
    """While rendering, JJB's ``load_files`` makes its loader from ours, and every include tag
    (``!include:``, ``!include-raw*:``, ``!include-jinja2:``, jinja2's ``{% include %}``) finds
    its file through the guard; ``on_include`` hears every candidate path the lookup tried, found
    or not, refused or not. (JJB dispatches on exact types: subclassing the tags is no option.)"""
    original_loader, original_find = jenkins_jobs.loader.Loader, BaseYamlObject._find_file
    original_j2_init = J2BaseYamlObject.__init__

    def find_file(obj, rel_path, pos):
        try:
            found = original_find(obj, rel_path, pos)
            return guard.check(found, rel_path, pos or obj._pos, _tag_of(obj))
        finally:
            if on_include is not None:  # the search path now holds every directory JJB tried (it appends ".")
                for directory in obj._search_path:
                    on_include(Path(directory).expanduser().joinpath(rel_path))

    def j2_init(obj, *args, **kwargs):
        original_j2_init(obj, *args, **kwargs)
        # jinja2's own loader would read include_path and the working directory unchecked.
        obj._jinja2_env.loader = jinja2.FunctionLoader(functools.partial(_template_source, obj))

    jenkins_jobs.loader.Loader, BaseYamlObject._find_file = _Loader, find_file
    J2BaseYamlObject.__init__ = j2_init
    try:
        yield
    finally:
        jenkins_jobs.loader.Loader, BaseYamlObject._find_file = original_loader, original_find
        J2BaseYamlObject.__init__ = original_j2_init


def _tag_of(obj: BaseYamlObject) -> str:
    return getattr(obj, "yaml_tag", "!include")


def _template_source(obj: BaseYamlObject, name: str) -> tuple[str, str, object]:
    """A jinja2 ``{% include %}``: found like every include tag's file, through the guard."""
    found = obj._find_file(name, obj._pos)
    return yaml_loader.read_text(found), str(found), lambda: True


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
    5 500 times for 500 jobs); a function's argument names never change, so read them once.
    It also notes, per item, each dispatched component whose JJB docs name a required plugin
    (macros dispatch their parts, so those are noted too)."""

    plugins_used: list[tuple[str, str, str]] | None = None

    def dispatch(self, component_type, xml_parent, component, *args, **kwargs):
        super().dispatch(component_type, xml_parent, component, *args, **kwargs)
        name = next(iter(component)) if isinstance(component, dict) else component
        if self.plugins_used is None or name in self.macros.get(component_type, {}):
            return
        list_type = self.get_component_list_type(self.modules_by_component_type[component_type])
        plugin = _required_plugin(self._entry_points_cache.get(list_type, {}).get(name))
        if plugin:
            self.plugins_used.append((component_type, str(name), plugin))

    @staticmethod
    def _filter_kwargs(func, **kwargs):  # JJB's name and signature
        names = _argument_names(func)
        return {key: value for key, value in kwargs.items() if key in names}


_REQUIRES = re.compile(r"Requires\s+the\s+(?:Jenkins\s+)?:jenkins-plugins:`[^`<]*<([^>`]+)>`")


@functools.cache
def _required_plugin(obj) -> str | None:
    """The plugin id JJB's documentation of a component function or item module says it needs
    ("Requires the Jenkins :jenkins-plugins:`Name <id>`"), or None."""
    if obj is None:
        return None
    docs = (obj.__doc__ or "") + (sys.modules[obj.__module__].__doc__ or "" if isinstance(obj, type) else "")
    found = _REQUIRES.search(docs)
    return found.group(1).strip() if found else None


def _type_plugin(generator, data) -> tuple[str, str, str] | None:
    """("project"/"view", type, plugin) when JJB documents a plugin for the item's type."""
    kind = str(data.data.get(generator.kind_attribute, generator.kind_default))
    plugin = _item_module_plugin(generator.entry_point_group, kind)
    return (generator.kind_attribute.split("-")[0], kind, plugin) if plugin else None


@functools.cache
def _item_module_plugin(group: str, kind: str) -> str | None:
    found = list(pkg_resources.iter_entry_points(group=group, name=kind))
    return _required_plugin(found[0].resolve()) if found else None


@functools.cache
def _argument_names(func) -> frozenset[str]:
    return frozenset(inspect.getfullargspec(func).args)


class _JobGenerator(_ModuleCache, XmlJobGenerator):
    pass


class _ViewGenerator(_ModuleCache, XmlViewGenerator):
    pass


def _generate(generator, data, kind: str) -> RenderedItem:
    generator.registry.plugins_used = used = []
    try:
        (xml_obj,) = generator.generateXML([data])
        root_tag = xml_obj.xml.tag
    except Exception as exc:  # noqa: BLE001 - a JJB module may crash on odd input: report it with its position
        err = _render_error(exc, fallback_pos=getattr(data.data, "pos", None), context=data.context)
        suggestion = _suggest(generator.registry, str(getattr(exc, "message", "")))
        if suggestion:
            err = RenderError(f"{err.message} ({suggestion})", details=err.details)
        raise err from None
    pos = getattr(data.data, "value_pos", {}).get("name") or getattr(data.data, "pos", None)
    item_plugin = _type_plugin(generator, data)
    return RenderedItem(kind=kind, name=str(data.name), xml_text=None, root_tag=root_tag,
                        signature_text=ET.tostring(xml_obj.xml, encoding="unicode"),
                        source=_pos_text(pos), snippet=tuple(_snippet(pos)),
                        plugins=tuple(dict.fromkeys(([item_plugin] if item_plugin else []) + used)))


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
    """Why Jenkins would reject ``name`` (see :mod:`dindjobs.jobs.names`), or None if it is fine."""
    return names.check_name(name, kind)


def validate(rendered: Rendered) -> None:
    """Jenkins' naming rules, case-insensitive duplicates and folder parents, all before any request."""
    found = names.first_problem(rendered.jobs, rendered.views)
    if found is not None:
        item, problem, other = found
        if other is not None and other.source:
            problem += f" ({names.shown(other.name)} is defined at {other.source})"
        raise _failure(item.source, problem, snippet=item.snippet)


# --- error formatting: the one place where a failure becomes file:line:col ----------------


def _failure(where: str, message: str, chain: Sequence[str] = (), snippet: Sequence[str] = ()) -> RenderError:
    """``where: message`` as the error, with JJB's context chain (shortened) and the offending
    line with its caret as the details printed above it."""
    message = " ".join(str(message).split())
    chain = list(chain)
    if len(chain) > MAX_CHAIN_LINES:
        chain = [*chain[:2], f"... ({len(chain) - 3} more levels)", chain[-1]]
    shown = [_CONTROL.sub("?", line) for line in snippet]  # never send a terminal a control character
    return RenderError(f"{where}: {message}" if where else message, details=(*chain, *shown))


def _display_path(path: object) -> str:
    text = str(path)
    with contextlib.suppress(ValueError):
        rel = os.path.relpath(text)
        if not rel.startswith(".."):
            return rel
    return text


def _mark_text(mark) -> str:
    return f"{_display_path(mark.name)}:{mark.line + 1}:{mark.column + 1}"


def _pos_text(pos) -> str:
    if pos is None:
        return ""
    return f"{_display_path(pos.path)}:{pos.line + 1}:{pos.column + 1}"


def _snippet(pos) -> list[str]:
    if pos is None:
        return []
    with contextlib.suppress(Exception):  # a position JJB made up inside a template may not point at text
        return [line.rstrip() for line in (pos.snippet or "").splitlines()]
    return []


# What JJB raises for bad input: its own errors, PyYAML's and jinja2's, and the plain Python
# errors of code that met a shape it does not expect (a string where a list belongs, ...).
_FAILURES = (yaml.YAMLError, JenkinsJobsException, jinja2.TemplateError, RecursionError,
             ValueError, TypeError, AttributeError, KeyError, IndexError)


def _render_error(exc: BaseException, fallback_pos=None, context=()) -> RenderError:
    """Any failure of loading, expanding or generating the YAML as a :class:`RenderError`;
    ``context`` is the JJB context of the item being generated, if any."""
    if isinstance(exc, yaml.YAMLError):
        return _yaml_error(exc)
    if isinstance(exc, JenkinsJobsException):
        return _jjb_error(exc, fallback_pos)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = f"{_display_path(exc.filename)}:{exc.lineno}" if exc.filename else ""
        return _failure(where, f"jinja2 template syntax error: {exc.message}")
    if isinstance(exc, jinja2.TemplateNotFound):
        pos = _innermost_pos(exc.__traceback__, includes_only=True)
        return _failure(_pos_text(pos), f"jinja2 cannot include {exc.name!r}: templates are found in the "
                                        "job tree and include_path only, and never through '..'",
                        snippet=_snippet(pos))
    if isinstance(exc, jinja2.TemplateError):
        pos = _innermost_pos(exc.__traceback__, includes_only=True)
        return _failure(_pos_text(pos), f"jinja2: {exc.message}", snippet=_snippet(pos))
    chain = [_context_line(c) for c in context]
    if isinstance(exc, RecursionError):
        pos = _innermost_pos(exc.__traceback__, includes_only=True) or fallback_pos
        return _failure(_pos_text(pos), "the YAML nests too deeply while it is expanded "
                                        "(a macro or an !include that uses itself?)", chain, _snippet(pos))
    pos = _innermost_pos(exc.__traceback__) or fallback_pos
    return _failure(_pos_text(pos), f"JJB cannot use this: {type(exc).__name__}: {exc}", chain, _snippet(pos))


def _context_line(context) -> str:
    return f"{_pos_text(context.pos)}: {context.message}" if context.pos is not None else str(context.message)


def _innermost_pos(tb, includes_only: bool = False) -> Pos | None:
    """The innermost YAML position JJB was working on when ``tb`` was raised (with
    ``includes_only``: the innermost include tag being expanded)."""
    found = None
    while tb is not None:
        local = tb.tb_frame.f_locals
        candidates = [getattr(local.get("self"), "_pos", None)]
        if not includes_only:
            candidates += [local.get("value_pos"), local.get("pos"), getattr(local.get("obj"), "pos", None)]
        found = next((c for c in candidates if isinstance(c, Pos)), found)
        tb = tb.tb_next
    return found


def _jjb_error(exc: JenkinsJobsException, fallback_pos=None) -> RenderError:
    """JJB's report (context chain, innermost position and its line), paths relative to the CWD."""
    chain = [_context_line(c) for c in exc.ctx]
    duplicates = [c for c in exc.ctx if c.pos is not None and c.message.startswith("Duplicate ")]
    if exc.message.startswith("Previous ") and duplicates:
        # JJB: [the duplicate's context..., "Duplicate job", the first one's context...], then
        # "Previous job definition". Lead with the duplicate, at the project entry that made it
        # ("Defined here") when it came from a template.
        index = exc.ctx.index(duplicates[0])
        ours, theirs = exc.ctx[:index], exc.ctx[index + 1:]
        here = _defined_here(ours) or duplicates[0].pos
        previous = _defined_here(theirs) or exc.pos
        context = [line for c, line in zip(ours, chain, strict=False) if c.pos is not here]
        return _failure(_pos_text(here), f"{duplicates[0].message} (previous definition at {_pos_text(previous)})",
                        context, _snippet(here))
    pos = exc.pos
    if pos is None:
        positioned = [c for c in exc.ctx if c.pos is not None]
        pos = positioned[-1].pos if positioned else fallback_pos
        if positioned:
            chain = chain[:-1]
            return _failure(_pos_text(pos), f"{positioned[-1].message}: {exc.message}", chain, _snippet(pos))
    return _failure(_pos_text(pos), exc.message, chain, _snippet(pos))


def _defined_here(context) -> object | None:
    """The position of the project entry that expanded a template, if JJB recorded one."""
    found = [c.pos for c in context if c.pos is not None and c.message == "Defined here"]
    return found[-1] if found else None


def _yaml_error(exc: yaml.YAMLError) -> RenderError:
    """``file:line:col: problem`` plus the offending line, instead of PyYAML's traceback."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if "'\\t'" in problem:
        problem += " (YAML indents with spaces, never tabs)"
    if mark is None:
        return _failure("", f"YAML error: {problem}")
    chain = []
    context_mark, context = getattr(exc, "context_mark", None), getattr(exc, "context", None)
    if context and context_mark is not None:
        chain.append(f"{_mark_text(context_mark)}: {context}")
    snippet = mark.get_snippet() if mark.buffer is not None else None
    return _failure(_mark_text(mark), problem, chain, [line.rstrip() for line in (snippet or "").splitlines()])
