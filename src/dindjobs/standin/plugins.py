"""Plugins as Jenkins finds them, and the plugins.txt format of ``jenkins-plugin-cli``.

Jenkins loads every ``$JENKINS_HOME/plugins/<id>.jpi`` (or ``.hpi``) at start, reading the
plugin's id, name and version from ``META-INF/MANIFEST.MF`` inside it; a ``<file>.disabled``
next to it leaves the plugin installed but inactive. The stand-in does the same, so what it
reports on ``/pluginManager/api/json`` is what its home holds, never a list of its own.

It cannot download plugins: :func:`install` writes a placeholder ``.jpi`` (a zip holding only a
manifest) for each line of a plugins.txt, which is all the stand-in reads. ``main`` is the
command line the offline images use as ``jenkins-plugin-cli``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import os
import re
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("dindjobs.standin")

MANIFEST = "META-INF/MANIFEST.MF"
# jenkins-plugin-cli's default download directory (the image's reference directory).
DEFAULT_DIRECTORY = "/usr/share/jenkins/ref/plugins"
PLUGIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
VERSION = re.compile(r"latest|experimental|incrementals;[^;]+;[^;]+|[0-9A-Za-z][0-9A-Za-z._+-]*")
UNVERSIONED = "latest"


@dataclasses.dataclass(frozen=True)
class Plugin:
    """An installed plugin: its id (``shortName``), name, version and whether it is active."""

    short_name: str
    long_name: str
    version: str
    active: bool = True


@dataclasses.dataclass(frozen=True)
class Requested:
    """One line of a plugins.txt: ``id``, ``id:version`` or ``id:version:url``."""

    short_name: str
    version: str = UNVERSIONED
    url: str | None = None


def parse_plugin_file(text: str, source: str = "plugins.txt") -> list[Requested]:
    """The plugins a plugins.txt asks for, in order; ValueError naming ``source:line`` otherwise.

    The syntax of ``jenkins-plugin-cli --plugin-file``: ``#`` lines and `` #...`` tails are
    comments, whitespace is dropped, the line is split at its first two colons.
    """
    wanted: dict[str, Requested] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        line = "".join(line.split())
        if not line:
            continue
        parts = line.split(":", 2)
        short, version = parts[0], (parts[1] if len(parts) > 1 and parts[1] else UNVERSIONED)
        url = parts[2] if len(parts) > 2 else None
        if not PLUGIN_ID.fullmatch(short):
            raise ValueError(f"{source}:{lineno}: {short!r} is not a plugin id")
        if not VERSION.fullmatch(version):
            raise ValueError(f"{source}:{lineno}: {version!r} is not a version of plugin {short}")
        if url is not None and not url.startswith(("http://", "https://", "file://")):
            raise ValueError(f"{source}:{lineno}: {url!r} is not an http(s) or file URL")
        if short in wanted:
            raise ValueError(f"{source}:{lineno}: plugin {short} is listed twice")
        wanted[short] = Requested(short, version, url)
    return list(wanted.values())


def write_plugin(directory: str | os.PathLike[str], plugin: Requested) -> Path:
    """A placeholder ``<id>.jpi`` in ``directory``: a zip with the manifest Jenkins reads."""
    path = Path(directory) / f"{plugin.short_name}.jpi"
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = (f"Manifest-Version: 1.0\r\nShort-Name: {plugin.short_name}\r\n"
                f"Long-Name: {plugin.short_name}\r\nPlugin-Version: {plugin.version}\r\n"
                "Created-By: dindjobs stand-in (placeholder, no code)\r\n\r\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(MANIFEST, manifest)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
    return path


def install(plugin_file: str | os.PathLike[str], directory: str | os.PathLike[str]) -> list[Requested]:
    """Install (as placeholders) every plugin ``plugin_file`` lists into ``directory``."""
    path = Path(plugin_file)
    wanted = parse_plugin_file(path.read_text(encoding="utf-8"), str(path))
    for plugin in wanted:
        write_plugin(directory, plugin)
    return wanted


def _manifest(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if line.startswith(" ") and last:  # a continuation line
            fields[last] += line[1:]
        elif ":" in line:
            last, _, value = line.partition(":")
            fields[last] = value.strip()
    return fields


def installed(home: str | os.PathLike[str]) -> dict[str, Plugin]:
    """The plugins in ``home/plugins``, by id; unreadable archives are skipped with a warning."""
    found: dict[str, Plugin] = {}
    directory = Path(home) / "plugins"
    if not directory.is_dir():
        return found
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".jpi", ".hpi") or not path.is_file():
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                fields = _manifest(zf.read(MANIFEST).decode("utf-8"))
        except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            log.warning("failed to load plugin %s: %s", path.name, exc)
            continue
        short = fields.get("Short-Name") or path.stem
        if short in found:  # Jenkins prefers the .jpi over an .hpi of the same plugin
            continue
        found[short] = Plugin(short, fields.get("Long-Name") or short, fields.get("Plugin-Version") or "",
                              active=not path.with_name(path.name + ".disabled").exists())
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """``jenkins-plugin-cli --plugin-file FILE [-d DIR] [-p ID[:VER] ...]`` of the offline images."""
    p = argparse.ArgumentParser(prog="jenkins-plugin-cli",
                                description="Install plugin placeholders for the dindjobs stand-in (no downloads).")
    p.add_argument("-f", "--plugin-file", help="plugins.txt (.txt only here)")
    p.add_argument("-p", "--plugins", nargs="*", default=[], help="ID or ID:VERSION, space-separated")
    p.add_argument("-d", "--plugin-download-directory", dest="directory",
                   default=os.environ.get("PLUGIN_DIR") or DEFAULT_DIRECTORY)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    try:
        wanted = []
        if args.plugin_file:
            if not args.plugin_file.endswith(".txt"):
                raise ValueError(f"{args.plugin_file}: only .txt plugin files are supported here")
            wanted += parse_plugin_file(Path(args.plugin_file).read_text(encoding="utf-8"), args.plugin_file)
        wanted += parse_plugin_file("\n".join(args.plugins), "--plugins")
        for plugin in wanted:
            write_plugin(args.directory, plugin)
            if args.verbose:
                print(f"installed {plugin.short_name}:{plugin.version} into {args.directory}")
    except (OSError, ValueError) as exc:
        print(f"jenkins-plugin-cli: {exc}", file=sys.stderr)
        return 1
    print(f"Done: {len(wanted)} plugins in {args.directory} (placeholders for the dindjobs stand-in)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
