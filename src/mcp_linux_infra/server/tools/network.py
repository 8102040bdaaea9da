"""Interfaces, routes, sockets and resolvers; one port; one name, as the host resolves it."""

from typing import Annotated, Literal

from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.answers import checked, problem, ran, record_refusal, refusal_text
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.refused import Refused
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool

RecordType = Literal["A", "AAAA", "MX", "TXT", "NS", "CNAME", "SOA", "PTR", "SRV", "CAA"]


@tool(READ_ONLY, title="Network status",
      output=shape("interfaces", "routes", "listening", "nameservers"))
def get_network_status(call: Call, host: Host,
                       format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Interfaces, addresses, routes, listening sockets and resolvers."""
    outs = call.target(host).batch({
        "addresses": argv("addresses"), "routes": argv("routes"), "routes6": argv("routes6"),
        "listening": argv("listening"), "resolv": argv("resolv_conf")})
    return render({
        "host": host.name, "problems": {k: p for k, o in outs.items() if (p := problem(o))},
        "interfaces": parsers.interfaces(outs["addresses"].stdout),
        "routes": parsers.routes(outs["routes"].stdout, outs["routes6"].stdout),
        "listening": parsers.listening(outs["listening"].stdout),
        "nameservers": parsers.nameservers(outs["resolv"].stdout)}, format)


@tool(READ_ONLY, title="Check a port",
      output=shape("port", "protocol", "listening", "sockets"))
def check_port(call: Call, host: Host, port: Annotated[int, Field(ge=1, le=65535)],
               protocol: Literal["tcp", "udp"] = "tcp",
               format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Is anything listening on this port on the host? Not a connection test."""
    out = checked(call, host, call.target(host).run(
        argv("port_sockets", protocol=protocol, port=port)))
    rows = parsers.listening(out.stdout, protocol)
    return render({**ran(host, out), "port": port, "protocol": protocol,
                   "listening": bool(rows), "sockets": rows}, format)


@tool(READ_ONLY, title="DNS lookup",
      output=shape("name", "record_type", "system_resolver", "dns"))
def dns_lookup(call: Call, host: Host,
               name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:][A-Za-z0-9._:-]{0,252}$",
                                          description="Name or address")],
               record_type: RecordType = "A",
               format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Resolve a name as the host does (getent, DNS); only names its policy lists."""
    outs = call.target(host).batch({"getent": argv("resolve", name=name),
                                    "dns": argv("dns", record_type=record_type, name=name)})
    for out in outs.values():
        if out.status == "refused":
            record_refusal(call, host, out)
    if all(o.status == "refused" and o.refusal.reason == "destination_not_allowed"
           for o in outs.values()):
        raise Refused(refusal_text(call, host, outs["getent"]), "destination_not_allowed",
                      "target")
    resolver, dns = outs["getent"], outs["dns"]
    return render({
        "host": host.name, "name": name, "record_type": record_type,
        "system_resolver": parsers.getent_addresses(resolver.stdout)
        if resolver.status == "ok" else problem(resolver),
        "dns": {"exit_code": dns.exit_code, "answer": dns.stdout.strip().splitlines()}
        if dns.status == "ok" else problem(dns)}, format)
