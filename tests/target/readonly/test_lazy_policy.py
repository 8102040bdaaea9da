"""Request-time policy loading: only the named command is compiled, a broken spec fails
closed, the whole document is still validated where it matters (deploy, `mcp:policy`), and
a single request does not import what only other requests need.

Design: the role validates the whole policy before installing it (`policy.load`); at
request time the top level is checked and only the requested command (with the named types
it uses) is compiled. A broken command is refused with `policy_invalid`; a broken spec of
another command does not affect it.
"""

import json
import re
import subprocess
import sys

import pytest
import wrapper_support as support
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly import argvparse, policy
from mcp_infra_target.readonly.valuetypes import PolicyError

UPTIME = {"executable": ["/usr/bin/uptime", "/bin/uptime"]}


def broken_document():
    """`uptime` is fine; `bad` has a pattern that does not compile; `worse` uses a named
    type that is broken; `badtype` is never used by `uptime`."""
    document = support.mini_policy({
        "uptime": UPTIME,
        "bad": {"executable": ["/usr/bin/true"],
                "options": {"-x": {"type": "regex", "pattern": "(unclosed"}}},
        "worse": {"executable": ["/usr/bin/true"], "operands": {"rest": {"type": "badtype"}}},
    })
    document["types"]["badtype"] = {"type": "int", "min": 1, "surprise": 2}
    return document


def refused(loaded, words):
    with pytest.raises(Refusal) as caught:
        argvparse.plan(loaded, words)
    return caught.value


def test_only_the_requested_command_is_compiled():
    document = support.mini_policy({"uptime": UPTIME, "id": {"executable": ["/usr/bin/id"]}})
    loaded = support.load_document(document)
    assert loaded.compiled == {}
    argvparse.plan(loaded, ["uptime"])
    assert set(loaded.compiled) == {"uptime"}


@pytest.mark.parametrize("name, where", [("bad", "plugins.test.commands.bad.options"),
                                         ("worse", "types.badtype")])
def test_a_broken_command_is_refused_and_never_half_applied(name, where):
    loaded = support.load_document(broken_document())
    refusal = refused(loaded, [name])
    assert (refusal.reason, refusal.rule) == ("policy_invalid", "policy/load")
    assert refusal.command == name
    assert refusal.detail.startswith(where)
    assert name not in loaded.compiled
    assert refused(loaded, [name]).reason == "policy_invalid"


def test_a_broken_spec_elsewhere_does_not_affect_a_valid_command():
    loaded = support.load_document(broken_document())
    assert argvparse.plan(loaded, ["uptime"]).rule == "test/uptime"
    assert refused(loaded, ["nothere"]).reason == "unknown_command"


def test_whole_validation_finds_every_fault(tmp_path):
    """`load` (the role's `validate:`), `validate` and `commands` compile everything."""
    path = tmp_path / "readonly.json"
    path.write_text(json.dumps(broken_document()))
    with pytest.raises(PolicyError, match="types.badtype"):
        policy.load(str(path))
    with pytest.raises(PolicyError):
        support.load_document(broken_document()).validate()
    with pytest.raises(PolicyError):
        support.load_document(broken_document()).commands  # noqa: B018 (the property compiles)
    document = broken_document()
    document["plugins"]["test"]["commands"] = {"uptime": UPTIME}
    path.write_text(json.dumps(document))
    with pytest.raises(PolicyError, match="types.badtype"):
        policy.load(str(path))


def test_top_level_faults_refuse_at_load():
    for key, value in (("surprise", 1), ("limits", {"max_tokens": 5}),
                       ("environment", {"PATH": "/bin", "LD_PRELOAD": "x"})):
        document = support.mini_policy({"uptime": UPTIME})
        document[key] = value
        with pytest.raises(PolicyError):
            support.load_document(document)
    document = support.mini_policy({"uptime": UPTIME})
    document["plugins"]["other"] = {"commands": {"uptime": UPTIME}}
    with pytest.raises(PolicyError, match="two plugins"):
        support.load_document(document)


def test_named_types_may_use_each_other_in_any_order_but_never_in_a_cycle():
    document = support.mini_policy({"t": {"executable": ["/usr/bin/true"],
                                          "operands": {"rest": {"type": "first"}}}})
    for types in ({"first": {"type": "list", "item": {"type": "second"}},
                   "second": {"type": "int"}},
                  {"second": {"type": "int"},
                   "first": {"type": "list", "item": {"type": "second"}}}):
        document["types"] = types
        loaded = support.load_document(document)
        loaded.validate()
        assert argvparse.plan(loaded, ["t", "1,2"]).argv[1:] == ["1,2"]
    document["types"] = {"first": {"type": "list", "item": {"type": "second"}},
                         "second": {"type": "list", "item": {"type": "first"}}}
    loaded = support.load_document(document)
    assert refused(loaded, ["t"]).reason == "policy_invalid"
    with pytest.raises(PolicyError, match="cannot contain itself"):
        loaded.validate()


def test_the_default_policy_loads_with_its_keys_sorted():
    document = json.loads(json.dumps(support.default_policy_document(), sort_keys=True))
    support.load_document(document).validate()


# The forbidden-variable rule as it was written (a regex); the string tests must agree.
REFERENCE = re.compile(r"LD_.*|PYTHON.*|PERL.*|RUBY.*|BASH_ENV|ENV|IFS|SHELLOPTS|"
                       r"GCONV_PATH|LOCPATH|NLSPATH|HOSTALIASES|RES_OPTIONS|LOCALDOMAIN|"
                       r"TMPDIR|MALLOC_.*|GLIBC_TUNABLES|LESS.*OPEN|EDITOR|VISUAL|SHELL")
NAMES = ["LD_PRELOAD", "LD_", "LDX", "PYTHONPATH", "PYTHON", "PERL5LIB", "PERLLIB", "RUBYOPT",
         "BASH_ENV", "ENV", "ENVX", "XENV", "IFS", "SHELLOPTS", "GCONV_PATH", "LOCPATH",
         "NLSPATH", "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "TMPDIR", "TMP", "MALLOC_ARENA",
         "MALLOC", "GLIBC_TUNABLES", "LESSOPEN", "LESSCLOSE", "LESS_TERMCAP_OPEN", "LESS",
         "OPEN", "EDITOR", "VISUAL", "SHELL", "SHELLX", "LANG", "LC_ALL", "PAGER",
         "SYSTEMD_PAGER", "TERM", "COLUMNS", "HOME", "TZ"]


@pytest.mark.parametrize("name", NAMES)
def test_forbidden_environment_names_are_unchanged(name):
    document = support.mini_policy({"uptime": UPTIME})
    document["environment"] = {"PATH": "/usr/bin:/bin", name: "x"}
    if REFERENCE.fullmatch(name):
        with pytest.raises(PolicyError, match="may not be set"):
            support.load_document(document)
    else:
        assert support.load_document(document).environment[name] == "x"


@pytest.fixture(scope="module")
def root():
    root = support.make_root(broken_document())
    yield root
    support.remove_root(root)


def test_wrapper_refuses_the_broken_command_and_runs_the_valid_one(root):
    refusal = support.refusal_of(support.run_wrapper(root, "bad -x a"))
    assert (refusal["reason"], refusal["rule"]) == ("policy_invalid", "policy/load")
    assert refusal["command"] == "bad"
    assert support.run_wrapper(root, "uptime").returncode == 0
    explained = json.loads(support.run_wrapper(root, "mcp:explain worse 1").stdout)
    assert (explained["allowed"], explained["reason"]) == (False, "policy_invalid")


def test_wrapper_policy_view_validates_everything(root):
    assert support.refusal_of(support.run_wrapper(root, "mcp:policy"))["reason"] == "policy_invalid"
    assert json.loads(support.run_wrapper(root, "mcp:version").stdout)["name"] == "mcp-wrapper"


def test_wrapper_batch_refuses_only_the_broken_entry(root):
    done = support.run_wrapper(root, "mcp:batch", stdin=json.dumps({"commands": [
        {"id": "ok", "command": "uptime"}, {"id": "no", "command": "bad"}]}).encode())
    results = {r["id"]: r for r in json.loads(done.stdout)["results"]}
    assert results["ok"]["status"] == "ok"
    assert results["no"]["refusal"]["reason"] == "policy_invalid"


def test_a_single_request_imports_only_what_it_needs():
    """batch only for mcp:batch, ipaddress only for address types, no OpenSSL."""
    code = (f"import sys; sys.path.insert(0, {str(support.LIB)!r}); "
            "from mcp_infra_target.readonly import wrapper; print(' '.join(sorted(sys.modules)))")
    modules = set(subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True,
                                 check=True, text=True).stdout.split())
    assert "mcp_infra_target.readonly.wrapper" in modules
    assert not modules & {"mcp_infra_target.readonly.batch", "ipaddress", "hashlib", "_hashlib"}


def test_scratch_allowance_is_data_bounded_and_reaches_only_its_command():
    """apt may write scratch files (bounded); every other command still runs with none."""
    import resource

    from mcp_infra_target.core import runner
    from mcp_infra_target.readonly.argvparse import plan as make_plan
    from mcp_infra_target.readonly.policy import SCRATCH_MAX, Policy
    from mcp_infra_target.readonly.valuetypes import PolicyError
    from wrapper_support import default_policy_document

    document = default_policy_document()
    policy = Policy(document, "x")
    apt = make_plan(policy, ["apt", "list", "--upgradable"])
    uptime = make_plan(policy, ["uptime"])
    assert apt.limit(policy, "scratch_bytes") == 128 * 1024 * 1024
    assert uptime.limit(policy, "scratch_bytes") == 0

    def fsize_of_child(scratch):
        chunks = []
        runner.run(["/bin/sh", "-c", "ulimit -f"], {"PATH": "/usr/bin:/bin"}, 5,
                   lambda _, chunk: chunks.append(chunk), cap_bytes=4096,
                   limits={"fsize": scratch})
        return b"".join(chunks).strip()

    assert fsize_of_child(0) == b"0"
    assert fsize_of_child(1024 * 512) == b"1024"  # ulimit -f counts 512-byte blocks
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 0, "the wrapper's own limit restored"

    for bad in (-1, SCRATCH_MAX + 1, "1", 1.5, True):
        broken = default_policy_document()
        broken["plugins"]["packages"]["commands"]["apt"]["scratch_bytes"] = bad
        with pytest.raises(PolicyError, match="scratch_bytes"):
            Policy(broken, "x").validate()
