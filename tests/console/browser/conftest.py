"""The browser tests' fixtures: one headless Chromium per test session, a fresh tab (its own
browser context: cookies, storage, authenticators) per test."""

import os

import pytest


@pytest.fixture(scope="session")
def browser():
    from browser_support import CHROMIUM, Browser
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (it installs chromium)")
    with Browser() as running:
        yield running


@pytest.fixture
def tab(browser):
    page = browser.new_tab()
    yield page
    page.close()
