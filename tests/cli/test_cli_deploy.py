"""`deploy` without a lab: what it runs (this environment's ansible-playbook over the
collection, the configured inventory, keys and known_hosts, strict host keys), how it reads
Ansible's output, and its one-line errors with their exit codes. The real deploy is
tests/packaging/test_installed_lab.py."""

import json
import shlex
import subprocess
import sys

import pytest
import yaml
from paths_support import REPO

from mcp_linux_infra import __version__, deploy
from mcp_linux_infra.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_HOST, EXIT_USAGE, UserError
from mcp_linux_infra.keys import init_keys
from mcp_linux_infra.settings import Settings

OUTPUT = """\
PLAY [Deploy the mcp-linux-infra target tier] *****

TASK [Gathering Facts] *****
ok: [web-01]
ok: [web-02]

TASK [mcp_infra : Create the accounts] *****
changed: [web-01]
[ERROR]: Task failed: Module failed: useradd
fatal: [web-02]: FAILED! => {"changed": false, "msg": "useradd: \\u001b[31mno\\nsecond line"}

PLAY RECAP *****
web-01                     : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
web-02                     : ok=1    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
"""


@pytest.fixture
def settings(tmp_path):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[web]\nweb-01 ansible_host=192.0.2.1\nweb-02 ansible_host=192.0.2.2\n")
    init_keys(tmp_path / "keys")
    return Settings(_env_file=None, inventory=[inventory], keys_dir=tmp_path / "keys",
                    state_dir=tmp_path / "state")


def test_the_command_runs_this_environment_s_playbook_with_the_settings(settings):
    argv, env = deploy.command(settings, "web", check=True, extra_vars=["@site.yml"])
    assert argv[:4] == [sys.executable, "-m", "ansible", "playbook"]
    playbook = deploy.collection_dir() / "playbooks/deploy-mcp-infra.yml"
    assert str(playbook) in argv and playbook.is_file()
    assert argv[argv.index("-i") + 1] == str(settings.inventory[0])
    assert {"mcp_infra_keys_dir": str(settings.keys_dir)} in [
        json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-e" and argv[i + 1][0] == "{"]
    assert argv[-6:] == ["-e", "@site.yml", "--limit", "web", "--check", "--diff"]
    ssh = shlex.split(env["ANSIBLE_SSH_COMMON_ARGS"])
    assert ssh == ["-o", "StrictHostKeyChecking=yes",
                   "-o", f"UserKnownHostsFile={settings.known_hosts}"]
    assert env["ANSIBLE_CONFIG"] == str(deploy.collection_dir() / "ansible.cfg")


def test_an_unknown_host_no_inventory_no_keys_are_one_line_errors(settings, tmp_path):
    with pytest.raises(UserError) as unknown:
        deploy.command(settings, "db", check=False, extra_vars=[])
    assert unknown.value.exit_code == EXIT_USAGE
    bare = Settings(_env_file=None, inventory=[tmp_path / "none.ini"], keys_dir=settings.keys_dir)
    with pytest.raises(UserError) as none:
        deploy.command(bare, None, check=False, extra_vars=[])
    assert none.value.exit_code == EXIT_CONFIG and "no inventory" in str(none.value)
    keyless = settings.model_copy(update={"keys_dir": tmp_path / "nokeys"})
    with pytest.raises(UserError) as nokeys:
        deploy.command(keyless, None, check=False, extra_vars=[])
    assert nokeys.value.exit_code == EXIT_CONFIG and nokeys.value.hint.endswith("keys init")


def test_the_output_gives_a_recap_and_the_first_failure_in_one_line(tmp_path):
    with open(tmp_path / "log", "w") as log:
        outcome = deploy.follow(OUTPUT.splitlines(keepends=True), show=False, log=log)
    assert (tmp_path / "log").read_text() == OUTPUT
    assert outcome.recap["web-01"]["changed"] == 1 and outcome.recap["web-02"]["failed"] == 1
    assert outcome.failure.startswith("web-02: mcp_infra : Create the accounts: useradd: ")
    assert "\n" not in outcome.failure  # the first line of Ansible's message only
    assert deploy.exit_code(2, outcome) == EXIT_FAILED


def test_exit_codes_come_from_the_recap():
    """ansible-playbook's 4 is a host unreachable or a parse error: the recap tells which."""
    unreachable = deploy.Outcome(recap={"web-01": dict.fromkeys(deploy.RECAP_FIELDS, 0)
                                        | {"unreachable": 1}})
    assert deploy.exit_code(4, unreachable) == EXIT_HOST
    assert deploy.exit_code(4, deploy.Outcome()) == EXIT_CONFIG  # no play ran
    assert deploy.exit_code(250, unreachable) == EXIT_HOST
    failed = deploy.Outcome(recap={"web-01": dict.fromkeys(deploy.RECAP_FIELDS, 0)})
    assert deploy.exit_code(250, failed) == EXIT_FAILED


def test_an_error_before_any_play_is_ansible_s_own_line(tmp_path):
    lines = ["[ERROR]: Unable to retrieve file contents.\n",
             "Could not find or access '/nope.yml' on the Ansible Controller.\n",
             "If you are using a module ...\n", "Origin: somewhere\n"]
    with open(tmp_path / "log", "w") as log:
        outcome = deploy.follow(lines, show=False, log=log)
    assert outcome.failure == ("Unable to retrieve file contents. Could not find or access "
                               "'/nope.yml' on the Ansible Controller.")
    assert deploy.exit_code(1, outcome) == EXIT_CONFIG


def test_deploy_without_an_inventory_from_the_cli(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "XDG_STATE_HOME": str(tmp_path / "s")}
    done = subprocess.run([sys.executable, "-m", "mcp_linux_infra", "deploy"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == EXIT_CONFIG and len(done.stderr.splitlines()) == 1, done.stderr
    assert "no inventory file" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_collection_s_version_is_the_package_s():
    galaxy = yaml.safe_load((REPO / "ansible/galaxy.yml").read_text())
    assert galaxy["version"] == __version__
