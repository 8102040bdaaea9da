"""deploy-mcp-infra.yml on a real target: what it installed (testinfra), that a second run and
a check-mode run change nothing, that it repairs drift, and that it refuses bad variables
before changing anything."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
import testinfra
from paths_support import REPO

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab

SYSTEM = REPO / "system"
WRAPPER = "/usr/local/libexec/mcp-infra/mcp-wrapper"
PRA_EXEC = "/usr/local/libexec/mcp-infra/pra-exec"
PACKAGE = "/usr/local/lib/mcp-infra/mcp_infra_target"
LAB_UNITS = ["nginx", "unbound", "cron", "rsyslog", "lab-app", "lab-broken"]
# path -> (directory?, mode); all root:root
LAYOUT = {
    "/usr/local/libexec/mcp-infra": (True, 0o755),
    WRAPPER: (False, 0o755),
    PRA_EXEC: (False, 0o755),
    "/usr/local/sbin/pra-run": (False, 0o755),
    "/usr/local/lib/mcp-infra": (True, 0o755),
    PACKAGE: (True, 0o755),
    f"{PACKAGE}/core": (True, 0o755),
    f"{PACKAGE}/readonly": (True, 0o755),
    f"{PACKAGE}/actions": (True, 0o755),
    "/etc/mcp-infra": (True, 0o755),
    "/etc/mcp-infra/readonly.json": (False, 0o644),
    "/etc/mcp-infra/actions.json": (False, 0o644),
    "/etc/mcp-infra/allowed_signers": (False, 0o644),
    "/etc/mcp-infra/host-id": (False, 0o644),
    "/etc/ssh/authorized_keys": (True, 0o755),
    "/etc/ssh/authorized_keys/mcp-reader": (False, 0o644),
    "/etc/ssh/authorized_keys/pra-runner": (False, 0o644),
    "/etc/ssh/sshd_config.d/50-mcp-infra.conf": (False, 0o644),
    "/etc/sudoers.d/pra-runner": (False, 0o440),
    "/var/lib/mcp-infra": (True, 0o700),
    "/var/lib/mcp-infra/nonces": (True, 0o700),
    "/var/log/mcp-infra": (True, 0o750),
    "/etc/logrotate.d/mcp-infra": (False, 0o644),
}
SOURCES = {WRAPPER: SYSTEM / "bin/mcp-wrapper", PRA_EXEC: SYSTEM / "bin/pra-exec",
           "/usr/local/sbin/pra-run": SYSTEM / "bin/pra-run",
           "/etc/sudoers.d/pra-runner": SYSTEM / "sudoers.d/pra-runner",
           "/etc/logrotate.d/mcp-infra": SYSTEM / "logrotate.d/mcp-infra"}
MODULES = sorted(p.relative_to(SYSTEM / "lib/mcp_infra_target").as_posix()
                 for p in (SYSTEM / "lib/mcp_infra_target").rglob("*.py"))
SOURCES.update({f"{PACKAGE}/{m}": SYSTEM / "lib/mcp_infra_target" / m for m in MODULES})
# sshd -T keyword -> value, for both accounts (plus their own forcecommand)
SSHD_EFFECTIVE = {
    "authorizedkeysfile": "/etc/ssh/authorized_keys/%u", "authorizedkeyscommand": "none",
    "authenticationmethods": "publickey", "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no", "disableforwarding": "yes",
    "allowtcpforwarding": "no", "allowagentforwarding": "no",
    "allowstreamlocalforwarding": "no", "x11forwarding": "no", "permittunnel": "no",
    "permittty": "no", "permituserrc": "no", "exposeauthinfo": "yes",
    "trustedusercakeys": "none",
}


@pytest.fixture(scope="module")
def target(deployed):
    """testinfra host for the main target, as root over a strictly checked ssh."""
    return testinfra.get_host(
        f"ssh://root@127.0.0.1:{deployed.port}", ssh_config="/dev/null",
        ssh_identity_file=str(deployed.root_key),
        ssh_extra_args=f"-o UserKnownHostsFile={deployed.known_hosts} "
                       "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes")


def effective(target, user: str) -> dict[str, str]:
    out = target.check_output(f"/usr/sbin/sshd -T -C user={user},host=x,addr=127.0.0.1")
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_accounts(target):
    for name, groups in (("mcp-reader", {"mcp-reader", "adm", "systemd-journal"}),
                         ("pra-runner", {"pra-runner"})):
        user = target.user(name)
        assert user.exists and user.shell == "/bin/sh" and user.home == "/"
        assert user.password == "*"
        assert set(user.groups) == groups
        assert "docker" not in user.groups
    home = target.file("/")
    assert home.user == "root" and home.group == "root" and not home.mode & 0o022


def test_every_deployed_path_is_root_owned_with_its_mode(target):
    seen = {}
    for line in target.check_output("stat -c '%n|%F|%U|%G|%a' " + " ".join(LAYOUT)).splitlines():
        path, kind, user, group, mode = line.split("|")
        seen[path] = (kind == "directory", user, group, int(mode, 8))
    assert seen == {path: (is_dir, "root", "root", mode)
                    for path, (is_dir, mode) in LAYOUT.items()}
    # nothing under the deployed trees that another user owns or may write, parents included
    trees = " ".join(p for p, (is_dir, _) in LAYOUT.items() if is_dir)
    assert target.check_output(f"find {trees} \\( ! -user root -o -perm /022 \\) -print") == ""
    parents = "/usr/local/lib /usr/local/libexec /usr/local/sbin /usr/local /usr /etc /etc/ssh " \
              "/var/lib /var /"
    assert target.check_output(f"find {parents} -maxdepth 0 \\( ! -user root -o -perm /022 \\) "
                               "-print") == ""


def test_code_and_sudoers_are_the_repository_files(target):
    sums = dict(reversed(line.split()) for line in target.check_output(
        "sha256sum " + " ".join(sorted(SOURCES))).splitlines())
    for path, source in SOURCES.items():
        assert sums[path] == hashlib.sha256(source.read_bytes()).hexdigest(), path
    # exactly the sources: no bytecode cache
    installed = target.check_output(f"cd {PACKAGE} && find . -mindepth 1 ! -type d").split()
    assert sorted(path[2:] for path in installed) == MODULES


def test_host_id_signers_and_keys(target, deployed):
    assert target.file("/etc/mcp-infra/host-id").content_string == f"{deployed.host}\n"
    signers = [line for line in target.file("/etc/mcp-infra/allowed_signers").content_string
               .splitlines() if line and not line.startswith("#")]
    operator = " ".join((deployed.keys_dir / "operator.key.pub").read_text().split()[:2])
    expired = " ".join((deployed.keys_dir / "expired-operator.key.pub").read_text().split()[:2])
    assert signers == [
        f'operator namespaces="mcp-linux-infra-approval" {operator}',
        f'expired-operator namespaces="mcp-linux-infra-approval",valid-before="20200101" {expired}']
    for user, command, key in (("mcp-reader", WRAPPER, deployed.reader_key),
                               ("pra-runner", PRA_EXEC, deployed.pra_key)):
        lines = [line for line in target.file(f"/etc/ssh/authorized_keys/{user}").content_string
                 .splitlines() if line and not line.startswith("#")]
        public = " ".join(key.with_name(key.name + ".pub").read_text().split()[:2])
        assert lines == [f'restrict,command="{command}" {public}']


def test_policy_and_catalog_are_rendered_from_the_defaults_and_the_variables(target, deployed):
    default = json.loads((SYSTEM / "policy/readonly.json").read_text())
    policy = json.loads(target.file("/etc/mcp-infra/readonly.json").content_string)
    # all plugins, no site commands, one site path denied (the fixture's variables), and the
    # destinations: loopback, every inventory host's name and ansible_host, the site's
    default["paths"]["deny"].append("/srv/lab-app/labapp/settings.py")
    site = json.loads(deployed.vars_file.read_text())["mcp_infra_network_destinations"]
    loopback = default["network"]["destinations"]
    rendered = policy["network"]["destinations"]
    assert rendered[:len(loopback)] == loopback and rendered[-len(site):] == site
    assert set(rendered[len(loopback):-len(site)]) == set(deployed.hosts) | {"127.0.0.1"}
    default["network"]["destinations"] = rendered
    assert policy == default
    assert list(policy["types"]) == list(default["types"])  # order kept: types refer back
    catalog = json.loads(target.file("/etc/mcp-infra/actions.json").content_string)
    actions = catalog["actions"]
    # restart_container: no container configured, so not offered at all
    assert sorted(actions) == ["django_manage", "flush_dns_cache", "reload_service",
                               "reset_failed_unit", "restart_service", "rotate_logs",
                               "start_service"]
    for name in ("start_service", "restart_service", "reset_failed_unit"):
        assert actions[name]["params"]["unit"]["values"] == LAB_UNITS
    assert actions["reload_service"]["params"]["unit"]["values"] == ["nginx", "unbound"]
    assert actions["rotate_logs"]["params"]["config"]["values"] == ["/etc/logrotate.d/nginx"]
    assert actions["django_manage"]["user"] == "www-data"
    assert actions["django_manage"]["vars"] == {"python": "/usr/bin/python3",
                                                "manage_py": "/srv/lab-app/manage.py"}


def test_effective_sshd_settings_of_both_accounts(target):
    for user, command in (("mcp-reader", WRAPPER), ("pra-runner", PRA_EXEC)):
        settings = effective(target, user)
        assert settings["forcecommand"] == command
        assert {k: settings.get(k) for k in SSHD_EFFECTIVE} == SSHD_EFFECTIVE, user
    # the Match blocks apply to these two accounts only
    assert effective(target, "root")["forcecommand"] == "none"


def test_sudo_allows_pra_runner_exactly_one_command(target):
    out = target.check_output("sudo -l -U pra-runner")
    rules = out.split("may run the following commands on", 1)[1].splitlines()[1:]
    assert [r.strip() for r in rules if r.strip()] == [
        '(root) NOPASSWD: /usr/local/sbin/pra-run ""']
    assert "not allowed to run sudo" in target.run("sudo -l -U mcp-reader").stdout


def test_a_deploy_repairs_drift(deployed, target):
    """Tampered modes, contents, groups and keys are put back by the next run; a module of a
    previous version (the flat package before core/readonly/actions) is removed."""
    policy_sha = target.file("/etc/mcp-infra/readonly.json").sha256sum
    keys_before = target.file("/etc/ssh/authorized_keys/mcp-reader").content_string
    deployed.root_ok(
        f"chmod 0664 {PACKAGE}/readonly/policy.py && echo '{{}}' > /etc/mcp-infra/readonly.json && "
        f"echo 'raise SystemExit' > {PACKAGE}/wrapper.py && "
        "groupadd docker && usermod -aG docker mcp-reader && "
        "echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHwCY5uSdYouwA+4yJyb8RX9hXUqTwe9Yyjkedzo1d4d' "
        ">> /etc/ssh/authorized_keys/mcp-reader")
    try:
        out = deployed.playbook("deploy-mcp-infra.yml", limit=deployed.host)
        assert deployed.changed_tasks(out.stdout) == [
            "mcp_infra : Write the forced-command authorized_keys of each account",
            "mcp_infra : Create the accounts",
            "mcp_infra : Install the wrappers, pra-run and the library",
            "mcp_infra : Remove modules that are no longer part of the library",
            "mcp_infra : Write the read-only policy"]
        assert target.file(f"{PACKAGE}/readonly/policy.py").mode == 0o644
        assert not target.file(f"{PACKAGE}/wrapper.py").exists
        assert target.file("/etc/mcp-infra/readonly.json").sha256sum == policy_sha
        assert target.file("/etc/ssh/authorized_keys/mcp-reader").content_string == keys_before
        assert "docker" not in target.user("mcp-reader").groups
    finally:
        deployed.ssh_root("groupdel docker")


def test_a_second_run_changes_nothing(deployed):
    out = deployed.playbook("deploy-mcp-infra.yml", limit=deployed.host)
    counts = deployed.recap(out.stdout)[deployed.host]
    assert deployed.changed_tasks(out.stdout) == []
    assert (counts["changed"], counts["failed"], counts["unreachable"]) == (0, 0, 0)


def test_check_mode_on_the_converged_host_is_clean(deployed):
    out = deployed.playbook("deploy-mcp-infra.yml", "--check", limit=deployed.host)
    counts = deployed.recap(out.stdout)[deployed.host]
    assert deployed.changed_tasks(out.stdout) == []
    assert (counts["changed"], counts["failed"], counts["unreachable"]) == (0, 0, 0)


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHwCY5uSdYouwA+4yJyb8RX9hXUqTwe9Yyjkedzo1d4d"


@pytest.mark.parametrize("variables, message", [
    # a second line in a key would be a second, unrestricted authorized_keys entry
    ({"mcp_infra_reader_keys": [KEY + "\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJunk"]},
     "each key must be one ssh public key line"),
    ({"mcp_infra_reader_keys": ['command="/bin/sh" ' + KEY]},
     "each key must be one ssh public key line"),
    # a CA line would let every certificate it signed in, around the role's keys
    ({"mcp_infra_pra_keys": ["cert-authority " + KEY]},
     "each key must be one ssh public key line"),
    ({"mcp_infra_reader_keys": ["ssh-ed25519-cert-v01@openssh.com " + KEY.split()[1]]},
     "each key must be one ssh public key line"),
    # a quote in from= would end the option and add another one
    ({"mcp_infra_pra_from": ['10.0.0.1",command="/bin/sh']}, "from= entries are addresses"),
    # a wildcard principal would let this key approve as anyone
    ({"mcp_infra_operators": [{"principal": "*", "public_key": KEY}]}, "Each operator needs"),
    ({"mcp_infra_operators": [{"principal": "op", "public_key": KEY,
                               "valid_before": "20300101\nmallory " + KEY}]},
     "Each operator needs"),
    ({"mcp_infra_reader_groups": ["adm", "docker"]}, "mcp_infra_reader_groups must not contain"),
    # a destination must be a name or an address: never a pattern or a second value
    ({"mcp_infra_network_destinations": ["*.example.net"]},
     "mcp_infra_network_destinations (and every inventory host's name"),
], ids=["key-newline", "key-options", "cert-authority", "certificate", "from-quote",
        "principal-wildcard", "valid-before-newline", "docker-group", "destination-pattern"])
def test_bad_variables_are_refused_before_any_change(deployed, variables, message):
    out = deployed.playbook("deploy-mcp-infra.yml", "-e", json.dumps(variables),
                            limit=deployed.host, check=False)
    assert out.returncode != 0
    assert deployed.recap(out.stdout)[deployed.host]["changed"] == 0
    assert " ".join(message.split()) in " ".join(out.stdout.split())


def test_logrotate_rotates_the_pra_run_log(deployed, target):
    """The role's logrotate configuration, run by the target's own logrotate (forced, with a
    state file of its own): the log is renamed, a new one is made 0640 root:root, pra-run
    writes its next line there (it opens the log for every attempt), and the previous file
    is compressed one rotation later (delaycompress)."""
    log, conf = "/var/log/mcp-infra/pra-run.log", "/etc/logrotate.d/mcp-infra"
    state = f"/root/logrotate-test-{os.urandom(4).hex()}.state"

    def attempt() -> str:
        """One refused attempt: a line in the log; its envelope digest is unique to it."""
        junk = os.urandom(8).hex()
        assert deployed.ssh("pra-runner", "run", stdin=junk,
                            key=deployed.key_for("pra-runner")).returncode == 126
        return hashlib.sha256(junk.encode()).hexdigest()

    debug = target.run(f"logrotate -d -s {state} {conf}")
    assert debug.rc == 0 and "error" not in (debug.stdout + debug.stderr).lower(), debug.stderr
    try:
        first = attempt()
        deployed.root_ok(f"logrotate -f -s {state} {conf}")
        assert target.file(log).size == 0
        assert (target.file(log).user, target.file(log).group, target.file(log).mode) == (
            "root", "root", 0o640)
        assert first in target.file(f"{log}.1").content_string
        second = attempt()
        assert json.loads(target.file(log).content_string)["envelope_sha256"] == second
        deployed.root_ok(f"logrotate -f -s {state} {conf}")
        assert second in target.file(f"{log}.1").content_string
        assert first in target.check_output(f"zcat {log}.2.gz")
        assert not target.file(f"{log}.2").exists
    finally:
        deployed.ssh_root(f"rm -f {state}")


# Runs on a target as root: reload sshd, then wait until it listens again. On SIGHUP sshd
# closes its sockets and re-executes itself, so a connection in between would be refused;
# it is done when every listening socket of port 22 is a new one.
_RELOAD_SSHD = r"""
import subprocess, sys, time
def listening():
    out = subprocess.run(["ss", "-Hltne", "sport = :22"], capture_output=True, text=True)
    return {word for word in out.stdout.split() if word.startswith("ino:")}
before = listening()
subprocess.run(["/usr/sbin/sshd", "-t"], check=True)
subprocess.run(["systemctl", "reload", "ssh"], check=True)
deadline = time.monotonic() + 30
while True:
    now = listening()
    if len(now) == len(before) and not now & before:
        break
    if time.monotonic() > deadline:
        sys.exit("sshd does not listen again")
    time.sleep(0.1)
"""


def reload_sshd(deployed) -> None:
    out = deployed.ssh_root("python3 -", stdin=_RELOAD_SSHD)
    assert out.returncode == 0, out.stderr


def test_user_certificates_never_log_in_as_the_two_accounts(deployed, tmp_path):
    """On a site whose sshd trusts a user CA, a certificate whose principals name mcp-reader
    and pra-runner logs in as neither: only the role's authorized_keys do (with restrict,
    from= and rotation). The same certificate logs in as an ordinary user: the CA works."""
    ca, client = tmp_path / "ca", tmp_path / "client"
    for key in (ca, client):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, timeout=60)
    probe = "caprobe" + os.urandom(3).hex()
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "lab-ca-test",
                    "-n", f"mcp-reader,pra-runner,{probe}", "-V", "-5m:+1h", f"{client}.pub"],
                   check=True, timeout=60)
    ca_file, dropin = "/etc/ssh/lab-user-ca.pub", "/etc/ssh/sshd_config.d/00-lab-user-ca.conf"
    deployed.root_ok(f"useradd -M -d / -s /bin/sh -p '*' {probe}")
    try:
        assert deployed.ssh_root(f"cat > {ca_file}", stdin=(tmp_path / "ca.pub").read_text()
                                 ).returncode == 0
        deployed.root_ok(f"echo 'TrustedUserCAKeys {ca_file}' > {dropin}")
        reload_sshd(deployed)

        def login(user: str, command: str) -> subprocess.CompletedProcess:
            return deployed.ssh(user, command, key=client,
                                options=["-o", f"CertificateFile={client}-cert.pub"])
        own = login(probe, "id -un")
        assert (own.returncode, own.stdout.strip()) == (0, probe), own.stderr
        for user, command in (("mcp-reader", "mcp:version"), ("pra-runner", "list")):
            refused = login(user, command)
            assert refused.returncode == 255 and "Permission denied" in refused.stderr, (
                user, refused.returncode, refused.stdout[:200])
            # what sshd itself says for these accounts, with the site's CA configured
            settings = deployed.root_ok(f"sshd -T -C user={user},host=x,addr=127.0.0.1")
            assert "trustedusercakeys none" in settings.splitlines()
            # and their own keys still work
            assert deployed.ssh(user, command, key=deployed.key_for(user)).returncode == 0
    finally:
        deployed.ssh_root(f"rm -f {dropin} {ca_file}; userdel {probe}")
        reload_sshd(deployed)
