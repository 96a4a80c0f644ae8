"""The PostgreSQL server's ceiling (issue 17): claim + complete per second with 1, 4, 16 and 64 concurrent claimers,
for queuectl and, on the same server in the same run, PgQueuer and Procrastinate.

    .venv/bin/python benchmarks/ceiling.py [--jobs 5000] [--claimers 1,4,16,64]

Every figure is the queue's own, without shell spawns: no-op jobs, claimed and completed in-process.
- queuectl: one thread per claimer, each with its own store (connection), running the worker's own loop:
  `claim_next`, then `finish_run_and_claim_next` until nothing is left.
- PgQueuer (pgqueuer): one QueueManager per claimer (its own connection) in one event loop, `mode=drain`, with
  batch_size 1 (one job per claim, as queuectl) and 10 (its default).
- Procrastinate: one worker with `concurrency` = claimers, `wait=False` (it stops once the queue is empty).
A peer that is not installed is skipped with the reason (`make bench` installs both into .venv).

64 claimers need more connections than a shared server may give (max_connections is often 100), so the suite
runs its own PostgreSQL 15 cluster (initdb as the postgres user into a temporary directory, Unix socket only, no
TCP port; stock settings but max_connections 300) when it can (root, Debian's server binaries); else it uses
QUEUECTL_BENCH_POSTGRES and leaves out the claimer counts that server cannot hold. Each system and claimer count
gets a fresh database. Transactions per job come from pg_stat_database (xact_commit, the server's count, alike for
all three); round trips per job are counted in the client for queuectl (statements plus BEGIN/COMMIT).
"""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import private_pg  # noqa: E402

CLAIMERS = (1, 4, 16, 64)


def _admin(url):
    import psycopg

    return psycopg.connect(url, autocommit=True)


class Database:
    """A fresh database on the server of `admin_url`, dropped by drop()."""

    def __init__(self, admin_url, name):
        self.admin_url, self.name = admin_url, name
        with _admin(admin_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        self.url = _with_database(admin_url, name)

    def commits(self):
        with _admin(self.admin_url) as admin:
            admin.execute("SELECT pg_stat_clear_snapshot()")
            return admin.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                                 (self.name,)).fetchone()[0]

    def drop(self):
        with _admin(self.admin_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _with_database(url, name):
    """`url` (postgresql://...) naming the database `name` instead of its own."""
    base, question, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}{question}{query}"


def _settle():
    time.sleep(0.5)  # pg_stat_database is updated by the backends about every 0.5 s (PGSTAT_MIN_INTERVAL)


# ---- queuectl ----
class _RoundTrips:
    """Counts the statements and transaction commands psycopg sends (client side) while installed."""

    def __init__(self):
        import psycopg

        self.count = 0
        self._lock = threading.Lock()
        self._originals = {}
        for cls, name in ((psycopg.Cursor, "execute"), (psycopg.Connection, "_exec_command")):
            original = getattr(cls, name)
            self._originals[(cls, name)] = original
            setattr(cls, name, self._counting(original))

    def _counting(self, original):
        def counted(*args, **kwargs):
            with self._lock:
                self.count += 1
            return original(*args, **kwargs)
        return counted

    def remove(self):
        for (cls, name), original in self._originals.items():
            setattr(cls, name, original)


def queuectl(url, jobs, claimers):
    """claim + complete per second for `claimers` threads draining `jobs` no-op jobs; with round trips per job."""
    from queuectl_core.lifecycle import COMPLETED, Outcome
    from queuectl_core.store import open_store
    from queuectl_core.validation import check_job

    store = open_store(url)
    store.enqueue_many([(n, check_job({"command": "true"})) for n in range(jobs)])
    store.close()
    outcome = Outcome(COMPLETED, 0, None)
    stores = [open_store(url) for _ in range(claimers)]
    barrier = threading.Barrier(claimers + 1)
    done = [0] * claimers

    def drain(number):
        store, worker = stores[number], f"bench-{number}"
        barrier.wait()
        claim = store.claim_next(worker, 30)
        while claim is not None:
            _, claim = store.finish_run_and_claim_next(claim, outcome, "", worker, 30)
            done[number] += 1

    threads = [threading.Thread(target=drain, args=(n,)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    counter = _RoundTrips()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    counter.remove()
    for store in stores:
        store.close()
    assert sum(done) == jobs, f"queuectl completed {sum(done)} of {jobs}"
    return {"per_second": jobs / seconds, "round_trips_per_job": counter.count / jobs}


# ---- PgQueuer ----
def pgqueuer(url, jobs, claimers, batch_size):
    import asyncio

    import psycopg
    from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    async def main():
        setup = await psycopg.AsyncConnection.connect(url, autocommit=True)
        queries = Queries(PsycopgDriver(setup))
        await queries.install()
        for start in range(0, jobs, 5000):
            n = min(5000, jobs - start)
            await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
        managers = []
        for _ in range(claimers):
            connection = await psycopg.AsyncConnection.connect(url, autocommit=True)
            manager = QueueManager(Queries(PsycopgDriver(connection)))

            @manager.entrypoint("noop")
            async def noop(job):
                pass

            managers.append(manager)
        began = time.perf_counter()
        await asyncio.gather(*(m.run(batch_size=batch_size, mode=QueueExecutionMode.drain,
                                     dequeue_timeout=__import__("datetime").timedelta(seconds=1))
                               for m in managers))
        seconds = time.perf_counter() - began
        cursor = await setup.execute("SELECT count(*) FROM pgqueuer")
        left = (await cursor.fetchone())[0]
        await setup.close()
        return seconds, left

    seconds, left = asyncio.run(main())
    assert left == 0, f"PgQueuer left {left} jobs"
    return {"per_second": jobs / seconds}


# ---- Procrastinate ----
def procrastinate(url, jobs, claimers):
    import asyncio
    import logging

    import procrastinate as pc

    logging.getLogger("procrastinate").setLevel(logging.ERROR)

    async def main():
        app = pc.App(connector=pc.PsycopgConnector(conninfo=url, min_size=1, max_size=claimers + 2))

        @app.task(name="noop")
        async def noop():
            pass

        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            for start in range(0, jobs, 5000):
                await noop.batch_defer_async(*({} for _ in range(min(5000, jobs - start))))
            began = time.perf_counter()
            await app.run_worker_async(concurrency=claimers, wait=False, install_signal_handlers=False,
                                       listen_notify=False)
            seconds = time.perf_counter() - began
            async with app.connector.pool.connection() as connection:
                cursor = await connection.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
                left = (await cursor.fetchone())[0]
        return seconds, left

    seconds, left = asyncio.run(main())
    assert left == 0, f"Procrastinate left {left} jobs"
    return {"per_second": jobs / seconds}


def _installed(module):
    try:
        __import__(module)
        return None
    except ImportError as error:
        return f"{module} is not installed ({error}); `make bench` installs it"


SYSTEMS = {
    "queuectl": (None, lambda url, jobs, c: queuectl(url, jobs, c)),
    "pgqueuer batch 1": ("pgqueuer", lambda url, jobs, c: pgqueuer(url, jobs, c, 1)),
    "pgqueuer batch 10": ("pgqueuer", lambda url, jobs, c: pgqueuer(url, jobs, c, 10)),
    "procrastinate": ("procrastinate", lambda url, jobs, c: procrastinate(url, jobs, c)),
}


def run(jobs=5000, claimers=CLAIMERS, rounds=1, log=print, synchronous_commit="on"):
    """{system: {claimers: figures or {'skipped': reason}}} and the server used."""
    cluster = private_pg.start_if_possible(max_connections=300, settings={"synchronous_commit": synchronous_commit})
    admin_url = cluster.url if cluster else os.environ.get("QUEUECTL_BENCH_POSTGRES",
                                                           "postgresql://postgres@127.0.0.1:5432/test")
    results, server = {}, None
    try:
        with _admin(admin_url) as admin:
            limit = int(admin.execute("SHOW max_connections").fetchone()[0])
            server = admin.execute("SELECT version()").fetchone()[0].split(" on ")[0]
        server += (f" (a private cluster, Unix socket, synchronous_commit {synchronous_commit})" if cluster
                   else f" at {admin_url}")
        for system, (module, measure) in SYSTEMS.items():
            missing = module and _installed(module)
            results[system] = {}
            for count in claimers:
                if missing:
                    results[system][count] = {"skipped": missing}
                    continue
                if count + 10 > limit:
                    results[system][count] = {"skipped": f"the server allows {limit} connections"}
                    continue
                best = None
                for _ in range(rounds):
                    database = Database(admin_url, f"qceiling_{os.getpid()}")
                    try:
                        _settle()
                        before = database.commits()
                        figures = measure(database.url, jobs, count)
                        _settle()
                        figures["transactions_per_job"] = (database.commits() - before) / jobs
                    except Exception as error:  # a peer failing must not sink the suite
                        figures = {"skipped": f"failed: {type(error).__name__}: {str(error)[:200]}"}
                    finally:
                        database.drop()
                    if best is None or figures.get("per_second", 0) > best.get("per_second", 0):
                        best = figures
                results[system][count] = best
                log(f"ceiling: {system:<18} {count:>3} claimers: {_text(best)}")
    finally:
        if cluster:
            cluster.stop()
    return {"server": server, "jobs": jobs, "synchronous_commit": synchronous_commit, "results": results}


def _text(figures):
    if "skipped" in figures:
        return f"skipped: {figures['skipped']}"
    parts = [f"{figures['per_second']:,.0f}/s", f"{figures['transactions_per_job']:.2f} transactions/job"]
    if "round_trips_per_job" in figures:
        parts.append(f"{figures['round_trips_per_job']:.2f} round trips/job")
    return ", ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--claimers", default=",".join(map(str, CLAIMERS)))
    parser.add_argument("--rounds", type=int, default=1, help="best of this many runs per figure")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument("--synchronous-commit", default="on", choices=("on", "off"),
                        help="the private cluster's synchronous_commit (on: every commit waits for its fsync)")
    args = parser.parse_args(argv)
    result = run(args.jobs, tuple(int(c) for c in args.claimers.split(",")), args.rounds,
                 synchronous_commit=args.synchronous_commit)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
