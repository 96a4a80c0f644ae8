"""What every benchmark shares: paths, owned processes, waiting, statistics, the database to seed."""

import atexit
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)  # the .venv that runs the suite has every command
PYTHON = sys.executable
QUEUECTL = os.path.join(BIN, "queuectl")
QUEUECTL_WORKER = os.path.join(BIN, "queuectl-worker")
HERE = os.path.dirname(os.path.abspath(__file__))

_owned = []  # every process the suite starts; each leads its own process group


def scratch_dir(name):
    """A fresh directory under /tmp for one benchmark (each database alone in its directory,
    so the worker's inotify wake-up sees only its own database's writes)."""
    root = os.environ.get("QUEUECTL_BENCH_TMP") or os.path.join(tempfile.gettempdir(), "queuectl-bench")
    os.makedirs(root, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"{name}-", dir=root)


def start(argv, env=None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs):
    """Start a process in its own process group, owned by the suite (killed at exit if still alive)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    process = subprocess.Popen(argv, env=full_env, stdout=stdout, stderr=stderr, start_new_session=True, **kwargs)
    _owned.append(process)
    return process


def stop(process, sig=signal.SIGTERM, timeout=15.0):
    """Stop an owned process group: `sig`, then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of its group
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    if process in _owned:
        _owned.remove(process)


@atexit.register
def _stop_all():
    for process in list(_owned):
        stop(process, signal.SIGKILL, 1.0)


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    """Poll `predicate` until it returns a true value; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def median(values):
    return statistics.median(values) if values else None


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def wall(argv, env=None, runs=10, stdin=None):
    """Wall times (seconds) of `runs` runs of a command, each to completion; exit status must be 0."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        result = subprocess.run(argv, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=stdin)
        times.append(time.perf_counter() - begin)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[:3]} exited {result.returncode}: {result.stderr.decode()[-500:]}")
    return times


def cpu_seconds(pids):
    """User + system CPU seconds used so far by these processes (those still alive)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def process_tree(pid):
    """pid and its descendants' pids (a supervisor and its workers)."""
    import psutil

    try:
        return [pid] + [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return [pid]


def idle_cpu_percent(pids, seconds):
    """CPU% (of one core) these processes used over `seconds` of wall time."""
    before = cpu_seconds(pids)
    begin = time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pids) - before) / (time.monotonic() - begin)


def seed_pending(path, count, now_ms, command="true", batch=100_000):
    """Seed `count` pending jobs straight into an existing queuectl database (seeding only: every
    measurement goes through the store). One transaction, executemany: ~1M rows in seconds."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("BEGIN IMMEDIATE")
    start = connection.execute("SELECT coalesce(max(seq), 0) FROM jobs").fetchone()[0]
    for first in range(0, count, batch):
        rows = (
            (f"seed-{start + n:09d}", command, 3, 0, now_ms - 60_000, now_ms - 60_000, now_ms - 60_000)
            for n in range(first, min(count, first + batch))
        )
        connection.executemany(
            "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, created_at, updated_at)"
            " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)",
            rows,
        )
    if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'job_counts'").fetchone():
        # The store counts new jobs as it adds them (schema 2 on); seeding around it must do the same.
        connection.execute("UPDATE job_counts SET n = n + ? WHERE state = 'pending'", (count,))
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def machine():
    """What the figures were measured on."""
    import platform

    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "unknown", None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "load_average_at_start": load,
        "commit": commit,
        "work_tree_dirty": dirty,
    }
