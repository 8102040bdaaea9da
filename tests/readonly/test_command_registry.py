"""The command registry (readonly/commands.py): every command the client sends, with the
values its callers give it, is allowed by the default read-only policy, of this version and
of the previous one, so no tool, check or journal search of the client's is refused by a
target that runs the default policy. A new
command is a row of the registry and a row here. (Every command's executable is a stand-in,
mcp_support.fake_root: what is installed on this machine does not matter.)"""

import json
import shlex

import pytest
from mcp_support import fake_root
from wrapper_support import remove_root, run_wrapper

from mcp_linux_infra.readonly.commands import COMMANDS, SERVICE_PROPERTIES, argv

# registry name: the values a caller fills in (a typical one of each)
SAMPLES = {
    "unit_state": {"units": ["nginx", "ssh.service", "cron"]},
    "unit_log": {"unit": "nginx.service", "lines": 20},
    "failed_units": {},
    "journal": {"lines": 100, "unit": "nginx", "since": "-1h", "priority": "err",
                "pattern": "refused"},
    "journal_errors": {"since": "2024-05-01 10:00"},
    "file_matches": {"pattern": "error", "path": "/etc/hosts"},
    "file_tail": {"lines": 100, "path": "/etc/hosts"},
    "file_head": {"lines": 201, "path": "/etc/hosts"},
    "file_from": {"start": 25, "path": "/etc/hosts"},
    "loadavg": {},
    "nproc": {},
    "meminfo": {},
    "df": {},
    "processes": {"sort_by": "memory"},
    "addresses": {},
    "routes": {},
    "routes6": {},
    "listening": {},
    "port_sockets": {"protocol": "udp", "port": 53},
    "resolv_conf": {},
    "resolve": {"name": "localhost"},
    "dns": {"record_type": "MX", "name": "localhost"},
    "containers": {"runtime": "podman"},
    "container_logs": {"runtime": "docker", "lines": 100, "since": "10m", "container": "web"},
    "upgradable": {},
    "clock": {},
    "action_record": {"nonce": "0123456789abcdef0123456789abcdef", "since": 1714550400},
}


@pytest.fixture(scope="module", params=["current", "previous"])
def root(request, tmp_path_factory):
    """A test root of this version's read tier, and of the previous one's (previous_support):
    a target deployed before this client must allow its commands too."""
    tier = None
    if request.param == "previous":
        from previous_support import PreviousTier
        tier = PreviousTier(tmp_path_factory.mktemp("previous"))
    made = fake_root(tmp_path_factory.mktemp("registry"), tier=tier)
    yield made, tier
    remove_root(made)


def test_every_command_has_a_sample():
    assert set(SAMPLES) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_default_policy_allows_it(root, command):
    made, tier = root
    request = "mcp:explain " + shlex.join(argv(command, **SAMPLES[command]))
    if tier is None:
        answer = run_wrapper(made, request).stdout
    else:
        answer = tier.handler(made)(request, b"")[1]
    verdict = json.loads(answer)
    assert verdict["allowed"] is True, verdict


@pytest.mark.parametrize(("command", "values", "words"), [
    pytest.param("journal", {"lines": 5, "unit": None, "since": None, "priority": None,
                             "pattern": None},
                 ["journalctl", "-n", "5", "-o", "short-iso", "-q", "--no-hostname"],
                 id="given-words-left-out"),
    pytest.param("journal", {"lines": 5, "unit": "a", "since": None, "priority": "err",
                             "pattern": None},
                 ["journalctl", "-n", "5", "-o", "short-iso", "-q", "--no-hostname", "-u", "a",
                  "-p", "err"], id="given-words-in"),
    pytest.param("unit_state", {"units": ["a", "b"]},
                 ["systemctl", "show", f"--property={SERVICE_PROPERTIES}", "a", "b"],
                 id="each"),
    pytest.param("processes", {"sort_by": "cpu"},
                 ["ps", "-e", "-o", "pid,user,pcpu,pmem,rss,etimes,stat,args", "--sort", "-pcpu"],
                 id="pick"),
    pytest.param("port_sockets", {"protocol": "tcp", "port": 8080},
                 ["ss", "-H", "-l", "-n", "-t", "sport = :8080"], id="template-in-a-word"),
    pytest.param("resolve", {"name": "{unit}"}, ["getent", "ahosts", "{unit}"],
                 id="a-value-is-never-a-template"),
])
def test_argv(command, values, words):
    assert argv(command, **values) == words
