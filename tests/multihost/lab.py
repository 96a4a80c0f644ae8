"""The multi-host lab: a private PostgreSQL cluster and three hosts as network namespaces on a bridge.

    root namespace                              namespace qm<pid>h1 (host-1)
    bridge qm<pid>b  10.X.Y.1/24  <-- veth -->  eth0 10.X.Y.11   queuectl worker start --count 2
    PostgreSQL on 10.X.Y.1:5432     <-- veth -->  host-2 (10.X.Y.12), host-3 (10.X.Y.13) alike

Everything is named after this process's pid (parallel runs never clash), on a 10.x subnet no interface of the
machine uses, and torn down by close() even after a failure: the workers' process groups, the cluster (by its
postmaster pid), the namespaces (their iptables rules go with them), the veths and the bridge. Nothing here listens
on an outside address, and the machine's own PostgreSQL on 127.0.0.1 is never touched.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
QUEUECTL = str(BIN / "queuectl")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
HOSTS = 3


def missing_requirements():
    """Why the lab cannot run here (a sentence), or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, iptables)"
    for tool in ("ip", "iptables", "runuser"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not (PG_BIN / "initdb").exists():
        return f"needs PostgreSQL's server binaries in {PG_BIN}"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "needs the postgres user (the cluster does not run as root)"
    return None


def sh(*args, check=True, timeout=30):
    """Run a command of the lab's set-up; its output when it fails."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def _free_subnet(pid):
    """A 10.x.y.0/24 that no interface of this machine has an address in, picked from the pid."""
    used = sh("ip", "-o", "-4", "addr")
    for step in range(256):
        number = (pid + step * 7919) % (128 * 256)
        prefix = f"10.{64 + number // 256}.{number % 256}"
        if f" {prefix}." not in used:
            return prefix
    raise RuntimeError("no free 10.x.y.0/24 subnet")


class Lab:
    """The cluster, the network and the worker groups of one run; close() removes all of it."""

    def __init__(self, work_dir=None):
        self.pid = os.getpid()
        self.tag = f"qm{self.pid}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"queuectl-multihost-{self.pid}-", dir=work_dir))
        self.dir.chmod(0o755)
        shutil.chown(self.dir, "postgres", "postgres")  # the server's log and socket live here (root writes anyway)
        self.prefix = None
        self.server_address = None
        self.bridge = f"{self.tag}b"
        self.namespaces = []
        self.workers = {}  # host number -> Popen of `queuectl worker start`
        self.postmaster_pid = None
        self.scenario = "lab"  # names the worker logs of the scenario that runs
        self._cleanups = contextlib.ExitStack()

    # ---- set-up and tear-down ----
    def open(self):
        """Build the network and start the cluster."""
        self._cleanups.callback(shutil.rmtree, self.dir, True)
        self.prefix = _free_subnet(self.pid)
        self.server_address = f"{self.prefix}.1"
        self._network()
        self._cluster()
        return self

    def close(self):
        """Stop every worker group and the cluster, remove the namespaces, veths and bridge (also after errors)."""
        for number in list(self.workers):
            self.stop_workers(number)
        self._cleanups.close()

    def __enter__(self):
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    def _network(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self._cleanups.callback(sh, "ip", "link", "del", self.bridge, check=False)
        sh("ip", "addr", "add", f"{self.server_address}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for number in range(1, HOSTS + 1):
            namespace, outside, inside = self.namespace(number), self.veth(number), f"{self.tag}n{number}"
            sh("ip", "netns", "add", namespace)
            self._cleanups.callback(sh, "ip", "netns", "del", namespace, check=False)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            self._cleanups.callback(sh, "ip", "link", "del", outside, check=False)  # gone with the netns, or not
            sh("ip", "link", "set", inside, "netns", namespace)
            sh("ip", "link", "set", outside, "master", self.bridge, "up")
            self.in_host(number, "ip", "link", "set", "lo", "up")
            self.in_host(number, "ip", "link", "set", inside, "name", "eth0")
            self.in_host(number, "ip", "addr", "add", f"{self.host_address(number)}/24", "dev", "eth0")
            self.in_host(number, "ip", "link", "set", "eth0", "up")
            self.namespaces.append(namespace)

    def _cluster(self):
        data = self.dir / "data"
        data.mkdir()
        shutil.chown(data, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync",
                          "--no-instructions", timeout=120)
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '{self.server_address}'\nport = 5432\n"
                       f"unix_socket_directories = '{self.dir}'\nmax_connections = 200\n"
                       # A test cluster: durability is not what is measured.
                       "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n")
        with open(data / "pg_hba.conf", "w") as hba:
            hba.write(f"local all all trust\nhost all all {self.prefix}.0/24 trust\n")
        self._cleanups.callback(self._stop_cluster)
        self.pg_ctl("start")

    def pg_ctl(self, action, *extra):
        """pg_ctl ACTION on the lab's cluster (start, restart), as the postgres user, waiting for it."""
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "server.log", "-w",
                          "-t", "60", *extra, action, timeout=90)
        self.postmaster_pid = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])

    def _stop_cluster(self):
        with contextlib.suppress(Exception):
            self._as_postgres(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w", "stop",
                              timeout=30)
            return
        if self.postmaster_pid:  # pg_ctl failed: the postmaster we started, by its pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.postmaster_pid, signal.SIGKILL)

    def _as_postgres(self, *args, timeout=30):
        sh("runuser", "-u", "postgres", "--", *map(str, args), timeout=timeout)

    # ---- names and addresses ----
    def namespace(self, number):
        return f"{self.tag}h{number}"

    def veth(self, number):
        """The host-side end of host `number`'s link (in the root namespace, on the bridge)."""
        return f"{self.tag}v{number}"

    def host_address(self, number):
        return f"{self.prefix}.{10 + number}"

    def url(self, database):
        """The URL of `database` on the lab's cluster, at its link address."""
        return f"postgresql://postgres@{self.server_address}:5432/{database}"

    def in_host(self, number, *args, check=True):
        """Run a command inside host `number`'s namespace."""
        return sh("ip", "netns", "exec", self.namespace(number), *args, check=check)

    def create_database(self, name):
        """A fresh database for one scenario; returns its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    # ---- faults ----
    def cut(self, number):
        """Partition host `number`: its link goes down at the bridge (a pulled cable: no error, packets vanish)."""
        sh("ip", "link", "set", self.veth(number), "down")

    def heal(self, number):
        sh("ip", "link", "set", self.veth(number), "up")

    def drop_packets(self, number, probability):
        """Drop each packet in or out of host `number` with `probability` (iptables statistic, inside its
        namespace: removed with the namespace)."""
        for chain in ("INPUT", "OUTPUT"):
            self.in_host(number, "iptables", "-A", chain, "-m", "statistic", "--mode", "random",
                         "--probability", str(probability), "-j", "DROP")

    def stop_dropping(self, number):
        for chain in ("INPUT", "OUTPUT"):
            self.in_host(number, "iptables", "-F", chain)

    # ---- workers ----
    def start_workers(self, number, url, count=2, env=None):
        """`queuectl worker start --count COUNT` inside host `number`, as host-NUMBER, in a session of its own."""
        job_dir = self.dir / "jobs"
        job_dir.mkdir(exist_ok=True)
        log = open(self.worker_log(number), "ab")
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(job_dir),
                       "QUEUECTL_DB": url, "QUEUECTL_HOST": f"host-{number}", "QUEUECTL_LOG_LEVEL": "INFO",
                       **(env or {})}
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace(number), QUEUECTL, "worker", "start", "--count", str(count),
             "--job-dir", str(job_dir)],
            env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.workers[number] = process
        return process

    def worker_log(self, number):
        return self.dir / f"{self.scenario}-host-{number}.log"

    def stop_workers(self, number, grace=10):
        """SIGTERM host `number`'s worker group (its own process group), SIGKILL it after `grace` seconds."""
        process = self.workers.pop(number, None)
        if process is None:
            return
        for sent, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sent)
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Its jobs (sessions of their own) die with their workers (PDEATHSIG), but not before this returns.
        time.sleep(0.2)
