"""The doctor's checks, aggregation and rendering on canned facts (no network): which
status each answer earns, one row for a host that cannot be reached, the exit code, the
JSON shape, and a hostile target's strings rendered inert."""

import io
import json
import re
from types import SimpleNamespace

import pytest
from rich.console import Console

from mcp_linux_infra import __version__
from mcp_linux_infra.approvals.action_tier import Catalog
from mcp_linux_infra.display import visible
from mcp_linux_infra.doctor import report
from mcp_linux_infra.doctor.checks import CHECKS, Facts, Result, run_checks
from mcp_linux_infra.doctor.report import HostReport
from mcp_linux_infra.readonly.protocol import ProtocolError
from mcp_linux_infra.ssh.errors import AuthFailed, Unreachable

HOSTILE = ("x\x1b[2A\x1b[1;1H\x1b[2K\x1b]8;;https://evil.example/\x1b\\l\x1b]8;;\x1b\\"
           "\x1b]0;pwned\x07\u202e\u2066[/][conceal]c[/conceal][link=https://e.example]k[/link]"
           "\nhost lab-01\x9b2A\x7f\u2028")
SETTINGS = {"max_window_seconds": 3600, "min_approvals": 1, "require_user_verification": False,
            "signers": "any", "webauthn_origins": None}


class Canned(Facts):
    """Facts answered from a dict; an exception value is that fact's failure."""

    def __init__(self, answers: dict, operators=("alice", "bob")):
        pool = SimpleNamespace(settings=SimpleNamespace(reader_user="mcp-reader",
                                                        pra_user="pra-runner"))
        super().__init__(pool, SimpleNamespace(name="web-01"), frozenset(operators), 5.0)
        self.answers = answers

    def _get(self, name):
        return self._fetch(name, lambda: _raise_or_return(self.answers[name]))

    def host_key(self):
        return self._get("host_key")

    def route(self):
        return self._get("route")

    def version(self):
        return self._get("version")

    def catalog(self):
        return self._get("catalog")

    def hello(self):
        return self._get("hello")

    def skew(self):
        return self._get("skew")


def _raise_or_return(value):
    if isinstance(value, Exception):
        raise value
    return value


def healthy(**changes) -> dict:
    answers = {
        "host_key": "ssh-ed25519 SHA256:abc",
        "route": ("direct; known_hosts: /k", ()),
        "version": {"name": "mcp-wrapper", "version": __version__, "policy_sha256": "f" * 64},
        "catalog": Catalog("web-01", dict(SETTINGS), {"restart_service": {"approvals": 2}},
                           ("alice", "bob")),
        "hello": {"version": 1, "idle_s": 60, "max_requests": 10000, "max_s": 3600},
        "skew": 0.4,
    }
    answers.update(changes)
    return answers


def statuses(results):
    return {r.check: r.status for r in results}


def test_a_healthy_host_is_ok_in_every_check_in_order():
    results = run_checks(Canned(healthy()))
    assert [r.check for r in results] == [c.name for c in CHECKS]
    assert set(statuses(results).values()) == {"ok"}


def test_an_unreachable_host_is_one_failed_row():
    down = Unreachable("web-01", "cannot connect to 127.0.0.1:9: Connection refused")
    results = run_checks(Canned(healthy(host_key=down)))
    assert results == [Result("reachable", "fail", str(down))]


def test_a_failed_fact_fails_the_checks_that_need_it_and_only_those():
    refused = AuthFailed("web-01", "authentication as pra-runner failed")
    got = statuses(run_checks(Canned(healthy(catalog=refused))))
    assert got == {"host_key": "ok", "route": "ok", "reader_key": "ok", "action_key": "fail",
                   "versions": "ok", "sessions": "ok", "principals": "fail",
                   "clock": "fail", "approval_rules": "fail"}


@pytest.mark.parametrize(("changes", "check", "status", "says"), [
    ({"version": {"name": "mcp-wrapper", "version": "0.0.1", "policy_sha256": "a"}},
     "versions", "warn", "0.0.1"),
    ({"hello": ProtocolError("refused: unknown_reserved_word (mcp:session)")},
     "sessions", "warn", "no sessions"),
    ({"catalog": Catalog("web-01", dict(SETTINGS), {}, ("alice", "mallory"))},
     "principals", "warn", ("registered but not deployed: bob; deployed but not registered "
                            "here: mallory")),
    ({"catalog": Catalog("web-01", dict(SETTINGS), {}, None)},
     "principals", "warn", "older target tier"),
    ({"skew": 3600 * 0.05 + 1}, "clock", "warn", "+181.0 s"),
    ({"route": ("via jump@10.0.0.1:22; known_hosts: /k",
                ("ansible_ssh_common_args: StrictHostKeyChecking=no is not honoured",))},
     "route", "warn", "StrictHostKeyChecking=no is not honoured"),
    ({"skew": -(3600 * 0.5 + 1)}, "clock", "fail", "-1801.0 s"),
    ({"skew": 3600 * 0.05}, "clock", "ok", "+180.0 s"),
    ({"catalog": Catalog("web-01", {"max_window_seconds": 3600}, {}, ("alice", "bob"))},
     "approval_rules", "fail", "older than approval documents v2"),
    ({"catalog": Catalog("web-01", dict(SETTINGS), {"restart_service": {"approvals": 3}},
                         ("alice", "bob"))},
     "approval_rules", "warn", "only 2 operator(s) registered"),
])
def test_each_finding(changes, check, status, says):
    found = {r.check: r for r in run_checks(Canned(healthy(**changes)))}[check]
    assert (found.status, says in found.why) == (status, True), found.why


def reports():
    return [HostReport("web-01", tuple(run_checks(Canned(healthy())))),
            HostReport("web-02", tuple(run_checks(Canned(healthy(
                version={"name": "mcp-wrapper", "version": "0.0.1", "policy_sha256": "a"}))))),
            HostReport("web-03", (Result("reachable", "fail", "cannot connect"),))]


def test_aggregation_and_exit_code():
    got = reports()
    assert [r.status for r in got] == ["ok", "warn", "fail"]
    assert report.exit_code(got) == 1
    assert report.exit_code(got[:2]) == 0  # warnings alone exit 0
    assert report.totals(got) == {"ok": 9 + 8, "warn": 1, "fail": 1}


def test_json_shape():
    data = json.loads(json.dumps(report.as_json(reports())))
    assert set(data) == {"hosts", "totals", "exit_code"}
    assert data["exit_code"] == 1
    assert [h["host"] for h in data["hosts"]] == ["web-01", "web-02", "web-03"]
    assert data["hosts"][2] == {"host": "web-03", "status": "fail", "checks": [
        {"check": "reachable", "status": "fail", "why": "cannot connect"}]}
    for host in data["hosts"]:
        for check in host["checks"]:
            assert set(check) == {"check", "status", "why"}
            assert check["status"] in ("ok", "warn", "fail")


def _render(renderable, width: int) -> str:
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, color_system="truecolor", width=width).print(
        renderable)
    return buffer.getvalue()


@pytest.mark.parametrize("width", [60, 400])
def test_a_hostile_target_renders_inert(width):
    """Host name, check answers and fingerprints from a hostile target: in a colour
    terminal's output the only escapes are rich's own colours (SGR), no markup is read."""
    hostile = Canned(healthy(
        host_key=HOSTILE,
        version={"name": HOSTILE, "version": HOSTILE, "policy_sha256": HOSTILE},
        catalog=Catalog(HOSTILE, {**SETTINGS, "signers": HOSTILE,
                                  "webauthn_origins": [HOSTILE]}, {HOSTILE: {}}, (HOSTILE,)),
        hello={"idle_s": HOSTILE, "max_requests": HOSTILE, "max_s": HOSTILE},
        skew=ProtocolError(HOSTILE)), operators=(HOSTILE,))
    rep = HostReport(HOSTILE, tuple(run_checks(hostile)))
    text = _render(report.table([rep]), width)
    without_sgr = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert not any(ch in without_sgr for ch in "\x1b\x07\x9b\x7f\u202e\u2066\u2028")
    if width == 400:  # unwrapped: each value whole, made visible, markup as characters
        assert visible(HOSTILE) in without_sgr


def test_an_answer_of_the_wrong_shape_fails_its_check_only():
    odd = Catalog("web-01", {**SETTINGS, "max_window_seconds": "soon"},
                  {"restart_service": {"approvals": "many"}}, ("alice", "bob"))
    got = statuses(run_checks(Canned(healthy(catalog=odd))))
    assert got["clock"] == got["approval_rules"] == "fail"
    assert got["principals"] == got["action_key"] == "ok"


def test_bad_usage_exits_2_in_one_line(tmp_path, monkeypatch, capsys):
    from mcp_linux_infra.cli import main
    (tmp_path / "hosts.ini").write_text("[web]\nweb-01 ansible_host=127.0.0.1 ansible_port=22\n")
    monkeypatch.setenv("LINUX_MCP_INVENTORY", str(tmp_path / "hosts.ini"))
    monkeypatch.setenv("LINUX_MCP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    assert main(["doctor", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    for bad in (["doctor", "--timeout", "0"], ["doctor", "--timeout", "nan"], ["doctor", "a", "b"]):
        with pytest.raises(SystemExit) as exited:
            main(bad)
        assert exited.value.code == 2
