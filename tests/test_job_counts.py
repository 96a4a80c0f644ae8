"""The per-state job counts kept by triggers (migration 2) always equal a count of the jobs table."""

import sqlite3

import pytest
from queuectl_core import db
from queuectl_core.errors import DuplicateJob
from queuectl_core.store import SqliteStore
from queuectl_core.transitions import COMPLETED, FAILED, Outcome, decide
from queuectl_core.validation import check_job

NOW = 1_800_000_000_000


@pytest.fixture
def store(sqlite_path):
    """These counts are SQLite's (PostgreSQL counts with an index-only scan instead)."""
    opened = SqliteStore(str(sqlite_path))
    yield opened
    opened.close()


def counted(store):
    result = {state: 0 for state in ("pending", "processing", "completed", "failed", "dead", "cancelled")}
    for state, count in store.connection.execute("SELECT state, count(*) FROM jobs GROUP BY state"):
        result[state] = count
    return result


def finish(store, claim, outcome, now=NOW):
    transition = decide(claim.job["attempts"], claim.job["max_retries"], outcome, store.get_settings(), now)
    return store.finish_run(claim, outcome, "", transition, now=now)


def test_counts_follow_every_kind_of_change(store):
    assert store.counts() == counted(store) == dict.fromkeys(counted(store), 0)
    for n in range(5):
        store.enqueue(check_job({"command": "true", "id": f"one-{n}", "max_retries": 0}), now=NOW)
    store.enqueue_many([(n, check_job({"command": "true", "max_retries": 1})) for n in range(1, 8)], now=NOW)
    assert store.counts() == counted(store)
    assert store.counts()["pending"] == 12
    claims = [store.claim_next("w", 30, now=NOW) for _ in range(6)]
    assert store.counts() == counted(store)
    assert store.counts()["processing"] == 6
    finish(store, claims[0], Outcome(COMPLETED, 0, None))
    finish(store, claims[1], Outcome(FAILED, 1, "exit code 1"))  # max_retries 0: dead
    finish(store, claims[2], Outcome(FAILED, 1, "exit code 1"))
    assert store.counts() == counted(store)
    store.retry_dead(claims[1].id, now=NOW)
    assert store.reclaim_expired(store.get_settings(), now=NOW + 60_000)  # the other claims' leases ran out
    assert store.counts() == counted(store)
    store.connection.execute("DELETE FROM jobs WHERE id = 'one-4'")
    assert store.counts() == counted(store)
    assert sum(store.counts().values()) == 11
    waiting = [job["id"] for job in store.list_jobs(state="pending", limit=2)]
    store.cancel(waiting[0], now=NOW)  # pending -> cancelled
    store.enqueue(check_job({"command": "true", "id": "runs", "max_retries": 0}), now=NOW - 1)
    assert store.claim_next("w", 30, now=NOW).id == "runs"
    store.cancel("runs", now=NOW)  # processing: only flagged until its worker (here: the lease) ends it
    assert store.reclaim_expired(store.get_settings(), now=NOW + 60_000) == ["runs"]
    assert store.counts() == counted(store)
    assert store.counts()["cancelled"] == 2
    assert store.purge(["cancelled", "completed"], now=NOW + 60_001) == 3
    assert store.counts() == counted(store)
    assert sum(store.counts().values()) == 9


def test_refused_enqueues_count_nothing(store):
    store.enqueue(check_job({"command": "true", "id": "taken"}), now=NOW)
    with pytest.raises(DuplicateJob):
        store.enqueue(check_job({"command": "true", "id": "taken"}), now=NOW)
    with pytest.raises(DuplicateJob):
        store.enqueue_many([(1, check_job({"command": "true"})), (2, check_job({"command": "x", "id": "taken"}))])
    assert store.counts() == counted(store)
    assert store.counts()["pending"] == 1


def test_a_version_1_database_gets_its_counts_from_the_jobs_it_holds(sqlite_path):
    connection = sqlite3.connect(sqlite_path, isolation_level=None)
    for statement in db._statements(db.MIGRATIONS[0]):
        connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.executemany(
        "INSERT INTO jobs (id, command, state, max_retries, run_at, created_at, updated_at)"
        " VALUES (?, 'true', ?, 3, 0, 0, 0)",
        [(f"j{n}", state) for n, state in enumerate(["pending"] * 3 + ["completed"] * 2 + ["dead"])],
    )
    connection.close()
    store = SqliteStore(str(sqlite_path))
    assert store.connection.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS)
    assert store.counts() == {"pending": 3, "processing": 0, "completed": 2, "failed": 0, "dead": 1, "cancelled": 0}
    store.close()


@pytest.mark.parametrize("fields", [
    {},
    {"id": "a.b:c-d_e", "max_retries": 0, "priority": -7, "timeout": 5},
    {"timeout": 0.25, "delay": 1.5, "priority": 2_147_483_647},
    {"run_at": "2030-01-02T03:04:05.678+02:00", "max_retries": 1_000_000, "command": "echo 'ü' \\\\ \"x\""},
])
def test_enqueue_returns_the_record_that_reading_the_job_back_gives(store, fields):
    record = store.enqueue(check_job({"command": "true", **fields}), now=NOW + 1)
    assert record == store.get_job(record["id"])
    assert list(record) == list(store.get_job(record["id"]))
    assert [type(value) for value in record.values()] == [type(v) for v in store.get_job(record["id"]).values()]
