"""Wire compatibility, this server -> the previous target: the target tier as it was before the
layout refactor (commit PREVIOUS: its role and its system/, taken from git) is deployed on the
lab's host by its own playbook; this version's MCP server diagnoses it (sessions and batch)
and lists its catalog, and refuses to have an action proposed there: that target verifies
v1 approval documents only, and this server signs v2 only (the refusal says to upgrade). Then
this version's playbook upgrades the host in place: the previous flat modules go, the tier
answers again."""
import json
import subprocess
import tarfile

import pytest
from mcp import Client, StdioServerParameters
from mcp_support import ok, refused
from paths_support import REPO

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab
CLI = str(REPO / ".venv/bin/mcp-linux-infra")
PREVIOUS = "6e61402"  # main before the layout refactor (issue 10)
PACKAGE = "/usr/local/lib/mcp-infra/mcp_infra_target"
CODE = "/usr/local/lib/mcp-infra /usr/local/libexec/mcp-infra /usr/local/sbin/pra-run"


def playbook(deployed, ansible_dir, *args):
    argv = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(deployed.inventory),
            "playbooks/deploy-mcp-infra.yml", "-e", f"@{deployed.vars_file}",
            "--limit", deployed.host, *args]
    env = dict(deployed.env, ANSIBLE_CONFIG=str(ansible_dir / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(argv, check=False, cwd=ansible_dir, env=env, capture_output=True,
                          text=True, timeout=1200)


@pytest.fixture(scope="module")
def previous(deployed, tmp_path_factory):
    """The host as a target of the previous version (its code as that role installs it on a
    host that never had this one), then, whatever the tests did, this version again."""
    directory = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(["git", "archive", PREVIOUS, "ansible", "system"], cwd=REPO,
                             capture_output=True, check=True).stdout
    (directory / "tree.tar").write_bytes(archive)
    with tarfile.open(directory / "tree.tar") as handle:
        handle.extractall(directory)
    deployed.root_ok(f"rm -rf {CODE}")
    try:
        out = playbook(deployed, directory / "ansible")
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
        assert sorted(deployed.root_ok(f"ls {PACKAGE}/wrapper.py {PACKAGE}/pra_run.py").split()
                      ) == [f"{PACKAGE}/pra_run.py", f"{PACKAGE}/wrapper.py"]
        yield deployed
    finally:
        again = deployed.playbook("deploy-mcp-infra.yml", limit=deployed.host)
        assert again.returncode == 0, again.stdout[-4000:]


@pytest.mark.anyio
async def test_this_server_diagnoses_the_previous_target_and_proposes_nothing_there(previous, env, tmp_path):
    host = previous.host
    params = StdioServerParameters(command=CLI, args=["serve"], env=env, cwd=str(tmp_path))
    async with Client(params, mode="legacy") as client:
        report = await ok(client, "diagnose_system", host=host,
                          checks=["services", "failed_units", "disk", "memory"])
        assert report["reports"][0]["host"] == host
        actions = await ok(client, "list_pra_actions", host=host)
        assert "cron" in next(a for a in actions["actions"]
                              if a["name"] == "restart_service")["params"]["unit"]
        text = await refused(client, "propose_pra_action", host=host,
                             action="restart_service", params={"unit": "cron"},
                             rationale="compatibility with the previous target tier, says "
                             "the test")
        assert "older than approval documents v2" in text and "deploy-mcp-infra.yml" in text
        assert (await ok(client, "list_proposals"))["count"] == 0


def test_this_version_upgrades_the_previous_target_in_place(previous):
    out = previous.playbook("deploy-mcp-infra.yml", limit=previous.host)
    assert out.returncode == 0, out.stdout[-4000:]
    assert "mcp_infra : Remove modules that are no longer part of the library" in \
        previous.changed_tasks(out.stdout)
    flat = previous.root_ok(f"find {PACKAGE} -maxdepth 1 -name '*.py' -printf '%f\\n'").split()
    assert flat == ["__init__.py"]
    answer = previous.ssh_reader("mcp:version")
    assert answer.returncode == 0 and json.loads(answer.stdout)["name"] == "mcp-wrapper"
    listed = previous.ssh_pra("list")
    assert listed.returncode == 0, listed.stderr
    assert any(a["preview"] for a in json.loads(listed.stdout)["actions"])
