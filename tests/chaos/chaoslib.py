"""What the chaos scripts share: worker groups they start and kill, and the checks of a database afterwards.

Everything here drives real processes (`queuectl`, `queuectl-worker`, gunicorn) against a real SQLite file; the
scripts kill only processes they started, by pid or by their own process group.
"""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
QUEUECTL = str(BIN / "queuectl")
QUEUECTL_WORKER = str(BIN / "queuectl-worker")
GUNICORN = str(BIN / "gunicorn")
REPO = Path(__file__).resolve().parents[2]

# What must never reach a user, a job or a log line of a healthy run.
LOCKED = re.compile(r"database is locked|database table is locked", re.IGNORECASE)


class WorkerGroup:
    """One `queuectl-worker --count N` (a supervisor and its forked workers) in a session of its own."""

    def __init__(self, db, log_dir, number, count=1, env=None, program=None):
        self.number = number
        self.log_path = Path(log_dir) / f"worker-{number}.log"
        self.log = open(self.log_path, "wb")
        command = program or [QUEUECTL_WORKER]
        self.process = subprocess.Popen(
            [*command, "--count", str(count)],
            env={**os.environ, "QUEUECTL_DB": str(db), **(env or {})},
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.pid = self.process.pid

    def worker_pids(self):
        """The supervisor's worker processes (each forked worker leads a process group of its own)."""
        # Forked, so with the supervisor's command line; adopted orphans (a dead worker's job) have another one.
        try:
            supervisor = psutil.Process(self.pid)
            command = supervisor.cmdline()
            children = supervisor.children()
        except psutil.Error:
            return []
        found = []
        for child in children:
            try:
                if child.cmdline() == command:
                    found.append(child.pid)
            except psutil.Error:
                pass
        return found

    def alive(self):
        return self.process.poll() is None

    def signal_supervisor(self, number):
        _send(self.pid, number)

    def kill_everything(self):
        """SIGKILL the workers first, then the supervisor: a lost machine or container (no one left to clean up,
        except the kernel's PR_SET_PDEATHSIG for the jobs' shells)."""
        pids = self.worker_pids()
        for pid in pids:
            _send(pid, signal.SIGKILL)
        _send(self.pid, signal.SIGKILL)
        self.process.wait()
        return pids

    def kill_a_worker(self):
        """SIGKILL one worker process and leave the supervisor, which restarts it. Returns the pid or None."""
        pids = self.worker_pids()
        if not pids:
            return None
        _send(pids[0], signal.SIGKILL)
        return pids[0]

    def wait(self, timeout):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def destroy(self):
        """Teardown: whatever still runs of this group is killed."""
        if self.alive():
            for pid in self.worker_pids():
                _send(pid, signal.SIGKILL)
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        self.log.close()

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")


def _send(pid, number):
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def pid_of_worker_id(worker_id):
    """The pid inside a worker id ('host-pid-abcd'); None if it has none."""
    parts = (worker_id or "").rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def integrity(db):
    """PRAGMA integrity_check of the SQLite file (read in a connection of its own): 'ok' when intact."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    return "ok" if rows == [("ok",)] else "; ".join(str(row[0]) for row in rows[:5])


def counts_consistent(db):
    """The per-state counters kept by triggers (job_counts) equal a real count of the jobs table."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        kept = dict(connection.execute("SELECT state, n FROM job_counts").fetchall())
        real = dict(connection.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    finally:
        connection.close()
    return all(kept.get(state, 0) == real.get(state, 0) for state in set(kept) | set(real)), kept, real


def leftover_processes(db, grace=3.0):
    """Processes whose environment names `db` (job shells and whatever they started), after `grace` seconds
    for an orphan to finish: a job's processes must not outlive their worker."""
    deadline = time.monotonic() + grace
    while True:
        found = []
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                if process.pid == os.getpid():
                    continue
                if process.environ().get("QUEUECTL_DB") == str(db) and process.environ().get("QUEUECTL_JOB_ID"):
                    found.append((process.pid, " ".join(process.info["cmdline"] or [])))
            except (psutil.Error, OSError):
                pass
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def percentile(values, fraction):
    """The `fraction` percentile (0-1) of `values` by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))]


def run_cli(db, *args, input=None, timeout=120, env=None):
    """`queuectl ARGS` as a real process on `db`."""
    return subprocess.run([QUEUECTL, *args], input=input, capture_output=True, timeout=timeout,
                          env={**os.environ, "QUEUECTL_DB": str(db), **(env or {})})
