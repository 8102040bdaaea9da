import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_linux_infra.cli import main
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.lab import image, manager, process
from mcp_linux_infra.lab.inventory import write_inventory, write_known_hosts
from mcp_linux_infra.lab.mounts import mounts_under
from mcp_linux_infra.lab.state import LabState, Target
from mcp_linux_infra.lab.target import bind_port
from mcp_linux_infra.settings import Settings


def _target(name="lab-01", port=2201, pid=1, started=1, root=Path("/x")):
    return Target(name, port, pid, started, str(root / name / "upper"), str(root / "log"))


def test_bind_port_refuses_a_taken_port_with_a_hint():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    with pytest.raises(UserError, match=f"127.0.0.1:{port} is taken") as err:
        bind_port(port)
    assert "LINUX_MCP_LAB_PORT_BASE" in err.value.hint
    holder.close()
    bind_port(port).close()  # free again: binds


def test_state_round_trip_and_atomic_write(tmp_path):
    state = LabState(image="/img", targets={"lab-01": _target(), "lab-02": _target("lab-02")})
    state.save(tmp_path / "state.json")
    assert LabState.load(tmp_path / "state.json") == state
    assert not list(tmp_path.glob("*.tmp"))
    assert LabState.load(tmp_path / "absent.json") == LabState()


def test_process_identity_survives_only_for_the_same_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process.start_time(child.pid)
    assert started is not None and process.alive(child.pid, started)
    assert not process.alive(child.pid, started + 1), "a recycled PID must not match"
    assert process.terminate([(child.pid, started)], grace=5) == []
    child.wait(5)
    assert not process.alive(child.pid, started)
    assert process.start_time(child.pid) is None


def test_terminate_kills_what_ignores_sigterm():
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    child.stdout.readline()  # the handler is installed
    started = process.start_time(child.pid)
    assert process.terminate([(child.pid, started)], grace=0.5) == [child.pid]
    assert child.wait(5) == -9


def test_known_hosts_and_inventory_are_strict_and_absolute(tmp_path):
    write_known_hosts(tmp_path / "kh", {2202: "ssh-ed25519 BBB", 2201: "ssh-ed25519 AAA"})
    assert (tmp_path / "kh").read_text() == (
        "[127.0.0.1]:2201 ssh-ed25519 AAA\n[127.0.0.1]:2202 ssh-ed25519 BBB\n")
    inv = tmp_path / "inv" / "lab.ini"
    write_inventory(inv, [_target("lab-02", 2202), _target()], tmp_path / "key",
                    tmp_path / "kh", group="lab")
    text = inv.read_text()
    assert "lab-01 ansible_host=127.0.0.1 ansible_port=2201\nlab-02 ansible_host" in text
    assert f"ansible_ssh_private_key_file={tmp_path}/key" in text
    assert f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={tmp_path}/kh" in text
    assert "ansible_user=root" in text


def test_recipe_hash_follows_the_image_files(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "_files_root", lambda: tmp_path)
    (tmp_path / "a").write_text("one")
    first = image.recipe_hash("http://m")
    assert image.recipe_hash("http://m") == first
    assert image.recipe_hash("http://other") != first
    (tmp_path / "a").write_text("two")
    assert image.recipe_hash("http://m") != first
    (tmp_path / "a").write_text("one")
    (tmp_path / "a").chmod(0o755)
    assert image.recipe_hash("http://m") != first


def test_mounts_under_sees_real_mounts_and_nothing_else(tmp_path):
    assert mounts_under(tmp_path) == []
    assert Path("/proc") in mounts_under(Path("/proc"))


@pytest.mark.parametrize("hosts", [0, -1, manager.MAX_HOSTS + 1])
def test_up_refuses_a_bad_host_count(hosts):
    with pytest.raises(UserError, match="--hosts must be between"):
        manager.up(Settings(), hosts)


def test_up_and_down_need_root(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    settings = Settings(lab_dir=tmp_path / "lab")
    with pytest.raises(UserError, match="needs root"):
        manager.up(settings, 1)
    with pytest.raises(UserError, match="needs root"):
        manager.down(settings)
    assert not (tmp_path / "lab").exists()


def test_up_names_the_missing_programs_and_their_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError) as err:
        manager.up(Settings(lab_dir=tmp_path / "lab"), 1)
    assert "systemd-nspawn" in str(err.value) and "debootstrap" in str(err.value)
    assert "systemd-container" in err.value.hint and "debootstrap" in err.value.hint
    assert not (tmp_path / "lab").exists()


def test_status_of_an_empty_lab_is_empty(tmp_path):
    assert manager.status(Settings(lab_dir=tmp_path / "lab")) == []


def test_cli_errors_are_clear_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LINUX_MCP_LAB_DIR", str(tmp_path / "lab"))
    assert main(["lab", "up", "--hosts", "0"]) == 2
    assert main(["lab", "ssh", "lab-09", "true"]) == 2
    err = capsys.readouterr().err
    assert "--hosts must be between 1 and 64" in err
    assert "no lab target named 'lab-09'" in err


def test_inotify_limit_is_raised_to_fit_the_lab_never_lowered(tmp_path, monkeypatch):
    limit = tmp_path / "max_user_instances"
    monkeypatch.setattr(manager, "INOTIFY_LIMIT", limit)
    said = []
    limit.write_text("128\n")
    manager._ensure_inotify_instances(20, said.append)
    assert int(limit.read_text()) == 20 * manager.INOTIFY_PER_TARGET + 128
    assert said and "from 128 to 288" in said[0]
    limit.write_text("100000\n")
    manager._ensure_inotify_instances(20, said.append)
    assert limit.read_text() == "100000\n" and len(said) == 1


def test_status_as_json(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.setenv("LINUX_MCP_LAB_DIR", str(tmp_path / "lab"))
    assert main(["lab", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["targets"] == []
    (tmp_path / "lab").mkdir()
    state = LabState(targets={"lab-01": _target(pid=os.getpid(), started=1)})  # not this start
    state.save(tmp_path / "lab" / "state.json")
    assert main(["lab", "status", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["targets"] == [{"name": "lab-01", "address": "127.0.0.1", "port": 2201,
                                 "pid": os.getpid(), "process": "stopped", "systemd": "-"}]
    assert shown["known_hosts"] == str((tmp_path / "lab" / "known_hosts").resolve())


def test_lab_up_draws_its_steps_and_targets_on_a_terminal(tmp_path, monkeypatch):
    """`lab up`'s progress (the manager's steps, then targets ready of N) on a pseudo-terminal;
    the manager itself (root, a real boot) is the lab suites' to test."""
    import pty
    import threading

    def up(settings, hosts, status, ready):
        status("debootstrap bookworm")
        ready(1, 2, "lab-01")
        ready(2, 2, "lab-02")
        return ["lab-01", "lab-02"]

    monkeypatch.setattr(manager, "up", up)
    monkeypatch.setenv("LINUX_MCP_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    main_fd, child_fd = pty.openpty()
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: _read(main_fd), b"")))
    reader.start()
    with os.fdopen(child_fd, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        assert main(["lab", "up", "--hosts", "2"]) == 0
    reader.join()
    os.close(main_fd)
    shown = b"".join(seen).decode(errors="replace")
    assert "debootstrap bookworm" in shown and "lab up" in shown and "2/2" in shown
    assert "started 2 target(s)" in shown


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the other end is closed
        return b""
