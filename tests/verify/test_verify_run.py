"""How verify triggers a job: the default values of a parameterized job's parameters."""

from __future__ import annotations

from dindjobs.verify.run import default_parameters


def test_default_parameters_of_a_parameterized_job():
    info = {"property": [
        {"_class": "hudson.model.BuildDiscarderProperty"},
        {"_class": "hudson.model.ParametersDefinitionProperty", "parameterDefinitions": [
            {"name": "IMAGE_NAME", "defaultParameterValue": {"value": "hello"}},
            {"name": "DOCKERFILE", "defaultParameterValue": {"value": "FROM x\nRUN y\n"}},
            {"name": "EMPTY", "defaultParameterValue": {"value": None}},
            {"name": "FLAG", "defaultParameterValue": {"value": True}},
            {"name": "NODEFAULT"},
        ]},
    ]}
    assert default_parameters(info) == {"IMAGE_NAME": "hello", "DOCKERFILE": "FROM x\nRUN y\n",
                                        "EMPTY": "", "FLAG": "true", "NODEFAULT": ""}


def test_a_job_without_parameters_is_triggered_with_plain_build():
    assert default_parameters({"property": [{"_class": "x"}]}) is None
    assert default_parameters({}) is None
