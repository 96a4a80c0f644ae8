"""Many jobs per worker process (`worker start --concurrency K`, issue 16): what a busy slot costs in memory, and
how many PostgreSQL connections a fleet of slots holds.

    .venv/bin/python benchmarks/slots.py [--slots 50]

- memory: the PSS (proportional set size: shared pages split between the processes that share them) of the worker
  processes (the supervisor and its workers, not the jobs) per busy slot while `slots` `sleep` jobs run, for
  `--count 1 --concurrency 50` against `--count 50` in the same run;
- connections: `--count 4 --concurrency 50` running 200 jobs on PostgreSQL, its connections counted in
  pg_stat_activity by the URL's application_name.
"""

import argparse
import json
import os
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import QUEUECTL_WORKER, scratch_dir, start, stop, wait_for  # noqa: E402

MIB = 1024 * 1024


def _enqueue_sleepers(store, count, seconds=120):
    from queuectl_core.validation import check_job

    store.enqueue_many([(n, check_job({"command": f"sleep {seconds}"})) for n in range(count)])


def _busy_slots(store):
    return sum(len(worker["jobs"]) for worker in store.live_workers())


def _start(db, count, concurrency, slots, workers_db=None):
    """Workers on `db` (through `workers_db`, another URL of it, when given) with `slots` sleeping jobs running;
    returns (the supervisor, the bench's own store)."""
    from queuectl_core.store import open_store

    store = open_store(db)
    _enqueue_sleepers(store, slots)
    supervisor = start([QUEUECTL_WORKER, "--count", str(count), "--concurrency", str(concurrency),
                        "--db", workers_db or db], env={"QUEUECTL_LOG_LEVEL": "WARNING"})
    wait_for(lambda: _busy_slots(store) == slots or supervisor.poll() is not None, 120,
             what=f"{slots} jobs running")
    if supervisor.poll() is not None:
        raise RuntimeError(f"queuectl-worker exited {supervisor.returncode}")
    return supervisor, store


def worker_pss(count, concurrency, slots):
    """{'pss_mib', 'per_slot_mib', 'processes'}: the worker processes' PSS with `slots` jobs running."""
    import psutil

    db = os.path.join(scratch_dir(f"slots-{count}x{concurrency}"), "queue.db")
    supervisor, store = _start(db, count, concurrency, slots)
    try:
        time.sleep(1.0)  # past the start: every heartbeat has run once
        pids = [supervisor.pid] + [worker["pid"] for worker in store.live_workers()]
        pss = sum(psutil.Process(pid).memory_full_info().pss for pid in pids)
        return {"pss_mib": pss / MIB, "per_slot_mib": pss / MIB / slots, "processes": len(pids)}
    finally:
        stop(supervisor)
        store.close()


def postgres_connections(count=4, concurrency=50):
    """{'slots', 'connections', 'workers'}: the connections `count` x `concurrency` busy slots hold."""
    import postgres
    import psycopg

    reason = postgres.missing_reason()
    if reason:
        return {"skipped": reason}
    schema = postgres.Schema()
    name = f"qbench-slots-{secrets.token_hex(4)}"
    slots = count * concurrency
    # The workers' connections carry an application_name of their own; the bench's store has none.
    supervisor, store = _start(schema.url, count, concurrency, slots, f"{schema.url}&application_name={name}")
    try:
        with psycopg.connect(postgres.URL, autocommit=True) as admin:
            connections = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                        (name,)).fetchone()[0]
        return {"slots": slots, "connections": connections, "workers": len(store.live_workers())}
    finally:
        stop(supervisor)
        store.close()
        schema.drop()


def measure(slots=50):
    """Both figures, the memory ones side by side in one run."""
    return {"concurrency": worker_pss(1, slots, slots), "processes": worker_pss(slots, 1, slots),
            "postgres": postgres_connections()}


def run_slots(quick):
    """The rows of `make bench` (the same loads with --quick: they take seconds)."""
    from report import figure, log

    found = measure()
    log(f"slots: {found}")
    one, many = found["concurrency"], found["processes"]
    rows = [figure("slots_memory", "worker PSS per busy slot, --count 1 --concurrency 50 running 50 `sleep` jobs",
                   one["per_slot_mib"], "MiB", "≤ 1 MiB", one["per_slot_mib"] <= 1, one["per_slot_mib"] / 1,
                   note=f"{one['pss_mib']:.1f} MiB in {one['processes']} processes; --count 50 in the same run: "
                        f"{many['per_slot_mib']:.2f} MiB per slot ({many['pss_mib']:.0f} MiB in {many['processes']})",
                   **found)]
    pg = found["postgres"]
    if "skipped" in pg:
        rows.append(figure("slots_pg_connections", "PostgreSQL connections of 200 slots over 4 worker processes",
                           None, "", "≤ 4", None, note=f"skipped: {pg['skipped']}"))
    else:
        rows.append(figure("slots_pg_connections", "PostgreSQL connections of 200 busy slots over 4 worker processes",
                           pg["connections"], "", "≤ 4", pg["connections"] <= 4, pg["connections"] / 4,
                           note="counted in pg_stat_activity by the workers' application_name, while 200 jobs run",
                           **pg))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=50)
    print(json.dumps(measure(parser.parse_args().slots), indent=2))
