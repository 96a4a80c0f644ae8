"""The SQLite store on real files: claim order, leases and fencing, results, migrations."""

import multiprocessing
import sqlite3

import pytest
from queuectl_core.errors import DatabaseUnusable, DuplicateJob, InvalidInput, JobNotFound, WrongState
from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.store import SqliteStore
from queuectl_core.store import sqlite_schema as db
from queuectl_core.store.sqlite import CLAIM as _CLAIM
from queuectl_core.validation import check_job

NOW = 1_800_000_000_000


def add(store, now=NOW, **fields):
    return store.enqueue(check_job({"command": "true", **fields}), now=now)


def finish(store, claim, outcome, now=NOW):
    return store.finish_run(claim, outcome, "out", now=now)


def claimed_ids(store, now=NOW):
    ids = []
    while (claim := store.claim_next("w", 30, now=now)) is not None:
        ids.append(claim.id)
    return ids


def test_claim_takes_higher_priority_first_then_run_at_then_enqueue_order(store):
    add(store, id="low", priority=-1)
    add(store, id="b-late", run_at="2020-01-01T00:00:02Z")
    add(store, id="a-second")
    add(store, id="z-first", now=NOW - 10)  # earlier run_at (enqueued earlier)
    add(store, id="c-third")
    add(store, id="high", priority=5)
    add(store, id="b-early", run_at="2020-01-01T00:00:01Z")
    assert claimed_ids(store) == ["high", "b-early", "b-late", "z-first", "a-second", "c-third", "low"]


def test_equal_priority_and_run_at_run_in_enqueue_order_not_id_order(store):
    for job_id in ["c", "a", "b"]:
        add(store, id=job_id)
    assert claimed_ids(store) == ["c", "a", "b"]


def test_claim_skips_jobs_whose_run_at_is_in_the_future(store):
    add(store, id="later", delay=60)
    assert store.claim_next("w", 30, now=NOW) is None
    assert store.claim_next("w", 30, now=NOW + 60_000).id == "later"


def test_the_claim_plan_uses_the_index_for_the_order_and_no_temp_btree(sqlite_path):
    store = SqliteStore(str(sqlite_path))
    plan = " ".join(row[3] for row in store.connection.execute(
        "EXPLAIN QUERY PLAN " + _CLAIM, {"worker": "w", "token": "t", "expires": 0, "now": 0}))
    assert "jobs_ready" in plan and "TEMP B-TREE" not in plan


def test_a_claim_marks_the_job_processing_and_opens_a_run(store):
    add(store, id="j")
    claim = store.claim_next("w1", 30, now=NOW)
    job = store.get_job("j", history=True)
    assert (job["state"], job["worker_id"], claim.attempt) == ("processing", "w1", 1)
    assert job["history"][0]["finished_at"] is None and job["history"][0]["worker_id"] == "w1"


def test_a_completion_fenced_by_a_stale_token_changes_nothing(store):
    add(store, id="j", max_retries=3)
    stale = store.claim_next("w1", 1, now=NOW)
    store.reclaim_expired(store.get_settings(), now=NOW + 5_000)  # w1 vanished: lease expired
    fresh = store.claim_next("w2", 30, now=NOW + 10_000_000)
    assert not finish(store, stale, Outcome(COMPLETED, 0), now=NOW + 10_000_001)
    job = store.get_job("j", history=True)
    assert (job["state"], job["worker_id"]) == ("processing", "w2")
    assert finish(store, fresh, Outcome(COMPLETED, 0), now=NOW + 10_000_002)
    assert store.get_job("j")["state"] == "completed"


def test_finishing_a_run_and_claiming_the_next_is_one_step_that_does_both(store):
    add(store, id="a")
    add(store, id="b", after=["a"])  # waits for a: claimable only once a's completion is recorded
    first = store.claim_next("w1", 30, now=NOW)
    recorded, following = store.finish_run_and_claim_next(first, Outcome(COMPLETED, 0), "out", "w1",
                                                          30, now=NOW + 1)
    assert recorded and following.id == "b"
    assert store.get_job("a")["state"] == "completed"
    assert (store.get_job("b")["state"], store.get_job("b")["worker_id"]) == ("processing", "w1")
    assert store.finish_run_and_claim_next(following, Outcome(COMPLETED, 0), "", "w1", 30,
                                           now=NOW + 2)[1] is None  # nothing left


def test_a_stale_finish_records_nothing_but_the_next_claim_still_happens(store):
    add(store, id="j", max_retries=3)
    add(store, id="k", priority=-1)  # claimed after j
    stale = store.claim_next("w1", 1, now=NOW)
    store.reclaim_expired(store.get_settings(), now=NOW + 5_000)
    recorded, following = store.finish_run_and_claim_next(stale, Outcome(COMPLETED, 0), "", "w1", 30,
                                                          now=NOW + 10_000_000)
    assert not recorded and following is not None
    assert store.get_job("j")["state"] in ("pending", "processing")  # handed back, not completed by w1


def test_an_expired_lease_is_handed_back_as_a_failed_attempt_saying_the_worker_was_lost(store):
    add(store, id="j", max_retries=1)
    store.claim_next("w1", 2, now=NOW)
    assert store.reclaim_expired(store.get_settings(), now=NOW + 1_000) == []  # not expired yet
    assert store.reclaim_expired(store.get_settings(), now=NOW + 2_001) == ["j"]
    job = store.get_job("j", history=True)
    assert (job["state"], job["attempts"], job["exit_code"]) == ("failed", 1, None)
    assert "worker lost" in job["last_error"] and "worker lost" in job["history"][0]["error"]
    assert job["history"][0]["finished_at"] is not None


def test_a_heartbeat_renews_the_lease_so_a_slow_job_is_not_reclaimed(store):
    add(store, id="j")
    store.register_worker("w1", "h", 1, now=NOW)
    claim = store.claim_next("w1", 2, now=NOW)
    assert store.heartbeat("w1", 2, claim, now=NOW + 1_500).lease_held
    assert store.reclaim_expired(store.get_settings(), now=NOW + 3_000) == []
    assert store.get_job("j")["state"] == "processing"


def test_failures_retry_with_backoff_then_go_dead_and_dlq_retry_resets_attempts(store):
    add(store, id="j", max_retries=1)
    claim = store.claim_next("w", 30, now=NOW)
    finish(store, claim, Outcome(FAILED, 1, "exit code 1"), now=NOW)
    job = store.get_job("j")
    assert (job["state"], job["attempts"]) == ("failed", 1)
    assert store.claim_next("w", 30, now=NOW + 1_999) is None  # backoff 2^1 s
    claim = store.claim_next("w", 30, now=NOW + 2_000)
    finish(store, claim, Outcome(FAILED, 1, "exit code 1"), now=NOW + 2_000)
    assert store.get_job("j")["state"] == "dead"
    store.retry_dead("j")
    with pytest.raises(WrongState, match="pending, not dead"):
        store.retry_dead("j")
    job = store.get_job("j", history=True)
    assert (job["state"], job["attempts"]) == ("pending", 0)
    claim = store.claim_next("w", 30)
    assert claim.attempt == 3  # run numbers go on counting after a dlq retry
    with pytest.raises(JobNotFound):
        store.retry_dead("nope")


def test_duplicate_ids_are_refused_and_bulk_enqueue_is_all_or_nothing(store):
    add(store, id="taken")
    with pytest.raises(DuplicateJob):
        add(store, id="taken")
    specs = [(1, check_job({"command": "a", "id": "new1"})), (2, check_job({"command": "b", "id": "taken"}))]
    with pytest.raises(DuplicateJob, match="line 2"):
        store.enqueue_many(specs)
    assert [j["id"] for j in store.list_jobs()] == ["taken"]
    ids = store.enqueue_many([(1, check_job({"command": "a"})), (3, check_job({"command": "b", "id": "x"}))])
    assert len(ids) == 2 and ids[1] == "x" and store.counts()["pending"] == 3


def test_a_stop_request_reaches_live_workers_only_not_later_ones(store):
    store.register_worker("old", "h", 1)
    assert store.request_stop() == 1
    store.register_worker("new", "h", 2)
    assert store.heartbeat("old", 30).stop_requested
    assert not store.heartbeat("new", 30).stop_requested


def test_a_worker_that_stops_heartbeating_drops_out_of_the_live_list(store):
    store.register_worker("gone", "h", 1, now=NOW)
    store.register_worker("alive", "h", 2, now=NOW + 40_000)
    assert [w["id"] for w in store.live_workers(now=NOW + 40_000)] == ["alive"]


def test_settings_are_stored_and_bad_values_change_nothing(store):
    store.set_setting("backoff_base", "3")
    with pytest.raises(InvalidInput):
        store.set_setting("backoff_base", "0")
    assert store.get_settings()["backoff_base"] == 3


def test_jobs_default_max_retries_comes_from_the_setting_at_enqueue_time(store):
    store.set_setting("max_retries", "7")
    assert add(store)["max_retries"] == 7


def test_migrations_set_user_version_and_are_idempotent(sqlite_path):
    SqliteStore(str(sqlite_path)).close()
    connection = sqlite3.connect(sqlite_path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.migrate(connection)  # a second run changes nothing and does not fail


def _open_when_all_are_ready(path, barrier):
    barrier.wait()
    try:
        SqliteStore(path).close()
    except Exception as error:  # the assertion shows it
        return repr(error)
    return None


def test_eight_processes_opening_a_new_file_at_once_all_succeed_and_migrate_it_once(tmp_path):
    """As `docker compose up --scale worker=8` on a fresh volume: SQLite does not wait for the switch to WAL (it
    failed one round in ten on a loaded machine), so twenty rounds of eight processes each."""
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        for round_number in range(20):
            path = str(tmp_path / f"fresh-{round_number}.db")
            barrier = manager.Barrier(8)
            with context.Pool(8) as pool:  # new processes each round, as containers that start together
                assert pool.starmap(_open_when_all_are_ready, [(path, barrier)] * 8) == [None] * 8
            connection = sqlite3.connect(path)
            assert connection.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS)
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert connection.execute("SELECT count(*) FROM job_counts").fetchone()[0] == 6  # migrated once
            connection.close()


def test_a_file_that_is_not_a_database_is_reported_as_unusable(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseUnusable, match="unusable"):
        SqliteStore(str(garbage))
    with pytest.raises(DatabaseUnusable, match="does not exist"):
        SqliteStore(str(tmp_path / "missing" / "q.db"))


def test_durability_full_switches_synchronous_to_full(sqlite_path):
    first = SqliteStore(str(sqlite_path))
    assert first.connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    first.set_setting("durability", "full")
    second = SqliteStore(str(sqlite_path))
    assert second.connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_another_programs_database_is_refused_and_left_alone(tmp_path):
    foreign = tmp_path / "other.db"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE notes (x)")
    connection.commit()
    with pytest.raises(DatabaseUnusable, match="not a queuectl database"):
        SqliteStore(str(foreign))
    versioned = tmp_path / "versioned.db"
    connection = sqlite3.connect(versioned)
    connection.execute("CREATE TABLE jobs (x)")
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    with pytest.raises(DatabaseUnusable, match="no such table"):
        SqliteStore(str(versioned))
    tables = {r[0] for r in sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master")}
    assert tables == {"notes"}


def test_a_commit_that_fails_is_rolled_back_and_the_next_transaction_works(sqlite_path):
    """A COMMIT can fail and leave SQLite's transaction open (here a deferred foreign key; a full disk or an I/O
    error alike): the store rolls it back, so the connection's next BEGIN does not fail too."""
    store = SqliteStore(str(sqlite_path))
    with pytest.raises(sqlite3.IntegrityError) as raised:  # a constraint stays the driver's error (see _translation_of)
        with store._transaction() as connection:
            connection.execute("PRAGMA defer_foreign_keys = ON")
            connection.execute("INSERT INTO runs (job_seq, attempt, started_at, worker_id) VALUES (999, 1, 0, 'w')")
    assert "FOREIGN KEY" in str(raised.value)
    assert not store.connection.in_transaction
    assert add(store, id="after")["state"] == "pending"
    assert store._read("SELECT count(*) FROM runs").fetchone()[0] == 0
