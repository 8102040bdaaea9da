"""A throwaway PostgreSQL cluster for a test session: Debian's `postgresql` package (initdb,
pg_ctl), data and unix socket in a fresh directory under /tmp, no TCP port (nothing to
collide with), trust authentication on that socket only. PostgreSQL refuses to run as root:
as root, the cluster runs as the `postgres` system user the package made (never a fixed
uid). Each test gets a database of its own (`new_database`)."""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from uuid import uuid4


def bin_dir() -> Path | None:
    """The newest installed server's bin directory (/usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else None


class Cluster:
    def __init__(self, bin_path: Path):
        self.bin = bin_path
        self.root = Path(tempfile.mkdtemp(prefix="mli-pg-"))  # short: a socket path < 108
        self.data = self.root / "data"
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.role = self.user or pwd.getpwuid(os.geteuid()).pw_name
        self._run("initdb", "-D", str(self.data), "-U", self.role, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")
        options = f"-k {self.root} -c listen_addresses='' -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "120", "start")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              cwd=self.root, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stderr or done.stdout}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.role}@/{database}?host={self.root}"

    def new_database(self) -> str:
        """A new, empty database: its URL."""
        import psycopg
        name = "t_" + uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
