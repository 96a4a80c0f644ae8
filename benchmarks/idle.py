"""What idle workers cost the PostgreSQL server (issue 17, item 3): `queuectl-worker --db URL --count N` on an
empty queue; over a window, the server's transactions per second (pg_stat_database.xact_commit), its queries per
second (pg_stat_statements calls, top level, BEGIN and COMMIT included) with the statements that make them, and the
CPU time of the server's processes (from /proc) as a share of one core and of the machine.

    .venv/bin/python benchmarks/idle.py [--workers 100] [--seconds 10] [--output FILE]

Runs on a private cluster (private_pg, pg_stat_statements loaded; N workers hold 2 connections each: the store's
and the LISTEN one), so that nothing else runs on that server. The machine's other load does not change these
counts, only the CPU figure a little (cache misses).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import private_pg  # noqa: E402

BIN = os.path.dirname(sys.executable)
TOP_STATEMENTS = 14


def _server_cpu_seconds(postmaster_pid):
    """User + system CPU seconds of the postmaster and its children (backends, background processes), by pid."""
    import psutil

    times = {}
    postmaster = psutil.Process(postmaster_pid)
    for process in [postmaster, *postmaster.children()]:
        try:
            cpu = process.cpu_times()
            times[process.pid] = cpu.user + cpu.system
        except psutil.Error:
            pass
    return times


def _counters(db):
    """(commits, statement calls by query) of the database `idle` now."""
    db.execute("SELECT pg_stat_clear_snapshot()")
    commits = db.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = 'idle'").fetchone()[0]
    calls = dict(db.execute(
        "SELECT query, sum(calls)::bigint FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'idle') GROUP BY query").fetchall())
    return commits, calls


def _wait_registered(db, workers, timeout=120):
    deadline = time.monotonic() + timeout
    while db.execute("SELECT count(*) FROM workers").fetchone()[0] < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not all register within {timeout} s")
        time.sleep(0.5)


def measure(workers=100, seconds=10.0):
    """The idle cost of `workers` worker processes over `seconds`, or {'skipped': reason}."""
    import psycopg

    cluster = private_pg.start_if_possible(max_connections=2 * workers + 20,
                                           settings={"shared_preload_libraries": "'pg_stat_statements'"})
    if cluster is None:
        return {"skipped": "needs root and PostgreSQL 15's server binaries for a private cluster"}
    process = None
    try:
        with psycopg.connect(cluster.url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE idle")
        url = cluster.url.replace("/postgres?", "/idle?")
        from queuectl_core.store import open_store

        open_store(url).close()  # the schema, before the workers race for it
        env = {**os.environ, "QUEUECTL_LOG_LEVEL": "WARNING", "HOME": cluster.dir.as_posix()}
        process = subprocess.Popen([os.path.join(BIN, "queuectl-worker"), "--db", url, "--count", str(workers)],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            _wait_registered(db, workers)
            time.sleep(3)  # past their start-up
            commits_before, calls_before = _counters(db)
            cpu_before, began = _server_cpu_seconds(cluster.postmaster_pid), time.monotonic()
            time.sleep(seconds)
            cpu_after = _server_cpu_seconds(cluster.postmaster_pid)
            time.sleep(0.6)  # the backends' commit counts reach pg_stat_database every 0.5 s
            commits_after, calls_after = _counters(db)
            elapsed = time.monotonic() - began - 0.6
            live = db.execute("SELECT count(*) FROM workers").fetchone()[0]
        # Our own three reads per _counters() call are left out: they are not the workers'.
        ours = {query for query in calls_after if "pg_stat_statements" in query or "pg_stat_database" in query
                or query.startswith("SELECT pg_stat_clear_snapshot")}
        by_query = {query: calls - calls_before.get(query, 0) for query, calls in calls_after.items()
                    if query not in ours}
        server_cpu = sum(cpu - cpu_before.get(pid, 0.0) for pid, cpu in cpu_after.items())
        top = sorted(((query, calls) for query, calls in by_query.items() if calls > 0),
                     key=lambda item: -item[1])[:TOP_STATEMENTS]
        return {
            "workers": workers, "live_workers": live, "seconds": round(elapsed, 1),
            "transactions_per_second": round((commits_after - commits_before) / elapsed, 1),
            "queries_per_second": round(sum(by_query.values()) / elapsed, 1),
            "server_cpu_percent_of_one_core": round(100 * server_cpu / elapsed, 2),
            "server_cpu_percent_of_machine": round(100 * server_cpu / elapsed / (os.cpu_count() or 1), 2),
            "cores": os.cpu_count(),
            "top_statements_per_second": [{"per_second": round(calls / elapsed, 1),
                                           "query": " ".join(query.split())[:140]} for query, calls in top],
        }
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        cluster.stop()


def text(result):
    """One paragraph for the console."""
    if "skipped" in result:
        return f"idle cost: skipped: {result['skipped']}"
    lines = [f"idle cost: {result['workers']} idle workers on PostgreSQL, over {result['seconds']:g} s:"
             f" {result['transactions_per_second']:,.1f} transactions/s, {result['queries_per_second']:,.1f}"
             f" queries/s, server CPU {result['server_cpu_percent_of_one_core']:.2f} % of one core"
             f" ({result['server_cpu_percent_of_machine']:.2f} % of the machine's {result['cores']} cores)"]
    lines += [f"  {entry['per_second']:>7.1f}/s  {entry['query'][:100]}"
              for entry in result["top_statements_per_second"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.seconds <= 0:
        parser.error("--workers takes a whole number of at least 1, --seconds a positive number")
    result = measure(args.workers, args.seconds)
    print(text(result))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
