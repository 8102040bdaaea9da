"""The two bodies (notify/body.py): the generic JSON's shape, the chat message's text, and
that nothing from the model or a target becomes Slack/Mattermost markup."""

from datetime import UTC, datetime

import pytest
from webhook_support import proposal

from mcp_linux_infra.notify.body import approvals, json_body, mrkdwn, slack_body
from mcp_linux_infra.notify.events import DEFAULT_EVENTS, EVENTS

AT = datetime(2026, 12, 5, 3, 18, 24, 123456, tzinfo=UTC)
LINK = "https://console.example:8443/p/p0123abcd"


def test_the_generic_json_body():
    p = proposal(state="approved", approver="alice", note="approved for 600 s")
    assert json_body("approved", p, LINK, AT) == {
        "event": "approved", "at": "2026-12-05T03:18:24Z", "link": LINK,
        "proposal": {"id": "p0123abcd", "host": "web-01", "action": "restart_service",
                     "params": {"unit": "nginx"}, "state": "approved",
                     "rationale": "nginx is down since 10:02", "note": "approved for 600 s",
                     "reason": None, "approvals": {"have": 1, "need": 1, "by": ["alice"]}}}


def test_a_rejection_says_why():
    p = proposal(state="rejected", note="rejected by the operator", reason="<!here> not now")
    assert json_body("rejected", p, LINK, AT)["proposal"]["reason"] == "<!here> not now"
    lines = slack_body("rejected", p, LINK, AT)["text"].split("\n")
    assert lines[4:6] == ["Note: rejected by the operator", "Reason: &lt;!here&gt; not now"]


def test_the_chat_message():
    text = slack_body("created", proposal(), LINK, AT)["text"]
    assert text.split("\n") == [
        "[mcp-linux-infra] Proposal p0123abcd waits for approval: restart_service on web-01",
        "Params: unit=nginx",
        "Rationale: nginx is down since 10:02",
        "Approvals: 0 of 1",
        f"<{LINK}|Open it in the approval console> (at 2026-12-05T03:18:24Z)"]


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_event_has_its_words(event):
    assert f"p0123abcd {EVENTS[event]}:" in slack_body(event, proposal(), LINK, AT)["text"]


def test_executing_is_opt_in():
    assert DEFAULT_EVENTS == set(EVENTS) - {"executing"}


HOSTILE = ("<!channel> <@U024BE7LH> <https://evil.example|click here> &amp; "
           "\x1b[31mred\n> quoted line\u202egnp.exe\u200b\u2028end")


def test_hostile_values_are_inert_in_the_chat_message():
    p = proposal(rationale=HOSTILE, host="web-<01>", action="a&b",
                 params={"unit<": "nginx>\n<!here>"}, note="<http://x|y>",
                 state="approved", approver="<!everyone>")
    text = slack_body("approved", p, LINK, AT)["text"]
    lines = text.split("\n")
    assert len(lines) == 6  # no value started a line of its own
    assert lines[2] == ("Rationale: &lt;!channel&gt; &lt;\uff20U024BE7LH&gt; "
                        "&lt;https://evil.example|click here&gt; &amp;amp; "
                        "\\x1b\uff3b31mred\\n&gt; quoted line\\u202egnp.exe\\u200b\\u2028end")
    assert lines[0].endswith(": a&amp;b on web-&lt;01&gt;")
    assert lines[1] == "Params: unit&lt;=nginx&gt;\\n&lt;!here&gt;"
    assert lines[3] == "Approvals: 1 of 1 (&lt;!everyone&gt;)"
    assert lines[4] == "Note: &lt;http://x|y&gt;"
    # the only markup in the message is the console link the server wrote itself
    assert text.count("<") == text.count(">") == 1
    assert "@" not in text
    assert all(c.isprintable() for line in lines for c in line)


MENTIONS = ["@channel", "@here", "@all", "@everyone", "@alice", "@oncall-team", "x@channel",
            "(@here)", "@@channel", "<!channel>", "<!here|here>", "<!everyone>",
            "<!subteam^S0123|oncall>", "<@U024BE7LH>", "<#C0123|general>",
            "&lt;!channel&gt;", "＠channel"]


LINKS = ["[Open it in the approval console](https://evil.example/p/p1)",
         "![](https://evil.example/pixel.png)", "[x][1]", "<https://evil.example|click>",
         "<mailto:a@b.example|mail>"]


@pytest.mark.parametrize("link", LINKS)
def test_no_value_can_link_or_embed(link):
    """Slack links with `<url|text>`; Mattermost's markdown with `[text](url)` and shows
    `![](url)` as an image it fetches: no value can make either."""
    p = proposal(rationale=link, params={"unit": link}, note=link)
    text = slack_body("created", p, LINK, AT)["text"]
    assert text.count("[") == 1 and text.startswith("[mcp-linux-infra] ")  # ours
    assert "@" not in text
    assert text.count("<") == text.count(">") == 1 and f"<{LINK}|" in text


@pytest.mark.parametrize("mention", MENTIONS)
def test_no_value_can_mention_anyone(mention):
    """Slack acts on `<!...>`, `<@...>` and `<#...>`; Mattermost on `@name` as plain text:
    every '@' and '<' from a value is made inert, whatever the name after it."""
    shown = mrkdwn(mention)
    assert "@" not in shown and "<" not in shown and ">" not in shown
    p = proposal(rationale=f"ping {mention} now", host=mention, action=mention,
                 params={mention: mention}, note=mention, approver=mention, state="approved")
    text = slack_body("approved", p, LINK, AT)["text"]
    assert "@" not in text
    assert text.count("<") == text.count(">") == 1 and f"<{LINK}|" in text
    assert f"ping {shown} now" in text


@pytest.mark.parametrize(("value", "shown"), [
    ("a & b", "a &amp; b"), ("<b>", "&lt;b&gt;"), ("&lt;", "&amp;lt;"),
    ("tab\there", "tab\\there"), ("\u202e", "\\u202e"), ("\x9b2A", "\\x9b2A"),
    ("@channel", "\uff20channel"), ("ops@example.com", "ops\uff20example.com"),
    ("[a](b)", "\uff3ba](b)"),
])
def test_mrkdwn(value, shown):
    assert mrkdwn(value) == shown


def _approvals(*names: str) -> list[dict]:
    return [{"principal": n, "method": "webauthn", "at": 1.0, "key_type": "sk-ecdsa"}
            for n in names]


@pytest.mark.parametrize(("p", "expected"), [
    pytest.param(proposal(), {"have": 0, "need": 1, "by": []}, id="pending"),
    pytest.param(proposal(state="succeeded", approver="alice"),
                 {"have": 1, "need": 1, "by": ["alice"]}, id="approved"),
    pytest.param(proposal(approvals=_approvals("alice"), required=2),
                 {"have": 1, "need": 2, "by": ["alice"]}, id="one-of-two"),
    pytest.param(proposal(approvals=_approvals("alice", "bob", "alice"), required=2),
                 {"have": 2, "need": 2, "by": ["alice", "bob"]}, id="distinct"),
])
def test_approvals_so_far(p, expected):
    assert approvals(p) == expected
