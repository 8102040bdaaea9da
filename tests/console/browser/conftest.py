"""The browser tests' fixtures: one headless Chromium per test session, a fresh tab (its own
browser context: cookies, storage, authenticators) per test. A failed test leaves its tab's
screenshot and what the page logged in its tmp_path, to see what the browser saw."""

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.browser_failed = report.failed


@pytest.fixture(scope="session")
def browser():
    from browser_support import Browser, require_browser
    require_browser()
    with Browser() as running:
        yield running


@pytest.fixture
def tab(browser, request, tmp_path):
    page = browser.new_tab()
    yield page
    if getattr(request.node, "browser_failed", False):
        from browser_support import BrowserError
        try:
            page.screenshot(tmp_path / "failure.png")
        except BrowserError:
            pass
        (tmp_path / "failure.log").write_text(
            "\n".join(["console:", *page.console, "exceptions:", *page.exceptions, "log:",
                       *(str(entry) for entry in page.log)]) + "\n")
    page.close()


@pytest.fixture
def open_tab(browser):
    """More tabs for one test (a second operator's browser), closed after it."""
    opened = []

    def make():
        opened.append(browser.new_tab())
        return opened[-1]
    yield make
    for page in opened:
        page.close()
