"""kill -9 during a bulk enqueue: afterwards the batch is all there or not at all, and the database is intact.

    .venv/bin/python tests/chaos/bulk_kill.py [--jobs 100000] [--rounds 5]

Each round starts `queuectl enqueue --file F` with a batch of 100k jobs into a database that already holds jobs, and
SIGKILLs it at a random moment: most rounds while the insert runs (the write-ahead log is growing, the transaction
is open), the others at a random time that may fall before, during or after the commit. Then: the batch's jobs
are either all present or none, the jobs from before are untouched, PRAGMA integrity_check says ok, the per-state
counters match, and the same batch can be enqueued again (nothing half-written blocks it as a duplicate).
"""

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaoslib import QUEUECTL, counts_consistent, integrity, run_cli  # noqa: E402


def write_batch(path, jobs, prefix):
    """A JSON-lines file of `jobs` jobs with ids PREFIX-000000..."""
    with open(path, "w") as file:
        for number in range(jobs):
            file.write(json.dumps({"id": f"{prefix}-{number:06d}", "command": "true"}) + "\n")


def enqueue_and_kill(db, batch_file, wal_bytes=None, after_seconds=None):
    """Start a bulk enqueue of `batch_file` and SIGKILL it once the WAL holds `wal_bytes` or after `after_seconds`.

    Returns (killed, seconds until the kill, WAL size at the kill)."""
    wal = Path(f"{db}-wal")
    process = subprocess.Popen([QUEUECTL, "enqueue", "--file", str(batch_file)],
                               env={**os.environ, "QUEUECTL_DB": str(db)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    started = time.monotonic()
    size = 0
    try:
        while process.poll() is None:
            size = wal.stat().st_size if wal.exists() else 0
            elapsed = time.monotonic() - started
            if (wal_bytes is not None and size >= wal_bytes) or (
                    after_seconds is not None and elapsed >= after_seconds):
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode == -signal.SIGKILL, time.monotonic() - started, size


def batch_count(db, prefix):
    connection = sqlite3.connect(str(db), timeout=30)
    try:
        return connection.execute("SELECT count(*) FROM jobs WHERE id >= ? AND id < ?",
                                  (f"{prefix}-", f"{prefix}.")).fetchone()[0]
    finally:
        connection.close()


def run_round(db, batch_file, jobs, prefix, wal_bytes=None, after_seconds=None):
    """One kill; returns a dict with what was found afterwards (report["ok"] says whether all held)."""
    before = batch_count(db, "old")
    killed, seconds, wal_size = enqueue_and_kill(db, batch_file, wal_bytes, after_seconds)
    state = integrity(db)
    present = batch_count(db, prefix)
    consistent, _, _ = counts_consistent(db)
    after = batch_count(db, "old")
    result = {
        "trigger": f"WAL >= {wal_bytes} bytes" if wal_bytes is not None else f"after {after_seconds:.2f}s",
        "killed": killed, "seconds": round(seconds, 2), "wal_bytes_at_kill": wal_size,
        "batch_present": present, "integrity_check": state, "job_counts_consistent": consistent,
        "earlier_jobs_kept": after == before,
    }
    result["ok"] = present in (0, jobs) and state == "ok" and consistent and after == before
    return result


def run_bulk_kill(workdir, jobs=100_000, rounds=5, seed=None, log=print):
    """Several kill rounds on one database; then the batch once more, to the end. Returns the report."""
    seed = random.randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    workdir = Path(workdir)
    db = workdir / "queue.db"
    old = workdir / "old.jsonl"
    write_batch(old, 1000, "old")
    if run_cli(db, "enqueue", "--file", str(old)).returncode != 0:
        raise RuntimeError("could not enqueue the first jobs")
    results = []
    for number in range(rounds):
        prefix = f"batch{number}"
        batch_file = workdir / f"{prefix}.jsonl"
        write_batch(batch_file, jobs, prefix)
        if number % 3 == 2:  # a random moment near the end: the last inserts, the commit, the checkpoint at exit
            result = run_round(db, batch_file, jobs, prefix, after_seconds=rng.uniform(1.5, 4.0))
        else:  # surely inside the open transaction: the WAL is growing
            result = run_round(db, batch_file, jobs, prefix, wal_bytes=rng.randrange(1, 12) * 1_000_000)
        log(f"  round {number + 1}: {result}")
        results.append(result)
        batch_file.unlink()
    again = workdir / "again.jsonl"
    write_batch(again, jobs, "batch0")
    rerun = run_cli(db, "enqueue", "--file", str(again))
    complete = batch_count(db, "batch0")
    batch0_was_there = results[0]["batch_present"] == jobs if results else False
    report = {
        "jobs_per_batch": jobs, "rounds": results, "seed": seed,
        "killed_mid_transaction": sum(1 for r in results if r["killed"] and r["batch_present"] == 0),
        "killed_after_commit": sum(1 for r in results if r["killed"] and r["batch_present"] == jobs),
        "finished_before_the_kill": sum(1 for r in results if not r["killed"]),
        "partial_batches": sum(1 for r in results if r["batch_present"] not in (0, jobs)),
        "batch_enqueued_again": (rerun.returncode == 0 and complete == jobs) or (batch0_was_there and complete == jobs),
        "integrity_check": integrity(db),
    }
    report["ok"] = (all(r["ok"] for r in results) and report["batch_enqueued_again"]
                    and report["integrity_check"] == "ok")
    return report


def run_big_bulk_beside_users(workdir, jobs=500_000, users=2, log=print):
    """One bulk enqueue of `jobs` jobs while `users` threads run `queuectl enqueue` one job at a time, until it ends.

    Before large batches were staged outside the write lock, a batch of 1M jobs held it past the 30 s busy
    timeout and a user's enqueue failed with "database is locked". Returns the report (report["ok"])."""
    import threading

    workdir = Path(workdir)
    db = workdir / "queue.db"
    batch = workdir / "big.jsonl"
    write_batch(batch, jobs, "big")
    run_cli(db, "status")
    done = threading.Event()
    calls, failures = [], []

    def user():
        while not done.is_set():
            started = time.monotonic()
            result = run_cli(db, "enqueue", json.dumps({"command": "true"}))
            calls.append(time.monotonic() - started)
            if result.returncode != 0:
                failures.append(result.stderr.decode(errors="replace").strip())

    threads = [threading.Thread(target=user, daemon=True) for _ in range(users)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    big = run_cli(db, "enqueue", "--file", str(batch), timeout=600)
    big_seconds = time.monotonic() - started
    done.set()
    for thread in threads:
        thread.join(timeout=120)
    report = {
        "jobs": jobs, "big_enqueue_seconds": round(big_seconds, 1), "big_enqueue_ok": big.returncode == 0,
        "user_enqueues": len(calls), "user_failures": len(failures), "user_failure_examples": failures[:3],
        "slowest_user_enqueue_seconds": round(max(calls), 2) if calls else None,
        "batch_present": batch_count(db, "big"), "integrity_check": integrity(db),
    }
    report["ok"] = (report["big_enqueue_ok"] and not failures and report["batch_present"] == jobs
                    and report["integrity_check"] == "ok")
    log(f"  big bulk beside users: {report}")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    print(f"bulk enqueue of {args.jobs} jobs, SIGKILLed {args.rounds} times")
    with tempfile.TemporaryDirectory(prefix="queuectl-bulk-kill-") as scratch:
        report = run_bulk_kill(scratch, jobs=args.jobs, rounds=args.rounds, seed=args.seed)
    summary = {key: value for key, value in report.items() if key != "rounds"}
    print("bulk kill report\n" + "\n".join(f"  {key:<24} {value}" for key, value in summary.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
