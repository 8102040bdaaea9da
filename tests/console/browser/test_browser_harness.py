"""The harness's own promises: a Chromium leaves no process behind when closed (or when it
cannot start), waits end at their deadline with the condition named, a page's exception is
reported as such, and typing reaches the page as text."""
from __future__ import annotations

import pytest
from browser_support import Browser, BrowserError, PageError, group_alive, require_browser

PAGE = "data:text/html;charset=utf-8,<input id=field><p id=out>ready</p>"


def test_close_leaves_no_process_and_no_profile():
    require_browser()
    browser = Browser().start()
    pgid, profile = browser.proc.pid, browser.profile
    browser.new_tab().navigate(PAGE)
    browser.close()
    assert group_alive(pgid) == [] and not profile.exists()


def test_a_browser_that_cannot_start_is_reported_and_cleaned_up():
    browser = Browser("/bin/false")
    with pytest.raises(BrowserError, match="exited"):
        browser.start()
    assert group_alive(browser.proc.pid) == [] and not browser.profile.exists()


def test_wait_ends_at_its_deadline_naming_the_condition(tab):
    tab.navigate(PAGE)
    with pytest.raises(PageError, match="not true within 200 ms: document.querySelector"):
        tab.wait_for("document.querySelector('#never')", timeout=0.2)


def test_wait_sees_a_later_change(tab):
    tab.navigate(PAGE)
    tab.evaluate("setTimeout(() => { document.getElementById('out').textContent = 'done'; }, 0)"
                 " && true")
    assert tab.wait_for_text("#out", "done") == "done"


def test_page_exception_is_a_page_error(tab):
    tab.navigate(PAGE)
    with pytest.raises(PageError, match="boom"):
        tab.evaluate("Promise.reject(new Error('boom'))")


def test_typed_text_reaches_the_page(tab):
    tab.navigate(PAGE)
    tab.type_text("#field", "caf\u00e9 <b> \u2603")
    assert tab.evaluate("document.getElementById('field').value") == "caf\u00e9 <b> \u2603"
