"""Small tools shared by the tests: waiting for a condition, running the CLI, owning processes."""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

BIN = Path(sys.executable).parent
QUEUECTL = str(BIN / "queuectl")
QUEUECTL_WORKER = str(BIN / "queuectl-worker")


def wait_for(predicate, timeout=15.0, interval=0.05, message="condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def iso_seconds(text):
    """An ISO-8601 time from a record as seconds since the epoch."""
    return datetime.fromisoformat(text).timestamp()


def run_cli(db_path, *args, input=None, env=None, timeout=30):
    """Run `queuectl ARGS` as a real process against `db_path`; returns the CompletedProcess."""
    full_env = {**os.environ, "QUEUECTL_DB": str(db_path), **(env or {})}
    return subprocess.run(
        [QUEUECTL, *args], input=input, capture_output=True, text=True, env=full_env, timeout=timeout
    )


def cli_json(db_path, *args):
    """Run a read command with --json and return the parsed output (the command must succeed)."""
    result = run_cli(db_path, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class ProcessOwner:
    """Starts processes in their own process group and kills every group at teardown."""

    def __init__(self):
        self.processes = []

    def start(self, args, env=None, **kwargs):
        """Start `args`; its stderr goes to a file (a pipe nobody reads could block it): see log()."""
        log = tempfile.TemporaryFile()
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", log)
        process = subprocess.Popen(args, env={**os.environ, **(env or {})}, start_new_session=True, **kwargs)
        process.log_file = log
        self.processes.append(process)
        return process

    @staticmethod
    def log(process):
        """What the process wrote to stderr so far."""
        process.log_file.seek(0)
        return process.log_file.read().decode(errors="replace")

    def start_workers(self, db_path, *args, env=None, **kwargs):
        """`queuectl-worker ARGS` against `db_path`."""
        return self.start([QUEUECTL_WORKER, *args], env={"QUEUECTL_DB": str(db_path), **(env or {})}, **kwargs)

    def cleanup(self):
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)


POSTGRES_URL = os.environ.get("QUEUECTL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_postgres_missing = None


def postgres_missing_reason():
    """Why PostgreSQL tests cannot run here (None when a server answers); asked once per session."""
    global _postgres_missing
    if _postgres_missing is None:
        try:
            import psycopg

            psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
            _postgres_missing = ""
        except Exception as error:  # ImportError or any connection failure
            _postgres_missing = f"no PostgreSQL at {POSTGRES_URL}: {str(error).strip().splitlines()[0]}"
    return _postgres_missing or None


BACKENDS = ("sqlite", "postgres")


def queue_location(backend, tmp_path):
    """A generator for a `db_path` fixture: a SQLite file in `tmp_path`, or the URL of a PostgreSQL schema of its
    own (the test skips with the reason where no server answers)."""
    if backend == "sqlite":
        yield tmp_path / "queue.db"
        return
    reason = postgres_missing_reason()
    if reason:
        import pytest

        pytest.skip(reason)
    with postgres_schema_url() as url:
        yield url


@contextlib.contextmanager
def postgres_schema_url():
    """The URL of a new, empty schema of the test database, dropped afterwards: tests never share jobs."""
    import psycopg

    name = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    try:
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


QUIET = {"QUEUECTL_LOG_LEVEL": "WARNING"}  # workers log only problems in tests


def enqueue(store, command, **fields):
    """Enqueue a checked job through the store; return its id."""
    from queuectl_core.validation import check_job

    return store.enqueue(check_job({"command": command, **fields}))["id"]


def busy_worker(store, worker_id, concurrency, running_for, host="host", pid=4242):
    """Register `worker_id` with `concurrency` slots and make it run one job per entry of `running_for` (seconds
    since the run began), through the real store (register_worker, claim_many: one call for the jobs of the same
    start); returns the job ids, longest running first. Each job is enqueued and claimed at its start, so no job
    enqueued since (due later) is claimed; by the plain claim, as the claim of a named queue starts runs now."""
    from itertools import groupby

    from queuectl_core.timeutil import now_ms
    from queuectl_core.validation import check_job

    now = now_ms()
    store.register_worker(worker_id, host, pid, now=now, concurrency=concurrency)
    job_ids = []
    for seconds, group in groupby(sorted(running_for, reverse=True)):
        began = now - int(seconds * 1000)
        started = [f"{worker_id}-job-{len(job_ids) + index}" for index in range(len(list(group)))]
        for job_id in started:
            store.enqueue(check_job({"command": "sleep 600", "id": job_id}), now=began)
        claimed = store.claim_many(worker_id, 3600, len(started), now=began)
        assert [claim.id for claim in claimed] == started
        job_ids += started
    return job_ids


def state_of(store, job_id):
    """The job's current state."""
    return store.get_job(job_id)["state"]


def wait_state(store, job_id, state, timeout=20):
    """Wait until the job is in `state`."""
    wait_for(lambda: state_of(store, job_id) == state, timeout, message=f"{job_id} to be {state}")


def alive(pid):
    """True while `pid` runs (a zombie counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_no_traceback(result):
    """No Python traceback in a finished process's output."""
    assert "Traceback" not in result.stdout
    assert "Traceback" not in result.stderr


def assert_refused(result, exit_code, *words):
    """Failed with `exit_code`: one line on stderr naming every word, nothing on stdout, no traceback."""
    assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    assert_no_traceback(result)
    assert result.stdout == ""
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for word in words:
        assert word in message, (word, message)
