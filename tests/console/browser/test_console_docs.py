"""The pictures of docs/APPROVALS.md, taken by the real console in the real browser: with
MCP_DOCS_SCREENSHOTS=1 they are written to docs/images (to refresh the docs), otherwise to
the test's tmp directory (the same steps run, so the docs' flow keeps working)."""
from __future__ import annotations

import struct

import pytest
from browser_support import VIEWPORT
from console_browser_support import approve, enroll, login, run_console, screenshot_dir

PICTURES = ("enroll.png", "login.png", "proposals.png", "proposal.png", "approved-1-of-2.png")


@pytest.fixture
def console(tmp_path):
    with run_console(tmp_path) as running:
        yield running


def test_docs_pictures(console, tab, open_tab, tmp_path):
    out = screenshot_dir(tmp_path)
    alice = enroll(tab, console, "alice")
    tab.screenshot(out / "enroll.png")
    enroll(open_tab(), console, "bob")
    console.propose("disk full on /var: the journal vacuum freed 2 GB, restart the logger",
                    params={"unit": "rsyslog.service"})
    proposal_id = console.propose(
        "nginx answers 502 since 03:12; its error log says the upstream socket is gone",
        approvals=2, preview={
            "available": True, "command": "systemctl status nginx.service", "exit_code": 3,
            "output": "nginx.service - A high performance web server\n"
                      "   Active: failed (Result: exit-code)",
            "explains": "the unit is not running", "prediction": "the action will restart it"})
    tab.navigate(f"{console.origin}/login")
    tab.screenshot(out / "login.png")
    login(alice, console)
    tab.navigate(f"{console.origin}/")
    tab.wait_for_selector(f'tr[data-proposal="{proposal_id}"]')
    tab.screenshot(out / "proposals.png")
    tab.navigate(f"{console.origin}/p/{proposal_id}")
    tab.screenshot(out / "proposal.png")
    assert approve(alice, console, proposal_id) == "pending"
    tab.navigate(f"{console.origin}/p/{proposal_id}")   # as alice sees it from now on
    assert tab.text("#approvals") == "1 of 2 approvals"
    tab.screenshot(out / "approved-1-of-2.png")
    for name in PICTURES:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">I", data[16:20])[0] >= VIEWPORT[0]
