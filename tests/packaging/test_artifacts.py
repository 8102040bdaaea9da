"""The sdist and the wheel carry the target tier and the Ansible collection (no lab needed):
the wheel, built from the sdist, holds site-packages/ansible_collections/mcp_linux_infra/target
with galaxy.yml, the role, the playbooks and every source file of system/; the collection
taken from it builds with `ansible-galaxy collection build`, installs with `ansible-galaxy
collection install`, and ansible-playbook resolves its playbook's role and filter from there."""

import subprocess
import tarfile
from pathlib import Path

import pytest
from packaging_support import COLLECTION, build, clean_env
from paths_support import REPO

ANSIBLE = REPO / ".venv/bin"
SKIPPED = ("__pycache__", ".pyc")
LOCAL_ONLY = ("lab.ini", ".ansible-lint")  # `lab up`'s inventory; the linter's settings (and cache)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dist"))


def sources(top: Path) -> set[str]:
    """Every file under top, relative, without compiled Python."""
    return {p.relative_to(top).as_posix() for p in top.rglob("*")
            if p.is_file() and not any(s in p.as_posix() for s in SKIPPED)}


def test_the_wheel_carries_the_collection_and_the_target_tier(artifacts):
    names = set(artifacts.wheel_names())
    collection = {n.removeprefix(COLLECTION + "/") for n in names
                  if n.startswith(COLLECTION + "/")}
    expected = ({f"system/{name}" for name in sources(REPO / "system")}
                | {name for name in sources(REPO / "ansible")
                   if not name.endswith(LOCAL_ONLY) and not name.startswith(".ansible/")})
    assert expected <= collection, sorted(expected - collection)
    for name in ("galaxy.yml", "meta/runtime.yml", "ansible.cfg", "playbooks/deploy-mcp-infra.yml",
                 "roles/mcp_infra/tasks/main.yml", "system/bin/mcp-wrapper",
                 "system/sudoers.d/pra-runner", "system/logrotate.d/mcp-infra",
                 "system/policy/readonly.json"):
        assert name in collection, name
    # no generated inventory, no bytecode
    assert not [n for n in collection if n.endswith(LOCAL_ONLY) or n.startswith(".ansible/")
                or any(s in n for s in SKIPPED)]


def test_the_sdist_carries_the_trees_the_collection_is_assembled_from(artifacts):
    with tarfile.open(artifacts.sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        names = {n.removeprefix(top + "/") for n in archive.getnames()}
    for name in ("setup.py", "MANIFEST.in", "ansible/galaxy.yml",
                 "ansible/roles/mcp_infra/tasks/main.yml", "system/bin/pra-exec",
                 "system/lib/mcp_infra_target/core/bootstrap.py"):
        assert name in names, name
    assert "ansible/system" not in names and "ansible/inventory/lab.ini" not in names


def test_the_collection_builds_installs_and_resolves(artifacts, tmp_path):
    tree = artifacts.extract_collection(tmp_path / "wheel")
    env = clean_env(tmp_path / "home")
    built = subprocess.run([str(ANSIBLE / "ansible-galaxy"), "collection", "build", str(tree),
                            "--output-path", str(tmp_path / "out")], env=env, cwd="/",
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = next((tmp_path / "out").glob("mcp_linux_infra-target-*.tar.gz"))
    with tarfile.open(tarball) as archive:
        assert {"galaxy.yml", "MANIFEST.json"} & set(archive.getnames()) == {"MANIFEST.json"}
        assert "system/bin/pra-run" in archive.getnames()
    installed = subprocess.run([str(ANSIBLE / "ansible-galaxy"), "collection", "install",
                                str(tarball), "-p", str(tmp_path / "collections")], env=env,
                               cwd="/", capture_output=True, text=True, timeout=300,
                               check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    root = tmp_path / "collections" / COLLECTION
    assert (root / "system/lib/mcp_infra_target/core/bootstrap.py").is_file()
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[web]\nweb-01 ansible_host=192.0.2.1\n")
    listed = subprocess.run(
        [str(ANSIBLE / "ansible-playbook"), "-i", str(inventory),
         str(root / "playbooks/deploy-mcp-infra.yml"), "--list-tasks"],
        env=dict(env, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections")), cwd="/",
        capture_output=True, text=True, timeout=300, check=False)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "mcp_linux_infra.target.mcp_infra : Install the wrappers" in listed.stdout
