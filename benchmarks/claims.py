"""Claim + complete through SqliteStore (claim_next, then finish_run) against queues of 1k to 1M
waiting jobs. The databases are seeded straight with executemany in one transaction (seeding only);
every timed call goes through the store. Sizes are measured in interleaved rounds, so a noisy
moment of the shared machine hits them all alike."""

import os
import time

from common import median, scratch_dir, seed_pending


def build(size, directory=None):
    """A queuectl database with `size` pending jobs; returns its path."""
    from queuectl_core.store import SqliteStore
    from queuectl_core.timeutil import now_ms

    directory = directory or scratch_dir(f"claims-{size}")
    path = os.path.join(directory, "queue.db")
    SqliteStore(path).close()  # the schema, by the store's own migrations
    begin = time.perf_counter()
    seed_pending(path, size, now_ms())
    return path, time.perf_counter() - begin


def measure(paths, rounds=5, per_round=200):
    """{size: {'median_us': claim+complete, 'claim_us', 'finish_us'}} over interleaved rounds."""
    from queuectl_core.settings import defaults
    from queuectl_core.store import SqliteStore
    from queuectl_core.transitions import COMPLETED, Outcome, decide

    stores = {size: SqliteStore(path) for size, path in paths.items()}
    settings = defaults()
    outcome = Outcome(COMPLETED, 0, None)
    totals = {size: [] for size in paths}
    claims = {size: [] for size in paths}
    finishes = {size: [] for size in paths}
    try:
        for _ in range(rounds):
            for size, store in stores.items():
                for _ in range(per_round):
                    begin = time.perf_counter()
                    claim = store.claim_next("bench-worker", 30)
                    claimed = time.perf_counter()
                    transition = decide(claim.job["attempts"], claim.job["max_retries"], outcome, settings,
                                        int(time.time() * 1000))
                    before_finish = time.perf_counter()
                    store.finish_run(claim, outcome, "", transition)
                    end = time.perf_counter()
                    claims[size].append((claimed - begin) * 1e6)
                    finishes[size].append((end - before_finish) * 1e6)
                    totals[size].append((claimed - begin + end - before_finish) * 1e6)
    finally:
        for store in stores.values():
            store.close()
    return {size: {"median_us": median(totals[size]), "claim_us": median(claims[size]),
                   "finish_us": median(finishes[size]), "samples": len(totals[size])} for size in paths}
