"""Settings precedence and secret handling (src/dindjobs/config.py)."""

from __future__ import annotations

import logging

import pytest

from dindjobs.config import RedactingFilter, Secret, canonical_url, load_settings, read_secret_file, redact
from dindjobs.errors import ConfigError, DockerEngineError, SecretError

SECRET = "s3cr3t-Value-42"


def write_ini(path, text):
    path.write_text(text)
    return path


def test_flag_beats_env_beats_file(tmp_path):
    ini = write_ini(tmp_path / "j.ini", "[jenkins]\nurl=http://file:1/\nuser=fileuser\n")
    env = {"DINDJOBS_URL": "http://env:2/", "DINDJOBS_CONFIG": str(ini)}
    assert load_settings({}, env={"DINDJOBS_CONFIG": str(ini)}).url == "http://file:1/"
    assert load_settings({}, env=env).url == "http://env:2/"
    assert load_settings({"url": "http://flag:3"}, env=env).url == "http://flag:3/"
    assert load_settings({}, env=env).user == "fileuser"
    assert load_settings({"user": "flaguser"}, env={**env, "DINDJOBS_USER": "envuser"}).user == "flaguser"
    assert load_settings({}, env={**env, "DINDJOBS_USER": "envuser"}).user == "envuser"


def test_jjb_ini_works_as_is(tmp_path):
    ini = write_ini(
        tmp_path / "jenkins_jobs.ini",
        f"[job_builder]\nignore_cache=True\n\n[jenkins]\nurl=https://ci.example/\nuser=jjb\npassword={SECRET}\ntimeout=7\n",
    )
    s = load_settings({"conf": str(ini)}, env={})
    assert (s.url, s.user, s.timeout) == ("https://ci.example/", "jjb", 7.0)
    assert s.credential.reveal() == SECRET
    assert SECRET not in repr(s) and SECRET not in str(s.describe())


def test_token_from_env_and_file(tmp_path):
    token_file = tmp_path / "tok"
    token_file.write_text(SECRET + "\n")
    s = load_settings({}, env={"DINDJOBS_USER": "u", "DINDJOBS_TOKEN_FILE": str(token_file)})
    assert s.token.reveal() == SECRET and s.token.source == f"file {token_file}"
    s = load_settings({}, env={"DINDJOBS_USER": "u", "DINDJOBS_TOKEN": "other"})
    assert s.token.reveal() == "other"
    # A flag naming a file beats the environment's value.
    s = load_settings({"token_file": str(token_file)}, env={"DINDJOBS_USER": "u", "DINDJOBS_TOKEN": "other"})
    assert s.token.reveal() == SECRET


def test_missing_secret_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(SecretError, match=r"password file .*nope does not exist"):
        load_settings({}, env={"DINDJOBS_USER": "u", "DINDJOBS_PASSWORD_FILE": str(missing)})
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(SecretError, match="is empty"):
        read_secret_file(empty, "token")


def test_secret_never_in_exception_messages(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text(f"[jenkins\npassword={SECRET}\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"conf": str(bad)}, env={})
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings({}, env={"DINDJOBS_TOKEN": SECRET, "DINDJOBS_URL": "http://ci.example/"})  # no user
    assert SECRET not in str(info.value)


def test_secret_repr_hides_value():
    s = Secret(SECRET, "env X")
    assert SECRET not in repr(s) and SECRET not in str(s) and SECRET not in f"{s}"
    assert s.reveal() == SECRET


def test_wrapper_state_password_is_the_fallback(tmp_path):
    state = tmp_path / "state"
    (state / "ci").mkdir(parents=True)
    (state / "ci" / "admin-password").write_text(SECRET)
    s = load_settings({"name": "ci"}, env={"DINDJOBS_STATE_DIR": str(state)})
    assert s.user == "admin" and s.password.reveal() == SECRET
    # An explicit token wins over the state file.
    s = load_settings({"name": "ci"}, env={"DINDJOBS_STATE_DIR": str(state), "DINDJOBS_USER": "u", "DINDJOBS_TOKEN": "t"})
    assert s.token.reveal() == "t" and s.password is None


def test_prompt_only_when_user_known_and_no_secret():
    asked = []
    s = load_settings({"user": "bob"}, env={"DINDJOBS_STATE_DIR": "/nonexistent"}, prompt=lambda t: asked.append(t) or SECRET)
    assert asked and s.password.source == "prompt"
    s = load_settings({}, env={"DINDJOBS_STATE_DIR": "/nonexistent"}, prompt=lambda t: asked.append(t) or SECRET)
    assert len(asked) == 1 and s.credential is None


@pytest.mark.parametrize("bad", ["ftp://x", "localhost:8080"])
def test_bad_url_rejected(bad):
    with pytest.raises(ConfigError, match="http:// or https://"):
        load_settings({"url": bad}, env={})


def test_redacting_filter_scrubs_log_records(caplog):
    logger = logging.getLogger("dindjobs.test")
    handler = logging.StreamHandler()
    record = logger.makeRecord("x", logging.INFO, __file__, 1, "auth with %s ok", (SECRET,), None)
    RedactingFilter([SECRET]).filter(record)
    assert SECRET not in handler.format(record) and "***" in record.getMessage()


def test_url_source_explicit_beats_the_wrapper_which_beats_the_default():
    recorded = {"ci": "http://127.0.0.1:9090/"}
    lookup = recorded.get
    s = load_settings({"name": "ci"}, env={}, wrapper_url=lookup)
    assert (s.url, s.url_source, s.warnings) == ("http://127.0.0.1:9090/", "wrapper ci (container label)", ())
    s = load_settings({}, env={"DINDJOBS_NAME": "ci", "DINDJOBS_URL": "http://localhost:9090"}, wrapper_url=lookup)
    assert (s.url, s.url_source, s.warnings) == ("http://localhost:9090/", "env DINDJOBS_URL", ())
    s = load_settings({"url": "http://127.0.0.1:8080/"}, env={"DINDJOBS_NAME": "ci"}, wrapper_url=lookup)
    assert s.url_source == "flag --url"
    assert s.warnings == ("using http://127.0.0.1:8080/ (flag --url), not http://127.0.0.1:9090/ of wrapper 'ci'",)
    s = load_settings({"name": "other"}, env={}, wrapper_url=lookup)
    assert (s.url, s.url_source) == ("http://127.0.0.1:8080/", "default (no wrapper named 'other' on the engine)")
    assert load_settings({}, env={}, wrapper_url=lookup).url_source == "default"
    assert load_settings({}, env={}, wrapper_url=lookup).describe()["url_source"] == "default"


def test_an_unreachable_engine_falls_back_to_the_default_and_says_why():
    def lookup(name):
        raise DockerEngineError("cannot reach the Docker engine at unix:///nowhere")

    s = load_settings({"name": "ci"}, env={}, wrapper_url=lookup)
    assert s.url_source == "default (cannot reach the Docker engine at unix:///nowhere)"


def test_a_wrapper_password_without_user_means_the_admin(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(SECRET)
    s = load_settings({}, env={"DINDJOBS_PASSWORD_FILE": str(secret)})
    assert (s.user, s.password.source) == ("admin", f"file {secret}")
    s = load_settings({"name": "ci"}, env={"DINDJOBS_PASSWORD_FILE": str(secret)},
                      wrapper_url={"ci": "http://127.0.0.1:9090/"}.get)
    assert (s.url, s.user) == ("http://127.0.0.1:9090/", "admin")


def test_wrapper_credentials_come_from_its_state_dir(tmp_path):
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "admin-password").write_text(SECRET + "\n")
    s = load_settings({"name": "ci"}, env={"DINDJOBS_STATE_DIR": str(tmp_path)},
                      wrapper_url={"ci": "http://127.0.0.1:9090/"}.get)
    assert (s.user, s.credential.reveal()) == ("admin", SECRET)


@pytest.mark.parametrize("spelling", ["http://localhost:18080", "HTTP://LOCALHOST:18080/", "http://[::1]:18080/",
                                      "http://127.0.0.1:18080//"])
def test_canonical_url_ignores_spelling(spelling):
    assert canonical_url(spelling) == "http://127.0.0.1:18080/"


def test_canonical_url_keeps_what_matters():
    assert canonical_url("https://CI.example:443/jenkins") == "https://ci.example/jenkins/"
    assert canonical_url("http://ci.example:8080/") != canonical_url("http://ci.example:8081/")
    assert canonical_url("http://ci.example/Jenkins/") != canonical_url("http://ci.example/jenkins/")


@pytest.mark.parametrize("secret, text, expected", [
    ("e", "error: badtree/b.yaml: e", "error: badtree/b.yaml: ***"),
    ("admin", "Started by user admin; user 'administrator'", "Started by user ***; user 'administrator'"),
    ("a.b*c", "a.b*c and aXbbc and xa.b*c", "*** and aXbbc and xa.b*c"),
    (SECRET, f"token={SECRET}&x, {SECRET}.", "token=***&x, ***."),
])
def test_redact_masks_whole_occurrences_only(secret, text, expected):
    assert redact(text, [secret]) == expected


@pytest.mark.parametrize("text, line, words", [
    ("[jenkins]\nurl = http://x/\nthis line is wrong\n", 3, "not a valid ini line"),
    ("url = http://x/\n", 1, "before any [section]"),
    ("[jenkins]\nuser = a\nuser = b\n", 3, "'user' is set twice in [jenkins]"),
    ("[jenkins]\n[dindjobs]\n[jenkins]\n", 3, "section [jenkins] appears twice"),
])
def test_ini_problems_name_the_line_without_its_text(tmp_path, text, line, words):
    ini = write_ini(tmp_path / "x.ini", text.replace("wrong", f"wrong {SECRET}"))
    with pytest.raises(ConfigError) as info:
        load_settings({"conf": str(ini)}, env={})
    assert info.value.message.startswith(f"{ini}:{line}: ") and words in info.value.message
    assert SECRET not in info.value.message


def test_ini_that_is_not_utf8_names_the_line(tmp_path):
    ini = tmp_path / "x.ini"
    ini.write_bytes(b"[jenkins]\nuser = caf\xe9\n")
    with pytest.raises(ConfigError, match=r"x\.ini:2: byte 0xe9 is not UTF-8"):
        load_settings({"conf": str(ini)}, env={})


def test_bad_url_message_has_no_password():
    with pytest.raises(ConfigError) as info:
        load_settings({"url": f"ftp://admin:{SECRET}@host/"}, env={})
    assert SECRET not in info.value.message and "ftp://***@host/" in info.value.message
