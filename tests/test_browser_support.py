"""support.browser.wait_for on a driver the test controls (no browser needed): what counts as "not yet"."""

from __future__ import annotations

import pytest

pytest.importorskip("selenium")

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402

from support.browser import wait_for  # noqa: E402


class Page:
    """Answers each read with the next of ``answers``; an exception is raised instead of returned."""

    current_url = "http://127.0.0.1:1/job/x/"

    def __init__(self, *answers) -> None:
        self.answers = list(answers)

    def read(self):
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def test_a_node_replaced_while_read_is_not_yet_like_a_stale_element():
    detached = WebDriverException('unknown error: unhandled inspector error: {"code":-32000,'
                                  '"message":"Node with given id does not belong to the document"}')
    page = Page(detached, StaleElementReferenceException("stale"), "", "SUCCESS")
    assert wait_for(page, lambda d: d.read() == "SUCCESS" and "done", "SUCCESS", timeout=5) == "done"
    assert page.answers == []


def test_any_other_driver_error_still_fails_at_once():
    page = Page(WebDriverException("unknown error: session deleted because of page crash"), "SUCCESS")
    with pytest.raises(WebDriverException, match="page crash"):
        wait_for(page, lambda d: d.read() == "SUCCESS", "SUCCESS", timeout=5)
    assert page.answers == ["SUCCESS"]
