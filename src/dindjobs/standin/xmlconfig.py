"""config.xml handling: Jenkins' identity-transform normalisation and reading a job's settings.

Jenkins does not store a submitted config.xml byte for byte: it runs it through the JDK identity
transformer (declaration rewritten with double quotes, DOCTYPE and BOM dropped, ``<a></a>`` made
``<a/>``, ``&apos;``/``&quot;``/character references made literal, attributes double-quoted).
Comments, CDATA, attribute order, indentation and unknown elements are kept. This module
reproduces that with expat, so clients that byte-compare configs fail here as they would there.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Container
from xml.parsers import expat

FREESTYLE = "hudson.model.FreeStyleProject"
FOLDER = "com.cloudbees.hudson.plugins.folder.Folder"
PIPELINE = "org.jenkinsci.plugins.workflow.job.WorkflowJob"

# XML root element -> Java class of the top-level item it describes.
ROOT_TYPES = {"project": FREESTYLE, FOLDER: FOLDER, "flow-definition": PIPELINE}
TYPE_ROOTS = {v: k for k, v in ROOT_TYPES.items()}
# The plugin that provides each item class (core's need none): without it Jenkins cannot load one.
TYPE_PLUGINS = {FOLDER: "cloudbees-folder", PIPELINE: "workflow-job"}


class BadConfig(Exception):
    """The XML is malformed or does not describe a supported item (Jenkins answers 500)."""


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: str) -> str:
    return (_text(value).replace('"', "&quot;").replace("\n", "&#10;")
            .replace("\r", "&#13;").replace("\t", "&#9;"))


def normalise(data: bytes | str) -> str:
    """Return ``data`` as Jenkins' identity transform would write it (raises BadConfig).

    ``bytes`` are decoded as the XML declaration says (createItem reads the raw stream);
    ``str`` was already decoded with the request's charset (config.xml POST uses a reader).
    """
    out: list[str] = []
    pending = [False]  # a start tag is open and may still become <a/>
    in_cdata = [False]
    version = ["1.0"]

    def close_pending() -> None:
        if pending[0]:
            out.append(">")
            pending[0] = False

    def xml_decl(ver, _encoding, _standalone):
        version[0] = "1.1" if ver == "1.1" else "1.0"

    def start(name, attrs):
        close_pending()
        parts = [f"<{name}"]
        for i in range(0, len(attrs), 2):
            parts.append(f' {attrs[i]}="{_attr(attrs[i + 1])}"')
        out.append("".join(parts))
        pending[0] = True

    def end(name):
        if pending[0]:
            out.append("/>")
            pending[0] = False
        else:
            out.append(f"</{name}>")

    def chars(data):
        close_pending()
        out.append(data if in_cdata[0] else _text(data))

    def comment(data):
        close_pending()
        out.append(f"<!--{data}-->")

    def pi(target, data):
        close_pending()
        out.append(f"<?{target} {data}?>" if data else f"<?{target}?>")

    def cdata_start():
        close_pending()
        in_cdata[0] = True
        out.append("<![CDATA[")

    def cdata_end():
        in_cdata[0] = False
        out.append("]]>")

    if isinstance(data, str):
        parser = expat.ParserCreate(encoding="UTF-8")
        raw = data.lstrip("\ufeff").encode("utf-8")
    else:
        parser = expat.ParserCreate()
        raw = data
    parser.ordered_attributes = True
    parser.buffer_text = True
    parser.XmlDeclHandler = xml_decl
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.CommentHandler = comment
    parser.ProcessingInstructionHandler = pi
    parser.StartCdataSectionHandler = cdata_start
    parser.EndCdataSectionHandler = cdata_end
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        raise BadConfig(f"malformed XML: {exc}") from None
    if not out:
        raise BadConfig("no root element")
    return f'<?xml version="{version[0]}" encoding="UTF-8"?>' + "".join(out)


def root_tag(text: str) -> str:
    """The root element's name of an already normalised document."""
    try:
        return ET.fromstring(text.encode("utf-8")).tag
    except ET.ParseError as exc:
        raise BadConfig(f"malformed XML: {exc}") from None


def item_type(text: str, plugins: Container[str] | None = None) -> str:
    """The Java class a config describes; BadConfig if not a top-level item we support, or (when
    ``plugins``, the active plugin ids, is given) if the plugin providing it is not installed."""
    tag = root_tag(text)
    if tag not in ROOT_TYPES:
        raise BadConfig(f"{tag} is not a known top-level item type")
    kind = ROOT_TYPES[tag]
    needed = TYPE_PLUGINS.get(kind)
    if plugins is not None and needed and needed not in plugins:
        # What XStream says when the class is missing: the plugin is not installed.
        raise BadConfig(f"com.thoughtworks.xstream.mapper.CannotResolveClassException: {tag} "
                        f"(the {needed} plugin is not installed)")
    return kind


@dataclasses.dataclass
class Parameter:
    """A build parameter definition (string, text, boolean, choice, password)."""

    name: str
    kind: str  # the Java class of the definition
    default: str

    @property
    def value_class(self) -> str:
        """The Java class of a value of this parameter."""
        base = self.kind.rsplit(".", 1)[-1].replace("ParameterDefinition", "")
        if base == "Choice":
            base = "String"
        return f"hudson.model.{base}ParameterValue"


@dataclasses.dataclass
class JobSettings:
    """What the stand-in reads from a job's config.xml."""

    description: str | None = None
    display_name: str | None = None
    disabled: bool = False
    concurrent: bool = False
    quiet_period: float | None = None
    auth_token: str | None = None
    label: str | None = None
    parameters: list[Parameter] = dataclasses.field(default_factory=list)
    shell_steps: list[str] = dataclasses.field(default_factory=list)
    primary_view: str | None = None


def _bool(elem: ET.Element | None) -> bool:
    return elem is not None and (elem.text or "").strip().lower() == "true"


def read_settings(text: str) -> JobSettings:
    """Extract the settings the stand-in acts on from a (normalised) config.xml."""
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        raise BadConfig(f"malformed XML: {exc}") from None
    s = JobSettings()
    desc = root.find("description")
    s.description = (desc.text or "") if desc is not None else None
    display = root.find("displayName")
    s.display_name = display.text.strip() if display is not None and display.text and display.text.strip() else None
    s.disabled = _bool(root.find("disabled"))
    s.concurrent = _bool(root.find("concurrentBuild"))
    quiet = root.find("quietPeriod")
    if quiet is not None and (quiet.text or "").strip().isdigit():
        s.quiet_period = float(quiet.text.strip())
    token = root.find("authToken")
    s.auth_token = token.text.strip() if token is not None and token.text else None
    label = root.find("assignedNode")
    s.label = label.text.strip() if label is not None and label.text else None
    view = root.find("primaryView")
    s.primary_view = view.text if view is not None and view.text else None
    defs = root.find("properties/hudson.model.ParametersDefinitionProperty/parameterDefinitions")
    for d in defs if defs is not None else []:
        name = (d.findtext("name") or "").strip()
        if not name:
            continue
        if d.tag.endswith("ChoiceParameterDefinition"):
            choices = [c.text or "" for c in d.iter("string")]
            default = choices[0] if choices else ""
        elif d.tag.endswith("BooleanParameterDefinition"):
            default = "true" if _bool(d.find("defaultValue")) else "false"
        else:
            default = d.findtext("defaultValue") or ""
        s.parameters.append(Parameter(name, d.tag, default))
    builders = root.find("builders")
    for step in builders if builders is not None else []:
        if step.tag == "hudson.tasks.Shell":
            s.shell_steps.append(step.findtext("command") or "")
    return s


def jenkins_save(text: str, *, disabled: bool | None = None) -> str:
    """Re-write a config the way a Jenkins-initiated (XStream) save does.

    The header becomes ``<?xml version='1.1' encoding='UTF-8'?>`` and, when given, the
    ``<disabled>`` element is set. (Real XStream also drops unknown elements and adds
    ``plugin="x@ver"`` attributes; the stand-in keeps the elements as they are.)
    """
    root = ET.fromstring(text.encode("utf-8"))
    if disabled is not None:
        elem = root.find("disabled")
        if elem is None:
            elem = ET.SubElement(root, "disabled")
            elem.tail = "\n"
        elem.text = "true" if disabled else "false"
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return "<?xml version='1.1' encoding='UTF-8'?>\n" + body


NEW_FOLDER = """<?xml version='1.1' encoding='UTF-8'?>
<com.cloudbees.hudson.plugins.folder.Folder plugin="cloudbees-folder@6.975.v4161e479479f">
  <actions/>
  <description></description>
  <properties/>
  <folderViews class="com.cloudbees.hudson.plugins.folder.views.DefaultFolderViewHolder">
    <views>
      <hudson.model.AllView>
        <owner class="com.cloudbees.hudson.plugins.folder.Folder" reference="../../../.."/>
        <name>All</name>
        <filterExecutors>false</filterExecutors>
        <filterQueue>false</filterQueue>
        <properties class="hudson.model.View$PropertyList"/>
      </hudson.model.AllView>
    </views>
    <tabBar class="hudson.views.DefaultViewsTabBar"/>
  </folderViews>
  <healthMetrics/>
  <icon class="com.cloudbees.hudson.plugins.folder.icons.StockFolderIcon"/>
</com.cloudbees.hudson.plugins.folder.Folder>"""

NEW_FREESTYLE = """<?xml version='1.1' encoding='UTF-8'?>
<project>
  <actions/>
  <description></description>
  <keepDependencies>false</keepDependencies>
  <properties/>
  <scm class="hudson.scm.NullSCM"/>
  <canRoam>true</canRoam>
  <disabled>false</disabled>
  <blockBuildWhenDownstreamBuilding>false</blockBuildWhenDownstreamBuilding>
  <blockBuildWhenUpstreamBuilding>false</blockBuildWhenUpstreamBuilding>
  <triggers/>
  <concurrentBuild>false</concurrentBuild>
  <builders/>
  <publishers/>
  <buildWrappers/>
</project>"""

NEW_PIPELINE = """<?xml version='1.1' encoding='UTF-8'?>
<flow-definition plugin="workflow-job">
  <actions/>
  <description></description>
  <keepDependencies>false</keepDependencies>
  <properties/>
  <triggers/>
  <disabled>false</disabled>
</flow-definition>"""

# What a form-mode createItem (`mode=<class>`) saves for a new, empty item.
EMPTY_CONFIGS = {FOLDER: NEW_FOLDER, FREESTYLE: NEW_FREESTYLE, PIPELINE: NEW_PIPELINE}
