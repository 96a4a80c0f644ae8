"""Enqueue figures: one job per call from Python, a 100k-line JSONL file through one
`queuectl enqueue --file`, and the wall time of one `queuectl enqueue` process."""

import json
import os
import sqlite3
import time

from common import PYTHON, QUEUECTL, median, scratch_dir, wall


def _best_rate(enqueue_one, seconds, windows=3):
    """Calls per second of `enqueue_one`: the best of `windows` windows of `seconds` each (the shared
    machine's other load only ever slows a window down, as in timeit)."""
    rates = []
    for _ in range(windows):
        count = 0
        begin = time.perf_counter()
        while time.perf_counter() < begin + seconds:
            for _ in range(100):
                enqueue_one()
            count += 100
        rates.append(count / (time.perf_counter() - begin))
    return {"jobs_per_second": max(rates), "windows": rates, "window_seconds": seconds}


def python_one_per_call(seconds=1.0):
    """Jobs per second through SqliteStore.enqueue (with the job checked by check_job), one per call."""
    from queuectl_core.store import SqliteStore
    from queuectl_core.validation import check_job

    store = SqliteStore(os.path.join(scratch_dir("enqueue-python"), "queue.db"))
    try:
        return _best_rate(lambda: store.enqueue(check_job({"command": "true"})), seconds)
    finally:
        store.close()


def huey_one_per_call(seconds=1.0):
    """The same loop through a Huey task call (SqliteHuey, no consumer running)."""
    directory = scratch_dir("enqueue-huey")
    os.environ["QUEUECTL_BENCH_HUEY_DB"] = os.path.join(directory, "huey.db")
    import importlib

    from peers import huey_app

    huey_app = importlib.reload(huey_app)  # a new SqliteHuey on this run's file

    return _best_rate(lambda: huey_app.run_command("true"), seconds)


def rq_one_per_call(seconds=1.0):
    """The same loop through rq.Queue.enqueue against Redis (no worker running)."""
    import uuid

    import redis
    import rq
    from peers.rq_tasks import run_command
    from systems import REDIS_URL

    connection = redis.Redis.from_url(REDIS_URL)
    name = f"qbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    queue = rq.Queue(name, connection=connection)
    numbers = iter(range(10**9))
    try:
        return _best_rate(lambda: queue.enqueue(run_command, "true", job_id=f"{name}-{next(numbers)}"), seconds)
    finally:
        keys = list(connection.scan_iter(f"*{name}*", count=1000))
        for first in range(0, len(keys), 1000):
            connection.delete(*keys[first:first + 1000])
        connection.srem("rq:queues", f"rq:queue:{name}")  # RQ's set of queue names


def _fresh_db(name):
    from queuectl_core.store import SqliteStore

    path = os.path.join(scratch_dir(name), "queue.db")
    SqliteStore(path).close()  # an existing, migrated queue, as after a first use
    return path


def bulk_file(count=100_000, runs=2):
    """Jobs per second of one `queuectl enqueue --file` of `count` lines into an empty queue (best of
    `runs`, each into a fresh database), and raw SQLite inserts of the same rows as the reference."""
    directory = scratch_dir("enqueue-bulk")
    jsonl = os.path.join(directory, "jobs.jsonl")
    with open(jsonl, "w") as handle:
        for n in range(count):
            handle.write(json.dumps({"command": f"echo {n}", "priority": n % 3, "max_retries": 2}) + "\n")
    walls = []
    for run in range(runs):
        path = _fresh_db(f"enqueue-bulk-{run}")
        walls += wall([QUEUECTL, "--db", path, "enqueue", "--file", jsonl], runs=1)
    # The reference: the same rows straight into the same schema, one executemany in one transaction.
    path = _fresh_db("enqueue-raw")
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=NORMAL")
    now = int(time.time() * 1000)
    rows = [(f"raw-{n:08d}", f"echo {n}", 2, n % 3, now, now, now) for n in range(count)]
    begin = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, created_at, updated_at)"
        " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)", rows)
    connection.execute("COMMIT")
    raw_seconds = time.perf_counter() - begin
    connection.close()
    best = min(walls)
    return {"jobs_per_second": count / best, "seconds": best, "walls": walls, "jobs": count,
            "raw_sqlite_rows_per_second": count / raw_seconds}


def cli_one(runs=15):
    """Median wall time of one `queuectl enqueue JSON` process, beside a bare `python -c pass`."""
    path = _fresh_db("enqueue-cli")
    cli, bare = [], []
    for _ in range(runs):  # interleaved, so both see the same moments of the machine
        cli += wall([QUEUECTL, "--db", path, "enqueue", '{"command": "true"}'], runs=1)
        bare += wall([PYTHON, "-c", "pass"], runs=1)
    return {"median_ms": median(cli) * 1000, "python_pass_ms": median(bare) * 1000,
            "ratio_to_python": median(cli) / median(bare), "runs": runs}


def backends_one_per_call(locations, seconds=1.0, windows=3):
    """{key: the python_one_per_call figure} for `locations` {key: SQLite path or postgresql:// URL},
    their windows alternating (SQLite, PostgreSQL, SQLite, ...) so both see the same moments."""
    from queuectl_core.store import open_store
    from queuectl_core.validation import check_job

    stores = {key: open_store(location) for key, location in locations.items()}
    rates = {key: [] for key in locations}
    try:
        for _ in range(windows):
            for key, store in stores.items():
                rates[key] += _best_rate(lambda store=store: store.enqueue(check_job({"command": "true"})),
                                         seconds, windows=1)["windows"]
    finally:
        for store in stores.values():
            store.close()
    return {key: {"jobs_per_second": max(found), "windows": found, "window_seconds": seconds}
            for key, found in rates.items()}


def backends_bulk(locations, count=100_000, runs=2):
    """{key: jobs per second} of store.enqueue_many of `count` checked jobs (the same list each time)
    into the empty queue at each location; best of `runs`, the backends alternating. Each location is a
    callable returning (a fresh empty queue's location, its clean-up). On PostgreSQL enqueue_many
    writes with COPY, on SQLite with executemany; the checking (check_job) is outside the timing."""
    from queuectl_core.store import open_store
    from queuectl_core.validation import check_job

    specs = [(n + 1, check_job({"command": f"echo {n}", "priority": n % 3, "max_retries": 2}))
             for n in range(count)]
    seconds = {key: [] for key in locations}
    for _ in range(runs):
        for key, fresh in locations.items():
            location, clean_up = fresh()
            store = open_store(location)
            try:
                begin = time.perf_counter()
                store.enqueue_many(specs)
                seconds[key].append(time.perf_counter() - begin)
            finally:
                store.close()
                clean_up()
    return {key: {"jobs_per_second": count / min(found), "seconds": found, "jobs": count}
            for key, found in seconds.items()}
