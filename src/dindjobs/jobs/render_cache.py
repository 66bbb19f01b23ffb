"""A render cache: the rendered items of a YAML tree, kept on disk, reused while no input changed.

The key is a hash of every input of a rendering: the content and order of each YAML file JJB
would load, the ini options that reach JJB, the JJB, dindjobs and Python versions (and this
dindjobs' render module), the working directory (includes and messages are relative to it) and
the walk options, and the target ``variables`` laid over the ``global`` defaults. An entry also lists every path an include looked at, found or not, with its
content hash: a changed, added or removed include file makes the entry stale.

It is an optimisation, never a source of truth: Jenkins is still read on every sync, and an
entry that is unreadable, of another format or another key, or inconsistent in any way is
ignored (and replaced by a fresh rendering); each entry ends with a checksum of its content. Entries are written atomically, private to the
user, and only the newest few are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from dindjobs import __version__
from dindjobs.jobs import render as render_module
from dindjobs.jobs.render import Rendered, RenderedItem, jjb_options, render, yaml_files

FORMAT = 2  # 2: items keep the plugins they need
KEEP = 8  # entries kept per cache directory (one per YAML tree and option set in use)
_RENDER_SOURCE = Path(render_module.__file__)


def default_cache_dir(env: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/dindjobs/render``, else ``~/.cache/dindjobs/render``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dindjobs" / "render"


def cached_render(
    paths: Sequence[str | os.PathLike[str]],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    recursive: bool = True,
    excludes: Iterable[str] = (),
    conf_path: str | os.PathLike[str] | None = None,
    variables: Mapping[str, str] | None = None,
) -> Rendered:
    """What :func:`~dindjobs.jobs.render.render` returns for these arguments, from the cache
    when every input is as it was (``Rendered.cached`` is then True), else rendered and stored."""
    excludes = list(excludes)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        key = input_key(paths, recursive=recursive, excludes=excludes, conf_path=conf_path, variables=variables)
    except OSError:  # an unreadable input: render() says what is wrong with it
        return render(paths, recursive=recursive, excludes=excludes, conf_path=conf_path, variables=variables)
    entry = directory / f"{key}.json"
    found = load(entry, key)
    if found is not None:
        return found
    includes: list[Path] = []
    rendered = render(paths, recursive=recursive, excludes=excludes, conf_path=conf_path, variables=variables,
                      on_include=includes.append)
    with contextlib.suppress(OSError, ValueError):  # a cache that cannot be written only costs speed
        store(directory, entry, key, rendered, includes)
    return rendered


def input_key(paths: Sequence[str | os.PathLike[str]], *, recursive: bool, excludes: list[str],
              conf_path: str | os.PathLike[str] | None, variables: Mapping[str, str] | None = None) -> str:
    """The hash of every input known before rendering (raises RenderError like render())."""
    h = hashlib.sha256()
    facts = {"format": FORMAT, "dindjobs": __version__, "jjb": render_module.JJB_VERSION,
             "python": sys.version, "render": _file_hash(_RENDER_SOURCE), "cwd": os.getcwd(),
             "paths": [os.fspath(p) for p in paths], "recursive": recursive, "excludes": excludes,
             "options": jjb_options(conf_path),
             "variables": sorted([str(k), str(v)] for k, v in (variables or {}).items())}
    h.update(json.dumps(facts, sort_keys=True).encode("utf-8"))
    for path in yaml_files(paths, recursive=recursive, excludes=excludes):
        h.update(b"\0" + os.fsencode(path) + b"\0" + (_file_hash(path) or "").encode("ascii"))
    return h.hexdigest()


def load(entry: Path, key: str) -> Rendered | None:
    """The rendering stored in ``entry`` if it is a sound entry for ``key`` whose includes are
    unchanged; None otherwise (the caller renders).

    An entry is JSON lines: the dependencies, one line per item, and a trailer with the format,
    the key and a checksum of everything above it."""
    try:
        body, _, trailer = entry.read_bytes().rstrip(b"\n").rpartition(b"\n")
        header = json.loads(trailer)
        if header["format"] != FORMAT or header["key"] != key or header["sum"] != hashlib.sha256(body).hexdigest():
            return None
        lines = body.split(b"\n")
        del body
        deps = json.loads(lines[0])
        for path, digest in deps["includes"]:
            if _file_hash(Path(path)) != digest:
                return None
        rendered = Rendered(files=[Path(p) for p in deps["files"]], cached=True)
        for line in lines[1:]:
            item = _item(json.loads(line))
            (rendered.jobs if item.kind == "job" else rendered.views).append(item)
        return rendered
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, unreadable, truncated or foreign: render instead


def store(directory: Path, entry: Path, key: str, rendered: Rendered, includes: list[Path]) -> None:
    """Write ``rendered`` as the entry for ``key`` (atomically, item by item so that a big
    rendering is never held twice in memory), and drop the oldest entries."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    seen = {}
    for path in includes:
        seen.setdefault(os.path.abspath(path), None)
    deps = {"includes": [[path, _file_hash(Path(path))] for path in seen], "files": [str(p) for p in rendered.files]}
    checksum = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".entry-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            for n, record in enumerate(itertools.chain([deps], (_raw(item) for item in rendered.items))):
                line = (b"\n" if n else b"") + json.dumps(record, separators=(",", ":")).encode("utf-8")
                checksum.update(line)
                fh.write(line)
            trailer = {"format": FORMAT, "key": key, "sum": checksum.hexdigest()}
            fh.write(b"\n" + json.dumps(trailer).encode("utf-8") + b"\n")
        os.replace(tmp, entry)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _raw(item: RenderedItem) -> list:
    return [item.kind, item.name, item.root_tag, item.signature, item.source, list(item.snippet),
            [list(p) for p in item.plugins]]


def _item(raw: list) -> RenderedItem:
    kind, name, root_tag, signature, source, snippet, plugins = raw
    if kind not in ("job", "view") or not all(isinstance(v, str) for v in (name, root_tag, signature, source)):
        raise TypeError("malformed entry")
    needs = tuple((str(component), str(what), str(plugin)) for component, what, plugin in plugins)
    return RenderedItem(kind=kind, name=name, xml_text=None, root_tag=root_tag, signature_text=signature,
                        source=source, snippet=tuple(str(line) for line in snippet), plugins=needs)


def _file_hash(path: Path) -> str | None:
    """Content hash of a regular file, None when there is none (a missing include candidate)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
