"""What the CLI test modules share: contract constants, and ways to run the CLI and a burst worker."""

import json
import re
from concurrent.futures import ThreadPoolExecutor

from helpers import run_cli

ISO_UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CONTRACT_DEFAULTS = {"backoff_base": 2, "backoff_max": 3600, "max_retries": 3, "lease_timeout": 30}
RECORD_FIELDS = {
    "id", "command", "state", "attempts", "max_retries", "priority", "run_at", "timeout",
    "created_at", "updated_at", "last_error", "exit_code", "worker_id",
}
STATES = ("pending", "processing", "completed", "failed", "dead", "cancelled")


def enqueue(db_path, job, *args):
    """`queuectl enqueue JOB` that must succeed; returns its stdout without the newline."""
    result = run_cli(db_path, "enqueue", json.dumps(job), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def run_cli_concurrently(calls):
    """run_cli(db_path, *args) for every (db_path, args) pair, several at a time; the results in order.

    Each CLI run is mostly interpreter start-up, so the long tables of refusals run side by side
    to keep this module within its time budget."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: run_cli(call[0], *call[1]), calls))


def run_burst_worker(processes, db_path):
    """`queuectl-worker --burst` until it has nothing left to do."""
    worker = processes.start_workers(db_path, "--burst")
    code = worker.wait(timeout=30)
    assert code == 0, worker.stderr.read().decode(errors="replace")
