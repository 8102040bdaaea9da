"""One lab target: its overlay, its identity, its boot, and how to reach it.

Each target runs with a private network (its own loopback, its own ports 22, 53, 80...). The
host reaches it through a listening socket that `lab up` binds on 127.0.0.1:PORT and passes to
systemd-nspawn (LISTEN_FDS); the container's systemd hands it to lab-ssh-proxy.socket, which
relays to the target's own sshd.
"""

import ctypes
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.lab.process import alive, start_time
from mcp_linux_infra.lab.state import Target

# Starts systemd-nspawn detached (double fork: it belongs to no CLI process and is never left a
# zombie) and prints its PID. LISTEN_PID must be nspawn's own PID, which only the grandchild
# knows, and the passed socket must be descriptor 3. The grandchild first moves into the
# target's own cgroups (argv[3], one per line; see cgroup_dirs).
_TRAMPOLINE = """
import os, sys
fd, log = int(sys.argv[1]), sys.argv[2]
pid = os.fork()
if pid:
    print(pid, flush=True)
    os._exit(0)
os.setsid()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.dup2(out, 1)
os.dup2(out, 2)
for cgroup in filter(None, sys.argv[3].split("\\n")):
    try:
        os.makedirs(cgroup, exist_ok=True)
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    except OSError as error:
        print("lab: cannot use cgroup %s: %s" % (cgroup, error), flush=True)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[4], sys.argv[4:])
"""
CGROUP_PREFIX = "mcp-lab-"


def cgroup_dirs(machine: str) -> list[str]:
    """The target's own cgroups. systemd-nspawn with --keep-unit and no systemd on the host
    builds the container's cgroup tree under the cgroup it starts in, so targets started from
    one cgroup share `payload/system.slice/UNIT` and race on each other's unit cgroups (units
    then fail at step CGROUP, at random). Each target gets a child of the current cgroup in
    the hierarchies systemd uses: name=systemd (cgroup v1) and the unified (v2) one."""
    dirs = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if controllers == "name=systemd":
            base = "/sys/fs/cgroup/systemd"
        elif hierarchy == "0" and not controllers:
            unified = "/sys/fs/cgroup/unified"
            base = unified if os.path.ismount(unified) else "/sys/fs/cgroup"
        else:
            continue
        dirs.append(os.path.join(base + path.rstrip("/"), CGROUP_PREFIX + machine))
    return dirs


def remove_cgroups(machine: str) -> None:
    """Remove the target's cgroups once its processes are gone (deepest first; cgroupfs
    removes a directory's files with it)."""
    for top in cgroup_dirs(machine):
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
            try:
                os.rmdir(directory)
            except OSError:
                pass


def bind_port(port: int, netns: Path | None = None) -> socket.socket:
    """Bind 127.0.0.1:port now, so a taken port is found before anything starts; with
    `netns`, in that network namespace (a socket stays in the one it was made in)."""
    if netns is not None:
        return _in_netns(netns, lambda: bind_port(port))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise UserError(f"port 127.0.0.1:{port} is taken ({exc.strerror})",
                        hint="stop what listens there, or set LINUX_MCP_LAB_PORT_BASE") from None
    sock.listen(128)
    return sock


_CLONE_NEWNET = 0x40000000


def _in_netns(netns: Path, make):
    """make() on a thread of its own that entered `netns` (setns changes the calling thread
    only; the thread ends there, so no other code runs in that namespace)."""
    result: dict = {}

    def run() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(netns))
            finally:
                os.close(fd)
            result["value"] = make()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def netns_of(target: Target) -> Path:
    """The network namespace of the target's container: that of the first process under
    systemd-nspawn whose namespace differs from nspawn's own (its init)."""
    own = os.readlink(f"/proc/{target.pid}/ns/net")
    queue = _children(target.pid)
    while queue:
        pid = queue.pop(0)
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != own:
                return Path(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        queue += _children(pid)
    raise UserError(f"{target.name}: no container process found under systemd-nspawn "
                    f"(PID {target.pid})", hint="is it still booting? see lab status")


def way_in(target: Target, targets: dict[str, Target]) -> list[str]:
    """The argv prefix that runs a client where the target's SSH port is: nothing, or
    nsenter into the network namespace of the target it is behind."""
    if not target.behind:
        return []
    if target.behind not in targets:
        raise UserError(f"{target.name} is behind {target.behind}, which is not running")
    return ["nsenter", f"--net={netns_of(targets[target.behind])}", "--"]


def _mkdirs_like(lower: Path, upper: Path, rel: str) -> Path:
    """Create upper/rel with the owner and mode of lower/rel, parents included."""
    path = upper
    for part in Path(rel).parts:
        path = path / part
        src = lower / path.relative_to(upper)
        if not path.exists():
            path.mkdir()
            st = src.stat()
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, st.st_mode & 0o7777)
    return path


def prepare(image: Path, upper: Path, name: str, port: int, bootstrap_pub: Path) -> str:
    """Write the target's own files into its overlay; return its host public key line."""
    upper.mkdir(parents=True, exist_ok=True)
    etc = _mkdirs_like(image, upper, "etc")
    (etc / "hostname").write_text(f"{name}\n")
    (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n"
                               "::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    ssh_dir = _mkdirs_like(image, upper, "etc/ssh")
    host_key = ssh_dir / "ssh_host_ed25519_key"
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}",
                        "-f", str(host_key)], check=True, timeout=60)
    dropin = _mkdirs_like(image, upper, "etc/systemd/system") / "lab-ssh-proxy.socket.d"
    dropin.mkdir(exist_ok=True)
    (dropin / "port.conf").write_text(f"[Socket]\nListenStream=127.0.0.1:{port}\n")
    root_ssh = _mkdirs_like(image, upper, "root") / ".ssh"
    root_ssh.mkdir(mode=0o700, exist_ok=True)
    auth = root_ssh / "authorized_keys"
    auth.write_text(bootstrap_pub.read_text())
    auth.chmod(0o600)
    return " ".join(host_key.with_name(host_key.name + ".pub").read_text().split()[:2])


def machine_name(name: str, upper: Path) -> str:
    """nspawn's machine name (it keys host-side state such as /run/systemd/nspawn/propagate/):
    unique per lab instance, so two labs may both have a lab-01."""
    return f"{name}-{hashlib.sha256(str(upper).encode()).hexdigest()[:8]}"


def spawn(image: Path, upper: Path, name: str, port: int, sock: socket.socket, log: Path,
          behind: str = "") -> Target:
    """Boot the target in the background; the caller's copy of the socket can then be closed."""
    nspawn = [
        "/usr/bin/systemd-nspawn", "--quiet", "--directory", str(image),
        f"--overlay={image}:{upper}:/", "--boot", "--register=no", "--keep-unit",
        f"--machine={machine_name(name, upper)}", f"--hostname={name}", "--private-network",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=passive",
    ]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LISTEN_FDS": "1"}
    out = subprocess.run(
        [sys.executable, "-I", "-c", _TRAMPOLINE, str(sock.fileno()), str(log),
         "\n".join(cgroup_dirs(machine_name(name, upper))), *nspawn],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
        pass_fds=(sock.fileno(),), timeout=30)
    if out.returncode != 0 or not out.stdout.strip().isdigit():
        raise UserError(f"{name}: could not start systemd-nspawn: {out.stderr.strip()}")
    pid = int(out.stdout)
    started = start_time(pid)
    if started is None:
        raise UserError(f"{name}: systemd-nspawn exited at once", hint=f"see {log}")
    return Target(name=name, port=port, pid=pid, started=started, upper=str(upper), log=str(log),
                  behind=behind)


def ssh_argv(port: int, key: Path, known_hosts: Path, user: str = "root") -> list[str]:
    """A fresh, non-multiplexed, strictly host-key-checked OpenSSH client command."""
    return [
        "ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none", "-o", "ControlPath=none", "-o", "ConnectTimeout=10",
        "-o", "LogLevel=ERROR", "-i", str(key), "-p", str(port), f"{user}@127.0.0.1",
    ]


def system_state(target: Target, key: Path, known_hosts: Path, wait: bool,
                 timeout: float = 15, way: list[str] = ()) -> str:
    """systemd's own verdict (`running`, `degraded`, ...), or why it could not be asked
    (`way`: way_in's prefix)."""
    cmd = ["systemctl", "is-system-running"] + (["--wait"] if wait else [])
    try:
        out = subprocess.run([*way, *ssh_argv(target.port, key, known_hosts), *cmd],
                             capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "unreachable"
    if out.returncode == 255:
        return "unreachable"
    return out.stdout.strip() or "unknown"


def wait_ready(target: Target, key: Path, known_hosts: Path, deadline: float,
               way: list[str] = ()) -> str:
    """Wait until sshd answers and systemd has finished booting (running or degraded)."""
    state = "unreachable"
    while time.monotonic() < deadline:
        if not alive(target.pid, target.started):
            tail = Path(target.log).read_text(errors="replace")[-2000:]
            raise UserError(f"{target.name}: systemd-nspawn stopped while booting:\n{tail}")
        state = system_state(target, key, known_hosts, wait=True,
                             timeout=max(1.0, min(60.0, deadline - time.monotonic())), way=way)
        if state in ("running", "degraded"):
            return state
        if state not in ("unreachable", "starting", "initializing", "unknown"):
            raise UserError(f"{target.name}: systemd reports '{state}' after boot")
        time.sleep(0.5)
    limit = Path("/proc/sys/fs/inotify/max_user_instances").read_text().strip()
    raise UserError(f"{target.name}: not ready in time (last state: {state})",
                    hint=f"see {target.log}; raise LINUX_MCP_LAB_BOOT_TIMEOUT on a slow machine; "
                    "each target's systemd uses several inotify instances, so many targets "
                    f"can exhaust fs.inotify.max_user_instances (now {limit})")
