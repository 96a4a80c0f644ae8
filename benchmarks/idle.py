"""What idle workers cost the PostgreSQL server (issue 17, item 3): `queuectl-worker --count N` on an empty queue,
the server's transactions per second and the CPU time of its backends over a window.

    .venv/bin/python benchmarks/idle.py [--workers 100] [--seconds 10]

Runs on a private cluster (private_pg; N workers hold 2 connections each: the store's and the LISTEN one).
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


def _server_cpu_seconds(postmaster_pid):
    """User + system CPU seconds of the postmaster's children (the backends), from /proc."""
    import psutil

    total = 0.0
    for child in psutil.Process(postmaster_pid).children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def measure(workers=100, seconds=10.0):
    import psycopg

    cluster = private_pg.start_if_possible(max_connections=2 * workers + 20)
    if cluster is None:
        return {"skipped": "needs root and PostgreSQL 15's server binaries for a private cluster"}
    process = None
    try:
        with psycopg.connect(cluster.url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE idle")
        url = cluster.url.replace("/postgres?", "/idle?")
        from queuectl_core.store import open_store

        open_store(url).close()  # the schema, before the workers race for it
        env = {**os.environ, "QUEUECTL_DB": url, "QUEUECTL_LOG_LEVEL": "WARNING", "HOME": cluster.dir.as_posix()}
        process = subprocess.Popen([os.path.join(BIN, "queuectl-worker"), "--count", str(workers)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        with psycopg.connect(url, autocommit=True) as db:
            deadline = time.monotonic() + 120
            while db.execute("SELECT count(*) FROM workers").fetchone()[0] < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not all register within 120 s")
                time.sleep(0.5)
            time.sleep(3)  # past their start-up

            def commits():
                db.execute("SELECT pg_stat_clear_snapshot()")
                return db.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = 'idle'").fetchone()[0]

            before, cpu_before, began = commits(), _server_cpu_seconds(cluster.postmaster_pid), time.monotonic()
            time.sleep(seconds)
            time.sleep(0.6)  # the statistics reach pg_stat_database every 0.5 s
            elapsed = time.monotonic() - began
            after, cpu_after = commits(), _server_cpu_seconds(cluster.postmaster_pid)
        return {"workers": workers, "seconds": round(elapsed, 1),
                "transactions_per_second": round((after - before) / elapsed, 1),
                "server_cpu_percent_of_one_core": round(100 * (cpu_after - cpu_before) / elapsed, 1)}
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        cluster.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.workers, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
