"""Claim + complete through the store (claim_next, then finish_run) against queues of 1k to 1M
waiting jobs, on SQLite and on PostgreSQL. The queues are seeded straight (SQLite: executemany in
one transaction; PostgreSQL: INSERT … SELECT from generate_series, then ANALYZE; seeding only);
every timed call goes through the store. Queues are measured in interleaved rounds (every size, both
backends), so a noisy moment of the shared machine hits them all alike."""

import os
import time

from common import median, scratch_dir, seed_pending


def build(size, directory=None):
    """A queuectl SQLite database with `size` pending jobs; returns (its path, seeding seconds)."""
    from queuectl_core.store import SqliteStore
    from queuectl_core.timeutil import now_ms

    directory = directory or scratch_dir(f"claims-{size}")
    path = os.path.join(directory, "queue.db")
    SqliteStore(path).close()  # the schema, by the store's own migrations
    begin = time.perf_counter()
    seed_pending(path, size, now_ms())
    return path, time.perf_counter() - begin


def build_postgres(size, **settings):
    """A queue of `size` pending jobs in a new schema of the bench's PostgreSQL database (its connections
    with `settings`); returns (the postgres.Schema, insert seconds, ANALYZE seconds). schema.drop()
    removes it."""
    import postgres
    from queuectl_core.store import open_store
    from queuectl_core.timeutil import now_ms

    schema = postgres.Schema(**settings)
    open_store(schema.url).close()  # the schema, by the store's own migrations
    inserted, analyzed = postgres.seed_pending(schema.url, size, now_ms())
    return schema, inserted, analyzed


def measure(locations, rounds=5, per_round=200):
    """{key: {'median_us': claim+complete, 'claim_us', 'finish_us'}} over interleaved rounds, for
    `locations` {key: a SQLite path or a postgresql:// URL} (keys: sizes, or (backend, size))."""
    from queuectl_core.lifecycle import COMPLETED, Outcome
    from queuectl_core.store import open_store

    stores = {key: open_store(location) for key, location in locations.items()}
    outcome = Outcome(COMPLETED, 0, None)
    totals = {key: [] for key in locations}
    claims = {key: [] for key in locations}
    finishes = {key: [] for key in locations}
    try:
        for _ in range(rounds):
            for key, store in stores.items():
                for _ in range(per_round):
                    begin = time.perf_counter()
                    claim = store.claim_next("bench-worker", 30)
                    claimed = time.perf_counter()
                    before_finish = time.perf_counter()
                    store.finish_run(claim, outcome, "")
                    end = time.perf_counter()
                    claims[key].append((claimed - begin) * 1e6)
                    finishes[key].append((end - before_finish) * 1e6)
                    totals[key].append((claimed - begin + end - before_finish) * 1e6)
    finally:
        for store in stores.values():
            store.close()
    return {key: {"median_us": median(totals[key]), "claim_us": median(claims[key]),
                  "finish_us": median(finishes[key]), "samples": len(totals[key])} for key in locations}
