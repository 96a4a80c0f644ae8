"""Issue 7's store operations on both backends, without processes: dependencies, cancel, pause, purge,
retention, run output and the exit-code policy of decide()."""

import pytest
from queuectl_core.errors import BadDependency, InvalidInput, JobNotFound, RunNotFound, WrongState
from queuectl_core.lifecycle import CANCELLED, COMPLETED, FAILED, TIMEOUT, Outcome, decide, retryable
from queuectl_core.store import SqliteStore
from queuectl_core.store import sqlite_schema as db
from queuectl_core.store.sqlite import CLAIM
from queuectl_core.validation import check_job

NOW = 1_800_000_000_000
HOUR = 3_600_000


def add(store, now=NOW, **fields):
    return store.enqueue(check_job({"command": "true", **fields}), now=now)


def run_next(store, outcome=Outcome(COMPLETED, 0, None), now=NOW, output="out"):
    """Claim the next due job and finish it with `outcome`; its id, or None when nothing is due."""
    claim = store.claim_next("w", 30, now=now)
    if claim is None:
        return None
    assert store.finish_run(claim, outcome, output, now=now)
    return claim.id


def state(store, job_id):
    return store.get_job(job_id)["state"]


# ---- dependencies ---------------------------------------------------------------------------------


def test_a_job_runs_only_after_every_job_it_waits_for_completed(store):
    add(store, id="a")
    add(store, id="b")
    add(store, id="c", after=["a", "b"], priority=10)  # higher priority, still waits
    assert store.get_job("c")["after"] == ["a", "b"]
    assert run_next(store) == "a"
    assert run_next(store) == "b"
    assert run_next(store) == "c"
    assert run_next(store) is None


def test_a_chain_runs_in_order_even_when_the_last_link_has_the_highest_priority(store):
    add(store, id="a")
    add(store, id="b", after=["a"], priority=5)
    add(store, id="c", after=["b"], priority=9)
    assert [run_next(store) for _ in range(4)] == ["a", "b", "c", None]


def test_a_dependency_that_failed_once_keeps_its_dependent_waiting_until_it_completes(store):
    add(store, id="a", max_retries=1)
    add(store, id="b", after=["a"])
    assert run_next(store, Outcome(FAILED, 1, "exit code 1")) == "a"
    assert state(store, "a") == "failed"
    assert run_next(store, now=NOW + HOUR) == "a"
    assert run_next(store, now=NOW + HOUR) == "b"


def test_the_dependents_of_a_dead_job_end_dead_naming_the_job_they_waited_for(store):
    add(store, id="a", max_retries=0)
    add(store, id="b", after=["a"])
    add(store, id="c", after=["b"])
    add(store, id="free")
    assert run_next(store, Outcome(FAILED, 1, "exit code 1")) == "a"
    assert (state(store, "b"), store.get_job("b")["last_error"]) == ("dead", "dependency 'a' ended dead")
    assert (state(store, "c"), store.get_job("c")["last_error"]) == ("dead", "dependency 'b' ended dead")
    assert run_next(store) == "free"
    assert store.counts()["dead"] == 3


def test_the_dependents_of_a_cancelled_job_end_dead(store):
    add(store, id="a")
    add(store, id="b", after=["a"])
    store.cancel("a")
    assert store.get_job("b")["last_error"] == "dependency 'a' was cancelled"
    assert run_next(store) is None


def test_a_job_enqueued_after_a_job_that_ended_dead_is_dead_at_once(store):
    add(store, id="a", max_retries=0)
    run_next(store, Outcome(FAILED, 1, "exit code 1"))
    record = add(store, id="b", after=["a"])
    assert (record["state"], record["last_error"]) == ("dead", "dependency 'a' ended dead")
    assert record == store.get_job("b")


def test_waiting_for_a_completed_job_waits_for_nothing(store):
    add(store, id="a")
    run_next(store)
    add(store, id="b", after=["a"])
    assert run_next(store) == "b"


def test_unknown_dependencies_are_refused_and_nothing_is_added(store):
    add(store, id="a")
    with pytest.raises(BadDependency, match="after: no job with id 'nope'"):
        add(store, id="b", after=["a", "nope"])
    with pytest.raises(JobNotFound):
        store.get_job("b")
    with pytest.raises(BadDependency, match="line 2: after: no job with id 'nope'"):
        store.enqueue_many([(1, check_job({"command": "x", "id": "m1"})),
                            (2, check_job({"command": "x", "after": ["nope"]}))])
    assert sum(store.counts().values()) == 1


def test_bulk_jobs_may_wait_for_earlier_lines_but_not_for_later_ones(store):
    with pytest.raises(InvalidInput, match="line 1: after: job 'm2' comes on line 2"):
        store.enqueue_many([(1, check_job({"command": "x", "id": "m1", "after": ["m2"]})),
                            (2, check_job({"command": "x", "id": "m2"}))])
    store.enqueue_many([(1, check_job({"command": "x", "id": "m1"})),
                        (2, check_job({"command": "x", "id": "m2", "after": ["m1"]}))])
    assert [run_next(store) for _ in range(3)] == ["m1", "m2", None]


def test_retrying_the_dead_chain_runs_it_in_order_again(store):
    add(store, id="a", max_retries=0)
    add(store, id="b", after=["a"])
    run_next(store, Outcome(FAILED, 1, "exit code 1"))
    with pytest.raises(WrongState, match="waits for 'a', which is dead: retry 'a' first"):
        store.retry_dead("b")
    assert store.retry_all_dead() == 2
    assert [run_next(store) for _ in range(3)] == ["a", "b", None]


def test_retrying_every_dead_job_leaves_dead_those_waiting_for_a_cancelled_one(store):
    add(store, id="a")
    add(store, id="b", after=["a"])
    add(store, id="c", after=["b"])
    store.cancel("a")
    assert store.retry_all_dead() == 0
    assert (state(store, "b"), state(store, "c")) == ("dead", "dead")
    with pytest.raises(WrongState, match="was cancelled and can never complete"):
        store.retry_dead("b")


def test_the_sqlite_claim_still_walks_jobs_ready_without_a_temp_btree(sqlite_path):
    store = SqliteStore(str(sqlite_path))
    plan = " ".join(row[3] for row in store.connection.execute(
        "EXPLAIN QUERY PLAN " + CLAIM, {"worker": "w", "token": "t", "expires": 0, "now": 0}))
    assert "USING INDEX jobs_ready" in plan and "TEMP B-TREE" not in plan, plan
    assert "SEARCH job_deps USING PRIMARY KEY (job_seq=?)" in plan, plan
    store.close()


# ---- cancel ---------------------------------------------------------------------------------------


def test_cancel_ends_a_pending_or_failed_job_at_once_and_refuses_an_ended_one(store):
    add(store, id="waiting")
    add(store, id="retrying", max_retries=3, priority=1)
    run_next(store, Outcome(FAILED, 1, "exit code 1"))
    assert state(store, "retrying") == "failed"
    for job_id in ("waiting", "retrying"):
        record, at_once = store.cancel(job_id)
        assert (record["state"], at_once, record["last_error"]) == ("cancelled", True, "cancelled by request")
    assert run_next(store, now=NOW + HOUR) is None
    with pytest.raises(WrongState, match="is cancelled: only pending, failed or processing"):
        store.cancel("waiting")
    with pytest.raises(JobNotFound):
        store.cancel("nope")


def test_cancelling_a_processing_job_asks_its_worker_which_learns_it_from_its_heartbeat(store):
    add(store, id="long")
    claim = store.claim_next("w", 30, now=NOW)
    assert not store.heartbeat("w", 30, claim, now=NOW).cancel_requested
    record, at_once = store.cancel("long")
    assert (record["state"], at_once) == ("processing", False)
    assert store.heartbeat("w", 30, claim, now=NOW).cancel_requested
    assert store.flush_output(claim, "so far", 0)
    outcome = Outcome(CANCELLED, None, "cancelled by request while running")
    store.finish_run(claim, outcome, "so far", now=NOW)
    job = store.get_job("long", history=True)
    assert (job["state"], job["attempts"], job["history"][0]["error"]) == ("cancelled", 0, outcome.error)


def test_a_cancel_that_races_a_failed_run_wins_over_the_retry(store):
    add(store, id="flaky", max_retries=5)
    add(store, id="after-flaky", after=["flaky"])
    claim = store.claim_next("w", 30, now=NOW)
    store.cancel("flaky")
    outcome = Outcome(FAILED, 1, "exit code 1")
    store.finish_run(claim, outcome, "", now=NOW)
    assert state(store, "flaky") == "cancelled"
    assert state(store, "after-flaky") == "dead"


def test_a_cancel_that_races_the_last_failed_run_wins_over_the_dead_letter_queue(store):
    add(store, id="last-try", max_retries=0)
    claim = store.claim_next("w", 30, now=NOW)
    store.cancel("last-try")
    transition = store.finish_run(claim, Outcome(FAILED, 1, "exit code 1"), "", now=NOW)
    assert (transition.state, transition.last_error) == ("cancelled", "exit code 1")
    job = store.get_job("last-try", history=True)
    assert (job["state"], job["attempts"], job["history"][0]["exit_code"]) == ("cancelled", 0, 1)


def test_finishing_a_run_returns_what_the_store_decided_and_none_once_the_lease_is_gone(store):
    add(store, id="flaky", max_retries=2)
    claim = store.claim_next("w", 30, now=NOW)
    transition = store.finish_run(claim, Outcome(FAILED, 3, "exit code 3"), "", now=NOW)
    assert (transition.state, transition.attempts, transition.run_at_ms) == ("failed", 1, NOW + 2000)
    assert store.get_job("flaky")["state"] == "failed"
    assert store.finish_run(claim, Outcome(COMPLETED, 0), "", now=NOW) is None  # a second report: fenced
    assert store.get_job("flaky")["state"] == "failed"


def test_a_cancelled_job_whose_worker_was_lost_ends_cancelled_not_retried(store):
    add(store, id="orphan", max_retries=5)
    store.claim_next("w", 30, now=NOW)
    store.cancel("orphan")
    assert store.reclaim_expired(store.get_settings(), now=NOW + HOUR) == ["orphan"]
    assert state(store, "orphan") == "cancelled"


# ---- pause ----------------------------------------------------------------------------------------


def test_a_paused_queue_claims_nothing_until_resumed(store):
    add(store, id="a")
    assert store.pause() is True
    assert store.pause() is False  # already paused
    assert store.status()["paused"] is True and store.paused_since()
    assert store.claim_next("w", 30, now=NOW) is None
    assert store.resume() is True
    assert store.resume() is False
    assert store.status()["paused"] is False
    assert store.claim_next("w", 30, now=NOW).id == "a"


# ---- run output -----------------------------------------------------------------------------------


def test_run_output_gives_the_latest_run_or_the_one_asked_for(store):
    add(store, id="a", max_retries=2)
    assert store.run_output("a")["attempt"] is None
    run_next(store, Outcome(FAILED, 1, "exit code 1"), output="first\n")
    run_next(store, now=NOW + HOUR, output="second\n")
    assert (store.run_output("a")["attempt"], store.run_output("a")["output"]) == (2, "second\n")
    assert store.run_output("a", 1)["output"] == "first\n"
    with pytest.raises(RunNotFound, match="job 'a' has no run 3 \\(its runs are 1 to 2\\)"):
        store.run_output("a", 3)
    with pytest.raises(JobNotFound):
        store.run_output("nope")


def test_a_flush_updates_the_running_runs_output_and_its_offset(store):
    add(store, id="chatty")
    claim = store.claim_next("w", 30, now=NOW)
    assert store.flush_output(claim, "[... 10 earlier bytes not kept ...]\nabc", 10) is False
    run = store.run_output("chatty")
    assert (run["output_offset"], run["finished_at"]) == (10, None)
    assert run["output"].endswith("abc")


# ---- purge and retention ----------------------------------------------------------------------------


def make_finished(store, now):
    """completed, dead and cancelled jobs that ended at `now`, plus a pending one; their ids by state."""
    tag = str(now)
    add(store, now=now, id=f"ok-{tag}")
    run_next(store, now=now)
    add(store, now=now, id=f"dead-{tag}", max_retries=0)
    run_next(store, Outcome(FAILED, 1, "exit code 1"), now=now)
    add(store, now=now, id=f"cancelled-{tag}")
    store.cancel(f"cancelled-{tag}", now=now)
    add(store, now=now + 10 * 24 * HOUR, id=f"pending-{tag}", delay=10**6)
    return tag


def test_purge_deletes_only_the_finished_jobs_of_the_states_and_age_asked_with_their_history(store):
    old = make_finished(store, NOW - 48 * HOUR)
    new = make_finished(store, NOW)
    assert store.count_finished(["completed"], 24 * 3600, now=NOW) == 1
    assert store.purge(["completed"], 24 * 3600, now=NOW) == 1
    remaining = {job["id"] for job in store.list_jobs(limit=100)}
    assert remaining == {f"dead-{old}", f"cancelled-{old}", f"pending-{old}",
                         f"ok-{new}", f"dead-{new}", f"cancelled-{new}", f"pending-{new}"}
    assert store.purge(["dead", "cancelled"], 0, now=NOW + 1) == 4
    assert {job["state"] for job in store.list_jobs(limit=100)} == {"completed", "pending"}
    with pytest.raises(InvalidInput, match="only finished jobs can be purged"):
        store.purge(["pending"])


def test_purge_takes_the_history_and_the_dependency_edges_with_the_job(store):
    add(store, id="a")
    run_next(store)
    store.purge(["completed"], now=NOW + 1)
    assert store._read("SELECT count(*) FROM runs").fetchone()[0] == 0
    assert store._read("SELECT count(*) FROM job_deps").fetchone()[0] == 0


def test_purge_in_small_batches_deletes_everything_it_should(store):
    for n in range(25):
        add(store, id=f"j{n}")
        run_next(store)
    assert store.purge(["completed"], now=NOW + 1, window=4) == 25
    assert store.counts()["completed"] == 0


def test_retention_deletes_old_completed_and_cancelled_jobs_in_batches_but_keeps_dead_ones(store):
    old = make_finished(store, NOW - 48 * HOUR)
    make_finished(store, NOW)
    settings = {**store.get_settings(), "retention": 0}
    assert store.apply_retention(settings, now=NOW) == 0  # 0 keeps everything
    settings["retention"] = 24 * 3600
    # One window of each state per call, sweeping on: the old completed job, then the old cancelled one.
    assert store.apply_retention(settings, now=NOW, window=1) == 2
    assert store.apply_retention(settings, now=NOW, window=1) == 0
    assert store.apply_retention(settings, now=NOW) == 0
    ids = {job["id"] for job in store.list_jobs(limit=100)}
    assert f"ok-{old}" not in ids and f"cancelled-{old}" not in ids
    assert f"dead-{old}" in ids and len(ids) == 6


def test_retention_sweeps_past_recent_jobs_to_old_ones_enqueued_after_them(store):
    add(store, id="enqueued-first", now=NOW - 72 * HOUR)
    add(store, id="enqueued-second", now=NOW - 72 * HOUR)
    claims = [store.claim_next("w", 30, now=NOW - 72 * HOUR) for _ in range(2)]
    outcome = Outcome(COMPLETED, 0, None)
    for claim, ended in zip(claims, (NOW, NOW - 48 * HOUR), strict=True):  # the first ends now, the second 2 days ago
        store.finish_run(claim, outcome, "", now=ended)
    settings = {**store.get_settings(), "retention": 24 * 3600}
    assert store.apply_retention(settings, now=NOW, window=1) == 0  # the first window holds a recent job
    assert store.apply_retention(settings, now=NOW, window=1) == 1
    assert [job["id"] for job in store.list_jobs()] == ["enqueued-first"]


def test_the_retention_setting_takes_durations(store):
    assert store.set_setting("retention", "7d") == 7 * 86400
    assert store.set_setting("retention", "90m") == 5400
    assert store.get_settings()["retention"] == 5400
    with pytest.raises(InvalidInput, match="retention must be a duration"):
        store.set_setting("retention", "-1")


# ---- schema -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy_version", [2, 3])
def test_a_sqlite_database_of_the_former_numbering_is_migrated_with_its_jobs(sqlite_path, legacy_version):
    """SQLite once numbered the job counts 2 and the operator features 3 (PostgreSQL: 4 and 2)."""
    import sqlite3

    connection = sqlite3.connect(sqlite_path, isolation_level=None)
    names = ["jobs, runs, settings, workers", "job counts", "operator features"][:legacy_version]
    scripts = dict(db.MIGRATIONS)
    for name in names:
        for statement in db._statements(scripts[name]):
            connection.execute(statement)
    connection.execute(f"PRAGMA user_version = {legacy_version}")
    connection.execute("INSERT INTO jobs (id, command, state, max_retries, run_at, created_at, updated_at)"
                       " VALUES ('old', 'true', 'pending', 3, 0, 0, 0)")
    connection.execute("UPDATE job_counts SET n = 1 WHERE state = 'pending'")
    connection.close()
    store = SqliteStore(str(sqlite_path))
    record = store.get_job("old")
    assert (record["after"], record["retry_on"], record["no_retry_on"]) == ([], None, None)
    assert store.counts()["cancelled"] == 0
    assert store.claim_next("w", 30).id == "old"
    store.close()


def test_a_version_1_postgresql_schema_is_migrated_with_its_jobs(pg_url):
    import psycopg
    from queuectl_core.store import postgres as postgres_store
    from queuectl_core.store import postgres_schema

    with psycopg.connect(pg_url, autocommit=True) as connection:
        for statement in postgres_schema.MIGRATIONS[0][1].split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute("CREATE TABLE queuectl_schema (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO queuectl_schema (version) VALUES (1)")
        connection.execute("INSERT INTO jobs (id, command, state, max_retries, run_at, created_at, updated_at)"
                           " VALUES ('old', 'true', 'pending', 3, 0, 0, 0)")
    store = postgres_store.PostgresStore(pg_url)
    record = store.get_job("old")
    assert (record["after"], record["retry_on"], record["no_retry_on"]) == ([], None, None)
    assert store.claim_next("w", 30).id == "old"
    assert store._read("SELECT max(version) FROM queuectl_schema").fetchone()[0] == len(postgres_schema.MIGRATIONS)
    store.close()


# ---- the exit-code policy (pure) ---------------------------------------------------------------------


SETTINGS = {"backoff_base": 2, "backoff_max": 3600, "backoff_jitter": "none"}


@pytest.mark.parametrize("outcome, retry_on, no_retry_on, expected", [
    (Outcome(FAILED, 2, "exit code 2"), None, None, True),
    (Outcome(FAILED, 2, "exit code 2"), None, [2], False),
    (Outcome(FAILED, 3, "exit code 3"), None, [2], True),
    (Outcome(FAILED, 3, "exit code 3"), [1, 3], None, True),
    (Outcome(FAILED, 4, "exit code 4"), [1, 3], None, False),
    (Outcome(TIMEOUT, None, "timeout"), [1], None, True),  # a timeout is retryable unless said otherwise
    (Outcome(TIMEOUT, None, "timeout"), None, ["timeout"], False),
    (Outcome(FAILED, None, "killed by signal KILL"), [1], [2], True),
    (Outcome(FAILED, 2, "exit code 2"), [2], [2], False),  # no_retry_on wins
])
def test_retryable_follows_the_jobs_exit_code_lists(outcome, retry_on, no_retry_on, expected):
    assert retryable(outcome, retry_on, no_retry_on) is expected


def test_a_failure_the_policy_does_not_retry_makes_the_job_dead_at_once_saying_why():
    transition = decide(0, 5, Outcome(FAILED, 2, "exit code 2"), SETTINGS, NOW, no_retry_on=[2])
    assert (transition.state, transition.attempts) == ("dead", 1)
    assert transition.last_error == "exit code 2 (not retried: no_retry_on)"
    transition = decide(0, 5, Outcome(FAILED, 9, "exit code 9"), SETTINGS, NOW, retry_on=[1])
    assert (transition.state, transition.last_error) == ("dead", "exit code 9 (not retried: retry_on)")
    assert decide(0, 5, Outcome(FAILED, 1, "exit code 1"), SETTINGS, NOW, retry_on=[1]).state == "failed"
    assert decide(0, 5, Outcome(CANCELLED, None, "cancelled"), SETTINGS, NOW).state == "cancelled"
