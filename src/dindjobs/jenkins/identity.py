"""Which Jenkins answers: a real one, or the dindjobs stand-in imitating one.

The stand-in sends Jenkins' own headers (``X-Jenkins`` with the version it imitates) so clients
behave as with Jenkins, plus ``X-Dindjobs-Standin``; user-facing output names what it found.
"""

from __future__ import annotations

from collections.abc import Mapping

STANDIN_HEADER = "X-Dindjobs-Standin"
PIPELINE_CLASS = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
PIPELINE_ON_STANDIN = ("running pipelines needs jenkins.war: the dindjobs stand-in stores Pipeline jobs "
                       "but cannot run them")


def server_label(version: str | None, standin: str | None) -> str:
    """``Jenkins 2.580.2``, ``dindjobs stand-in (Jenkins 2.580.2 REST API)`` or ``Jenkins (version unknown)``."""
    if standin:
        return f"dindjobs stand-in (Jenkins {version or standin} REST API)"
    return f"Jenkins {version}" if version else "Jenkins (version unknown)"


def label_from_headers(headers: Mapping[str, str]) -> str | None:
    """The label for a response's headers, or None when they are not Jenkins' (no ``X-Jenkins``)."""
    version = headers.get("X-Jenkins")
    standin = headers.get(STANDIN_HEADER)
    return server_label(version, standin) if version or standin else None
