"""server/journal_groups.py: which parts of a message are masked (and which are left), and
how entries become groups: counted, timed, ordered, attributed and shown inert."""

import pytest

from mcp_linux_infra.server.journal_groups import EXAMPLE_MAX, group, shape

UUID = "05d06739-cb55-475c-bb49-c0efa7250fcf"
SCOPE = "4f1c" * 16  # a container id: 64 hex digits

SHAPES = [
    # numbers, in paths too
    ("sshd[123]: session 45 closed", "sshd[<n>]: session <n> closed"),
    ("/proc/1234/status: No such file", "/proc/<n>/status: No such file"),
    ("/run/user/1000/bus refused", "/run/user/<n>/bus refused"),
    ("/var/log/app-2024-05-01.log is full", "/var/log/app-<n>-<n>-<n>.log is full"),
    ("took 1.5 s at 12:34:56", "took <n>.<n> s at <n>:<n>:<n>"),
    # IPv4 (with its port, at the end of a sentence, inside a word: not one)
    ("Failed password for root from 203.0.113.7 port 51234 ssh2",
     "Failed password for root from <ip> port <n> ssh<n>"),
    ("upstream 10.0.1.10:8080 timed out", "upstream <ip>:<n> timed out"),
    ("connection from 192.0.2.1.", "connection from <ip>."),
    ("peer=198.51.100.4, retrying", "peer=<ip>, retrying"),
    ("net 10.0.0.0/24 unreachable", "net <ip>/<n> unreachable"),
    ("version 1.2.3 is old", "version <n>.<n>.<n> is old"),
    ("bad address 999.1.1.1", "bad address <n>.<n>.<n>.<n>"),
    ("lag 1.2.3.4ms", "lag <n>.<n>.<n>.<n>ms"),
    # IPv6 (bracketed with a port, loopback, zone, IPv4-mapped; 8 groups of 2 is IPv6)
    ("connect() to [2001:db8::6]:5432 failed", "connect() to [<ip>]:<n> failed"),
    ("listening on ::1 and fe80::1%eth0", "listening on <ip> and <ip>"),
    ("client ::ffff:192.0.2.1 gone", "client <ip> gone"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334 down", "<ip> down"),
    ("addr aa:bb:cc:dd:ee:ff:00:11", "addr <ip>"),
    ("pam_env(sshd:session): Unable to open env file: /etc/default/locale",
     "pam_env(sshd:session): Unable to open env file: /etc/default/locale"),
    ("dead::beef::cafe is no address", "dead::beef::cafe is no address"),
    # MAC addresses
    ("lease on eth0 (02:42:ac:11:00:04)", "lease on eth<n> (<mac>)"),
    ("station AA-BB-CC-DD-EE-0F left", "station <mac> left"),
    # UUIDs and hex ids
    (f"request {UUID} failed", "request <uuid> failed"),
    (f"boot {UUID.upper()}", "boot <uuid>"),
    ("worker 0x7f3a4c00 lost its lease", "worker <hex> lost its lease"),
    ("container 3f9b27c3a1b2 died", "container <hex> died"),
    (f"/sys/fs/cgroup/system.slice/docker-{SCOPE}.scope",
     "/sys/fs/cgroup/system.slice/docker-<hex>.scope"),
    ("invocation_c1a2b3d4e5 ended", "invocation_<hex> ended"),
    ("deadbeef accede facade decade", "deadbeef accede facade decade"),
    ("checksum 12345678 bytes", "checksum <n> bytes"),
    # mixed
    (f"upstream 10.0.0.12:8080 timed out after 184 ms, request {UUID}",
     "upstream <ip>:<n> timed out after <n> ms, request <uuid>"),
    ("worker 0x7f3a1c00 lost its lease on eth0 (02:42:ac:11:00:01)",
     "worker <hex> lost its lease on eth<n> (<mac>)"),
    # unicode: ASCII digits are numbers; other scripts' digits and text are left
    ("Ünïcode ✓ 42 Fehler – 3 Versuche 🙂", "Ünïcode ✓ <n> Fehler – <n> Versuche 🙂"),
    ("٤٢ محاولات", "٤٢ محاولات"),
    # control characters are kept as characters (inert: a shape is never shown)
    ("bad\x1b[31m 42\x00\n7", "bad\x1b[<n>m <n>\x00\n<n>"),
    ("", ""),
]


@pytest.mark.parametrize(("message", "expected"), SHAPES)
def test_shape(message, expected):
    assert shape(message) == expected


@pytest.mark.parametrize("messages", [
    pytest.param([f"upstream 10.0.{i % 3}.{i}:8080 timed out after {100 + i} ms" for i in
                  range(1, 13)], id="addresses-ports-numbers"),
    pytest.param([f"connect() to [2001:db8::{i:x}]:5432 failed" for i in range(1, 20)],
                 id="ipv6"),
    pytest.param(["lease lost (02:42:ac:11:00:01)", "lease lost (0a:1b:2c:3d:4e:5f)"],
                 id="macs"),
    pytest.param([f"request {UUID} failed",
                  "request 774d28bc-4809-43cf-8747-102de0f3a203 failed"], id="uuids"),
])
def test_near_identical_messages_have_one_shape(messages):
    assert len({shape(m) for m in messages}) == 1


def entry(message, time="2026-12-05T03:21:54Z", unit="ssh.service", identifier="sshd",
          priority=3):
    return {"time": time, "unit": unit, "identifier": identifier, "priority": priority,
            "message": message}


def test_a_repeated_line_is_one_group():
    entries = [entry(f"session {i} opened", time=f"2026-12-05T03:21:{i:02d}Z")
               for i in range(10, 50)]
    assert group(entries) == [{
        "count": 40, "unit": "ssh.service", "identifier": "sshd", "priority": "err",
        "first": "2026-12-05T03:21:10Z", "last": "2026-12-05T03:21:49Z",
        "example": "session 49 opened"}]


def test_most_frequent_first_then_most_recent():
    entries = ([entry("a", time="2026-12-05T03:00:00Z")] * 3
               + [entry("b", time="2026-12-05T03:00:01Z")]
               + [entry("c", time="2026-12-05T03:00:03Z")]
               + [entry("d", time=None)]
               + [entry("e", time="2026-12-05T03:00:02Z")] * 3)
    assert [(g["example"], g["count"]) for g in group(entries)] == [
        ("e", 3), ("a", 3), ("c", 1), ("b", 1), ("d", 1)]


def test_unit_and_identifier_part_the_groups():
    entries = [entry("failed"), entry("failed", unit="cron.service"),
               entry("failed", identifier="CRON"), entry("failed")]
    assert [(g["unit"], g["identifier"], g["count"]) for g in group(entries)] == [
        ("ssh.service", "sshd", 2), ("cron.service", "sshd", 1), ("ssh.service", "CRON", 1)]


def test_first_last_example_and_priority_of_a_group():
    entries = [entry("x 2", time="2026-12-05T03:00:02Z", priority=3),
               entry("x 1", time="2026-12-05T03:00:01Z", priority=2),
               entry("x 3", time="2026-12-05T03:00:03Z", priority=3),
               entry("x 0", time=None, priority=None)]
    [only] = group(entries)
    assert (only["first"], only["last"], only["example"], only["priority"], only["count"]) == (
        "2026-12-05T03:00:01Z", "2026-12-05T03:00:03Z", "x 3", "crit", 4)


def test_lines_without_a_unit_join_the_one_unit_that_has_them():
    entries = [entry("lost 1", unit="lab-noise.service"), entry("lost 2", unit=None),
               entry("gone 1", unit="a.service"), entry("gone 2", unit="b.service"),
               entry("gone 3", unit=None), entry("alone", unit=None)]
    assert [(g["unit"], g["example"], g["count"]) for g in group(entries)] == [
        ("lab-noise.service", "lost 2", 2), ("a.service", "gone 1", 1),
        ("b.service", "gone 2", 1), (None, "gone 3", 1), (None, "alone", 1)]


def test_what_the_target_wrote_is_shown_inert():
    [shown] = group([entry("evil\x1b]0;title\x07\n\u202efake line", unit="x\x1b[2J.service",
                           identifier="id\r")])
    assert shown["example"] == "evil\\x1b]0;title\\x07\\n\\u202efake line"
    assert (shown["unit"], shown["identifier"]) == ("x\\x1b[2J.service", "id\\r")


def test_a_long_example_is_cut_and_says_so():
    [shown] = group([entry("y" * 5000)])
    assert len(shown["example"]) == EXAMPLE_MAX and shown["example"].endswith("y…")
    [short] = group([entry("y" * EXAMPLE_MAX)])
    assert short["example"] == "y" * EXAMPLE_MAX


def test_missing_fields_and_no_entries():
    assert group([]) == []
    assert group([{"message": None}, {}]) == [
        {"count": 2, "unit": None, "identifier": None, "priority": None, "first": None,
         "last": None, "example": ""}]
