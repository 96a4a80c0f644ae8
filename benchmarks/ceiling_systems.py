"""The systems benchmarks/ceiling.py measures: each fills a fresh database with no-op jobs (prepare, not timed) and
drains it with N concurrent claimers (drain), calling probe.start() just before the claimers begin and probe.stop()
once the last job is done, while every claimer's connection is still open (their backends' CPU is read then).

- queuectl, one at a time: one thread per claimer, each with its own store (connection), running the worker's loop:
  `claim_next`, then `finish_run_and_claim_next` (the result and the next claim in one transaction).
- queuectl, batch 10: the same threads with the batched calls: `claim_many(10)`, then `finish_runs` (ten results
  and the next ten claims in one transaction), like PgQueuer's default batch.
- PgQueuer: one QueueManager per claimer, each on its own asyncpg connection (the driver PgQueuer's own benchmark
  uses), all in one event loop, `mode=drain`, batch 1 and its default 10. Not the psycopg driver: its notification
  watcher holds the psycopg connection's lock for up to a second at a time (`notifies(timeout=1.0)`; psycopg >= 3.2
  locks the connection for the whole wait), so the manager's own queries queued behind it: 505/s instead of
  6,580/s at batch 10 with one claimer, measured side by side.
- Procrastinate: N workers with concurrency 1 in one event loop (N fetch loops, as N claimers), or one worker with
  `concurrency` = N (one fetch loop: its worker fetches one job at a time, whatever its concurrency). `wait=False`:
  a worker stops once the queue is empty. A pool connection per worker, opened before the clock starts.
"""

import asyncio
import threading

NOOP = "noop"


def _run_async(main):
    """asyncio.run with uvloop when installed (as PgQueuer's own benchmark runs), else the stock loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


# ---- queuectl ----
class RoundTrips:
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


def queuectl_prepare(url, jobs):
    from queuectl_core.store import open_store
    from queuectl_core.validation import check_job

    store = open_store(url)
    try:
        store.enqueue_many([(n, check_job({"command": "true"})) for n in range(jobs)])
    finally:
        store.close()


def queuectl_drain(url, jobs, claimers, probe, batch):
    """Drain with `claimers` threads, one job per transaction (batch None) or `batch` at a time; returns the
    client-counted round trips per job."""
    from queuectl_core.lifecycle import COMPLETED, Outcome
    from queuectl_core.store import open_store

    outcome = Outcome(COMPLETED, 0, None)
    stores = [open_store(url) for _ in range(claimers)]
    barrier = threading.Barrier(claimers + 1)
    done = [0] * claimers
    errors = []

    def one_at_a_time(store, worker, number):
        claim = store.claim_next(worker, 30)
        while claim is not None:
            _, claim = store.finish_run_and_claim_next(claim, outcome, "", worker, 30)
            done[number] += 1

    def batched(store, worker, number):
        claims = store.claim_many(worker, 30, batch)
        while claims:
            transitions, claims_next = store.finish_runs([(claim, outcome, "", 0) for claim in claims], worker, 30,
                                                         batch)
            done[number] += sum(1 for transition in transitions if transition is not None)
            claims = claims_next

    loop = one_at_a_time if batch is None else batched

    def claimer(number):
        barrier.wait()
        try:
            loop(stores[number], f"bench-{number}", number)
        except Exception as error:  # reported by the main thread, not lost in a thread's traceback
            errors.append(error)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    counter = RoundTrips()
    probe.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    probe.stop()
    counter.remove()
    for store in stores:
        store.close()
    if errors:
        raise errors[0]
    assert sum(done) == jobs, f"queuectl completed {sum(done)} of {jobs}"
    return {"round_trips_per_job": counter.count / jobs}


# ---- PgQueuer ----
def pgqueuer_prepare(url, jobs):
    async def main():
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        connection = await asyncpg.connect(url)
        try:
            queries = Queries(AsyncpgDriver(connection))
            await queries.install()
            for start in range(0, jobs, 5000):
                count = min(5000, jobs - start)
                await queries.enqueue([NOOP] * count, [None] * count, [0] * count)
        finally:
            await connection.close()

    _run_async(main())


async def _checked():
    pass


def pgqueuer_drain(url, jobs, claimers, probe, batch_size):
    async def main():
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.qm import QueueManager
        from pgqueuer.queries import Queries
        from pgqueuer.types import QueueExecutionMode

        connections = [await asyncpg.connect(url) for _ in range(claimers)]
        managers = []
        for connection in connections:
            manager = QueueManager(Queries(AsyncpgDriver(connection)))

            @manager.entrypoint(NOOP)
            async def noop(job):
                pass

            managers.append(manager)
        try:
            for manager in managers:
                # Its start-up check of the schema (a dozen catalog queries per manager) before the clock, as
                # queuectl's open_store checks its schema before its claimers start.
                await manager.verify_structure()
                manager.verify_structure = _checked
            probe.start()
            await asyncio.gather(*(manager.run(batch_size=batch_size, mode=QueueExecutionMode.drain)
                                   for manager in managers))
            probe.stop()
            left = await connections[0].fetchval("SELECT count(*) FROM pgqueuer")
            logged = await connections[0].fetchval("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
        finally:
            for connection in connections:
                await connection.close()
        assert left == 0 and logged == jobs, f"PgQueuer left {left} jobs, logged {logged} of {jobs} as successful"

    _run_async(main())
    return {}


# ---- Procrastinate ----
def _procrastinate_app(url, connections):
    import logging

    import procrastinate

    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=url, min_size=connections, max_size=connections))

    @app.task(name=NOOP)
    async def noop():
        pass

    return app, noop


def procrastinate_prepare(url, jobs):
    async def main():
        app, noop = _procrastinate_app(url, 1)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            for start in range(0, jobs, 5000):
                await noop.batch_defer_async(*({} for _ in range(min(5000, jobs - start))))

    _run_async(main())


def procrastinate_drain(url, jobs, claimers, probe, workers):
    """`workers` "each": `claimers` workers of concurrency 1; "one": one worker of concurrency `claimers`."""
    async def main():
        app, _ = _procrastinate_app(url, claimers + 2)
        async with app.open_async():  # opens the pool's connections before it returns: before the clock starts
            options = {"wait": False, "install_signal_handlers": False, "listen_notify": False}
            probe.start()
            if workers == "one":
                await app.run_worker_async(concurrency=claimers, **options)
            else:
                await asyncio.gather(*(app.run_worker_async(concurrency=1, name=f"bench-{n}", **options)
                                       for n in range(claimers)))
            probe.stop()
            async with app.connector.pool.connection() as connection:
                cursor = await connection.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
                succeeded = (await cursor.fetchone())[0]
        assert succeeded == jobs, f"Procrastinate completed {succeeded} of {jobs}"

    _run_async(main())
    return {}


# name: (the module it needs, prepare(url, jobs), drain(url, jobs, claimers, probe) -> extra figures, what it runs)
SYSTEMS = {
    "queuectl": (None, queuectl_prepare, lambda u, j, c, p: queuectl_drain(u, j, c, p, None),
                 "claim_next, then finish_run_and_claim_next: one transaction per job"),
    "queuectl batch 10": (None, queuectl_prepare, lambda u, j, c, p: queuectl_drain(u, j, c, p, 10),
                          "claim_many(10), then finish_runs: ten results and ten claims per transaction"),
    "pgqueuer batch 1": ("pgqueuer", pgqueuer_prepare, lambda u, j, c, p: pgqueuer_drain(u, j, c, p, 1),
                         "QueueManager per claimer, asyncpg, drain mode, batch_size 1"),
    "pgqueuer batch 10": ("pgqueuer", pgqueuer_prepare, lambda u, j, c, p: pgqueuer_drain(u, j, c, p, 10),
                          "QueueManager per claimer, asyncpg, drain mode, batch_size 10 (its default)"),
    "procrastinate": ("procrastinate", procrastinate_prepare,
                      lambda u, j, c, p: procrastinate_drain(u, j, c, p, "each"),
                      "a worker of concurrency 1 per claimer"),
    "procrastinate 1 worker": ("procrastinate", procrastinate_prepare,
                               lambda u, j, c, p: procrastinate_drain(u, j, c, p, "one"),
                               "one worker of concurrency = claimers (one fetch at a time)"),
}
DEFAULT_SYSTEMS = ("queuectl", "queuectl batch 10", "pgqueuer batch 1", "pgqueuer batch 10", "procrastinate")
