"""The stand-in's web UI over plain HTTP: sign-in rules, sessions, crumbs, permissions, escaping, pages."""

from __future__ import annotations

import re

import pytest
import requests

from dindjobs.standin.ui.session import safe_target
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER, Client, job_xml, wait_until

CRUMB = re.compile(r'name="Jenkins-Crumb" value="([0-9a-f]{64})"')
NONCE = re.compile(r"nonce(?:=\"|-)[A-Za-z0-9_-]+")


class Visitor:
    """A cookie-keeping client that reads crumbs from the pages, as a visitor's forms carry them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url + path, allow_redirects=False, timeout=10, **kw)

    def post(self, path: str, data: dict, **kw) -> requests.Response:
        return self.http.post(self.url + path, data=data, allow_redirects=False, timeout=10, **kw)

    def crumb(self, path: str = "login") -> str:
        return CRUMB.search(self.get(path).text).group(1)

    def cookie(self) -> str | None:
        return next((c.value for c in self.http.cookies if c.name.startswith("JSESSIONID.")), None)

    def sign_in(self, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD, target: str | None = None,
                crumb: bool = True) -> requests.Response:
        form = {"j_username": user, "j_password": password}
        page_crumb = self.crumb("login")
        if crumb:
            form["Jenkins-Crumb"] = page_crumb
        if target is not None:
            form["from"] = target
        return self.post("j_spring_security_check", form)


@pytest.fixture
def visitor(standin) -> Visitor:
    return Visitor(standin.url)


@pytest.fixture
def api(standin) -> Client:
    return Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))


def make_job(api: Client, name: str, xml: str, parent: str = "") -> None:
    r = api.post(parent + "createItem", params={"name": name}, data=xml.encode(),
                 headers={"Content-Type": "application/xml"})
    assert r.status_code == 200, r.headers.get("X-Error")


def test_login_form_fields_and_session_cookie(visitor):
    r = visitor.get("login?from=/job/a/")
    assert r.status_code == 200 and r.headers["X-Jenkins"] and r.headers["X-Hudson"] == "1.395"
    cookie = r.headers["Set-Cookie"]
    assert re.match(r"JSESSIONID\.[0-9a-f]{8}=node0\w+\.node0; Path=/; HttpOnly; SameSite=Lax$", cookie)
    form = re.search(r'<form name="login" method="post" action="/j_spring_security_check">(.*?)</form>', r.text).group(1)
    for field in ('name="j_username"', 'name="j_password"', 'name="from" value="/job/a/"', 'name="Jenkins-Crumb"'):
        assert field in form
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_sign_in_rotates_the_session_and_the_old_id_stays_anonymous(visitor, standin):
    visitor.get("login")
    old = visitor.cookie()
    r = visitor.sign_in(target="/job/a/?x=1")
    assert r.status_code == 302 and r.headers["Location"] == standin.url + "job/a/?x=1"
    new = visitor.cookie()
    assert new and new != old
    assert "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Lax" in r.headers["Set-Cookie"]
    assert visitor.get("").status_code == 200
    name = next(c.name for c in visitor.http.cookies)
    stale = requests.get(standin.url, cookies={name: old}, timeout=10)
    assert stale.status_code == 403 and "Authentication required" in stale.text
    assert requests.get(standin.url + "whoAmI/api/json", cookies={name: new}, timeout=10).json()["name"] == ADMIN_USER


@pytest.mark.parametrize("user,password", [(ADMIN_USER, "wrong"), ("nobody", ADMIN_PASSWORD), ("", "")])
def test_failed_sign_in_goes_to_login_error_401_without_saying_which_part(visitor, standin, user, password):
    r = visitor.sign_in(user, password, target="/job/a/")
    assert r.status_code == 302 and r.headers["Location"] == standin.url + "loginError?from=%2Fjob%2Fa%2F"
    page = visitor.get("loginError?from=/job/a/")
    assert page.status_code == 401
    text = CRUMB.sub("", NONCE.sub("", page.text))
    assert "Invalid username or password" in text
    assert "nobody" not in text and "wrong" not in text
    assert visitor.get("").status_code == 403  # still anonymous


def test_sign_in_without_the_crumb_fails_like_a_wrong_password(visitor, standin):
    r = visitor.sign_in(crumb=False)
    assert r.status_code == 302 and r.headers["Location"] == standin.url + "loginError"
    other = Visitor(standin.url)
    stolen = other.crumb()  # a crumb from another session is no better
    r = visitor.post("j_spring_security_check", {"j_username": ADMIN_USER, "j_password": ADMIN_PASSWORD,
                                                  "Jenkins-Crumb": stolen})
    assert r.headers["Location"] == standin.url + "loginError"
    assert visitor.get("").status_code == 403


def test_sign_in_needs_no_crumb_when_csrf_protection_is_off(standin_factory):
    standin = standin_factory(csrf=False)
    visitor = Visitor(standin.url)
    assert "Jenkins-Crumb" not in visitor.get("login").text
    r = visitor.post("j_spring_security_check", {"j_username": ADMIN_USER, "j_password": ADMIN_PASSWORD})
    assert r.headers["Location"] == standin.url
    assert visitor.get("").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example/",
                                    "\\\\evil.example", "/\t/evil.example/", "javascript:alert(1)",
                                    "evil.example", "/login", "/logout"])
def test_off_site_or_sign_in_targets_go_to_the_dashboard(visitor, standin, target):
    r = visitor.sign_in(target=target)
    assert r.status_code == 302 and r.headers["Location"] == standin.url
    assert safe_target(target) is None


def test_safe_targets_are_kept_and_encoded(visitor, standin):
    assert safe_target("/job/a b/") == "/job/a b/"
    r = visitor.sign_in(target="/job/a b/")
    assert r.headers["Location"] == standin.url + "job/a%20b/"


def test_logout_forgets_the_sign_in_and_expires_the_cookie(visitor, standin):
    visitor.sign_in()
    sid = visitor.cookie()
    r = visitor.get("logout")
    assert r.status_code == 302 and r.headers["Location"] == standin.url
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    name = r.headers["Set-Cookie"].split("=", 1)[0]
    assert requests.get(standin.url, cookies={name: sid}, timeout=10).status_code == 403


def test_logout_form_posts_with_the_crumb(visitor, standin):
    visitor.sign_in()
    page = visitor.get("").text
    crumb = CRUMB.search(page).group(1)
    assert visitor.post("logout", {}).status_code == 403  # a POST without the crumb is refused
    assert visitor.get("").status_code == 200
    r = visitor.post("logout", {"Jenkins-Crumb": crumb})
    assert r.status_code == 302 and visitor.get("").status_code == 403


def test_anonymous_sees_only_the_sign_in_page(visitor, api, standin):
    make_job(api, "a", job_xml("echo hi"))
    for path in ("", "view/all/", "job/a/", "job/a/build", "job/a/1/console"):
        r = visitor.get(path)
        assert r.status_code == 403, path
        assert "/login?from=" in r.text and "Project" not in r.text
    crumb = visitor.crumb()
    r = visitor.post("job/a/build?delay=0sec", {"Jenkins-Crumb": crumb, "redirectTo": "."})
    assert r.status_code == 403
    assert standin.model.find_job("a").next_build_number == 1


def test_anonymous_read_shows_pages_without_build_buttons(standin_factory):
    standin = standin_factory(anonymous_read=True)
    api = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    make_job(api, "a", job_xml("echo hi"))
    visitor = Visitor(standin.url)
    page = visitor.get("job/a/")
    assert page.status_code == 200 and "Project a" in page.text
    assert "Build Now" not in page.text and "log in" in page.text
    assert "Build" not in visitor.get("").text.split("<table", 1)[1].split("</table>")[0].replace("Last", "")
    r = visitor.post("job/a/build?delay=0sec", {"Jenkins-Crumb": visitor.crumb(), "redirectTo": "."})
    assert r.status_code == 403 and r.headers["X-Required-Permission"] == "hudson.model.Item.Build"
    assert standin.model.find_job("a").next_build_number == 1


def test_build_now_form_needs_the_crumb_and_comes_back_to_the_job(visitor, api, standin):
    make_job(api, "a", job_xml("echo hi"))
    visitor.sign_in()
    page = visitor.get("job/a/").text
    assert 'action="/job/a/build?delay=0sec"' in page
    assert visitor.post("job/a/build?delay=0sec", {"redirectTo": "."}).status_code == 403
    crumb = CRUMB.search(page).group(1)
    r = visitor.post("job/a/build?delay=0sec", {"Jenkins-Crumb": crumb, "redirectTo": "."})
    assert r.status_code == 303 and r.headers["Location"] == standin.url + "job/a/"
    run = wait_until(lambda: standin.model.find_job("a").permalink("lastCompletedBuild"), what="build")
    assert run.result == "SUCCESS"
    r = visitor.post("job/a/build?delay=0sec", {"Jenkins-Crumb": crumb, "redirectTo": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["Location"] == standin.url + "job/a/"


def test_the_rest_api_answers_are_unchanged_next_to_the_ui(api, standin):
    make_job(api, "p", job_xml("echo hi", params=[("P", "d")]))
    r = api.post("job/p/buildWithParameters", params={"P": "v"})
    assert r.status_code == 201 and "/queue/item/" in r.headers["Location"]
    assert api.post("job/p/build").status_code == 400  # no `json`: "Nothing is submitted"
    assert api.get("job/p").status_code == 302


def test_parameters_form_posts_each_kind(visitor, api, standin):
    xml = job_xml("echo hi", params=[("S", "s-default")]).replace(
        "</parameterDefinitions>",
        "<hudson.model.BooleanParameterDefinition><name>B</name><defaultValue>true</defaultValue>"
        "</hudson.model.BooleanParameterDefinition>"
        "<hudson.model.ChoiceParameterDefinition><name>C</name><choices class=\"java.util.Arrays$ArrayList\">"
        "<a class=\"string-array\"><string>one</string><string>two</string></a></choices>"
        "</hudson.model.ChoiceParameterDefinition>"
        "<hudson.model.PasswordParameterDefinition><name>PW</name><defaultValue>secret-default</defaultValue>"
        "</hudson.model.PasswordParameterDefinition></parameterDefinitions>")
    make_job(api, "k", xml)
    visitor.sign_in()
    form = visitor.get("job/k/build?delay=0sec")
    assert form.status_code == 200
    assert "secret-default" not in form.text
    assert '<option value="two">two</option>' in form.text
    crumb = CRUMB.search(form.text).group(1)
    # An unchecked box sends only the hidden "false"; an empty password keeps its default.
    r = visitor.post("job/k/buildWithParameters?delay=0sec",
                     {"Jenkins-Crumb": crumb, "redirectTo": ".", "S": "given", "B": "false", "C": "two", "PW": ""})
    assert r.status_code == 303
    run = wait_until(lambda: standin.model.find_job("k").permalink("lastCompletedBuild"), what="build")
    assert run.params == [("S", "given", "hudson.model.StringParameterValue"),
                          ("B", "false", "hudson.model.BooleanParameterValue"),
                          ("C", "two", "hudson.model.StringParameterValue"),
                          ("PW", "secret-default", "hudson.model.PasswordParameterValue")]
    assert "secret-default" not in visitor.get(f"job/k/{run.number}/").text


def test_pages_escape_names_descriptions_and_logs(visitor, api, standin):
    evil = "<script>alert(1)</script>"
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    xml = job_xml("echo '<script>alert(1)</script>'", description=evil).replace(
        "<description>", "<displayName>&lt;script&gt;alert(1)&lt;/script&gt;</displayName><description>", 1)
    make_job(api, "x", xml)
    api.fetch_crumb()
    assert api.post("job/x/build").status_code == 201
    run = wait_until(lambda: standin.model.find_job("x").permalink("lastCompletedBuild"), what="build")
    visitor.sign_in()
    for path in ("", "job/x/", f"job/x/{run.number}/", f"job/x/{run.number}/console"):
        page = visitor.get(path).text
        assert evil not in page and escaped in page, path


def test_console_follows_a_running_build_and_marks_evidence(visitor, api, standin):
    gate = standin.home / "gate"
    make_job(api, "c", job_xml(f"echo DINDJOBS-EVIDENCE tag=a:b\nwhile [ ! -e {gate} ]; do sleep 0.05; done"))
    api.fetch_crumb()
    api.post("job/c/build")
    run = wait_until(lambda: standin.model.find_job("c").permalink("lastBuild"), what="build start")
    visitor.sign_in()
    wait_until(lambda: "+ [ ! -e" in visitor.get(f"job/c/{run.number}/console").text, what="the loop")
    page = visitor.get(f"job/c/{run.number}/console").text
    assert '<mark class="evidence">DINDJOBS-EVIDENCE tag=a:b</mark>' in page
    assert "+ echo DINDJOBS-EVIDENCE" in page and '<mark class="evidence">+ echo' not in page
    assert "logText/progressiveText" in page and "<script nonce=" in page
    start = int(re.search(r'data-start="(\d+)"', page).group(1))
    gate.touch()
    wait_until(lambda: not standin.model.find_job("c").permalink("lastBuild").in_progress, what="the end")
    more = visitor.get(f"job/c/{run.number}/logText/progressiveText?start={start}")
    assert "Finished: SUCCESS" in more.text and "X-More-Data" not in more.headers
    done = visitor.get(f"job/c/{run.number}/console").text
    assert "<script" not in done and "Finished: SUCCESS" in done


def test_a_restart_signs_everyone_out(visitor, standin):
    visitor.sign_in()
    assert visitor.get("").status_code == 200
    standin.restart()
    r = visitor.get("")
    assert r.status_code == 403 and "Authentication required" in r.text
