"""Issue 14's figures. Claim + complete with 1M jobs spread over 100 named queues, a limit on half of them and a
concurrency key on a tenth of the jobs (some queues and keys held full, so the claim passes over blocked jobs),
against the plain 1k-job figure of the same rounds; and plain no-op throughput (no queue given) of this code
against the code before flow control, and bulk enqueue and the plain claim likewise (see ab.py), alternating in one
run."""

import os
import sqlite3
import time

from common import scratch_dir

HERE = os.path.dirname(os.path.abspath(__file__))
QUEUES, LIMITED, LIMIT, KEYS, HELD = 100, 50, 2, 10, 50


def build_flow(size, hold=False):
    """A SQLite queue of `size` pending jobs over QUEUES queues (job n in q{n % QUEUES}), every tenth job with one
    of KEYS concurrency keys (limit 1), LIMIT on the first LIMITED queues; with `hold`, HELD jobs of the first
    queues claimed and left processing (those queues full, their backlogs ahead of every other job) and KEYS more
    (some keys busy). Returns (path, seeding seconds)."""
    from queuectl_core.store import SqliteStore
    from queuectl_core.timeutil import now_ms

    path = os.path.join(scratch_dir(f"flow-{size}"), "queue.db")
    SqliteStore(path).close()
    begin = time.perf_counter()
    at = now_ms() - 60_000
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("BEGIN IMMEDIATE")
    rows = ((f"seed-{n:09d}", "true", 3, 0, at, at, at, f"q{n % QUEUES}",
             f"key{n // 10 % KEYS}" if n % 10 == 0 else None, 1 if n % 10 == 0 else None) for n in range(size))
    connection.executemany(
        "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, created_at, updated_at, queue,"
        " concurrency_key, concurrency_limit) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    connection.execute("DELETE FROM job_counts")  # counted as the store counts (per queue and state)
    connection.execute("INSERT INTO job_counts (queue, state, n) SELECT queue, state, count(*) FROM jobs"
                       " GROUP BY queue, state")
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    store = SqliteStore(path)
    for queue in range(LIMITED):
        store.set_queue_limit(f"q{queue}", LIMIT)
    for queue in range(HELD // LIMIT if hold else 0):  # the first limited queues full
        for _ in range(LIMIT):
            store.claim_next("bench-holder", 3600, queues=[f"q{queue}"])
    for _ in range(KEYS if hold else 0):  # and jobs of some keys running
        store.claim_next("bench-holder", 3600)
    store.close()
    return path, time.perf_counter() - begin


def blocked(path):
    """How many queues and keys are full in the queue at `path` (what the measured claims pass over)."""
    connection = sqlite3.connect(path)
    try:
        queues = connection.execute("SELECT count(*) FROM queues WHERE running >= max_running").fetchone()[0]
        keys = connection.execute("SELECT count(*) FROM key_slots WHERE running >= 1").fetchone()[0]
    finally:
        connection.close()
    return {"full_queues": queues, "busy_keys": keys}


def run_flow(quick):
    """The rows of the flow section."""
    import shutil

    import claims
    from report import figure, log

    size = 100_000 if quick else 1_000_000
    plain, _ = claims.build(1_000)
    path, seconds = build_flow(size)
    held, _ = build_flow(size, hold=True)
    log(f"seeded {size} jobs over {QUEUES} queues twice ({seconds:.1f}s); held: {blocked(held)}")
    try:
        measured = claims.measure({"plain": plain, "flow": path, "held": held}, rounds=3 if quick else 5)
        state = blocked(held)
    finally:
        for location in (plain, path, held):
            shutil.rmtree(os.path.dirname(location), ignore_errors=True)
    log(f"flow claims: {measured}")
    small, big, worst = (measured[key]["median_us"] for key in ("plain", "flow", "held"))
    label = "1M" if size == 1_000_000 else f"{size // 1000}k"
    rows = [figure(
        "claim_flow", f"claim + complete, {label} jobs over {QUEUES} queues (limits on {LIMITED}, a key on a tenth)"
        " vs the plain 1k", big / small, "×", "≤ 1.5×", big / small <= 1.5, big / small,
        note=f"{big:.0f} µs (claim {measured['flow']['claim_us']:.0f} + finish {measured['flow']['finish_us']:.0f})"
             f" vs {small:.0f} µs plain at 1k, same rounds; every claim through the flow claim",
        plain=measured["plain"], flow=measured["flow"]),
        figure(
        "claim_flow_held", f"the same with {state['full_queues']} queues full and {state['busy_keys']} keys busy,"
        " their backlogs ahead", worst / small, "×", "-", None, worst / small,
        note=f"{worst:.0f} µs (claim {measured['held']['claim_us']:.0f}); once the 64-job window holds only"
             f" blocked jobs the claim compares the heads of the {QUEUES - state['full_queues']} open queues",
        held=measured["held"], **state)]
    import ab

    revision, found = ab.run_all(quick)
    log(f"A/B against {revision}: {found}")
    for key, name, unit, higher in (
            ("throughput", "no-op throughput, 2 workers, no queue given", "/s", True),
            ("bulk", "bulk enqueue (`queuectl enqueue --file`, plain jobs)", "/s", True),
            ("claims", "claim + complete at 1k plain jobs (µs)", "µs", False)):
        pair = found[key]
        ratio = pair["ours"] / pair["base"] if higher else pair["base"] / pair["ours"]
        shown = (lambda v: f"{v:,.0f}/s") if unit == "/s" else (lambda v: f"{v:.0f} µs")
        rows.append(figure(
            f"{key}_ab", f"{name}: this code vs before flow control", ratio, "×", "≥ 0.95×", ratio >= 0.95, ratio,
            note=f"{shown(pair['ours'])} vs {shown(pair['base'])} ({revision[:9]}); medians of A B B A rounds"
                 " (ratio: higher is better for both)", base_revision=revision, **pair))
    return rows
