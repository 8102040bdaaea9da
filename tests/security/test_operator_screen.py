"""What the operator sees, in a real terminal (tmux), when the model, a target or the
database put hostile text in a proposal: `approvals show` and `approvals approve` must show
every such value as plain text with its control, format and bidi characters made visible,
never move the cursor, set the title, add a link or hide text, and the approve screen must
end with the fields of the very document that is signed, right before the prompt."""

import json
import re
import subprocess

import pytest
from paths_support import CLI
from pra_support import HOST, NAMESPACE
from terminal_support import Terminal, sgr_attributes

from mcp_linux_infra.operators.registry import Registry

SPOOF_WORDS = ("lab-01", "harmless", "evil.example", "pwned", "nginx")
SIGNED_HEADER = "You sign this approval document:"
PROMPT = r"\? \[y/N\]\s*\Z"
CONCEAL = 8

# (rationale as the model sent it, the same as the screen must show it)
HOSTILE = [
    pytest.param("the file is missing\x1b[4A\r\x1b[2K│ host           lab-01\x1b[4B",
                 r"the file is missing\x1b[4A\r\x1b[2K│ host           lab-01\x1b[4B",
                 id="cursor-up-overwrites-the-host-row"),
    pytest.param("all fine\x1b[1;1H\x1b[2Jhost lab-01 params file=/tmp/harmless\x1b[50;1H",
                 r"all fine\x1b[1;1H\x1b[2Jhost lab-01 params file=/tmp/harmless\x1b[50;1H",
                 id="cursor-home-and-clear-screen"),
    pytest.param("\x1b[1A\x1b[2K\x1b[1A\x1b[2K\x1b[K the rows above are gone",
                 r"\x1b[1A\x1b[2K\x1b[1A\x1b[2K\x1b[K the rows above are gone",
                 id="erase-lines"),
    pytest.param("see \x1b]8;;https://evil.example/\x1b\\the runbook\x1b]8;;\x1b\\ for why",
                 r"see \x1b]8;;https://evil.example/\x1b\the runbook\x1b]8;;\x1b\ for why",
                 id="osc8-link"),
    pytest.param("\x1b]0;pwned-title\x07\x1b]2;pwned-title\x1b\\ the title is mine",
                 r"\x1b]0;pwned-title\x07\x1b]2;pwned-title\x1b\ the title is mine",
                 id="osc-title"),
    pytest.param("the file \u202eBD-dorp\u202c is \u2066lab-01\u2069 \u2067x\u2069 \u2068y\u2069",
                 r"the file \u202eBD-dorp\u202c is \u2066lab-01\u2069 \u2067x\u2069 \u2068y\u2069",
                 id="bidi-overrides-and-isolates"),
    pytest.param("[conceal]hidden words[/conceal] [link=https://evil.example]click[/link] "
                 "[bold red]alarm[/]",
                 "[conceal]hidden words[/conceal] [link=https://evil.example]click[/link] "
                 "[bold red]alarm[/]", id="rich-markup-tags"),
    pytest.param("the file is gone [/] really", "the file is gone [/] really",
                 id="closing-tag-that-closes-nothing"),
    pytest.param("all good\nhost           lab-01\nparams         file=/tmp/harmless",
                 r"all good\nhost           lab-01\nparams         file=/tmp/harmless",
                 id="newlines-forge-field-rows"),
    pytest.param("C1 \x9b2A csi, \x7f del, \u00a0 nbsp, \u2028 line sep, \ufeff bom, \U000e0041 tag",
                 r"C1 \x9b2A csi, \x7f del, \xa0 nbsp, \u2028 line sep, \ufeff bom, \U000e0041 tag",
                 id="c1-del-separators-format-chars"),
]


@pytest.fixture
def terminal(action_estate, tmp_path):
    t = Terminal(tmp_path, action_estate.env())
    yield t
    t.close()


def propose(estate, rationale: str, **extra):
    fields = {"preview": {"available": False, "why": "no read-only equivalent"},
              "action_info": {"description": "Desired state: the file exists.",
                              "runs_as": "root"}}
    fields.update(extra)
    return estate.store.create(HOST, "touch_file", {"file": estate.root.file("a")}, rationale,
                               3600, **fields)


def field_rows(screen: str) -> list[tuple[str, str]]:
    """(label, value) of every panel row whose label column is filled: `│ label   value`."""
    rows = []
    for line in screen.splitlines():
        match = re.match(r"^│ (\S+(?: \S+)*?)\s{2,}(.*?)\s*│?\s*$", line)
        if match:
            rows.append((match.group(1), match.group(2)))
    return rows


def assert_true_fields_and_literal(estate, screen: str, shown: str) -> None:
    """Every host/action/params row on the screen shows the proposal's own values, the
    rationale appears literally, and no spoofed word appears anywhere else."""
    rows = field_rows(screen)
    truth = {"host": HOST, "action": "touch_file", "params": f"file={estate.root.file('a')}"}
    for label, value in rows:
        if label in truth:
            assert value.split("  ")[0] == truth[label], (label, value, screen)
    assert {label for label, _ in rows} >= set(truth), screen
    assert shown in screen, f"the rationale is not shown literally:\n{screen}"
    for word in SPOOF_WORDS:
        assert screen.count(word) == shown.count(word), (word, screen)


def signed_block(screen: str) -> dict[str, str]:
    """The fields of the last signed-document block, which must be what ends the screen,
    right before the prompt."""
    lines = [line.rstrip() for line in screen.rstrip("\n").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    assert lines and re.search(PROMPT, lines[-1]), f"the screen does not end with the " \
                                                     f"prompt:\n{screen}"
    starts = [i for i, line in enumerate(lines) if line == SIGNED_HEADER]
    assert starts, f"no signed-document block:\n{screen}"
    fields = {}
    for line in lines[starts[-1] + 1:-1]:
        match = re.match(r"^  ([a-z_]+)\s+(.*)$", line)
        assert match, f"not a field line right before the prompt: {line!r}\n{screen}"
        fields[match.group(1)] = match.group(2)
    return fields


def assert_signed_block_is_the_truth(estate, fields: dict[str, str], proposal_id: str) -> None:
    assert fields["proposal"] == proposal_id
    assert fields["host"] == HOST
    assert fields["action"] == "touch_file"
    assert fields["params"] == f"file={estate.root.file('a')}"
    assert fields["approvals"] == "1 distinct operator"
    assert re.fullmatch(r"[0-9a-f]{32}", fields["nonce"]), fields


def window(fields: dict[str, str]) -> tuple[int, int]:
    stamps = re.search(r"unix (\d+) \.\. (\d+)", fields["window"])
    assert stamps, fields
    return int(stamps.group(1)), int(stamps.group(2))


@pytest.mark.parametrize(("rationale", "shown"), HOSTILE)
def test_show_and_approve_screens_show_the_truth_and_the_rationale_literally(
        action_estate, terminal, rationale, shown):
    p = propose(action_estate, rationale)
    terminal.run([CLI, "approvals", "show", p.id])
    code, screen = terminal.wait_exit()
    assert code == 0, screen
    assert_true_fields_and_literal(action_estate, screen, shown)
    assert "pwned" not in terminal.title()
    assert CONCEAL not in sgr_attributes(terminal.screen(escapes=True))

    terminal.run([CLI, "approvals", "approve", p.id])
    screen = terminal.wait_for(PROMPT)
    assert_true_fields_and_literal(action_estate, screen, shown)
    assert_signed_block_is_the_truth(action_estate, signed_block(screen), p.id)
    assert "pwned" not in terminal.title()
    assert CONCEAL not in sgr_attributes(terminal.screen(escapes=True))
    terminal.keys("n", "Enter")
    code, screen = terminal.wait_exit()
    assert code == 1 and "nothing was signed" in screen, screen
    assert action_estate.store.get(p.id).state == "pending"


def test_target_text_and_stored_notes_cannot_forge_rows(action_estate, terminal):
    """The preview output (a target's stdout) may span lines: each is shown as an indented,
    marked line of the preview, never as a row of its own; notes and reasons are one line."""
    output = "active\n│ host           lab-01\x1b[3A\nparams         file=/tmp/harmless"
    p = propose(action_estate, "the file is missing, see the log", preview={
        "available": True, "command": "systemctl is-active \x1b]2;pwned\x07lab-app",
        "explains": "what the unit is doing", "exit_code": 0, "output": output,
        "prediction": "not satisfied: the action will run"})
    action_estate.store.transition(p.id, "rejected", "operator:alice", reason="no\x1b[2Ahost lab-01",
                            note="rejected [/] by\nhost lab-01")
    terminal.run([CLI, "approvals", "show", p.id])
    code, screen = terminal.wait_exit()
    assert code == 0, screen
    rows = field_rows(screen)
    assert ("host", HOST) in rows and not [r for r in rows if r[0] == "host" and r[1] != HOST]
    assert "┊ active" in screen and r"┊ │ host           lab-01\x1b[3A" in screen
    assert "┊ params         file=/tmp/harmless" in screen
    assert r"no\x1b[2Ahost lab-01" in screen and r"rejected [/] by\nhost lab-01" in screen
    assert r"systemctl is-active \x1b]2;pwned\x07lab-app" in screen
    assert "pwned" not in terminal.title()


def test_yes_on_the_terminal_signs_exactly_the_document_shown(action_estate, terminal, tmp_path):
    keydir = tmp_path / "operator-keys"
    made = subprocess.run([CLI, "keys", "init", "--dir", str(keydir)], env=action_estate.env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    key = keydir / "operator.key"
    operators = Registry(action_estate.settings.state_dir / "approvals.sqlite3")
    operators.add("olivia", (keydir / "operator.key.pub").read_text())
    operators.close()
    terminal.env["LINUX_MCP_OPERATOR_KEY"] = str(key)
    terminal.env["LINUX_MCP_APPROVER"] = "olivia"
    rationale = ("restart\x1b[4A\r\x1b[2K│ host           lab-01\x1b[4B \u202e[/] "
                 "\x1b]0;pwned\x07 [conceal]x[/conceal]\nhost lab-01")
    p = propose(action_estate, rationale)
    terminal.run([CLI, "approvals", "approve", p.id, "--ttl", "10m"])
    screen = terminal.wait_for(PROMPT)
    fields = signed_block(screen)
    assert_signed_block_is_the_truth(action_estate, fields, p.id)
    terminal.keys("y", "Enter")
    code, after = terminal.wait_exit()
    assert code == 0, after
    a = action_estate.store.get(p.id)
    assert a.state == "approved" and a.nonce == fields["nonce"] and a.principals == ["olivia"]
    assert (a.not_before, a.not_after) == window(fields)
    assert a.not_after - a.not_before == 600
    signers = tmp_path / "signers"
    public = " ".join((keydir / "operator.key.pub").read_text().split()[:2])
    signers.write_text(f"olivia {public}\n")
    signature = tmp_path / "doc.sig"
    signature.write_text(action_estate.store.signatures(a.id)[0])
    verified = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "olivia",
                               "-n", NAMESPACE, "-s", str(signature)],
                              input=a.document_text.encode(), capture_output=True, check=False)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(a.document_text)["steps"][0]["host"] == HOST
