"""contrib/container/Containerfile, built for real with podman (root, vfs storage, chroot
isolation) from the wheel built from the sdist. The base is the lab's Debian 12 image
imported as a local image (this machine reaches no container registry; the file's default
base is docker.io's debian:bookworm-slim, the same release). This machine's kernel cgroup
setup lets podman build but not run containers (crun refuses hybrid cgroups), so the image's
rootfs is run with chroot as the image's user: the installed CLI, then `serve --transport
http` with the image's environment, answered by the image's own HEALTHCHECK command."""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from lab_support import require_lab
from net_support import free_port
from packaging_support import build
from paths_support import REPO

from mcp_linux_infra.lab.image import ensure_image
from mcp_linux_infra.settings import Settings

pytestmark = pytest.mark.lab

CONTAINERFILE = REPO / "contrib/container/Containerfile"
PODMAN = ["podman", "--storage-driver", "vfs"]
TAG = "localhost/ipk-mcp-linux-infra:test"
BASE = "localhost/ipk-debian12:test"
# the machine's index settings (a proxy's CA), for pip inside the build, when it has them
HOST_FILES = ("/etc/pip.conf", "/etc/ssl/certs/ca-certificates.crt")


def podman(*argv: str, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([*PODMAN, *argv], capture_output=True, text=True, timeout=timeout,
                          check=False, **kw)
    assert done.returncode == 0, (argv, done.stdout[-3000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    require_lab()
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/setup.sh installs it)")
    settings = Settings(_env_file=None)
    rootfs = ensure_image(settings.lab_cache_dir, settings.lab_mirror).rootfs
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    podman("import", "-", BASE, stdin=tar.stdout)
    assert tar.wait() == 0
    context = tmp_path_factory.mktemp("context")
    build(context / "dist")
    mounts = [f"--volume={f}:{f}:ro" for f in HOST_FILES if os.path.isfile(f)]
    try:
        podman("build", "--format", "docker", "--isolation", "chroot", "--network", "host",
               *mounts, "--build-arg", f"BASE={BASE}", "-f", str(CONTAINERFILE), "-t", TAG,
               str(context), timeout=1800)
        data = json.loads(podman("image", "inspect", TAG).stdout)[0]
        # podman shows a docker-format image's HEALTHCHECK beside its Config
        config = dict(data["Config"], Healthcheck=data.get("Healthcheck"))
        root = Path(podman("image", "mount", TAG).stdout.strip())
        yield config, root
    finally:
        subprocess.run([*PODMAN, "image", "unmount", TAG], capture_output=True, check=False)
        subprocess.run([*PODMAN, "rmi", "-f", TAG, BASE], capture_output=True, check=False)


def test_the_image_runs_the_http_server_as_a_user(image):
    config, _ = image
    assert config["User"] and not config["User"].startswith(("0", "root"))
    assert config["Entrypoint"] == ["mcp-linux-infra", "serve", "--transport", "http"]
    assert "LINUX_MCP_LAYOUT=system" in config["Env"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "/var/lib/mcp-linux-infra" in config["Volumes"]


def test_the_installed_server_starts_and_is_healthy(image, tmp_path):
    config, root = image
    uid = config["User"]
    env = dict(item.split("=", 1) for item in config["Env"])
    port = free_port()
    env.update(LINUX_MCP_HTTP_HOST="127.0.0.1", LINUX_MCP_HTTP_PORT=str(port),
               HOME="/var/lib/mcp-linux-infra")
    chroot = [shutil.which("chroot") or "/usr/sbin/chroot", f"--userspec={uid}", str(root)]
    version = subprocess.run([*chroot, "mcp-linux-infra", "--version"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert version.returncode == 0 and version.stdout.startswith("mcp-linux-infra "), version
    env["COLUMNS"] = "250"  # one log record per line
    server = subprocess.Popen([*chroot, *config["Entrypoint"]], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        seen = []
        for line in server.stdout:  # up once its session manager has started
            seen.append(line)
            if "session manager started" in line:
                break
        assert server.poll() is None, "".join(seen)
        # then the image's own check, with its own retries (HEALTHCHECK --retries=3): the
        # socket is bound just after the application's start-up
        check = config["Healthcheck"]["Test"][1:]
        for _ in range(config["Healthcheck"].get("Retries", 3)):
            healthy = subprocess.run([*chroot, *check], env=env, capture_output=True,
                                     text=True, timeout=60, check=False)
            if healthy.returncode == 0:
                break
        assert healthy.returncode == 0, (healthy.stderr, "".join(seen))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=60)
