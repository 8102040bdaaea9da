"""The SSH pool against a real SSH server in-process: reuse, strictness, recovery, limits."""

import socket
import threading
import time

import pytest
from ssh_support import FakeSSHD, known_hosts_line, new_key

from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.errors import (
    AuthFailed,
    HostKeyChanged,
    HostKeyUnknown,
    RequestTimeout,
    Unreachable,
)
from mcp_linux_infra.ssh.hostkeys import fingerprint
from mcp_linux_infra.ssh.pool import Pool


def echo(command: str, stdin: bytes):
    if command.startswith("sleep "):
        time.sleep(float(command.split()[1]))
        return 0, b"", b""
    if command.startswith("big "):
        return 0, b"x" * int(command.split()[1]), b""
    if command == "fail":
        return 3, b"", b"it broke\n"
    return 0, f"ran {command}\n".encode() + stdin, b""


@pytest.fixture
def keys(tmp_path):
    return {"reader": new_key(tmp_path / "reader.key"), "pra": new_key(tmp_path / "pra.key")}


@pytest.fixture
def settings(tmp_path, keys):
    return Settings(_env_file=None, known_hosts=tmp_path / "known_hosts",
                    reader_key=tmp_path / "reader.key", pra_key=tmp_path / "pra.key",
                    connect_timeout=2, command_timeout=5, keepalive_interval=0)


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
def pool(settings):
    p = Pool(settings)
    yield p
    p.close()


def trust(settings, host, key):
    with open(settings.known_hosts, "a") as f:
        f.write(known_hosts_line(host, key))


def test_reuses_one_transport_with_tcp_nodelay(settings, keys, servers, pool):
    sshd = servers(echo, [keys["reader"]])
    host = sshd.host()
    trust(settings, host, sshd.host_key)
    first = pool.run(host, "uptime")
    assert (first.exit_code, first.stdout, first.stderr, first.truncated) == (
        0, b"ran uptime\n", b"", False)
    failed = pool.run(host, "fail")
    assert (failed.exit_code, failed.stderr) == (3, b"it broke\n")
    assert pool.run(host, "mcp:batch", stdin=b'{"commands": []}').stdout.endswith(
        b'{"commands": []}')
    assert sshd.connections == 1
    assert sshd.logins == [("mcp-reader", keys["reader"].get_base64())]
    transport = pool._slots[(host.name, "reader")].transport
    assert transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_tiers_use_their_own_user_key_and_transport(settings, keys, servers, pool):
    sshd = servers(echo, [keys["reader"], keys["pra"]])
    host = sshd.host()
    trust(settings, host, sshd.host_key)
    pool.run(host, "uptime")
    pool.run(host, "list", tier="pra")
    assert sshd.connections == 2
    assert sshd.logins == [("mcp-reader", keys["reader"].get_base64()),
                           ("pra-runner", keys["pra"].get_base64())]


def test_unknown_host_key_is_refused_with_its_fingerprint(settings, keys, servers, pool):
    sshd = servers(echo, [keys["reader"]])
    with pytest.raises(HostKeyUnknown) as err:
        pool.run(sshd.host(name="newbox"), "uptime")
    assert fingerprint(sshd.host_key) in str(err.value)
    assert "mcp-linux-infra hosts trust newbox" in err.value.hint
    assert sshd.commands == []


def test_changed_host_key_is_refused_even_under_accept_new(settings, keys, servers):
    sshd = servers(echo, [keys["reader"]])
    host = sshd.host()
    trust(settings, host, new_key())  # same type, other key: a man in the middle
    pool = Pool(settings.model_copy(update={"host_key_policy": "accept-new"}))
    try:
        with pytest.raises(HostKeyChanged) as err:
            pool.run(host, "uptime")
    finally:
        pool.close()
    assert "MISMATCH" in str(err.value) and fingerprint(sshd.host_key) in str(err.value)
    assert sshd.commands == []


def test_accept_new_records_the_key_once(settings, keys, servers):
    sshd = servers(echo, [keys["reader"]])
    pool = Pool(settings.model_copy(update={"host_key_policy": "accept-new"}))
    try:
        assert pool.run(sshd.host(), "uptime").exit_code == 0
    finally:
        pool.close()
    assert settings.known_hosts.read_text() == known_hosts_line(sshd.host(), sshd.host_key)
    assert settings.known_hosts.stat().st_mode & 0o777 == 0o600


def test_known_hosts_file_named_by_the_inventory(tmp_path, keys, servers, pool):
    sshd = servers(echo, [keys["reader"]])
    lab_known = tmp_path / "lab_known_hosts"
    lab_known.write_text(known_hosts_line(sshd.host(), sshd.host_key))
    host = sshd.host(ansible_ssh_common_args=f"-o StrictHostKeyChecking=yes "
                                             f"-o UserKnownHostsFile={lab_known}")
    assert pool.run(host, "uptime").exit_code == 0


def test_reconnects_once_after_the_target_restarted(settings, keys, servers, pool):
    sshd = servers(echo, [keys["reader"]])
    host = sshd.host()
    trust(settings, host, sshd.host_key)
    assert pool.run(host, "uptime").exit_code == 0
    sshd.stop()
    with pytest.raises(Unreachable) as err:
        pool.run(host, "uptime")
    assert f"127.0.0.1:{host.port}" in str(err.value)
    again = servers(echo, [keys["reader"]], host_key=sshd.host_key, port=sshd.port)
    assert pool.run(host, "uptime").stdout == b"ran uptime\n"
    assert again.connections == 1


def test_reconnect_is_transparent_when_the_transport_died_silently(settings, keys, servers, pool):
    sshd = servers(echo, [keys["reader"]])
    host = sshd.host()
    trust(settings, host, sshd.host_key)
    pool.run(host, "uptime")
    old = pool._slots[(host.name, "reader")].transport
    for t in sshd._transports:  # the server drops the connection; the listener stays
        t.close()
    time.sleep(0.2)
    assert pool.run(host, "uptime").exit_code == 0
    assert sshd.connections == 2 and not old.is_active()


def test_timeout_and_output_cap(settings, keys, servers):
    sshd = servers(echo, [keys["reader"]])
    host = sshd.host()
    trust(settings, host, sshd.host_key)
    pool = Pool(settings.model_copy(update={"output_cap_bytes": 10_000}))
    try:
        began = time.monotonic()
        with pytest.raises(RequestTimeout) as err:
            pool.run(host, "sleep 3", timeout=0.5)
        assert time.monotonic() - began < 1.5
        assert "0.5 s" in str(err.value)
        capped = pool.run(host, "big 200000")
        assert capped.truncated and capped.exit_code is None and len(capped.stdout) <= 10_000
        assert pool.run(host, "big 5000").stdout == b"x" * 5000  # the transport still works
    finally:
        pool.close()


def test_auth_failure_names_user_key_and_remedy(settings, keys, servers, pool):
    sshd = servers(echo, [keys["pra"]])
    host = sshd.host()
    trust(settings, host, sshd.host_key)
    with pytest.raises(AuthFailed) as err:
        pool.run(host, "uptime")
    assert "mcp-reader@127.0.0.1" in str(err.value) and "reader.key" in str(err.value)
    assert fingerprint(keys["reader"]) in str(err.value)


def test_missing_key_file(settings, servers, keys, pool):
    sshd = servers(echo, [keys["reader"]])
    host = sshd.host()
    trust(settings, host, sshd.host_key)
    settings.reader_key.unlink()
    with pytest.raises(AuthFailed) as err:
        pool.run(host, "uptime")
    assert "keys init" in err.value.hint


def test_rotated_key_is_used_without_restart_and_old_transport_closed(
        settings, keys, servers, pool):
    sshd = servers(echo, [keys["reader"]])
    host = sshd.host()
    trust(settings, host, sshd.host_key)
    pool.run(host, "uptime")
    old = pool._slots[(host.name, "reader")].transport
    rotated = new_key(settings.reader_key.with_suffix(".new"))
    sshd.authorized = {rotated.get_base64()}  # the old key is revoked on the target
    settings.reader_key.with_suffix(".new").replace(settings.reader_key)
    assert pool.run(host, "uptime").exit_code == 0
    assert sshd.logins[-1] == ("mcp-reader", rotated.get_base64())
    assert not old.is_active()


def test_fan_out_is_bounded_and_one_host_down_does_not_hide_the_others(
        settings, keys, servers):
    hosts = []
    for i in range(5):
        sshd = servers(lambda command, stdin: echo("sleep 0.3", stdin), [keys["reader"]])
        host = sshd.host(name=f"h{i}")
        trust(settings, host, sshd.host_key)
        hosts.append((host, sshd))
    hosts[2][1].stop()
    pool = Pool(settings.model_copy(update={"fanout_concurrency": 2}))
    active, peak, lock = [0], [0], threading.Lock()

    def one(host):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return pool.run(host, "uptime").exit_code
        finally:
            with lock:
                active[0] -= 1
    try:
        results = pool.map(one, [h for h, _ in hosts])
    finally:
        pool.close()
    assert [r if isinstance(r, int) else type(r).__name__ for r in results] == [
        0, 0, "Unreachable", 0, 0]
    assert peak[0] == 2
