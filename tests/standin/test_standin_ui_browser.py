"""The stand-in's web UI in a real headless Chromium: sign in, folder, build with parameters, live console.

The jobs are pushed with the real ``dindjobs sync`` from ``ui_jobs/`` (jjb/'s shape and
parameters, no Docker needed); the admin signs in with the password from a file, as after
``make demo``. Screenshots land in ``test-artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from support.browser import By, screenshot, wait_for
from support.cli import run_cli
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_USER, Client, wait_until

pytestmark = pytest.mark.timeout(300)

JOBS = Path(__file__).parent / "ui_jobs"
JOB_URL = "job/images/job/build-hello/"
EVIDENCE = ["DINDJOBS-EVIDENCE daemon-id=ui-test-daemon", "DINDJOBS-EVIDENCE tag=hello:ui-test"]


@pytest.fixture
def demo(standin_factory, tmp_path, monkeypatch, clean_env, capsys):
    """A stand-in whose admin password is in a file, with ui_jobs/ synced into it: (standin, password)."""
    password = secrets.token_urlsafe(16)
    pw_file = tmp_path / "admin-password"
    pw_file.write_text(password + "\n")
    pw_file.chmod(0o600)
    monkeypatch.setenv("JENKINS_ADMIN_ID", "admin")
    monkeypatch.setenv("JENKINS_ADMIN_PASSWORD_FILE", str(pw_file))
    standin = standin_factory(users=None)
    monkeypatch.setenv("DINDJOBS_URL", standin.url)
    monkeypatch.setenv("DINDJOBS_USER", "admin")
    monkeypatch.setenv("DINDJOBS_PASSWORD_FILE", str(pw_file))
    code, _out, err = run_cli(capsys, "sync", str(JOBS), "--yes")
    assert code == 0, err
    assert standin.model.find_job("images/build-hello") is not None
    return standin, password


def sign_in(driver, name: str, password: str) -> None:
    driver.find_element(By.NAME, "j_username").send_keys(name)
    driver.find_element(By.NAME, "j_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form[name=login] button[type=submit]").click()


def session_cookie(driver) -> dict:
    cookies = [c for c in driver.get_cookies() if c["name"].startswith("JSESSIONID.")]
    assert len(cookies) == 1, cookies
    return cookies[0]


def log_text(driver) -> str:
    return driver.find_element(By.ID, "log").text


def test_sign_in_build_with_parameters_follow_the_console_and_sign_out(browser, demo):
    standin, password = demo
    url = standin.url
    # Anonymous: the folder asks for a sign-in (Jenkins' 403 page refreshes to /login?from=...).
    browser.get(url + "job/images/")
    wait_for(browser, lambda d: "/login" in d.current_url and d.find_elements(By.NAME, "j_username"),
             "the sign-in form")
    before = session_cookie(browser)
    assert before["httpOnly"] is True and before["sameSite"] == "Lax"
    sign_in(browser, "admin", password)
    wait_for(browser, lambda d: d.current_url == url + "job/images/", "the folder page after sign-in")
    after = session_cookie(browser)
    assert after["value"] != before["value"], "the session id must change at sign-in"
    assert "admin" in browser.find_element(By.CSS_SELECTOR, "header .who").text
    assert "not Jenkins" in browser.find_element(By.CSS_SELECTOR, ".banner").text

    browser.find_element(By.LINK_TEXT, "build-hello").click()
    wait_for(browser, lambda d: d.current_url == url + JOB_URL, "the job page")
    params = browser.find_element(By.XPATH, "//h2[text()='Parameters']/following-sibling::table").text
    for name in ("IMAGE_NAME", "IMAGE_TAG", "BUILD_CONTEXT", "DOCKERFILE", "BUILD_ARGS"):
        assert name in params
    assert "No builds yet." in browser.page_source

    browser.find_element(By.LINK_TEXT, "Build with Parameters").click()
    tag = browser.find_element(By.NAME, "IMAGE_TAG")
    assert tag.get_attribute("value") == "latest"
    assert "FROM dindjobs/busybox-base" in browser.find_element(By.NAME, "DOCKERFILE").get_attribute("value")
    tag.clear()
    tag.send_keys("ui-test")
    browser.find_element(By.CSS_SELECTOR, "form.params button[type=submit]").click()
    wait_for(browser, lambda d: d.current_url == url + JOB_URL, "the job page after Build")

    def build_link(d):
        found = d.find_elements(By.LINK_TEXT, "#1")
        if not found:
            d.refresh()
        return found

    wait_for(browser, build_link, "build #1 in the history")
    browser.find_element(By.LINK_TEXT, "Console Output").click()
    wait_for(browser, lambda d: d.current_url == url + JOB_URL + "1/console", "the console page")
    wait_for(browser, lambda d: "waiting for gate one" in log_text(d), "the running build's first lines")
    assert browser.find_element(By.ID, "result").text == "In progress"
    assert "would build hello:ui-test" in log_text(browser)
    # Lines written from now on must arrive without a reload: the marker survives only on this page.
    browser.execute_script("window.djSamePage = true;")
    (standin.home / "gate-one").touch()
    wait_for(browser, lambda d: "after gate one" in log_text(d), "a line appended live")
    assert browser.execute_script("return window.djSamePage === true;"), "the page reloaded instead of following"
    screenshot(browser, "console-running")
    (standin.home / "gate-two").touch()
    wait_for(browser, lambda d: d.find_element(By.ID, "result").text == "SUCCESS", "SUCCESS on the console page")
    assert "Finished: SUCCESS" in log_text(browser)
    marked = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#log mark.evidence")]
    assert len(marked) == 3 and all(line in marked for line in EVIDENCE)
    assert marked[1].startswith("DINDJOBS-EVIDENCE image-id=sha256:")
    assert "Started by user admin" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    screenshot(browser, "console")

    browser.get(url + JOB_URL)
    assert browser.find_element(By.CSS_SELECTOR, "h1 .ball").get_attribute("class") == "ball c-blue"
    screenshot(browser, "job")
    browser.get(url)
    tabs = [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".tabs a")]
    assert tabs == ["all", "images"]
    screenshot(browser, "dashboard")
    browser.find_element(By.LINK_TEXT, "images").click()  # the first "images" link: the list-view tab
    wait_for(browser, lambda d: d.current_url == url + "view/images/", "the images view")
    row = browser.find_element(By.CSS_SELECTOR, "table.list tbody tr").text
    assert "images \u00bb build-hello" in row and "#1" in row
    screenshot(browser, "view")

    browser.find_element(By.CSS_SELECTOR, "header .who button").click()  # log out (a POST with the crumb)
    wait_for(browser, lambda d: "/login" in d.current_url, "the sign-in page after logging out")
    browser.get(url + JOB_URL)
    wait_for(browser, lambda d: "/login" in d.current_url, "the sign-in page for the job after logging out")


def test_wrong_password_missing_crumb_and_off_site_from_are_refused(browser, demo):
    standin, password = demo
    url = standin.url
    browser.get(url + "login")
    sign_in(browser, "admin", password + "x")
    wait_for(browser, lambda d: d.current_url.startswith(url + "loginError"), "the sign-in error page")
    assert browser.find_element(By.CSS_SELECTOR, ".error").text == "Invalid username or password"
    browser.get(url + "login")
    sign_in(browser, "nobody", password)
    wait_for(browser, lambda d: d.current_url.startswith(url + "loginError"), "the sign-in error page")
    assert browser.find_element(By.CSS_SELECTOR, ".error").text == "Invalid username or password"

    # The right password without the session's crumb fails like a wrong one.
    browser.get(url + "login")
    browser.execute_script("document.querySelector('input[name=\"Jenkins-Crumb\"]').remove();")
    sign_in(browser, "admin", password)
    wait_for(browser, lambda d: d.current_url.startswith(url + "loginError"), "the error page without a crumb")
    browser.get(url)
    wait_for(browser, lambda d: "/login" in d.current_url, "still signed out")

    # Off-site targets, in the query or edited into the form, end on the stand-in's dashboard.
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example/"):
        browser.get(url + "login?from=" + evil.replace("/", "%2F").replace("\\", "%5C"))
        sign_in(browser, "admin", password)
        wait_for(browser, lambda d: d.current_url == url, f"the dashboard after from={evil}")
        browser.delete_all_cookies()
    browser.get(url + "login")
    browser.execute_script("document.querySelector('input[name=\"from\"]').value = 'https://evil.example/';")
    sign_in(browser, "admin", password)
    wait_for(browser, lambda d: d.current_url == url, "the dashboard after an edited from")

    # A build form without its crumb is refused, and nothing is queued.
    browser.get(url + JOB_URL + "build?delay=0sec")
    browser.execute_script("document.querySelector('form.params input[name=\"Jenkins-Crumb\"]').remove();")
    browser.find_element(By.CSS_SELECTOR, "form.params button[type=submit]").click()
    wait_for(browser, lambda d: "No valid crumb" in d.page_source, "the crumb refusal")
    assert standin.model.find_job("images/build-hello").next_build_number == 1
    assert not standin.model.queue.items


def test_script_in_names_descriptions_and_logs_is_shown_as_text(browser, standin):
    evil = "<script>window.djInjected = true;</script>"
    api = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    api.fetch_crumb()
    config = (f"<?xml version='1.1' encoding='UTF-8'?><project><description>{_x(evil)} &lt;img src=x "
              f"onerror=\"window.djInjected=true\"&gt;</description><displayName>{_x(evil)}</displayName>"
              "<builders><hudson.tasks.Shell><command>echo '&lt;script&gt;window.djInjected = true;"
              "&lt;/script&gt;'\necho 'DINDJOBS-EVIDENCE tag=&lt;script&gt;x&lt;/script&gt;'</command>"
              "</hudson.tasks.Shell></builders></project>")
    r = api.post("createItem", params={"name": "xss"}, data=config.encode(), headers={"Content-Type": "application/xml"})
    assert r.status_code == 200
    assert api.post("job/xss/build").status_code == 201
    wait_until(lambda: (standin.model.find_job("xss").permalink("lastCompletedBuild") or None), what="the build")

    browser.get(standin.url + "login")
    sign_in(browser, ADMIN_USER, ADMIN_PASSWORD)
    wait_for(browser, lambda d: d.current_url == standin.url, "the dashboard")
    assert evil in browser.find_element(By.CSS_SELECTOR, "table.list").text
    browser.get(standin.url + "job/xss/")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Project {evil}"
    assert evil in browser.find_element(By.CSS_SELECTOR, ".desc").text
    browser.get(standin.url + "job/xss/1/console")
    text = log_text(browser)
    assert evil in text and "DINDJOBS-EVIDENCE tag=<script>x</script>" in text
    assert browser.find_element(By.CSS_SELECTOR, "#log mark.evidence").text == "DINDJOBS-EVIDENCE tag=<script>x</script>"
    for page in ("", "job/xss/", "job/xss/1/", "job/xss/1/console"):
        browser.get(standin.url + page)
        assert browser.execute_script("return window.djInjected === undefined;"), page
        assert not browser.find_elements(By.CSS_SELECTOR, "main script, main img")


def _x(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
