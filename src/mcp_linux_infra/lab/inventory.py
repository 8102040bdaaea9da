"""What the rest of the project reads about the lab: known_hosts and an Ansible inventory."""

import os
import shlex
from pathlib import Path

from mcp_linux_infra.lab.state import Target


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


def write_known_hosts(path: Path, host_keys: dict[int, str]) -> None:
    """One line per target port, `[127.0.0.1]:PORT keytype base64`, as OpenSSH writes them."""
    _write_atomic(path, "".join(f"[127.0.0.1]:{port} {key}\n"
                                for port, key in sorted(host_keys.items())))


def write_inventory(path: Path, targets: list[Target], key: Path, known_hosts: Path,
                    group: str) -> None:
    """INI inventory with strict host key checking against the lab's own known_hosts."""
    strict = f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts.resolve()}"
    ports = {t.name: t.port for t in targets}
    lines = ["# Written by `mcp-linux-infra lab up`; removed by `lab down`.", f"[{group}]"]
    for t in sorted(targets, key=lambda t: t.name):
        line = f"{t.name} ansible_host=127.0.0.1 ansible_port={t.port}"
        if t.behind in ports:  # through the target it is behind, as root, strictly
            proxy = (f"ssh -F /dev/null {strict} -o BatchMode=yes -o IdentitiesOnly=yes "
                     f"-i {key.resolve()} -p {ports[t.behind]} -W %h:%p root@127.0.0.1")
            line += " ansible_ssh_common_args=" + shlex.quote(
                f"{strict} -o {shlex.quote('ProxyCommand=' + proxy)}")
        lines.append(line)
    lines += [
        "",
        f"[{group}:vars]",
        "ansible_user=root",
        f"ansible_ssh_private_key_file={key.resolve()}",
        "ansible_host_key_checking=true",
        f"ansible_ssh_common_args='{strict}'",
        "ansible_python_interpreter=/usr/bin/python3",
        "",
    ]
    _write_atomic(path, "\n".join(lines))
