"""The per-state job counts kept by triggers (SQLite's migration 2, PostgreSQL's 4) always equal a count of the
jobs table, on both backends (the `store` fixture is parametrized), also with workers changing jobs at once."""

import sqlite3
import threading

import pytest
from helpers import QUIET, run_cli
from queuectl_core.errors import DuplicateJob, WrongState
from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.store import SqliteStore, open_store
from queuectl_core.store import sqlite_schema as db
from queuectl_core.validation import check_job

NOW = 1_800_000_000_000
STATES = ("pending", "processing", "completed", "failed", "dead", "cancelled")


def counted(store):
    """The jobs of each state, counted in the jobs table itself."""
    result = dict.fromkeys(STATES, 0)
    for state, count in store._read("SELECT state, count(*) FROM jobs GROUP BY state"):
        result[state] = count
    return result


def finish(store, claim, outcome, now=NOW):
    return store.finish_run(claim, outcome, "", now=now)


def test_counts_follow_every_kind_of_change(store):
    assert store.counts() == counted(store) == dict.fromkeys(STATES, 0)
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


def test_dependents_dead_letters_and_retention_are_counted(store):
    store.enqueue(check_job({"command": "false", "id": "parent", "max_retries": 0}), now=NOW)
    store.enqueue_many([(1, check_job({"command": "true", "id": "child", "after": ["parent"]})),
                        (2, check_job({"command": "true", "id": "grandchild", "after": ["child"]}))], now=NOW)
    finish(store, store.claim_next("w", 30, now=NOW), Outcome(FAILED, 1, "exit code 1"))  # dead, and its chain
    assert store.counts() == counted(store)
    assert store.counts()["dead"] == 3
    assert store.retry_all_dead(now=NOW) == 3
    assert store.counts() == counted(store) == {**dict.fromkeys(STATES, 0), "pending": 3}
    for _ in range(3):
        finish(store, store.claim_next("w", 30, now=NOW), Outcome(COMPLETED, 0, None))
    store.enqueue(check_job({"command": "true", "id": "new"}), now=NOW + 10_000)
    assert store.counts() == counted(store) == {**dict.fromkeys(STATES, 0), "completed": 3, "pending": 1}
    assert store.apply_retention({"retention": 5}, now=NOW + 6_000) == 3  # the completed jobs, not the new one
    assert store.counts() == counted(store) == {**dict.fromkeys(STATES, 0), "pending": 1}


@pytest.mark.parametrize("size", [3, 6_000])  # SQLite stages 5,000 jobs or more; PostgreSQL COPYs them all
def test_bulk_enqueue_counts_every_job(store, size):
    store.enqueue(check_job({"command": "true", "id": "first"}), now=NOW)
    store.enqueue_many([(n, check_job({"command": "true"})) for n in range(1, size + 1)], now=NOW)
    assert store.counts() == counted(store) == {**dict.fromkeys(STATES, 0), "pending": size + 1}


def test_refused_enqueues_count_nothing(store):
    store.enqueue(check_job({"command": "true", "id": "taken"}), now=NOW)
    with pytest.raises(DuplicateJob):
        store.enqueue(check_job({"command": "true", "id": "taken"}), now=NOW)
    with pytest.raises(DuplicateJob):
        store.enqueue_many([(1, check_job({"command": "true"})), (2, check_job({"command": "x", "id": "taken"}))])
    assert store.counts() == counted(store)
    assert store.counts()["pending"] == 1


def test_stores_changing_jobs_at_once_keep_the_counts(pg_url):
    """Threads with a connection each claim, finish, enqueue, cancel and purge at the same time on PostgreSQL;
    their counter updates land in different slots, and none is lost."""
    setup = open_store(pg_url)
    setup.enqueue_many([(n, check_job({"command": "true", "max_retries": n % 2})) for n in range(1, 601)])
    setup.set_setting("backoff_base", 1)  # a failed job is due again in a second
    errors = []

    def work(index):
        store = open_store(pg_url)
        try:
            while (claim := store.claim_next(f"w{index}", 30)) is not None:
                outcome = Outcome(COMPLETED, 0, None) if claim.seq % 3 else Outcome(FAILED, 1, "exit code 1")
                store.finish_run(claim, outcome, "")
                if claim.seq % 50 == 0:
                    new = store.enqueue(check_job({"command": "true", "max_retries": 0}))["id"]
                    store.purge(["completed"])
                    try:
                        store.cancel(new)  # pending, or processing in another thread
                    except WrongState:  # already finished by another thread
                        pass
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
    assert setup.counts() == counted(setup)
    assert setup.counts()["processing"] == 0 and setup.counts()["completed"] + setup.counts()["failed"] > 0
    setup.close()


def test_worker_processes_keep_the_counts(pg_url, processes):
    store = open_store(pg_url)
    store.set_setting("backoff_base", "1")
    store.enqueue_many([(n, check_job({"command": "exit 1" if n % 4 == 0 else "true", "max_retries": n % 2}))
                        for n in range(1, 301)])
    workers = [processes.start_workers(pg_url, "--count", "3", "--burst", env=QUIET) for _ in range(2)]
    purged = 0
    while any(worker.poll() is None for worker in workers):
        purged += store.purge(["completed"])  # deletions while the workers change states
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0], [processes.log(w) for w in workers]
    assert store.counts() == counted(store)
    assert store.counts()["completed"] + purged == 225 and store.counts()["dead"] == 75
    store.close()


def test_migrate_counts_the_copied_jobs(sqlite_path, pg_url):
    source = open_store(str(sqlite_path))
    source.enqueue_many([(n, check_job({"command": "true", "max_retries": 0})) for n in range(1, 11)], now=NOW)
    finish(source, source.claim_next("w", 30, now=NOW), Outcome(COMPLETED, 0, None))
    finish(source, source.claim_next("w", 30, now=NOW), Outcome(FAILED, 1, "exit code 1"))
    result = run_cli(sqlite_path, "migrate", "--to", pg_url)
    assert result.returncode == 0, result.stderr
    target = open_store(pg_url)
    assert target.counts() == counted(target) == source.counts() == {
        **dict.fromkeys(STATES, 0), "pending": 8, "completed": 1, "dead": 1}
    finish(target, target.claim_next("w", 30, now=NOW), Outcome(COMPLETED, 0, None))
    target.enqueue(check_job({"command": "true"}), now=NOW)
    assert target.counts() == counted(target)
    source.close()
    target.close()


def test_a_version_1_database_gets_its_counts_from_the_jobs_it_holds(sqlite_path):
    connection = sqlite3.connect(sqlite_path, isolation_level=None)
    for statement in db._statements(db.MIGRATIONS[0][1]):
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


def test_a_version_3_postgresql_schema_gets_its_counts_from_the_jobs_it_holds(pg_url):
    import psycopg
    from queuectl_core.store import postgres as postgres_store
    from queuectl_core.store import postgres_schema

    with psycopg.connect(pg_url, autocommit=True) as connection:
        for _, script in postgres_schema.MIGRATIONS[:3]:
            for statement in script.split(";"):
                if statement.strip():
                    connection.execute(statement)
        connection.execute("CREATE TABLE queuectl_schema (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO queuectl_schema (version) VALUES (3)")
        connection.execute(
            "INSERT INTO jobs (id, command, state, max_retries, run_at, created_at, updated_at)"
            " SELECT 'j' || n, 'true', (ARRAY['pending', 'pending', 'pending', 'completed', 'completed', 'dead'])[n],"
            " 3, 0, 0, 0 FROM generate_series(1, 6) AS n")
    store = postgres_store.PostgresStore(pg_url)
    assert store.counts() == {"pending": 3, "processing": 0, "completed": 2, "failed": 0, "dead": 1, "cancelled": 0}
    store.claim_next("w", 30)
    assert store.counts() == counted(store)
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
