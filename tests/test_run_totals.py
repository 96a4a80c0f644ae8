"""The run totals behind /metrics (migration "run totals", issue 13 item 8): kept as runs finish, they always give
what a sum over every row of `runs` gave, on both backends (the `store` fixture is parametrized); a scrape no longer
reads the runs, and deleting jobs takes nothing off the totals (Prometheus counters never go down). The oldest
waiting job's age is found without reading every waiting job either."""

import sqlite3
import threading

from helpers import run_cli
from queuectl_core.lifecycle import COMPLETED, FAILED, TIMEOUT, Outcome
from queuectl_core.store import Store, open_store, sqlite_schema
from queuectl_core.store.sql import RUN_SUCCEEDED
from queuectl_core.validation import check_job

NOW = 1_800_000_000_000
RUN_DURATION_BUCKETS = Store.RUN_DURATION_BUCKETS
# Durations (ms) across every bucket, the bounds themselves included, and beyond the last one.
DURATIONS = (0, 100, 101, 499, 500, 900, 1_000, 4_000, 5_000, 10_000, 29_000, 60_000, 61_000, 300_000, 1_800_000,
             3_600_000, 3_600_001, 9_000_000)


def scanned(store):
    """The figures as /metrics computed them before the totals: a sum over every finished run."""
    sums = ", ".join(f"sum(CASE WHEN finished_at - started_at <= {int(s * 1000)} THEN 1 ELSE 0 END)"
                     for s in RUN_DURATION_BUCKETS)
    row = store._read(store.q.dialect(
        f"SELECT count(*), sum({RUN_SUCCEEDED}), coalesce(sum(finished_at - started_at), 0) / 1000.0, {sums}"
        " FROM runs WHERE finished_at IS NOT NULL")).fetchone()
    finished, succeeded = row[0], int(row[1] or 0)
    return {"runs": {"succeeded": succeeded, "failed": finished - succeeded},
            "durations": {"buckets": [(s, int(n or 0)) for s, n in zip(RUN_DURATION_BUCKETS, row[3:], strict=True)],
                          "count": finished, "sum": float(row[2])}}


def figures(store):
    snapshot = store.metrics_snapshot(now=NOW)
    return {"runs": snapshot["runs"], "durations": snapshot["durations"]}


def run_jobs(store, durations, outcome_of, start=NOW):
    """One job per duration, claimed at `start` and finished that many ms later with outcome_of(index)."""
    for index, took in enumerate(durations):
        store.enqueue(check_job({"command": "true", "id": f"run-{start}-{index}", "max_retries": 0}), now=start)
        claim = store.claim_next("w", 30, now=start)
        store.finish_run(claim, outcome_of(index), "out\n", now=start + took)


OUTCOMES = (Outcome(COMPLETED, 0, None), Outcome(FAILED, 3, "exit code 3"), Outcome(TIMEOUT, None, "timed out"))


def test_the_totals_give_what_a_sum_over_every_run_gave(store):
    assert figures(store) == scanned(store) == {
        "runs": {"succeeded": 0, "failed": 0},
        "durations": {"buckets": [(s, 0) for s in RUN_DURATION_BUCKETS], "count": 0, "sum": 0.0}}
    run_jobs(store, DURATIONS, lambda index: OUTCOMES[index % 3])
    # A lost worker's run, closed by the hand-back, counts too (failed).
    store.enqueue(check_job({"command": "true", "id": "lost", "max_retries": 0}), now=NOW)
    store.claim_next("gone", 1, now=NOW)
    assert store.reclaim_expired(store.get_settings(), now=NOW + 45_000) == ["lost"]
    # A run still going counts nothing.
    store.enqueue(check_job({"command": "true", "id": "running"}), now=NOW)
    store.claim_next("w", 30, now=NOW)
    expected = scanned(store)
    assert figures(store) == expected
    assert expected["durations"]["count"] == len(DURATIONS) + 1
    assert expected["runs"]["succeeded"] == 6
    assert expected["durations"]["buckets"][0] == (0.1, 2) and expected["durations"]["buckets"][-1][1] == 17


def test_purge_and_retention_take_nothing_off_the_totals(store):
    run_jobs(store, (50, 2_000, 70_000), lambda index: OUTCOMES[index % 2])
    before = figures(store)
    assert before["durations"]["count"] == 3
    assert store.purge(["completed", "dead"], now=NOW + 100_000) == 3
    assert figures(store) == before
    run_jobs(store, (50,), lambda index: OUTCOMES[0], start=NOW + 200_000)
    assert store.apply_retention({"retention": 1}, now=NOW + 300_000) == 1
    assert scanned(store)["durations"]["count"] == 0  # no runs left in the table...
    after = figures(store)
    assert after["durations"]["count"] == 4 and after["runs"] == {"succeeded": 3, "failed": 1}  # ...still counted


def test_runs_finished_by_many_stores_at_once_are_all_counted(db_path):
    setup = open_store(str(db_path))
    setup.enqueue_many([(n, check_job({"command": "true", "max_retries": 0})) for n in range(1, 201)], now=NOW)
    errors = []

    def work(index):
        store = open_store(str(db_path))
        try:
            while (claim := store.claim_next(f"w{index}", 30, now=NOW)) is not None:
                outcome = OUTCOMES[claim.seq % 2]
                store.finish_run(claim, outcome, "", now=NOW + (claim.seq % 7) * 900)
        except Exception as error:  # reported by the test, not lost in the thread
            errors.append(error)
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert figures(setup) == scanned(setup)
    assert figures(setup)["durations"]["count"] == 200
    setup.close()


def _seed_runs(execute):
    """Three finished runs (one failed) and one still going, written straight into a version 4 schema."""
    execute("INSERT INTO jobs (id, command, state, max_retries, run_at, created_at, updated_at, run_count)"
            " VALUES ('old', 'true', 'processing', 9, 0, 0, 0, 4)")
    for attempt, took, exit_code in ((1, 50, 0), (2, 7_000, 1), (3, 4_000_000, 0)):
        execute("INSERT INTO runs (job_seq, attempt, started_at, finished_at, exit_code, worker_id)"
                f" VALUES (1, {attempt}, 1000, {1000 + took}, {exit_code}, 'w')")
    execute("INSERT INTO runs (job_seq, attempt, started_at, worker_id) VALUES (1, 4, 1000, 'w')")


def test_a_version_4_sqlite_database_starts_its_totals_from_the_runs_it_holds(sqlite_path):
    connection = sqlite3.connect(sqlite_path, isolation_level=None)
    for _, script in sqlite_schema.MIGRATIONS[:4]:
        for statement in sqlite_schema._statements(script):
            connection.execute(statement)
    connection.execute("PRAGMA user_version = 4")
    _seed_runs(connection.execute)
    connection.close()
    store = open_store(str(sqlite_path))
    assert figures(store) == scanned(store)
    assert figures(store)["runs"] == {"succeeded": 2, "failed": 1}
    store.close()


def test_a_version_4_postgresql_schema_starts_its_totals_from_the_runs_it_holds(pg_url):
    import psycopg
    from queuectl_core.store import postgres_schema

    with psycopg.connect(pg_url, autocommit=True) as connection:
        for _, script in postgres_schema.MIGRATIONS[:4]:
            for statement in script.split(";"):
                if statement.strip():
                    connection.execute(statement)
        connection.execute("CREATE TABLE queuectl_schema (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO queuectl_schema (version) VALUES (4)")
        _seed_runs(connection.execute)
    store = open_store(pg_url)
    assert figures(store) == scanned(store)
    assert figures(store)["durations"]["count"] == 3
    store.close()


def test_migrate_carries_the_totals_and_the_audit_log_over(sqlite_path, pg_url):
    source = open_store(str(sqlite_path))
    run_jobs(source, (50, 2_000, 70_000), lambda index: OUTCOMES[index % 2])
    source.purge(["completed"], now=NOW + 100_000, actor="cli:someone@somewhere")  # gone, still counted
    source.pause(actor="cli:someone@somewhere")
    source.resume(actor="cli:someone@somewhere")
    result = run_cli(sqlite_path, "migrate", "--to", pg_url)
    assert result.returncode == 0, result.stderr
    target = open_store(pg_url)
    assert figures(target) == figures(source)
    assert figures(target)["durations"]["count"] == 3
    assert target.audit_log() == source.audit_log()
    assert [entry["action"] for entry in target.audit_log()] == ["resume", "pause", "purge"]
    # The copy goes on counting, and records new entries after the copied ones.
    run_jobs(target, (50,), lambda index: OUTCOMES[0], start=NOW + 200_000)
    target.pause(actor="api:operator")
    assert figures(target)["durations"]["count"] == 4
    assert [entry["action"] for entry in target.audit_log()] == ["pause", "resume", "pause", "purge"]
    source.close()
    target.close()


def scrape_work(store, table="runs"):
    """How much work one metrics snapshot takes: SQLite virtual machine steps (in hundreds), or on PostgreSQL the
    rows of `table` its statements read, counted by the server for the transaction the snapshot runs in."""
    if hasattr(store, "path"):
        steps = []
        store.connection.set_progress_handler(lambda: steps.append(1) and 0, 100)
        try:
            store.metrics_snapshot(now=NOW)
        finally:
            store.connection.set_progress_handler(None, 100)
        return len(steps)
    with store.connection.transaction():
        store.metrics_snapshot(now=NOW)
        return store.connection.execute(
            "SELECT sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))"
            " FROM pg_stat_xact_user_tables WHERE schemaname = current_schema() AND relname = %s",
            (table,)).fetchone()[0]


def test_a_scrape_costs_the_same_however_many_runs_there_are(store):
    store.enqueue_many([(n, check_job({"command": "true", "max_retries": 0})) for n in range(1, 3001)], now=NOW)
    few = scrape_work(store)
    with store._transaction() as connection:  # 3,000 finished runs, written straight (seeding only)
        connection.execute("UPDATE jobs SET state = 'completed', run_count = 1")
        connection.execute("INSERT INTO runs (job_seq, attempt, started_at, finished_at, exit_code, worker_id)"
                           " SELECT seq, 1, 0, 100, 0, 'w' FROM jobs")
    many = scrape_work(store)
    # Summing the runs at each scrape read every one of them: thousands of rows, ~800 hundred-steps on SQLite.
    assert many <= few + 20, (few, many)


def test_a_scrape_costs_the_same_however_many_jobs_wait(store):
    store.enqueue_many([(n, check_job({"command": "true", "priority": n % 3})) for n in range(1, 11)], now=NOW)
    few = scrape_work(store, "jobs")
    store.enqueue_many([(n, check_job({"command": "true", "priority": n % 3})) for n in range(1, 3001)], now=NOW)
    many = scrape_work(store, "jobs")
    # min(run_at) over the waiting jobs read all 3,000 of them.
    assert many <= few + 20, (few, many)


def scanned_oldest(store, now):
    return store._read(store.q.oldest_waiting, {"now": now}).fetchone()[0]


def test_the_oldest_waiting_job_is_found_under_any_priority(store):
    assert store.metrics_snapshot(now=NOW)["oldest_waiting_seconds"] == 0.0
    jobs = [("high-new", 9, NOW - 1_000), ("low-old", -4, NOW - 50_000), ("mid", 0, NOW - 20_000),
            ("later", 100, NOW + 60_000), ("mid-2", 0, NOW - 30_000)]
    for job_id, priority, run_at in jobs:
        store.enqueue(check_job({"command": "true", "id": job_id, "priority": priority}), now=run_at)
    assert store.metrics_snapshot(now=NOW)["oldest_waiting_seconds"] == 50.0
    assert store.claim_next("w", 30, now=NOW + 60_000).id == "later"  # processing: no longer waiting
    claim = store.claim_next("w", 30, now=NOW)
    assert claim.id == "high-new"
    store.finish_run(claim, OUTCOMES[1], "", now=NOW)  # failed, due again after its backoff (2 s)
    store.cancel("low-old", now=NOW)
    assert store.metrics_snapshot(now=NOW)["oldest_waiting_seconds"] == 30.0
    for now in (NOW - 40_000, NOW - 25_000, NOW, NOW + 1_999, NOW + 2_000):
        oldest = scanned_oldest(store, now)
        expected = 0.0 if oldest is None else (now - oldest) / 1000
        assert store.metrics_snapshot(now=now)["oldest_waiting_seconds"] == expected, now
    # More priorities than the skip scan steps through: the waiting jobs are read instead, with the same answer.
    levels = Store.OLDEST_WAITING_LEVELS
    store.enqueue_many([(n, check_job({"command": "true", "priority": 1000 + n})) for n in range(1, levels + 2)],
                       now=NOW - 10)
    assert store.metrics_snapshot(now=NOW)["oldest_waiting_seconds"] == 30.0
    store.enqueue(check_job({"command": "true", "priority": 5000}), now=NOW - 90_000)
    assert store.metrics_snapshot(now=NOW)["oldest_waiting_seconds"] == 90.0
