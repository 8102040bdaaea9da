"""The read-only diagnostic tools: each builds a request, sends it, parses, formats."""

import signal
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.calls import current, tool_call
from mcp_linux_infra.server.common import (
    READ_ONLY,
    HostArg,
    TargetArg,
    checked,
    fan_out,
    problem,
    record_refusal,
    refusal_text,
)
from mcp_linux_infra.server.diagnose import CHECKS, diagnose_host, service_commands
from mcp_linux_infra.server.diagnose_view import by_check
from mcp_linux_infra.server.formatting import FormatArg, render

CheckName = Literal["load", "memory", "disk", "failed_units", "services", "ports", "errors"]
Since = Annotated[str, Field(pattern=r"^[A-Za-z0-9 :.,+@_/-]{1,64}$",
                             description="journalctl time: `-1h`, `today`, "
                                         "`2024-05-01 10:00`")]
Unit = Annotated[str, Field(pattern=r"^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]{0,254}$",
                            description="systemd unit, e.g. nginx or nginx.service")]
Lines = Annotated[int, Field(ge=1, le=2000, description="Most lines to return")]
Runtime = Literal["docker", "podman"]


def _ran(host, out) -> dict:
    """The common tail of a single-command result."""
    return {"host": host.name, "command": out.command, "exit_code": out.exit_code,
            "truncated": out.truncated}


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def diagnose_system(
        target: TargetArg,
        ctx: Context,
        checks: Annotated[list[CheckName] | None, Field(
            description="Checks to run (default: all)")] = None,
        since: Since = "-1h",
        format: FormatArg = "json",
    ) -> CallToolResult:
        """Health of a host or of every host in a group: load, memory, disk, failed units,
        key services, listening ports and recent journal errors, with findings ranked by
        severity. One request per host; hosts are checked in parallel and one host down
        never hides the others. In toon the same data comes by check: tables of hosts,
        findings and problems, then each check's results by host (a row per host where
        the result is flat, as load and memory are)."""
        call = current()
        names = list(dict.fromkeys(checks or CHECKS))
        hosts = call.hosts(target)
        results = fan_out(call, hosts, lambda h: diagnose_host(call, h, names, since))
        reports = []
        for host, result in results:
            if "error" in result:
                reports.append({"host": host.name, "status": "unreachable",
                                "error": result["error"]})
            else:
                reports.append(result)
        summary = {"hosts": len(reports),
                   "healthy": [r["host"] for r in reports if r["status"] == "healthy"],
                   "degraded": [r["host"] for r in reports if r["status"] == "degraded"],
                   "unreachable": [r["host"] for r in reports if r["status"] == "unreachable"]}
        return render({"target": target, "checks": names, "summary": summary,
                       "reports": reports}, format, toon_view=by_check)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def get_service_status(host: HostArg, service: Unit, ctx: Context,
                           log_lines: Annotated[int, Field(ge=0, le=200)] = 20,
                           format: FormatArg = "json") -> CallToolResult:
        """A systemd unit's state (active, enabled, result, restarts, since when) and its
        latest journal lines, in one round trip."""
        call = current()
        h = call.host(host)
        outs = call.target(h).batch(service_commands(service, log_lines))
        show = checked(call, h, outs["show"])
        props = (parsers.show(show.stdout) or [{}])[0]
        if props.get("LoadState") == "not-found":
            raise ToolError(f"{h.name} has no unit {service!r}; diagnose_system lists failed "
                            "units, and run_diagnostic `systemctl list-units --type=service` "
                            "lists them all")
        data = {"host": h.name, "service": props.get("Id", service), "properties": props}
        if log_lines:
            log = outs["log"]
            data["log"] = parsers.journal(log.stdout) if not problem(log) else problem(log)
        return render(data, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def fetch_logs(
        host: HostArg, ctx: Context,
        unit: Annotated[Unit | None, Field(description="Journal of this unit")] = None,
        file: Annotated[str | None, Field(
            pattern=r"^/[^\x00-\x1f]{0,4095}$",
            description="A log file instead of the journal (must be under the target's "
                        "allowed roots, e.g. /var/log/nginx/error.log)")] = None,
        lines: Lines = 100,
        since: Annotated[Since | None, Field(description="Journal only")] = None,
        pattern: Annotated[str | None, Field(
            min_length=1, max_length=512,
            description="Keep matching lines (regex; the target refuses nested or large "
                        "counted repetition, backreferences and, for the journal, PCRE "
                        "lookaround)")] = None,
        priority: Annotated[Literal["emerg", "alert", "crit", "err", "warning", "notice",
                                    "info", "debug"] | None,
                            Field(description="Journal only: this priority and worse")] = None,
        format: FormatArg = "json",
    ) -> CallToolResult:
        """Recent log lines from the journal (optionally one unit, a time range, a
        priority) or from a log file, optionally filtered by a pattern."""
        call = current()
        h = call.host(host)
        if file and unit:
            raise ToolError("give either unit (journal) or file, not both")
        if file:
            if since or priority:
                raise ToolError("since and priority apply to the journal only; for a file "
                                "use pattern and lines")
            words = ["grep", "-e", pattern, file] if pattern else ["tail", "-n", str(lines), file]
        else:
            words = ["journalctl", "-n", str(lines), "-o", "short-iso", "-q", "--no-hostname"]
            words += ["-u", unit] if unit else []
            words += ["--since", since] if since else []
            words += ["-p", priority] if priority else []
            words += ["-g", pattern] if pattern else []
        out = checked(call, h, call.target(h).run(words))
        if file:
            if out.exit_code not in (0, 1):
                raise ToolError(f"reading {file} on {h.name} failed: {out.stderr.strip()[:300]}")
            text = out.stdout.splitlines()[-lines:]
            entries = [{"line": line} for line in text]
        else:
            if out.exit_code not in (0, 1):
                raise ToolError(f"journalctl failed on {h.name}: {out.stderr.strip()[:300]}")
            entries = parsers.journal(out.stdout)
        return render({**_ran(h, out), "count": len(entries), "entries": entries}, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def get_top_processes(host: HostArg, ctx: Context,
                          sort_by: Literal["cpu", "memory"] = "cpu",
                          limit: Annotated[int, Field(ge=1, le=200)] = 15,
                          format: FormatArg = "toon") -> CallToolResult:
        """The processes using the most CPU or memory."""
        call = current()
        h = call.host(host)
        key = "-pcpu" if sort_by == "cpu" else "-rss"
        out = checked(call, h, call.target(h).run(
            ["ps", "-e", "-o", "pid,user,pcpu,pmem,rss,etimes,stat,args", "--sort", key]))
        rows = parsers.processes(out.stdout)
        return render({**_ran(h, out), "total": len(rows), "processes": rows[:limit]}, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def get_network_status(host: HostArg, ctx: Context,
                           format: FormatArg = "json") -> CallToolResult:
        """Interfaces and addresses, routes, listening sockets and resolvers, in one round
        trip."""
        call = current()
        h = call.host(host)
        outs = call.target(h).batch({
            "addresses": ["ip", "-j", "address"], "routes": ["ip", "-j", "route"],
            "routes6": ["ip", "-j", "-6", "route"], "listening": ["ss", "-H", "-t", "-u", "-l",
                                                                   "-n"],
            "resolv": ["cat", "/etc/resolv.conf"]})
        data = {"host": h.name, "problems": {k: p for k, o in outs.items() if (p := problem(o))}}
        links = parsers.json_or_none(outs["addresses"].stdout) or []
        data["interfaces"] = [{"name": i.get("ifname"), "state": i.get("operstate"),
                               "mtu": i.get("mtu"), "mac": i.get("address"),
                               "addresses": [f"{a.get('local')}/{a.get('prefixlen')}"
                                             for a in i.get("addr_info", [])]}
                              for i in links if isinstance(i, dict)]
        routes = (parsers.json_or_none(outs["routes"].stdout) or []) + \
                 (parsers.json_or_none(outs["routes6"].stdout) or [])
        data["routes"] = [{"dst": r.get("dst"), "via": r.get("gateway"), "dev": r.get("dev"),
                           "src": r.get("prefsrc")} for r in routes if isinstance(r, dict)]
        data["listening"] = parsers.listening(outs["listening"].stdout)
        data["nameservers"] = [line.split()[1] for line in outs["resolv"].stdout.splitlines()
                               if line.startswith("nameserver") and len(line.split()) > 1]
        return render(data, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def check_port(host: HostArg, port: Annotated[int, Field(ge=1, le=65535)], ctx: Context,
                   protocol: Literal["tcp", "udp"] = "tcp",
                   format: FormatArg = "json") -> CallToolResult:
        """Is anything listening on this port on the host (its own sockets, as `ss` sees
        them)? Connecting out to other hosts is not offered by the default policy."""
        call = current()
        h = call.host(host)
        out = checked(call, h, call.target(h).run(
            ["ss", "-H", "-l", "-n", "-t" if protocol == "tcp" else "-u", f"sport = :{port}"]))
        rows = parsers.listening(out.stdout, protocol)
        return render({**_ran(h, out), "port": port, "protocol": protocol,
                       "listening": bool(rows), "sockets": rows}, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def dns_lookup(host: HostArg,
                   name: Annotated[str, Field(
                       pattern=r"^[A-Za-z0-9._:][A-Za-z0-9._:-]{0,252}$",
                       description="Name (or address) to resolve: one the host's policy "
                                   "lists (the inventory's hosts, loopback, the site's "
                                   "mcp_infra_network_destinations)")],
                   ctx: Context,
                   record_type: Literal["A", "AAAA", "MX", "TXT", "NS", "CNAME", "SOA", "PTR",
                                        "SRV", "CAA"] = "A",
                   format: FormatArg = "json") -> CallToolResult:
        """Resolve a name as the host sees it: its system resolver (getent, /etc/hosts
        included) and, where installed, the DNS itself (host), always through the host's
        own resolver. Only names and addresses the host's policy lists can be looked up:
        a lookup carries its name to DNS servers, so it could carry data out."""
        call = current()
        h = call.host(host)
        outs = call.target(h).batch({"getent": ["getent", "ahosts", name],
                                     "dns": ["host", "-t", record_type, "-W", "2", name]})
        for out in outs.values():
            if out.status == "refused":
                record_refusal(call, h, out)
        if all(o.status == "refused" and o.refusal.reason == "destination_not_allowed"
               for o in outs.values()):
            raise ToolError(refusal_text(h, outs["getent"], call.tool))
        resolver = outs["getent"]
        data = {"host": h.name, "name": name, "record_type": record_type,
                "system_resolver": parsers.getent_addresses(resolver.stdout)
                if resolver.status == "ok" else problem(resolver)}
        dns = outs["dns"]
        data["dns"] = ({"exit_code": dns.exit_code, "answer": dns.stdout.strip().splitlines()}
                       if dns.status == "ok" else problem(dns))
        return render(data, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def list_containers(host: HostArg, ctx: Context,
                        runtime: Runtime | None = None,
                        format: FormatArg = "toon") -> CallToolResult:
        """Containers (running and stopped) from docker or podman; without a runtime, both
        are asked. Works only where an admin granted the reader a read-only view."""
        call = current()
        h = call.host(host)
        runtimes = [runtime] if runtime else ["docker", "podman"]
        outs = call.target(h).batch({r: [r, "ps", "-a", "--no-trunc"] for r in runtimes})
        data = {"host": h.name, "runtimes": {}}
        for r, out in outs.items():
            if out.status == "ok" and out.exit_code == 0:
                data["runtimes"][r] = parsers.columns(out.stdout)
            else:
                data["runtimes"][r] = {"unavailable": problem(out) or out.stderr.strip()[:300]}
        return render(data, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def container_logs(host: HostArg,
                       container: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]"
                                                               r"{0,127}$")],
                       ctx: Context,
                       runtime: Runtime = "docker", lines: Lines = 100,
                       since: Annotated[Since | None, Field(
                           description="e.g. 10m, 2h, 2024-05-01T10:00")] = None,
                       format: FormatArg = "json") -> CallToolResult:
        """The latest log lines of a container (stdout and stderr, timestamped)."""
        call = current()
        h = call.host(host)
        words = [runtime, "logs", "--tail", str(lines), "-t", *(
            ["--since", since] if since else []), container]
        out = checked(call, h, call.target(h).run(words))
        if out.exit_code != 0:
            raise ToolError(f"{runtime} logs failed on {h.name}: {out.stderr.strip()[:300]}")
        lines_out = (out.stdout + out.stderr).splitlines()
        return render({**_ran(h, out), "container": container, "lines": lines_out}, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def check_updates(host: HostArg, ctx: Context,
                      format: FormatArg = "toon") -> CallToolResult:
        """Packages with a pending upgrade (apt), security updates flagged. The package
        lists are as fresh as the host's last `apt update`."""
        call = current()
        h = call.host(host)
        out = checked(call, h, call.target(h).run(["apt", "list", "--upgradable"]))
        if out.exit_code == 128 + signal.SIGXFSZ:
            raise ToolError(f"apt was killed on {h.name} by the wrapper's no-write limit "
                            "(SIGXFSZ: apt writes its package cache); the target tier must "
                            "let the packages plugin run before this tool can work")
        if out.exit_code != 0:
            raise ToolError(f"apt failed on {h.name} (exit {out.exit_code}): "
                            f"{out.stderr.strip()[:300]}")
        rows = parsers.apt_upgradable(out.stdout)
        return render({**_ran(h, out), "upgradable": len(rows),
                       "security": sum(r["security"] for r in rows), "packages": rows}, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def read_file(host: HostArg,
                  path: Annotated[str, Field(pattern=r"^/[^\x00-\x1f]{0,4095}$",
                                             description="Absolute path under the target's "
                                                         "allowed roots (/etc, /var/log, ...)")],
                  ctx: Context,
                  start_line: Annotated[int, Field(ge=1, le=1_000_000)] = 1,
                  max_lines: Annotated[int, Field(ge=1, le=2000)] = 200,
                  format: FormatArg = "json") -> CallToolResult:
        """Lines of a text file the target's path rules allow (secrets, keys and other
        users' homes are refused by the target)."""
        call = current()
        h = call.host(host)
        # head from the top, tail +N further down: the target's output cap then applies
        # from the first line asked for, not from the top of the file
        words = ["head", "-n", str(max_lines + 1), path] if start_line == 1 else \
            ["tail", "-n", f"+{start_line}", path]
        out = checked(call, h, call.target(h).run(words))
        if out.exit_code != 0:
            raise ToolError(f"reading {path} on {h.name} failed: {out.stderr.strip()[:300]}")
        lines = out.stdout.splitlines()
        return render({**_ran(h, out), "path": path, "start_line": start_line,
                       "lines": lines[:max_lines],
                       "more": len(lines) > max_lines or out.truncated}, format)
