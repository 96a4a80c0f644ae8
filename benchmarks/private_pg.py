"""A private PostgreSQL 15 cluster for a benchmark: initdb into a temporary directory as the postgres user, stock
settings but `max_connections`, no TCP port (a Unix socket in that directory), so it never clashes with the
machine's server or another run. Needs root and Debian's server binaries; start_if_possible() returns None
without them."""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Cluster:
    """A running private cluster; stop() ends it (pg_ctl, else its postmaster by pid) and removes its files."""

    def __init__(self, max_connections, settings=None):
        self.dir = Path(tempfile.mkdtemp(prefix=f"queuectl-bench-pg-{os.getpid()}-"))
        self.dir.chmod(0o755)
        shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        try:
            _as_postgres(PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync",
                         "--no-instructions", timeout=120)
            with open(data / "postgresql.conf", "a") as conf:
                conf.write(f"listen_addresses = ''\nunix_socket_directories = '{self.dir}'\n"
                           f"max_connections = {max_connections}\n")
                conf.writelines(f"{name} = {value}\n" for name, value in (settings or {}).items())
            _as_postgres(PG_BIN / "pg_ctl", "-D", data, "-l", self.dir / "server.log", "-w", "-t", "60", "start",
                         timeout=90)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.postmaster_pid = int((data / "postmaster.pid").read_text().split()[0])
        self.url = f"postgresql://postgres@/postgres?host={self.dir}"

    def stop(self):
        try:
            _as_postgres(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "-w", "stop", timeout=60)
        except Exception:
            try:
                os.kill(self.postmaster_pid, 9)  # the postmaster this run started, by its pid
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _as_postgres(*args, timeout):
    subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], check=True, capture_output=True,
                   timeout=timeout)


def start_if_possible(max_connections=300, settings=None):
    """A started Cluster, or None when this machine cannot run one (not root, no binaries, no postgres user)."""
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        return None
    try:
        pwd.getpwnam("postgres")
        return Cluster(max_connections, settings)
    except (KeyError, subprocess.SubprocessError, OSError):
        return None
