"""The store's batched calls for workers with several slots (`worker start --concurrency K`), on both backends:
claims and results several at once in one transaction, every lease renewed by one statement, fenced per job."""

from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.validation import check_job

NOW = 1_800_000_000_000
DONE = Outcome(COMPLETED, 0, None)


def add(store, job_id, **fields):
    return store.enqueue(check_job({"id": job_id, "command": "true", **fields}), now=NOW)


def test_claim_many_takes_up_to_its_count_in_priority_order_and_no_job_twice(store):
    for index in range(5):
        add(store, f"j{index}", priority=index)
    first = store.claim_many("w1", 30, 3, now=NOW)
    assert [claim.id for claim in first] == ["j4", "j3", "j2"]
    rest = store.claim_many("w2", 30, 10, now=NOW)
    assert [claim.id for claim in rest] == ["j1", "j0"]
    assert store.claim_many("w3", 30, 10, now=NOW) == []
    assert {store.get_job(f"j{index}")["worker_id"] for index in range(5)} == {"w1", "w2"}
    # A lease token per claim call, fenced with each job's seq: the two workers' leases never match.
    assert {claim.token for claim in first}.isdisjoint({claim.token for claim in rest})


def test_claim_many_keeps_a_concurrency_key_to_its_limit_within_one_batch(store):
    for index in range(4):
        add(store, f"k{index}", concurrency_key="deploy", concurrency_limit=2)
    claims = store.claim_many("w1", 30, 4, now=NOW)
    assert len(claims) == 2
    assert store.claim_many("w2", 30, 4, now=NOW) == []


def test_finish_runs_records_each_result_and_claims_the_free_slots_in_one_call(store):
    for index in range(4):
        add(store, f"j{index}", max_retries=0)
    running = store.claim_many("w1", 30, 2, now=NOW)
    transitions, claims = store.finish_runs(
        [(running[0], DONE, "zero", 0), (running[1], Outcome(FAILED, 3, "exit code 3"), "one", 0)],
        "w1", 30, 2, now=NOW + 10)
    assert [transition.state for transition in transitions] == ["completed", "dead"]
    assert sorted(claim.id for claim in claims) == ["j2", "j3"]
    assert store.get_job(running[0].id, history=True)["history"][-1]["output"] == "zero"
    assert store.get_job(running[1].id)["exit_code"] == 3


def test_finish_runs_refuses_only_the_result_whose_lease_was_lost(store):
    add(store, "kept")
    add(store, "lost")
    kept, lost = store.claim_many("w1", 1, 2, now=NOW)
    assert sorted(store.reclaim_expired(now=NOW + 5_000)) == ["kept", "lost"]  # both leases (1 s) ran out
    again = store.claim_many("w2", 30, 2, now=NOW + 60_000)  # after the retry's backoff: another worker holds both
    assert sorted(claim.id for claim in again) == ["kept", "lost"]
    store.finish_runs([(next(c for c in again if c.id == "kept"), DONE, "", 0)], now=NOW + 60_100)
    transitions, _ = store.finish_runs([(kept, DONE, "", 0), (lost, DONE, "", 0)], now=NOW + 60_200)
    assert transitions == [None, None]  # fenced: neither result of the old leases counts
    assert store.get_job("lost")["state"] == "processing"
    assert store.get_job("lost")["worker_id"] == "w2"


def test_one_heartbeat_renews_every_lease_and_names_the_lost_and_the_cancelled(store):
    for index in range(3):
        add(store, f"j{index}")
    claims = store.claim_many("w1", 2, 3, now=NOW)
    store.register_worker("w1", "host", 1, now=NOW, concurrency=3)
    store.cancel(claims[1].id)
    beat = store.heartbeat("w1", 2, claims, now=NOW + 1_500)
    assert beat.lost == frozenset() and beat.lease_held
    assert beat.cancelled == {claims[1].seq} and beat.cancel_requested
    # Renewed at NOW + 1.5 s for 2 s: nothing has expired at NOW + 3 s.
    assert store.reclaim_expired(now=NOW + 3_000) == []
    assert store.reclaim_expired(now=NOW + 4_000) != []
    beat = store.heartbeat("w1", 2, claims, now=NOW + 4_100)
    assert beat.lost == {claim.seq for claim in claims} and not beat.lease_held


def test_a_renewal_never_extends_a_lease_another_worker_took_over(store):
    add(store, "j")
    (old,) = store.claim_many("w1", 1, 1, now=NOW)
    store.reclaim_expired(now=NOW + 2_000)
    (new,) = store.claim_many("w2", 30, 1, now=NOW + 60_000)  # after the retry's backoff
    assert store.heartbeat("w1", 30, [old], now=NOW + 60_100).lost == {old.seq}
    assert store.get_job("j")["worker_id"] == "w2"
    assert store.heartbeat("w2", 30, [new], now=NOW + 60_100).lease_held


def test_flush_outputs_stores_every_tail_in_one_call_and_reports_the_cancelled(store):
    add(store, "a")
    add(store, "b")
    a, b = store.claim_many("w1", 30, 2, now=NOW)
    store.cancel("b")
    assert store.flush_outputs([(a, "tail a", 0), (b, "tail b", 7)]) == {b.seq}
    assert store.get_job("a", history=True)["history"][-1]["output"] == "tail a"
    assert store.get_job("b", history=True)["history"][-1]["output"] == "tail b"


def test_worker_list_shows_the_slots_and_every_running_job(store):
    for index in range(3):
        add(store, f"j{index}")
    store.register_worker("w1", "host", 1, concurrency=4)
    store.register_worker("w2", "host", 2)
    store.claim_many("w1", 30, 2, now=NOW)
    workers = {worker["id"]: worker for worker in store.live_workers()}
    assert workers["w1"]["concurrency"] == 4
    assert sorted(job["id"] for job in workers["w1"]["jobs"]) == ["j0", "j1"]
    assert workers["w1"]["current_job"] in {"j0", "j1"}
    assert workers["w2"]["concurrency"] == 1 and workers["w2"]["jobs"] == []
    assert workers["w2"]["current_job"] is None and workers["w2"]["current_job_started_at"] is None


def test_one_set_based_finish_takes_every_kind_of_result_and_each_one_counts_as_alone(store):
    # Five ends recorded together: a completion with a success hook, a failure retried later, a last failure with a
    # dead hook and a dependent, a run whose job was cancelled meanwhile, and one whose lease another worker holds.
    add(store, "ok", on_success={"command": "echo hooked"})
    add(store, "retry", max_retries=3)
    add(store, "last", max_retries=1, on_dead={"command": "echo dead hook"})  # the lost run is its first try
    add(store, "cancelled")
    add(store, "stolen")
    claims = {claim.id: claim for claim in store.claim_many("w1", 1, 5, now=NOW)}
    add(store, "after-last", after=["last"])
    store.cancel("cancelled")
    store.reclaim_expired(now=NOW + 2_000)  # every lease (1 s) ran out: handed back...
    claims_of_others = store.claim_many("w2", 30, 10, now=NOW + 60_000)  # ...and taken again by another worker
    assert sorted(claim.id for claim in claims_of_others) == ["last", "ok", "retry", "stolen"]
    # Only "stolen" really belongs to w2 here: the others get their first claims back, as w1 would hold them had
    # nothing expired, by finishing w2's claims of them in w1's place.
    results = [(claim, DONE if claim.id == "ok" else Outcome(FAILED, 1, "exit code 1"), f"out {claim.id}", 0)
               for claim in claims_of_others if claim.id != "stolen"]
    results.append((claims["stolen"], DONE, "late", 0))  # w1's stale claim: fenced off
    transitions, _ = store.finish_runs(results, now=NOW + 61_000)
    states = {claim.id: (transition and transition.state) for (claim, *_), transition in zip(results, transitions)}
    assert states == {"ok": "completed", "retry": "failed", "last": "dead", "stolen": None}
    assert store.get_job("stolen")["state"] == "processing"  # still w2's
    assert store.get_job("after-last")["state"] == "dead"  # its dependency ended badly
    hooks = {job["command"] for job in store.list_jobs(limit=50) if job["parent_id"]}
    assert hooks == {"echo hooked", "echo dead hook"}
    ok = store.get_job("ok", history=True)["history"][-1]
    assert (ok["output"], ok["exit_code"], ok["error"]) == ("out ok", 0, None) and ok["finished_at"]
    counts = store.counts()
    assert counts["completed"] == 1 and counts["dead"] == 2 and counts["cancelled"] == 1
    assert counts["processing"] == 1  # "stolen"


def test_a_cancel_asked_during_the_run_is_decided_with_in_a_set_based_finish(store):
    add(store, "a")
    add(store, "b")
    a, b = store.claim_many("w1", 30, 2, now=NOW)
    store.cancel("b")
    transitions, _ = store.finish_runs([(a, DONE, "", 0), (b, Outcome(FAILED, None, "cancelled by request"), "", 0)],
                                       now=NOW + 10)
    assert [transition.state for transition in transitions] == ["completed", "cancelled"]
    assert store.get_job("b")["state"] == "cancelled"


def test_a_worker_turn_is_one_statement_on_postgresql_and_every_count_stays_exact(pg_url):
    # On PostgreSQL the results of a turn and its next claims are one statement (its own transaction), the
    # bookkeeping done by statement triggers: the per-state counts and the run totals must still add up exactly.
    from queuectl_core.store import open_store

    store = open_store(pg_url)
    try:
        for index in range(25):
            add(store, f"j{index}", max_retries=3)
        store.get_settings()  # as a worker's heartbeat reads them: the state machine decides with these
        sent = []
        execute = store.connection.execute
        store.connection.execute = lambda statement, *args, **kwargs: (sent.append(statement),
                                                                          execute(statement, *args, **kwargs))[1]
        running = store.claim_many("w1", 30, 10, now=NOW)
        assert len(running) == 10 and len(sent) == 1
        finished = 0
        while running:
            sent.clear()
            results = [(claim, DONE if claim.seq % 3 else Outcome(FAILED, 2, "exit code 2"), "out", 0)
                       for claim in running]
            transitions, running = store.finish_runs(results, "w1", 30, 10, now=NOW + 10 + finished)
            assert len(sent) == 1 and None not in transitions
            finished += len(results)
        store.connection.execute = execute
        actual = dict(store.connection.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        assert {state: n for state, n in store.counts().items() if n} == actual
        assert actual["failed"] > 0 and actual["completed"] > 0  # failures wait for their retry's backoff
        ended_runs = store.connection.execute("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL").fetchone()[0]
        totals = store.connection.execute("SELECT sum(succeeded), sum(failed) FROM run_totals").fetchone()
        assert ended_runs == finished == totals[0] + totals[1] and totals[1] > 0
    finally:
        store.close()


def test_a_heartbeat_is_one_statement_on_postgresql_busy_or_idle(pg_url):
    from queuectl_core.store import open_store

    store = open_store(pg_url)
    try:
        store.register_worker("w1", "host-a", 1, now=NOW)
        store.register_worker("gone", "host-b", 2, now=NOW - 3_600_000)  # silent for an hour: forgotten
        add(store, "a")
        add(store, "b")
        a, b = store.claim_many("w1", 30, 2, now=NOW)
        store.cancel("b")
        sent = []
        execute = store.connection.execute
        store.connection.execute = lambda statement, *args, **kwargs: (sent.append(statement),
                                                                          execute(statement, *args, **kwargs))[1]
        busy = store.heartbeat("w1", 30, [a, b], now=NOW + 1_000)
        idle = store.heartbeat("w1", 30, now=NOW + 2_000)
        store.connection.execute = execute
        assert len(sent) == 2
        assert (busy.lost, busy.cancelled, busy.lease_held, busy.rejoined) == (frozenset(), {b.seq}, True, False)
        assert (idle.lost, idle.stop_requested, idle.leases_expired) == (frozenset(), False, False)
        assert busy.settings["lease_timeout"] == store.get_settings()["lease_timeout"]
        assert [worker["id"] for worker in store.live_workers(now=NOW + 2_000)] == ["w1"]
        expires = store.connection.execute("SELECT lease_expires_at FROM jobs WHERE seq = %s", (a.seq,)).fetchone()[0]
        assert expires == NOW + 1_000 + 30_000  # renewed by the busy heartbeat (the idle one holds no lease)
    finally:
        store.close()


def test_a_large_bulk_enqueue_on_postgresql_leaves_the_planner_fresh_statistics(pg_url):
    # Claims right after a bulk load plan with the table's statistics: stale ones (a queue analyzed while empty)
    # made a claim walk every waiting job. A load of 10,000 jobs or more analyzes the jobs table; a small one not.
    import time

    from queuectl_core.store import open_store

    store = open_store(pg_url)
    try:
        def analyzed():
            time.sleep(0.2)  # ANALYZE's report reaches the statistics views within a moment
            return store.connection.execute(
                "SELECT coalesce(analyze_count, 0) FROM pg_stat_user_tables"
                " WHERE relname = 'jobs' AND schemaname = current_schema()").fetchone()[0]

        store.enqueue_many([(n, check_job({"command": "true"})) for n in range(100)], now=NOW)
        assert analyzed() == 0
        store.enqueue_many([(n, check_job({"command": "true"})) for n in range(10_000)], now=NOW)
        assert analyzed() == 1
        estimate = store.connection.execute("SELECT reltuples FROM pg_class WHERE oid = 'jobs'::regclass").fetchone()[0]
        assert estimate > 9_000
        assert len(store.claim_many("w1", 30, 10, now=NOW)) == 10
    finally:
        store.close()


def test_the_jobs_a_turn_claimed_come_back_with_the_next_turn_when_its_reply_was_lost(pg_url):
    # The server ran the turn (a result recorded, two jobs claimed) but its reply never came back: the worker
    # offers its result again, which is known as recorded, and its next turn takes up those two claims instead of
    # leaving them leased to no one until their leases expire (which would cost each job a "worker lost" attempt).
    import threading
    from urllib.parse import urlsplit

    from helpers import wait_for
    from queuectl_core.errors import DatabaseError
    from queuectl_core.store import open_store
    from relay import Relay

    link = Relay(urlsplit(pg_url).port)
    observer = open_store(pg_url)
    store = open_store(pg_url.replace(f":{urlsplit(pg_url).port}/", f":{link.port}/"))
    try:
        for job_id in ("a", "b", "c", "d"):
            add(observer, job_id)
        store.get_settings()
        [first] = store.claim_many("w1", 30, 1, now=NOW)
        link.mute_replies()
        failures = []

        def turn():
            try:
                store.finish_runs([(first, DONE, "out", 0)], "w1", 30, 2, now=NOW + 10)
            except DatabaseError as error:
                failures.append(error)

        offered = threading.Thread(target=turn)
        offered.start()
        wait_for(lambda: observer.get_job(first.id)["state"] == "completed", timeout=10,
                 message="the server to commit the turn")
        link.cut()
        offered.join(timeout=30)
        assert len(failures) == 1  # the worker saw an error, not the turn's answer
        link.restore()
        taken = [job["id"] for job in observer.list_jobs(state="processing")]
        assert len(taken) == 2
        [again], claims = store.finish_runs([(first, DONE, "out", 0)], "w1", 30, 2, now=NOW + 20)
        assert again is not None and again.state == "completed"  # recorded once, by the lost turn: not "dropped"
        assert sorted(claim.id for claim in claims) == sorted(taken)  # the lost turn's claims, not two more
        leases = {row[0] for row in observer.connection.execute(
            "SELECT lease_expires_at FROM jobs WHERE state = 'processing'").fetchall()}
        assert leases == {NOW + 20 + 30_000}  # from this turn on, as the worker's lease guard counts them
        assert observer.counts()["pending"] == 1 and observer.counts()["processing"] == 2
        transitions, _ = store.finish_runs([(claim, DONE, "", 0) for claim in claims], "w1", 30, 0, now=NOW + 30)
        assert [transition.state for transition in transitions] == ["completed", "completed"]
        assert [len(observer.get_job(job_id, history=True)["history"]) for job_id in taken] == [1, 1]
    finally:
        store.close()
        observer.close()
        link.cut()
