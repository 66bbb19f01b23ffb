"""Quiet-down and build records through dindjobs.jenkins.client, against the stand-in."""

from __future__ import annotations

import pytest

from dindjobs.config import Secret, Settings
from dindjobs.jenkins.client import Jenkins
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_USER, job_xml, wait_until

FOLDER = ("<?xml version='1.1' encoding='UTF-8'?>\n<com.cloudbees.hudson.plugins.folder.Folder>"
          "<properties/></com.cloudbees.hudson.plugins.folder.Folder>")


@pytest.fixture
def client(standin):
    settings = Settings(url=standin.url, user=ADMIN_USER, password=Secret(ADMIN_PASSWORD, "test"), timeout=10)
    jenkins = Jenkins(settings)
    yield jenkins
    jenkins.close()


def test_quiet_down_holds_new_builds_and_lists_running_ones(client):
    client.create_job("slow", job_xml("sleep 1.5"))
    client.create_job("f", FOLDER)
    client.create_job("f/quick", job_xml("true"))
    client.trigger("slow")
    wait_until(lambda: client.running_builds() == ["slow #1"], timeout=10, what="slow #1 running")

    assert not client.quieting_down()
    client.quiet_down("backup in progress")
    assert client.quieting_down()
    client.trigger("f/quick")  # queues, but does not start during quiet-down
    assert client.running_builds() == ["slow #1"]
    wait_until(lambda: client.running_builds() == [], timeout=10, what="slow #1 finished")
    assert client.job_builds(all_builds=True) == {"slow": [{"number": 1, "building": False}], "f/quick": []}

    client.cancel_quiet_down()
    assert not client.quieting_down()
    wait_until(lambda: client.job_builds(all_builds=True)["f/quick"] == [{"number": 1, "building": False}],
               timeout=10, what="f/quick #1 done after the quiet-down ended")
