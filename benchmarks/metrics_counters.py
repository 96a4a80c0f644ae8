"""What a /metrics scrape costs at 1M finished runs, and what claim + finish costs, on SQLite and PostgreSQL.

Issue 13, item 8: the scrape used to sum over every row of `runs`; the run figures are now counters kept as runs
finish (migration "run totals"). Run this file with the code before and after the change (e.g. PYTHONPATH pointing
at an export of the older tree) to compare:

    .venv/bin/python benchmarks/metrics_counters.py scrape --runs 1000000
    .venv/bin/python benchmarks/metrics_counters.py scrape --runs 0 --waiting 1000000   # the oldest waiting job
    .venv/bin/python benchmarks/metrics_counters.py claims --rounds 5
    .venv/bin/python benchmarks/metrics_counters.py count      # the trigger vs a statement of its own (code after)

The runs are seeded straight with SQL (seeding only), finished; where the run totals exist they are then summed
from those runs as the migration does (a trigger fired 1M times in one seeding transaction updates one row 1M times,
which PostgreSQL makes quadratic: a worker finishes one run per transaction). Every timed call goes through the
store. Prints one JSON object of figures.
"""

import argparse
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import median, scratch_dir  # noqa: E402

# A spread of durations over every bucket of the histogram (0 to ~67 minutes), deterministic.
DURATION_MS = "((job_seq * 7919) % 4000) * ((job_seq % 7) * (job_seq % 7) * 20 + 1)"
# One run in ten fails.
EXIT_CODE = "CASE WHEN job_seq % 10 = 0 THEN 1 ELSE 0 END"


def total_runs(execute, slot):
    """Sum the seeded runs into run_totals as the migration does, where the table exists (the code after)."""
    try:
        from queuectl_core.store.sql import run_totals_of_finished_runs
    except ImportError:  # the code before: /metrics sums the runs at each scrape
        return
    execute("DELETE FROM run_totals")
    leading, columns = ("0, ", "slot, ") if slot else ("", "")
    execute(f"INSERT INTO run_totals ({columns}bucket, succeeded, failed, duration_ms)"
            f" {run_totals_of_finished_runs(leading)}")
    if not slot:  # SQLite's trigger updates a row per bucket: every bucket has one
        execute("INSERT OR IGNORE INTO run_totals (bucket) VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9),"
                " (10)")


def seed_sqlite(path, count, now):
    """`count` completed jobs with one finished run each."""
    if not count:
        return
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO jobs (seq, id, command, state, max_retries, priority, run_at, created_at, updated_at,"
        " run_count) SELECT i, 'seed-' || i, 'true', 'completed', 3, 0, ?, ?, ?, 1 FROM n", (count, now, now, now))
    connection.execute("UPDATE job_counts SET n = n + ? WHERE state = 'completed'", (count,))
    connection.execute("INSERT INTO runs (job_seq, attempt, started_at, finished_at, exit_code, worker_id, output)"
                       f" SELECT seq, 1, {now}, {now} + {DURATION_MS.replace('job_seq', 'seq')},"
                       f" {EXIT_CODE.replace('job_seq', 'seq')}, 'bench', '' FROM jobs")
    total_runs(connection.execute, slot=False)
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()


def seed_postgres(url, count, now):
    """The same on PostgreSQL."""
    import psycopg

    if not count:
        return
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, created_at, updated_at, run_count)"
            " SELECT 'seed-' || n, 'true', 'completed', 3, 0, %(at)s, %(at)s, %(at)s, 1"
            " FROM generate_series(1, %(count)s) AS n", {"at": now, "count": count})
        connection.execute("INSERT INTO job_counts (state, slot, n) VALUES ('completed', 0, %(count)s)"
                           " ON CONFLICT (state, slot) DO UPDATE SET n = job_counts.n + excluded.n", {"count": count})
        with connection.transaction():
            connection.execute("INSERT INTO runs (job_seq, attempt, started_at, finished_at, exit_code, worker_id,"
                               f" output) SELECT seq, 1, {now}, {now} + {DURATION_MS.replace('job_seq', 'seq')},"
                               f" {EXIT_CODE.replace('job_seq', 'seq')}, 'bench', '' FROM jobs")
            total_runs(connection.execute, slot=True)
        connection.execute("VACUUM ANALYZE")


def time_scrapes(location, scrapes):
    """Median seconds of store.metrics_snapshot() plus the rendering of /metrics, and the last snapshot."""
    from queuectl_api import metrics
    from queuectl_core.store import open_store

    store = open_store(location)
    try:
        store.metrics_snapshot()  # warm the cache: a scraper comes every 15 s
        seconds = []
        for _ in range(scrapes):
            begin = time.perf_counter()
            snapshot = store.metrics_snapshot()
            metrics.render(snapshot)
            seconds.append(time.perf_counter() - begin)
        return median(seconds), snapshot
    finally:
        store.close()


def scrape(args):
    from queuectl_core.store import open_store
    from queuectl_core.timeutil import now_ms

    results = {}
    now = now_ms() - 10_000_000
    if "sqlite" in args.backends:
        path = os.path.join(scratch_dir("metrics"), "queue.db")
        open_store(path).close()
        begin = time.perf_counter()
        seed_sqlite(path, args.runs, now)
        if args.waiting:
            from common import seed_pending

            seed_pending(path, args.waiting, now)
        seeded = time.perf_counter() - begin
        seconds, snapshot = time_scrapes(path, args.scrapes)
        results["sqlite"] = {"scrape_ms": round(seconds * 1000, 2), "seed_seconds": round(seeded, 1),
                             "runs": snapshot["runs"], "count": snapshot["durations"]["count"]}
        print(f"sqlite: {results['sqlite']}", file=sys.stderr, flush=True)
        os.remove(path)
    if "postgres" in args.backends:
        import postgres

        if postgres.missing_reason():
            results["postgres"] = postgres.missing_reason()
        else:
            schema = postgres.Schema()
            try:
                open_store(schema.url).close()
                begin = time.perf_counter()
                seed_postgres(schema.url, args.runs, now)
                if args.waiting:
                    postgres.seed_pending(schema.url, args.waiting, now)
                seeded = time.perf_counter() - begin
                seconds, snapshot = time_scrapes(schema.url, args.scrapes)
                results["postgres"] = {"scrape_ms": round(seconds * 1000, 2), "seed_seconds": round(seeded, 1),
                                       "runs": snapshot["runs"], "count": snapshot["durations"]["count"]}
            finally:
                schema.drop()
    return results


def claims(args):
    """claim + finish at 1k waiting jobs, as benchmarks/claims.py measures it, on both backends."""
    import claims as claim_bench

    locations, schemas = {}, []
    if "sqlite" in args.backends:
        locations["sqlite"] = claim_bench.build(1_000 + args.rounds * 200)[0]
    if "postgres" in args.backends:
        import postgres

        if not postgres.missing_reason():
            schema, _, _ = claim_bench.build_postgres(1_000 + args.rounds * 200)
            schemas.append(schema)
            locations["postgres"] = schema.url
            # Without the wait for the WAL flush, which hides what the statements themselves cost.
            schema, _, _ = claim_bench.build_postgres(1_000 + args.rounds * 200, synchronous_commit="off")
            schemas.append(schema)
            locations["postgres_async"] = schema.url
    try:
        measured = claim_bench.measure(locations, rounds=args.rounds)
    finally:
        for schema in schemas:
            schema.drop()
    return {key: {name: round(value, 1) for name, value in figures.items()} for key, figures in measured.items()}


COUNT_STATEMENTS = {  # what a statement of its own in RunsMixin._finish would run instead of the trigger
    "sqlite": "UPDATE run_totals SET succeeded = succeeded + :s, failed = failed + :f,"
              " duration_ms = duration_ms + :ms WHERE bucket = :b",
    "postgres": "INSERT INTO run_totals (bucket, slot, succeeded, failed, duration_ms)"
                " VALUES (%(b)s, queuectl_count_slot(), %(s)s, %(f)s, %(ms)s) ON CONFLICT (bucket, slot) DO UPDATE"
                " SET succeeded = run_totals.succeeded + excluded.succeeded, failed = run_totals.failed"
                " + excluded.failed, duration_ms = run_totals.duration_ms + excluded.duration_ms",
}


def count_cost(location, backend, runs=3000):
    """Median µs of the statement that finishes a run (one transaction each, commit not timed): with the trigger,
    without it, and without it but with a statement of its own that counts the run."""
    from queuectl_core.store import open_store

    store = open_store(location)
    dialect = store.q.dialect
    with store._transaction() as connection:
        connection.execute(dialect("INSERT INTO jobs (id, command, state, max_retries, run_at, created_at,"
                                   " updated_at) VALUES ('j', 'true', 'processing', 3, 0, 0, 0)"))
        seq = connection.execute(dialect("SELECT seq FROM jobs")).fetchone()[0]
        store._execute_many(connection, dialect("INSERT INTO runs (job_seq, attempt, started_at, worker_id)"
                                                " VALUES (:seq, :attempt, 0, 'w')"),
                            [{"seq": seq, "attempt": n} for n in range(1, 3 * runs + 1)])
    finish = dialect("UPDATE runs SET finished_at = 1000, exit_code = 0, output = '' WHERE job_seq = :seq"
                     " AND attempt = :attempt")

    def timed(first, statement=None):
        seconds = []
        for attempt in range(first, first + runs):
            with store._transaction() as connection:
                begin = time.perf_counter()
                connection.execute(finish, {"seq": seq, "attempt": attempt})
                if statement:
                    connection.execute(statement, {"b": 3, "s": 1, "f": 0, "ms": 1000})
                seconds.append(time.perf_counter() - begin)
        return round(median(seconds) * 1e6, 1)

    try:
        figures = {"trigger_us": timed(1)}
        with store._transaction() as connection:
            connection.execute("DROP TRIGGER runs_updated ON runs" if backend == "postgres"
                               else "DROP TRIGGER run_totals_finish")
        figures["uncounted_us"] = timed(runs + 1)
        figures["statement_us"] = timed(2 * runs + 1, COUNT_STATEMENTS[backend])
        return figures
    finally:
        store.close()


def count(args):
    results = {}
    if "sqlite" in args.backends:
        results["sqlite"] = count_cost(os.path.join(scratch_dir("count"), "queue.db"), "sqlite")
    if "postgres" in args.backends:
        import postgres

        if not postgres.missing_reason():
            schema = postgres.Schema(synchronous_commit="off")
            try:
                results["postgres"] = count_cost(schema.url, "postgres")
            finally:
                schema.drop()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=("scrape", "claims", "count"))
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--waiting", type=int, default=0, help="pending jobs to seed besides the finished ones")
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    args.backends = args.backends.split(",")
    import queuectl_core

    figures = {"scrape": scrape, "claims": claims, "count": count}[args.section](args)
    print(json.dumps({"section": args.section, "code": os.path.dirname(queuectl_core.__file__), **figures}))


if __name__ == "__main__":
    main()
