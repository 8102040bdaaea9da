"""Every command the client sends to a host's read tier, as data: the tools, the checks of
diagnose_system and the action tier's search of the journal all build their argv here.

A command is a tuple of words. A word is a literal, or a template whose `{name}` fields are
filled from the values given (`"{unit}"`, `"sport = :{port}"`); `Given` words appear only when
their value is given (not None), `Each` is one word per item of a list, and `Pick` is the word
a value stands for. What a host allows is its own policy's business: the tests check that
every command here passes the default policy (tests/readonly/test_commands.py).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mcp_linux_infra import target_names


@dataclass(frozen=True)
class Given:
    """`words` (templates) when the value `name` is given, nothing when it is None."""

    name: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Each:
    """One word for each item of the list value `name`."""

    name: str


@dataclass(frozen=True)
class Pick:
    """The word that the value `name` stands for."""

    name: str
    words: Mapping[str, str]


Word = str | Given | Each | Pick


@dataclass(frozen=True)
class Command:
    words: tuple[Word, ...]

    def argv(self, **values: Any) -> list[str]:
        """The argv with `values` filled in; a value the command names must be given."""
        argv: list[str] = []
        for word in self.words:
            if isinstance(word, str):
                argv.append(word.format_map(values))
            elif isinstance(word, Given):
                if values[word.name] is not None:
                    argv += [w.format_map(values) for w in word.words]
            elif isinstance(word, Each):
                argv += [str(item) for item in values[word.name]]
            else:
                argv.append(word.words[values[word.name]])
        return argv


def _command(*words: Word) -> Command:
    return Command(tuple(words))


SERVICE_PROPERTIES = ("Id,LoadState,ActiveState,SubState,UnitFileState,Result,MainPID,"
                      "ExecMainStatus,ActiveEnterTimestamp,NRestarts,Description")
_JOURNAL_LINES = ("-o", "short-iso", "-q", "--no-hostname")
# The fields of the errors check's JSON (journalctl adds its own __ fields, the time among
# them): an allow-list, so that no field the check does not read (a command line, an
# environment) ever leaves the host; the target's policy allows json only with these named.
JOURNAL_FIELDS = ("MESSAGE", "SYSLOG_IDENTIFIER", "_SYSTEMD_UNIT", "UNIT", "PRIORITY")

COMMANDS: Mapping[str, Command] = MappingProxyType({
    # services (get_service_status, diagnose_system's services and failed units)
    "unit_state": _command("systemctl", "show", f"--property={SERVICE_PROPERTIES}",
                           Each("units")),
    "unit_log": _command("journalctl", "-u", "{unit}", "-n", "{lines}", *_JOURNAL_LINES),
    "failed_units": _command("systemctl", "list-units", "--failed", "--plain", "--no-legend"),
    # logs (fetch_logs, diagnose_system's errors)
    "journal": _command("journalctl", "-n", "{lines}", *_JOURNAL_LINES,
                        Given("unit", ("-u", "{unit}")), Given("since", ("--since", "{since}")),
                        Given("priority", ("-p", "{priority}")),
                        Given("pattern", ("-g", "{pattern}"))),
    "journal_errors": _command("journalctl", "-p", "err", "-n", "200", "--since", "{since}",
                               "-o", "json", "--output-fields=" + ",".join(JOURNAL_FIELDS), "-q"),
    "file_matches": _command("grep", "-e", "{pattern}", "{path}"),
    "file_tail": _command("tail", "-n", "{lines}", "{path}"),
    # files (read_file)
    "file_head": _command("head", "-n", "{lines}", "{path}"),
    "file_from": _command("tail", "-n", "+{start}", "{path}"),
    # resources (diagnose_system's load, memory and disk)
    "loadavg": _command("cat", "/proc/loadavg"),
    "nproc": _command("nproc"),
    "meminfo": _command("cat", "/proc/meminfo"),
    "df": _command("df", "-P", "-T", "-B1"),
    # processes (get_top_processes)
    "processes": _command("ps", "-e", "-o", "pid,user,pcpu,pmem,rss,etimes,stat,args", "--sort",
                          Pick("sort_by", {"cpu": "-pcpu", "memory": "-rss"})),
    # network (get_network_status, check_port, dns_lookup, diagnose_system's ports)
    "addresses": _command("ip", "-j", "address"),
    "routes": _command("ip", "-j", "route"),
    "routes6": _command("ip", "-j", "-6", "route"),
    "listening": _command("ss", "-H", "-t", "-u", "-l", "-n"),
    "port_sockets": _command("ss", "-H", "-l", "-n", Pick("protocol", {"tcp": "-t", "udp": "-u"}),
                             "sport = :{port}"),
    "resolv_conf": _command("cat", "/etc/resolv.conf"),
    "resolve": _command("getent", "ahosts", "{name}"),
    "dns": _command("host", "-t", "{record_type}", "-W", "2", "{name}"),
    # containers (list_containers, container_logs)
    "containers": _command("{runtime}", "ps", "-a", "--no-trunc"),
    "container_logs": _command("{runtime}", "logs", "--tail", "{lines}", "-t",
                               Given("since", ("--since", "{since}")), "{container}"),
    # packages (check_updates)
    "upgradable": _command("apt", "list", "--upgradable"),
    # the target's clock, for the doctor's skew check against the approval window
    "clock": _command("date", "+%s.%N"),
    # the action tier's record of an approval, by its nonce (root's records only)
    "action_record": _command("journalctl", "-t", target_names.ACTION_RECORDS, "-g", "{nonce}",
                              "-o", "cat", "-q", "--since", "@{since}", "_UID=0"),
})


def argv(command: str, /, **values: Any) -> list[str]:
    """The argv of the registry's `command` with `values` filled in."""
    return COMMANDS[command].argv(**values)
