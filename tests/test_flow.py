"""Named queues, tags, unique keys, concurrency keys, queue limits, rates and pauses through the store and the CLI,
on both backends (the racing processes are in test_flow_processes.py)."""

import json

import pytest
from helpers import assert_refused, cli_json, enqueue, run_cli
from queuectl_core.errors import InvalidInput, WrongState
from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.timeutil import now_ms
from queuectl_core.validation import check_job, parse_rate

DONE = Outcome(COMPLETED, 0, None)


def claim_all(store, queues=None):
    """Claim until nothing more may run; the claims."""
    claims = []
    while (claim := store.claim_next("w", 30, queues=queues)) is not None:
        claims.append(claim)
    return claims


def test_records_carry_the_new_keys_with_their_defaults(store):
    plain = store.get_job(enqueue(store, "true"))
    assert (plain["queue"], plain["tags"], plain["unique_key"], plain["concurrency_key"],
            plain["concurrency_limit"]) == ("default", [], None, None, None)
    full = store.get_job(enqueue(store, "true", queue="deploy", tags=["prod", "web", "prod"], unique_key="u 1",
                                 concurrency_key="host-1"))
    assert (full["queue"], full["tags"], full["unique_key"], full["concurrency_key"],
            full["concurrency_limit"]) == ("deploy", ["prod", "web"], "u 1", "host-1", 1)


@pytest.mark.parametrize("job, key", [
    ({"queue": "has space"}, "queue"), ({"queue": ""}, "queue"), ({"queue": "x" * 65}, "queue"),
    ({"queue": 3}, "queue"), ({"queue": None}, "queue"),
    ({"tags": "prod"}, "tags"), ({"tags": ["ok", "not ok"]}, "tags"), ({"tags": ["t"] * 21}, "tags"),
    ({"tags": [1]}, "tags"), ({"unique_key": ""}, "unique_key"), ({"unique_key": "x" * 257}, "unique_key"),
    ({"unique_key": 5}, "unique_key"), ({"concurrency_key": ""}, "concurrency_key"),
    ({"concurrency_key": "k" * 129}, "concurrency_key"), ({"concurrency_limit": 2}, "concurrency_limit"),
    ({"concurrency_key": "k", "concurrency_limit": 0}, "concurrency_limit"),
    ({"concurrency_key": "k", "concurrency_limit": 1.5}, "concurrency_limit"),
    ({"concurrency_key": "k", "concurrency_limit": True}, "concurrency_limit"),
])
def test_a_bad_key_is_refused_naming_it_and_nothing_is_added(db_path, job, key):
    result = run_cli(db_path, "enqueue", json.dumps({"command": "true", **job}))
    assert_refused(result, 2, key)
    lines = "\n".join([json.dumps({"command": "fine"}), json.dumps({"command": "true", **job})])
    assert_refused(run_cli(db_path, "enqueue", "-", input=lines), 2, "line 2", key)
    assert cli_json(db_path, "list") == []


def test_the_fast_path_and_the_full_check_agree_on_queue():
    assert check_job({"command": "x", "queue": "a.b-c_d"}).queue == "a.b-c_d"
    assert check_job({"command": "x", "queue": "a", "tags": ["t"]}) == check_job(
        {"command": "x", "tags": ["t"], "queue": "a"})
    with pytest.raises(InvalidInput, match="queue"):
        check_job({"command": "x", "queue": "a/b"})


def test_rates_parse_as_the_contract_writes_them():
    assert parse_rate("10/m") == (10, 60) and parse_rate("5/s") == (5, 1) and parse_rate("100/30s") == (100, 30)
    assert parse_rate("2/h") == (2, 3600)
    for bad in ("10", "0/m", "10/d", "-1/s", "1/0s", "x/m", ""):
        with pytest.raises(InvalidInput, match="rate"):
            parse_rate(bad)


def test_a_unique_key_held_by_an_unfinished_job_adds_nothing_and_answers_with_that_job(store):
    first, created = store.enqueue_or_find(check_job({"command": "nightly", "unique_key": "nightly"}))
    assert created
    again, created = store.enqueue_or_find(check_job({"command": "other", "unique_key": "nightly", "id": "x1"}))
    assert not created and again["id"] == first["id"] and again["command"] == "nightly"
    claim = store.claim_next("w", 30)
    assert store.enqueue_or_find(check_job({"command": "c", "unique_key": "nightly"}))[1] is False  # processing
    store.finish_run(claim, Outcome(FAILED, 1, "exit code 1"), "")
    assert store.enqueue_or_find(check_job({"command": "c", "unique_key": "nightly"}))[1] is False  # failed
    store.cancel(first["id"])
    third, created = store.enqueue_or_find(check_job({"command": "c", "unique_key": "nightly"}))
    assert created and third["id"] != first["id"]
    assert store.counts()["pending"] == 1


def test_a_dead_job_whose_key_is_held_again_stays_dead_on_retry(store):
    dead = enqueue(store, "false", unique_key="k", max_retries=0)
    store.finish_run(store.claim_next("w", 30), Outcome(FAILED, 1, "exit code 1"), "")
    holder = enqueue(store, "true", unique_key="k")
    with pytest.raises(WrongState, match="unique_key"):
        store.retry_dead(dead)
    assert store.retry_all_dead() == 0 and store.get_job(dead)["state"] == "dead"
    store.cancel(holder)
    assert store.retry_all_dead() == 1 and store.get_job(dead)["state"] == "pending"


def test_bulk_skips_duplicates_inside_the_input_and_against_unfinished_jobs(db_path, store):
    finished = enqueue(store, "true", unique_key="done")
    store.finish_run(store.claim_next("w", 30), DONE, "")
    holder = enqueue(store, "true", unique_key="held")
    lines = [{"command": "a", "unique_key": "new"}, {"command": "b", "unique_key": "new"},
             {"command": "c", "unique_key": "held"}, {"command": "d"}, {"command": "e", "unique_key": "done"}]
    result = run_cli(db_path, "enqueue", "-", input="\n".join(json.dumps(line) for line in lines))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3 added, 2 skipped as duplicates (unique_key)"
    commands = sorted(job["command"] for job in store.list_jobs(limit=100) if job["id"] not in (holder, finished))
    assert commands == ["a", "d", "e"]
    ids = store.enqueue_many([(1, check_job({"command": "f", "unique_key": "new"})),
                              (2, check_job({"command": "g"}))])
    assert len(ids) == 1 and [line for line, _, _ in ids.duplicates] == [1]


def test_bulk_of_many_keyed_jobs_takes_the_staged_path_and_still_skips(store):
    enqueue(store, "true", unique_key="k-7")
    specs = [(n, check_job({"command": "true", "unique_key": f"k-{n % 6000}", "queue": "bulk"}))
             for n in range(1, 6001)] + [(6001, check_job({"command": "true", "unique_key": "k-1"}))]
    ids = store.enqueue_many(specs)
    assert len(ids) == 5999 and sorted(line for line, _, _ in ids.duplicates) == [7, 6001]
    assert store.queue_counts()["bulk"]["pending"] == 5999 and store.counts()["pending"] == 6000


def test_a_queue_limit_and_a_concurrency_key_hold_in_the_claim(store):
    for priority in range(5):
        enqueue(store, "true", queue="a", priority=priority)
    for _ in range(3):
        enqueue(store, "true", queue="b")
    for _ in range(4):
        enqueue(store, "true", concurrency_key="k", concurrency_limit=2)
    enqueue(store, "true", concurrency_key="k", concurrency_limit=3)  # its own limit: one more may run
    store.set_queue_limit("a", 2)
    claims = claim_all(store)
    assert sorted(claim.job["queue"] for claim in claims).count("a") == 2
    assert [claim.job["priority"] for claim in claims if claim.job["queue"] == "a"] == [4, 3]
    assert sum(claim.job["concurrency_key"] == "k" for claim in claims) == 3
    assert store.counts()["pending"] == 5 - 2 + 4 - 2
    finished = next(claim for claim in claims if claim.job["queue"] == "a")
    store.finish_run(finished, DONE, "")
    assert [claim.job["queue"] for claim in claim_all(store)] == ["a"]  # its slot, given back
    store.set_queue_limit("a", None)
    assert len(claim_all(store)) == 2 and store.queue_info("a")["limit"] is None


def test_a_worker_given_queues_takes_only_theirs_most_urgent_first(store):
    enqueue(store, "true", queue="a", priority=1, id="a1")
    enqueue(store, "true", queue="b", priority=5, id="b5")
    enqueue(store, "true", queue="c", priority=9, id="c9")
    enqueue(store, "true", priority=7, id="default7")
    assert [claim.id for claim in claim_all(store, ["a", "b"])] == ["b5", "a1"]
    assert store.has_unfinished_jobs(["a", "b"])  # processing
    assert not store.has_unfinished_jobs(["nothing-here"])
    assert [claim.id for claim in claim_all(store, ["default"])] == ["default7"]


def test_pause_and_resume_of_one_queue(store):
    enqueue(store, "true", queue="a", id="a1")
    enqueue(store, "true", queue="b", id="b1")
    assert store.pause(queue="a") is True and store.pause(queue="a") is False
    assert store.queue_info("a")["paused"] and store.paused_since("a")
    assert [claim.id for claim in claim_all(store)] == ["b1"]
    assert claim_all(store, ["a"]) == []
    assert store.resume(queue="a") is True and store.resume(queue="a") is False
    assert [claim.id for claim in claim_all(store, ["a"])] == ["a1"]
    assert store.queue_list()[0]["paused"] is False and not store.status()["paused"]


def test_a_rate_lets_n_starts_through_per_window(store):
    store.set_queue_rate("api", 3, 60)
    for _ in range(5):
        enqueue(store, "true", queue="api")
    now = now_ms() + 1000
    assert len([c for c in (store.claim_next("w", 30, now=now + step) for step in range(5)) if c]) == 3
    assert store.claim_next("w", 30, now=now + 59_999) is None  # the window still holds 3 starts
    assert store.claim_next("w", 30, now=now + 60_000) is not None  # the first start has left it
    assert store.claim_next("w", 30, now=now + 60_000) is None
    assert store.queue_info("api")["rate"] == "3/m"
    store.set_queue_rate("api", None, None)
    assert store.claim_next("w", 30, now=now + 60_001) is not None and store.queue_list()[0]["rate"] is None


def test_queue_list_counts_per_queue_and_state(store):
    enqueue(store, "true", queue="a")
    enqueue(store, "false", queue="a", max_retries=0)
    store.set_queue_limit("empty", 4)
    store.finish_run(store.claim_next("w", 30), DONE, "")
    entries = {entry["name"]: entry for entry in store.queue_list()}
    assert set(entries) == {"a", "empty"}
    assert entries["a"]["counts"] == {"pending": 1, "processing": 0, "completed": 1, "failed": 0, "dead": 0,
                                      "cancelled": 0}
    assert entries["empty"]["limit"] == 4 and sum(entries["empty"]["counts"].values()) == 0
    assert store.counts()["completed"] == 1 and store.queue_counts()["a"]["completed"] == 1


def test_filters_by_queue_and_tag(db_path, store):
    enqueue(store, "true", queue="a", tags=["x", "y"], id="ax")
    enqueue(store, "true", queue="a", id="a-plain")
    enqueue(store, "true", queue="b", tags=["x_"], id="bx_")
    enqueue(store, "true", tags=["xy"], id="xy")
    assert [job["id"] for job in cli_json(db_path, "list", "--queue", "a")] == ["a-plain", "ax"]
    assert [job["id"] for job in cli_json(db_path, "list", "--tag", "x")] == ["ax"]
    assert [job["id"] for job in cli_json(db_path, "list", "--queue", "b", "--tag", "x_")] == ["bx_"]
    assert store.search_jobs(tag="y", queue="a")[1] == 1
    assert_refused(run_cli(db_path, "list", "--queue", "a b"), 2, "queue")
    assert_refused(run_cli(db_path, "list", "--tag", "\"x\""), 2, "tag")


def test_queue_commands_and_their_bad_input(db_path):
    assert run_cli(db_path, "queue", "limit", "deploy", "1").stdout.strip() == \
        "Queue deploy: at most 1 job processing at once."
    assert run_cli(db_path, "queue", "rate", "api", "10/m").returncode == 0
    assert run_cli(db_path, "pause", "--queue", "api").returncode == 0
    listed = cli_json(db_path, "queue", "list")
    assert [(q["name"], q["limit"], q["rate"], q["paused"]) for q in listed] == [
        ("api", None, "10/m", True), ("deploy", 1, None, False)]
    for args, word in ((("queue", "limit", "deploy", "0"), "limit"), (("queue", "limit", "deploy", "x"), "limit"),
                       (("queue", "rate", "api", "10/d"), "rate"), (("queue", "limit", "bad name", "1"), "queue"),
                       (("pause", "--queue", "a/b"), "queue"), (("resume", "--queue", ""), "queue"),
                       (("worker", "start", "--queue", "a b", "--burst"), "--queue")):
        assert_refused(run_cli(db_path, *args), 2, word)
    assert run_cli(db_path, "queue", "limit", "deploy", "none").returncode == 0
    assert run_cli(db_path, "queue", "rate", "api", "none").returncode == 0
    assert run_cli(db_path, "resume", "--queue", "api").returncode == 0
    assert cli_json(db_path, "queue", "list") == []


def test_enqueue_of_a_held_unique_key_exits_0_with_the_holders_id(db_path):
    job = json.dumps({"command": "true", "unique_key": "once"})
    first = run_cli(db_path, "enqueue", job)
    second = run_cli(db_path, "enqueue", job)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout and "nothing added" in second.stderr
    assert len(cli_json(db_path, "list")) == 1


def test_every_flow_claim_walks_an_index_in_its_order(sqlite_path):
    """The flow claims (every queue; one queue; several) use jobs_ready / jobs_queue_ready for their order: no
    scan of the jobs table and no sort of waiting jobs; several queues sort only their heads (one row each)."""
    from queuectl_core.store import open_store

    store = open_store(str(sqlite_path))
    params = {"worker": "w", "token": "t", "expires": 0, "now": 0, "q0": "a", "q1": "b"}
    for queues, index in ((None, "jobs_ready"), (["a"], "jobs_queue_ready"), (["a", "b"], "jobs_queue_ready")):
        plan = [row[3] for row in store.connection.execute("EXPLAIN QUERY PLAN " + store._flow_statement(queues),
                                                           params)]
        scans = [step for step in plan if step.startswith(("SCAN jobs", "SEARCH jobs USING INDEX"))]
        assert scans and all(index in step for step in scans), plan
        assert len(scans) == len(queues or [None])
        sorts = [position for position, step in enumerate(plan) if "TEMP B-TREE" in step]
        assert sorts == ([] if not queues or len(queues) == 1 else [len(plan) - 1]), plan  # the heads' sort only
    store.close()


def test_a_blocked_queues_backlog_does_not_hide_the_jobs_behind_it(store):
    """The claim for every queue looks at a bounded window of due jobs; past a window of a paused queue's
    backlog (or a full one's) it finds the open queues' jobs through their own heads."""
    store.pause(queue="big")
    for _ in range(150):
        enqueue(store, "true", queue="big", priority=5)
    enqueue(store, "true", queue="small", id="behind")
    store.set_queue_limit("full", 1)
    for _ in range(100):
        enqueue(store, "true", queue="full", priority=3)
    first = store.claim_next("w", 30)
    assert first.job["queue"] == "full"
    assert store.claim_next("w", 30).id == "behind"
    assert store.claim_next("w", 30) is None
    store.resume(queue="big")
    assert store.claim_next("w", 30).job["queue"] == "big"


def test_the_plain_claims_guard_probes_an_index_of_keyed_jobs_only(sqlite_path):
    """FLOW_ON in the plain claim: without INDEXED BY jobs_keyed, SQLite walked every pending job through
    jobs_by_state to find none with a key (287 ms per claim at 1M jobs, caught by the bench)."""
    from queuectl_core.store import open_store
    from queuectl_core.store.sqlite import CLAIM

    store = open_store(str(sqlite_path))
    params = {"worker": "w", "token": "t", "expires": 0, "now": 0}
    for statement in (CLAIM, store.q.flow_on):
        plan = [row[3] for row in store.connection.execute("EXPLAIN QUERY PLAN " + statement, params)]
        assert any("jobs_keyed" in step for step in plan) and not any("jobs_by_state" in step for step in plan), plan
    store.close()
