"""Routes: the inventory's ssh arguments and the ssh config read as OpenSSH reads them (a
table each), then the pool through real SSH servers: a jump host that forwards (strict host
keys on every hop), two of them, and a ProxyCommand run without a shell."""

import sys

import pytest
from ssh_support import FakeSSHD, known_hosts_line, new_key

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.errors import (
    AuthFailed,
    HostKeyChanged,
    HostKeyUnknown,
    RouteInvalid,
    Unreachable,
)
from mcp_linux_infra.ssh.pool import Pool
from mcp_linux_infra.ssh.route import Routes, parse_args

STRICT = "is not honoured: every hop's host key must be in known_hosts (hosts trust)"


@pytest.mark.parametrize(("args", "found", "notes"), [
    ("-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/k", {}, []),
    ("-J jump@bastion:2200", {"proxy": "proxyjump", "proxyjump": "jump@bastion:2200"}, []),
    ("-Jjump@bastion", {"proxy": "proxyjump", "proxyjump": "jump@bastion"}, []),
    ("-o ProxyJump=a@x,b@y", {"proxy": "proxyjump", "proxyjump": "a@x,b@y"}, []),
    ("-oProxyJump=a@x", {"proxy": "proxyjump", "proxyjump": "a@x"}, []),
    ("-o 'ProxyJump a@x'", {"proxy": "proxyjump", "proxyjump": "a@x"}, []),
    ("-o 'ProxyCommand=ssh -W %h:%p gw'",
     {"proxy": "proxycommand", "proxycommand": "ssh -W %h:%p gw"}, []),
    ("-o ProxyCommand='nc %h %p'", {"proxy": "proxycommand", "proxycommand": "nc %h %p"}, []),
    ("-J a@x -o ProxyCommand=nc", {"proxy": "proxyjump", "proxyjump": "a@x",
                                   "proxycommand": "nc"}, []),  # the first one wins
    ("-o StrictHostKeyChecking=no", {}, [f"StrictHostKeyChecking=no {STRICT}"]),
    ("-o StrictHostKeyChecking=accept-new", {}, [f"StrictHostKeyChecking=accept-new {STRICT}"]),
    ("-vC -o ControlMaster=auto", {}, ["-v is not honoured", "-C is not honoured",
                                       "-o ControlMaster=auto is not honoured"]),
    ("-i /root/.ssh/id -p 2222", {}, ["-i /root/.ssh/id is not honoured",
                                      "-p 2222 is not honoured"]),
    ("stray", {}, ["'stray' in the ssh arguments is not honoured"]),
])
def test_ssh_arguments(args, found, notes):
    assert parse_args(args) == (found, notes)


@pytest.mark.parametrize("args", ["-J", "-o", "-o 'ProxyJump=a"])
def test_unparsable_ssh_arguments(args):
    with pytest.raises(ValueError):
        parse_args(args)


SSH_CONFIG = """
Host inner
  HostName 10.0.0.5
  Port 2222
  ProxyJump jump@bastion:2200
Host bastion
  HostName 192.0.2.1
  User jumper
Host viacmd
  ProxyCommand /usr/bin/nc -X connect %h %p
Host noproxy
  ProxyCommand none
Host chained
  ProxyJump inner
Host nouser
  ProxyJump gw
"""


def host(name="web", address=None, **vars):
    """An inventory host as inventory.py builds it (ansible_port is its port)."""
    return Host(name=name, address=address or name, port=vars.get("ansible_port", 22),
                groups=(), vars=vars)


def described(route):
    return (route.target.address, route.target.port, route.describe(), route.notes)


@pytest.mark.parametrize(("inventory_host", "expected"), [
    (host("plain"), ("plain", 22, "direct", ())),
    (host("inner"), ("10.0.0.5", 2222, "via jump@192.0.2.1:2200", ())),
    # the inventory's own port wins over the config's, as Ansible's -o Port does
    (host("inner", ansible_port=2022), ("10.0.0.5", 2022, "via jump@192.0.2.1:2200", ())),
    (host("web", "inner"), ("10.0.0.5", 2222, "via jump@192.0.2.1:2200", ())),
    # the jump host's User comes from its own config entry
    (host("x", ansible_ssh_common_args="-J bastion"), ("x", 22, "via jumper@192.0.2.1:22", ())),
    (host("x", ansible_ssh_common_args="-J a@h1:2201,b@[::1]:2202"),
     ("x", 22, "via a@h1:2201, b@::1:2202", ())),
    (host("x", ansible_ssh_common_args="-J ssh://a@h1:2201"), ("x", 22, "via a@h1:2201", ())),
    # the command line wins over the config
    (host("viacmd", ansible_ssh_extra_args="-J a@gw"), ("viacmd", 22, "via a@gw:22", ())),
    (host("viacmd"), ("viacmd", 22, "ProxyCommand /usr/bin/nc -X connect viacmd 22", ())),
    (host("noproxy"), ("noproxy", 22, "direct", ())),
    (host("x", ansible_ssh_common_args="-o ProxyJump=none"), ("x", 22, "direct", ())),
    (host("x", ansible_ssh_common_args="-o 'ProxyCommand=relay --to %h:%p --as %r %%n=%n'"),
     ("x", 22, "ProxyCommand relay --to x:22 --as mcp-reader %n=x", ())),
    (host("x", ansible_ssh_common_args="-o StrictHostKeyChecking=no -J a@gw"),
     ("x", 22, "via a@gw:22", (f"ansible_ssh_common_args: StrictHostKeyChecking=no {STRICT}",))),
])
def test_routes(tmp_path, inventory_host, expected):
    config = tmp_path / "config"
    config.write_text(SSH_CONFIG)
    assert described(Routes(config).resolve(inventory_host, "mcp-reader")) == expected


def test_proxy_command_tokens_stay_tokens(tmp_path):
    route = Routes(None).resolve(
        host("x", ansible_ssh_common_args="-o 'ProxyCommand=relay \"%h %p\" %h:%p'"), "u")
    assert route.proxy_command == ("relay", "x 22", "x:22")


@pytest.mark.parametrize(("inventory_host", "says"), [
    (host("x", ansible_ssh_common_args="-o ProxyCommand='nc %C'"), "%C is not supported"),
    (host("nouser"), "jump host gw: no user"),
    (host("chained"), "jump host inner has a ProxyJump or ProxyCommand of its own"),
    (host("x", ansible_ssh_common_args="-J a@bad/host"), "is not [user@]host[:port]"),
    (host("x", ansible_ssh_common_args="-J a@h:99999"), "is not [user@]host[:port]"),
    (host("x", "a b", ansible_ssh_common_args="-J a@gw"), "is not a host name or IP address"),
    (host("x", ansible_ssh_common_args="-J"), "without its argument"),
])
def test_routes_refused(tmp_path, inventory_host, says):
    config = tmp_path / "config"
    config.write_text(SSH_CONFIG)
    with pytest.raises(RouteInvalid) as err:
        Routes(config).resolve(inventory_host, "mcp-reader")
    assert says in str(err.value)
    assert err.value.kind == "route_invalid"


def test_match_exec_is_refused_not_run(tmp_path):
    marker = tmp_path / "ran"
    config = tmp_path / "config"
    config.write_text(f"Match exec \"touch {marker}\"\n  HostName elsewhere\n")
    with pytest.raises(RouteInvalid, match="Match exec"):
        Routes(config).resolve(host("x"), "u")
    assert not marker.exists()


def test_the_ssh_config_is_read_again_when_it_changes(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host x\n  HostName 10.0.0.1\n")
    routes = Routes(config)
    assert routes.resolve(host("x"), "u").target.address == "10.0.0.1"
    config.write_text("Host x\n  HostName 10.0.0.22\n")
    assert routes.resolve(host("x"), "u").target.address == "10.0.0.22"


# --- through real SSH servers --------------------------------------------------------------

def answer(command, stdin):
    return 0, f"ran {command}\n".encode(), b""


@pytest.fixture
def servers():
    started = []

    def make(*args, **kwargs):
        sshd = FakeSSHD(*args, **kwargs)
        started.append(sshd)
        return sshd
    yield make
    for sshd in started:
        sshd.stop()


@pytest.fixture
def key(tmp_path):
    return new_key(tmp_path / "reader.key")


@pytest.fixture
def settings(tmp_path, key):
    return Settings(_env_file=None, known_hosts=tmp_path / "known_hosts",
                    reader_key=tmp_path / "reader.key", pra_key=tmp_path / "reader.key",
                    ssh_config=tmp_path / "no-config", connect_timeout=5,
                    command_timeout=10, keepalive_interval=0, reader_sessions=0)


def trust(settings, sshd, name="x"):
    with open(settings.known_hosts, "a") as f:
        f.write(known_hosts_line(sshd.host(name), sshd.host_key))


def behind(servers, key, hops=1):
    """A target, and `hops` jump hosts before it, each forwarding only to the next."""
    target = servers(answer, [key])
    chain = [target]
    for _ in range(hops):
        chain.insert(0, servers(answer, [key], forward={("127.0.0.1", chain[0].port)}))
    return target, chain[:-1]


def through(target, jumps, user="jump"):
    spec = ",".join(f"{user}@127.0.0.1:{j.port}" for j in jumps)
    return target.host("inner", ansible_ssh_common_args=f"-o StrictHostKeyChecking=yes -J {spec}")


@pytest.mark.parametrize("hops", [1, 2])
def test_pool_through_jump_hosts(settings, key, servers, hops):
    target, jumps = behind(servers, key, hops)
    for sshd in [*jumps, target]:
        trust(settings, sshd)
    pool = Pool(settings)
    try:
        inner = through(target, jumps)
        assert pool.run(inner, "uptime").stdout == b"ran uptime\n"
        assert pool.run(inner, "list", tier="pra").stdout == b"ran list\n"
    finally:
        pool.close()
    for jump in jumps:  # the tier's own key, as the jump user, on each hop
        assert ("jump", key.get_base64()) in jump.logins and jump.commands == []
    assert jumps[-1].forwards == [("127.0.0.1", target.port)] * 2
    assert target.commands == ["uptime", "list"]


def test_an_unknown_jump_host_key_is_refused_before_any_login(settings, key, servers):
    target, (jump,) = behind(servers, key)
    trust(settings, target)
    pool = Pool(settings)
    try:
        with pytest.raises(HostKeyUnknown) as err:
            pool.run(through(target, [jump]), "uptime")
    finally:
        pool.close()
    assert f"[127.0.0.1]:{jump.port}" in str(err.value)
    assert err.value.hint.endswith("hosts trust inner")
    assert jump.logins == [] and target.connections == 0


def test_a_changed_jump_host_key_is_refused_even_under_accept_new(settings, key, servers):
    target, (jump,) = behind(servers, key)
    trust(settings, target)
    with open(settings.known_hosts, "a") as f:
        f.write(known_hosts_line(jump.host(), new_key()))
    pool = Pool(settings.model_copy(update={"host_key_policy": "accept-new"}))
    try:
        with pytest.raises(HostKeyChanged, match="MISMATCH"):
            pool.run(through(target, [jump]), "uptime")
    finally:
        pool.close()
    assert jump.logins == [] and target.connections == 0


def test_the_target_behind_a_jump_host_is_checked_strictly_too(settings, key, servers):
    target, (jump,) = behind(servers, key)
    trust(settings, jump)
    pool = Pool(settings)
    try:
        with pytest.raises(HostKeyUnknown, match=f"127.0.0.1]:{target.port}"):
            pool.run(through(target, [jump]), "uptime")
    finally:
        pool.close()
    assert target.logins == []


def test_a_jump_host_that_refuses_the_key_or_the_destination(settings, key, servers):
    target, (jump,) = behind(servers, key)
    stranger = servers(answer, [new_key()], forward={("127.0.0.1", target.port)})
    elsewhere = servers(answer, [key], forward={("127.0.0.1", 1)})
    for sshd in (target, jump, stranger, elsewhere):
        trust(settings, sshd)
    pool = Pool(settings)
    try:
        with pytest.raises(AuthFailed, match="jump@127.0.0.1"):
            pool.run(through(target, [stranger]), "uptime")
        with pytest.raises(Unreachable, match="did not open a channel"):
            pool.run(through(target, [elsewhere]), "uptime")
    finally:
        pool.close()


RELAY = """
import os, socket, sys, threading
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := sock.recv(65536):
    os.write(1, data)
"""


def test_pool_through_a_proxy_command(settings, key, servers, tmp_path):
    target = servers(answer, [key])
    trust(settings, target)
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    inner = target.host("inner", ansible_ssh_common_args=(
        f"-o 'ProxyCommand={sys.executable} -I {relay} %h %p'"))
    pool = Pool(settings)
    try:
        assert pool.run(inner, "uptime").stdout == b"ran uptime\n"
        process = pool._slots[("inner", "reader")].transport.sock.process
    finally:
        pool.close()
    assert process.returncode is not None  # stopped and reaped with the transport
