"""Read-only requests through kept `mcp:session` channels: the pool against the real wrapper
(test root) behind an in-process SSH server. Answers must be exactly those of a channel per
request; sessions that end, hang or are not offered must never cost an answer."""

import threading
import time

import pytest
from ssh_support import FakeSSHD, known_hosts_line, new_key, wrapper_handler
from wrapper_support import make_root, mini_policy, remove_root

from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.errors import RequestTimeout
from mcp_linux_infra.ssh.pool import Pool

REQUESTS = ["id -u", "uptime; id", "cat /etc/shadow", "mcp:version", "mcp:explain id -u",
            "cat /etc/hostname", "\u202eid"]


def policy(**limits):
    return mini_policy({
        "id": {"executable": ["/usr/bin/id"], "options": {"-u": None}},
        "cat": {"executable": ["/usr/bin/cat", "/bin/cat"],
                "operands": {"rest": {"type": "read_path"}, "min": 1, "max": 4}},
        "sleep": {"executable": ["/usr/bin/sleep", "/bin/sleep"], "timeout_s": 5,
                  "operands": {"items": [{"type": "number", "min": 0, "max": 30}], "min": 1}},
    }, limits=limits)


@pytest.fixture
def estate(tmp_path):
    made = []

    def make(limits=None, **settings):
        root = make_root(policy(**(limits or {})))
        keys = [new_key(tmp_path / "reader.key"), new_key(tmp_path / "pra.key")]
        sshd = FakeSSHD(wrapper_handler(root), keys)
        host = sshd.host()
        (tmp_path / "known_hosts").write_text(known_hosts_line(host, sshd.host_key))
        config = dict(_env_file=None, known_hosts=tmp_path / "known_hosts",
                      reader_key=tmp_path / "reader.key", pra_key=tmp_path / "pra.key",
                      connect_timeout=5, command_timeout=20, keepalive_interval=0)
        config.update(settings)
        pool = Pool(Settings(**config))
        made.append((root, sshd, pool))
        return sshd, host, pool
    yield make
    for root, sshd, pool in made:
        pool.close()
        sshd.stop()
        remove_root(root)


def answers(pool, host, requests):
    return [(d.exit_code, d.stdout, d.stderr) for d in (pool.run(host, r) for r in requests)]


def test_one_session_answers_like_a_channel_per_request(estate):
    sshd, host, pool = estate()
    in_session = answers(pool, host, REQUESTS * 3)
    assert sshd.commands == ["mcp:session"]  # everything went through one kept channel
    _, host2, channels = estate(reader_sessions=0)
    assert in_session == answers(channels, host2, REQUESTS * 3)
    assert in_session[2][0] == 126 and b"mcp_refusal" in in_session[2][2]


def test_a_batch_carries_its_document(estate):
    sshd, host, pool = estate()
    done = pool.run(host, "mcp:batch", stdin=b'{"commands": [{"id": "u", "command": "id -u"}]}')
    assert done.exit_code == 0 and b'"status": "ok"' in done.stdout
    assert sshd.commands == ["mcp:session"]


def test_a_session_that_ended_is_replaced_transparently(estate):
    sshd, host, pool = estate(limits={"session_max_requests": 2})
    assert [a[0] for a in answers(pool, host, ["id -u"] * 7)] == [0] * 7
    assert sshd.commands == ["mcp:session"] * 4
    assert sshd.connections == 1


def test_a_timeout_closes_the_session_and_the_next_request_gets_a_new_one(estate):
    sshd, host, pool = estate()
    began = time.monotonic()
    with pytest.raises(RequestTimeout):
        pool.run(host, "sleep 3", timeout=0.5)
    assert time.monotonic() - began < 2
    assert pool.run(host, "id -u").exit_code == 0
    assert sshd.commands == ["mcp:session", "mcp:session"]


def test_concurrent_requests_use_at_most_the_configured_sessions(estate):
    sshd, host, pool = estate(reader_sessions=2)
    results, errors = [], []

    def worker():
        try:
            results.extend(answers(pool, host, ["id -u", "sleep 1", "id -u"]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 18 and {r[0] for r in results} == {0}
    assert sshd.commands.count("mcp:session") == 2
    assert len(sshd.commands) > 2  # the others went on channels of their own meanwhile


def test_a_target_without_sessions_is_asked_once(tmp_path):
    key = new_key(tmp_path / "reader.key")
    new_key(tmp_path / "pra.key")

    def old_wrapper(command, stdin):
        if command == "mcp:session":
            return 126, b"", b'{"mcp_refusal": {"reason": "unknown_reserved_word"}}\n'
        return 0, f"ran {command}\n".encode(), b""
    sshd = FakeSSHD(old_wrapper, [key])
    host = sshd.host()
    (tmp_path / "known_hosts").write_text(known_hosts_line(host, sshd.host_key))
    pool = Pool(Settings(_env_file=None, known_hosts=tmp_path / "known_hosts",
                         reader_key=tmp_path / "reader.key", pra_key=tmp_path / "pra.key",
                         connect_timeout=5, keepalive_interval=0))
    try:
        assert [pool.run(host, "uptime").stdout for _ in range(3)] == [b"ran uptime\n"] * 3
        assert sshd.commands == ["mcp:session", "uptime", "uptime", "uptime"], sshd.commands
    finally:
        pool.close()
        sshd.stop()


def test_the_action_tier_never_uses_sessions(estate):
    sshd, host, pool = estate()
    pool.run(host, "id -u", tier="pra")
    assert sshd.commands == ["id -u"]
