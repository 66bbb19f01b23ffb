"""A real headless Chromium for the web UI tests: Debian's ``chromium`` driven through ``chromedriver``.

Selenium is pointed at the Debian binaries (``DINDJOBS_CHROMIUM`` / ``DINDJOBS_CHROMEDRIVER``
override them) and never downloads a browser. Without them the tests skip, except in CI
(``CI=true`` or ``DINDJOBS_REQUIRE_BROWSER=1``), where they fail. Screenshots go to
``test-artifacts/screenshots/`` (git-ignored; ``DINDJOBS_SCREENSHOTS`` moves them).

Fixture: ``browser`` (a fresh profile per test; quit at teardown). Helpers: ``screenshot(driver,
name)``, ``wait_for(driver, condition, what)``; ``By`` is Selenium's locator names.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    from selenium import webdriver
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the `test` extra installs it; without it the browser tests skip (or fail in CI)
    webdriver = By = None

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DINDJOBS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DINDJOBS_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRE_BROWSER = os.environ.get("CI") == "true" or os.environ.get("DINDJOBS_REQUIRE_BROWSER") == "1"
#: chromedriver's words for an element whose node left the document while it was being read
DETACHED_NODE = "does not belong to the document"
SCREENSHOTS = Path(os.environ.get("DINDJOBS_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900"]
WAIT = 30.0


def _missing(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"a browser is required here (CI) but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path) -> Iterator[Any]:
    """A headless Chromium with a fresh ``--user-data-dir``."""
    if webdriver is None:
        _missing("selenium is not installed (pip install -e '.[test]')")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            _missing(f"{path} is missing (apt-get install chromium chromium-driver)")
    profile = tmp_path / "chromium-profile"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as exc:
        _missing(f"chromium did not start: {exc.msg}")
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``condition(driver)`` until truthy; fail naming ``what`` and the page it was on.

    An element missing or gone stale (the page is loading or reloading, or a script replaced
    it) counts as "not yet", also when chromedriver reports the stale element as an unknown
    error about a node that no longer belongs to the document (it does when the node goes
    between finding the element and reading it).
    """
    def attempt(d: Any) -> Any:
        try:
            return condition(d)
        except WebDriverException as exc:
            if DETACHED_NODE not in (exc.msg or ""):
                raise
            return False

    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(attempt)
    except TimeoutException:
        pytest.fail(f"timed out waiting for {what} (at {driver.current_url})", pytrace=False)


def screenshot(driver: Any, name: str) -> Path:
    """Save a PNG of the whole page as ``<SCREENSHOTS>/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
