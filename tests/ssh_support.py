"""A real SSH server inside the test process (paramiko), so pool and tool tests need no lab.

`FakeSSHD(handler)` listens on 127.0.0.1; each exec request calls
`handler(command, stdin) -> (exit_code, stdout, stderr)` after the client closed stdin, the
way the forced-command wrapper sees it (`users={"pra-runner": other}` gives a login name its
own handler, as each account has its own forced command); `forward={(address, port)}` makes it
a jump host that opens direct-tcpip channels to those destinations only, as
`permitopen=` does (each destination asked for is in `.forwards`). `wrapper_handler` runs the real mcp-wrapper from
system/ for each request (test root, no sshd), so the protocol under test is the real one.
"""

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from mcp_linux_infra.inventory import Host

Handler = Callable[[str, bytes], tuple[int, bytes, bytes]]


def new_key(path: Path | None = None) -> paramiko.ECDSAKey:
    """A fresh key (ECDSA: paramiko cannot generate ed25519), written to `path` if given."""
    key = paramiko.ECDSAKey.generate()
    if path is not None:
        key.write_private_key_file(str(path))
        os.chmod(path, 0o600)
    return key


def known_hosts_line(host: Host, key: paramiko.PKey) -> str:
    name = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
    return f"{name} {key.get_name()} {key.get_base64()}\n"


def _pump(source, sink) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except (OSError, EOFError, paramiko.SSHException):
        pass
    finally:
        for end in (source, sink):
            try:
                end.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass


class _Server(paramiko.ServerInterface):
    def __init__(self, sshd: "FakeSSHD"):
        self.sshd = sshd

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        self.sshd.logins.append((username, key.get_base64()))
        if key.get_base64() in self.sshd.authorized:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else \
            paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(self, chanid, origin, destination):
        self.sshd.forwards.append(tuple(destination))
        if tuple(destination) not in self.sshd.forward:
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        self.sshd.pending[chanid] = tuple(destination)
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=self.sshd._serve_exec, args=(channel, command.decode()),
                         daemon=True).start()
        return True


class FakeSSHD:
    def __init__(self, handler: Handler, authorized: list[paramiko.PKey],
                 host_key: paramiko.PKey | None = None, port: int = 0,
                 users: dict[str, Handler] | None = None,
                 forward: set[tuple[str, int]] = frozenset()):
        self.handler = handler
        self.forward = set(forward)
        self.forwards: list[tuple[str, int]] = []
        self.pending: dict[int, tuple[str, int]] = {}
        self.users = users or {}
        self.authorized = {k.get_base64() for k in authorized}
        self.host_key = host_key or new_key()
        self.connections = 0
        self.commands: list[str] = []
        self.logins: list[tuple[str, str]] = []
        self._transports: list[paramiko.Transport] = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def host(self, name: str = "fake", **vars) -> Host:
        return Host(name=name, address="127.0.0.1", port=self.port, groups=("fake",), vars=vars)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            transport = paramiko.Transport(sock)
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            try:
                transport.start_server(server=_Server(self))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()
                continue
            if self.forward:
                threading.Thread(target=self._forwarder, args=(transport,), daemon=True).start()

    def _forwarder(self, transport: paramiko.Transport) -> None:
        """Connect each accepted direct-tcpip channel to its destination, both ways."""
        while transport.is_active():
            channel = transport.accept(timeout=1)
            destination = channel and self.pending.pop(channel.get_id(), None)
            if destination is None:
                continue
            try:
                sock = socket.create_connection(destination, timeout=5)
            except OSError:
                channel.close()
                continue
            threading.Thread(target=_pump, args=(channel, sock), daemon=True).start()
            threading.Thread(target=_pump, args=(sock, channel), daemon=True).start()

    def _serve_exec(self, channel: paramiko.Channel, command: str) -> None:
        self.commands.append(command)
        user = channel.get_transport().get_username()
        handler = self.users.get(user, self.handler)
        stdin = bytearray()
        try:
            if command == "mcp:session":
                if hasattr(handler, "session"):
                    handler.session(channel)
                    return
                # like a forced command that knows no sessions: it answers without reading
                code, out, err = handler(command, b"")
                channel.sendall_stderr(err)
                channel.sendall(out)
                channel.send_exit_status(code)
                return
            while True:
                chunk = channel.recv(65536)
                if not chunk:
                    break
                stdin += chunk
            code, out, err = handler(command, bytes(stdin))
            if err:
                channel.sendall_stderr(err)
            if out:
                channel.sendall(out)
            channel.send_exit_status(code)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            channel.close()

    def stop(self) -> None:
        """Like a host going down: the listener and every connection close."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        for transport in self._transports:
            transport.close()
        self._thread.join(timeout=5)


def wrapper_handler(root: Path) -> Handler:
    """Each request runs the real system/bin/mcp-wrapper under test root `root`; an
    `mcp:session` runs it with the channel connected to its stdin and stdout."""
    from wrapper_support import run_wrapper, wrapper_process

    def handle(command: str, stdin: bytes) -> tuple[int, bytes, bytes]:
        done = run_wrapper(root, command, stdin=stdin or None)
        return done.returncode, done.stdout, done.stderr

    def session(channel: paramiko.Channel) -> None:
        proc = wrapper_process(root, "mcp:session")

        def feed() -> None:
            try:
                while chunk := channel.recv(65536):
                    proc.stdin.write(chunk)
                    proc.stdin.flush()
            except (OSError, EOFError, paramiko.SSHException):
                pass
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        threading.Thread(target=feed, daemon=True).start()
        try:
            while data := os.read(proc.stdout.fileno(), 65536):
                channel.sendall(data)
            channel.sendall_stderr(proc.stderr.read())
            channel.send_exit_status(proc.wait())
        except (OSError, EOFError, paramiko.SSHException):
            proc.kill()
            proc.wait()
        finally:
            proc.stdout.close()
            proc.stderr.close()
    handle.session = session
    return handle
