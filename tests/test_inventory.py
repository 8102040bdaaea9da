"""The inventory reader agrees with Ansible itself on hosts, groups, addresses and variables."""

import textwrap
from pathlib import Path

import pytest

from mcp_linux_infra.inventory import InventoryError, UnknownTarget, load_inventory
from mcp_linux_infra.lab.inventory import write_inventory
from mcp_linux_infra.lab.state import Target

INI = """\
# comment
bastion ansible_host=10.0.0.1

[web]
web[01:03].example.com ansible_user=deploy
db1:2222 ansible_host="10.0.0.9"   # inline comment

[web:vars]
http_port=8080
ansible_ssh_common_args='-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/tmp/kh'
mcp_key_services=["nginx", "php-fpm"]

[db]
db1

[db:vars]
http_port=5432

[prod:children]
web
db

[prod:vars]
env=prod
http_port=1
"""

YAML = """\
all:
  vars:
    env: lab
  hosts:
    solo:
      ansible_port: 2022
  children:
    app:
      hosts:
        app-[a:c]:
          ansible_host: 192.0.2.10
      vars:
        tier: app
      children:
        canary:
          hosts:
            app-a:
              tier: canary
"""


def ansible_view(path: Path) -> dict:
    """What ansible-core says (slow import, tests only)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=inventory)
    view = {}
    for host in inventory.get_hosts():
        v = variables.get_vars(host=host)
        view[host.name] = {
            "address": str(v.get("ansible_host", host.name)),
            "port": int(v.get("ansible_port", 22)),
            "groups": sorted(g.name for g in host.get_groups() if g.name != "all"),
            "vars": {k: v.get(k) for k in ("ansible_user", "http_port", "env", "tier",
                                            "mcp_key_services", "ansible_ssh_common_args")},
        }
    return view


def our_view(path: Path) -> dict:
    inv = load_inventory([path])
    return {h.name: {"address": h.address, "port": h.port, "groups": sorted(h.groups),
                     "vars": {k: h.vars.get(k) for k in ("ansible_user", "http_port", "env", "tier",
                                                         "mcp_key_services",
                                                         "ansible_ssh_common_args")}}
            for h in inv.hosts.values()}


@pytest.mark.parametrize("name,text", [("hosts.ini", INI), ("hosts.yml", YAML)])
def test_matches_ansible(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert our_view(path) == ansible_view(path)


def test_group_and_host_vars_directories_match_ansible(tmp_path):
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv/hosts.ini").write_text(INI)
    (tmp_path / "inv/group_vars/web").mkdir(parents=True)
    (tmp_path / "inv/group_vars/all.yml").write_text("env: everywhere\nhttp_port: 7\n")
    (tmp_path / "inv/group_vars/web/main.yml").write_text("http_port: 9090\n")
    (tmp_path / "inv/host_vars").mkdir()
    (tmp_path / "inv/host_vars/db1.yml").write_text("ansible_user: dbadmin\n")
    (tmp_path / "inv/notes.md").write_text("[not an inventory\n")
    assert our_view(tmp_path / "inv") == ansible_view(tmp_path / "inv")


def test_lab_inventory_as_written_by_lab_up(tmp_path):
    path = tmp_path / "lab.ini"
    targets = [Target(name=f"t4-0{i}", port=2700 + i, pid=1, started=1, upper="", log="")
               for i in (1, 2)]
    write_inventory(path, targets, tmp_path / "key", tmp_path / "known_hosts", group="t4")
    inv = load_inventory([path])
    assert [(h.name, h.address, h.port, h.groups) for h in inv.resolve("t4")] == [
        ("t4-01", "127.0.0.1", 2701, ("t4",)), ("t4-02", "127.0.0.1", 2702, ("t4",))]
    assert inv.hosts["t4-01"].known_hosts_files == ((tmp_path / "known_hosts").resolve(),)
    assert inv.hosts["t4-01"].user == "root"


def test_resolve_host_group_and_unknown(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(INI)
    inv = load_inventory([path])
    assert [h.name for h in inv.resolve("prod")] == [
        "db1", "web01.example.com", "web02.example.com", "web03.example.com"]
    assert [h.name for h in inv.resolve("bastion")] == ["bastion"]
    assert inv.hosts["bastion"].groups == ("ungrouped",)
    with pytest.raises(UnknownTarget) as err:
        inv.resolve("web01.example.co")
    assert "web01.example.com" in err.value.hint


@pytest.mark.parametrize("text,message", [
    ("[web]\nhost ansible_port\n", "hosts.ini:2: expected key=value"),
    ("[web:bogus]\n", "unknown section type"),
    ("[web]\nh ansible_port=abc\n", "ansible_port 'abc' is not a number"),
    ("[a:children]\nb\n[b:children]\na\n", "cycle"),
])
def test_bad_inventories_name_the_problem(tmp_path, text, message):
    path = tmp_path / "hosts.ini"
    path.write_text(text)
    with pytest.raises(InventoryError, match=message):
        load_inventory([path])


def test_missing_inventory_says_how_to_get_one(tmp_path):
    with pytest.raises(InventoryError) as err:
        load_inventory([tmp_path / "nope.ini"])
    assert "LINUX_MCP_INVENTORY" in err.value.hint


def test_many_sources_merge(tmp_path):
    (tmp_path / "a.ini").write_text("[g]\nh1\n")
    (tmp_path / "b.yml").write_text(textwrap.dedent("""\
        all:
          children:
            g:
              hosts:
                h2:
        """))
    inv = load_inventory([tmp_path / "a.ini", tmp_path / "b.yml", tmp_path / "missing.ini"])
    assert inv.groups["g"] == ("h1", "h2")
