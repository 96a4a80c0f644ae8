"""PostgreSQL: the hand-back of expired leases is fenced, and no wait is unbounded (issue 13, items 2 and 3).

- Two workers reclaiming at once under READ COMMITTED: B read the expired job, A handed it back, C claimed and
  completed it, then B's update (WHERE seq = ... only) overwrote C's result: a completed job ran again.
- No lock_timeout, statement_timeout or idle_in_transaction_session_timeout: a worker frozen in the middle of its
  heartbeat (SIGSTOP, `docker pause`) kept its row locks for ever, and once its heartbeat was 2 x lease_timeout old
  every other worker's heartbeat (which deletes such rows) waited behind it: no claims, no lease renewals.
"""

import os
import signal
import socket
import threading
import time

import psycopg
import pytest
from helpers import POSTGRES_URL, QUIET, enqueue, run_cli, wait_for
from queuectl_core.lifecycle import COMPLETED, Outcome
from queuectl_core.store import open_store

HOLD = 4242  # the advisory lock a test holds to stop a chosen connection at a chosen statement

# A statement trigger (it fires before any row is locked) that makes the connections named `held` wait for the
# test's advisory lock at their first UPDATE of `table`.
HOLD_AT_UPDATE = """
CREATE FUNCTION hold_here() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('application_name') = 'held' THEN
        PERFORM set_config('lock_timeout', '0', true);
        PERFORM pg_advisory_xact_lock({hold});
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER hold_here BEFORE UPDATE ON {table} FOR EACH {level} EXECUTE FUNCTION hold_here();
"""


def held_url(url):
    return f"{url}&application_name=held"


def wait_until_held(admin):
    wait_for(lambda: admin.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = 'held'"
                                   " AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone(),
             timeout=30, message="the held connection to reach the trigger")


def setting(connection, name):
    return connection.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()[0]


def tcp_option(connection, option):
    with socket.socket(fileno=os.dup(connection.fileno())) as sock:
        return sock.getsockopt(socket.IPPROTO_TCP, option)


def test_a_reclaim_that_read_an_expired_job_before_another_hand_back_never_reopens_the_job(pg_url):
    a, b, c = open_store(pg_url), open_store(held_url(pg_url)), open_store(pg_url)
    try:
        a.set_settings({"backoff_max": 0})  # a lost run is retried at once: C can claim it again
        job = enqueue(a, "true")
        assert a.claim_next("lost-worker", 0.001) is not None  # its lease expires at once
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(HOLD_AT_UPDATE.format(hold=HOLD, table="jobs", level="STATEMENT"))
            admin.execute("SELECT pg_advisory_lock(%s)", (HOLD,))
            reclaimed_by_b = []
            reclaimer = threading.Thread(target=lambda: reclaimed_by_b.append(b.reclaim_expired()))
            reclaimer.start()
            wait_until_held(admin)  # B has read the expired job and is about to hand it back

            reclaimed_by_a = a.reclaim_expired()
            claim = c.claim_next("worker-c", 30)
            if claim is not None:
                assert c.finish_run(claim, Outcome(COMPLETED, 0, None), "ok\n").state == "completed"
            admin.execute("SELECT pg_advisory_unlock(%s)", (HOLD,))
            reclaimer.join(timeout=30)
        assert not reclaimer.is_alive()
        if claim is not None:  # C completed the job while B held its stale read: B must leave it so
            assert a.get_job(job)["state"] == "completed"
        else:
            claim = c.claim_next("worker-c", 30)
            c.finish_run(claim, Outcome(COMPLETED, 0, None), "ok\n")
        assert sorted(reclaimed_by_a + reclaimed_by_b[0]) == [job]  # handed back once
        record = a.get_job(job, history=True)
        assert record["state"] == "completed"
        runs = [(run["worker_id"], run["exit_code"], (run["error"] or "")[:11]) for run in record["history"]]
        assert runs == [("lost-worker", None, "worker lost"), ("worker-c", 0, "")]
    finally:
        for store in (a, b, c):
            store.close()


def test_every_connection_of_a_postgresql_store_bounds_its_waits_and_follows_lease_timeout(pg_url):
    store = open_store(pg_url)
    pooled = open_store(pg_url, pooled=True)
    watcher = pooled.change_watcher()  # a pooled store's watcher has a connection of its own
    try:
        # lease_timeout 30 (the default): a third of it for locks, an idle transaction and an unanswered network
        for connection in (store.connection, pooled.connection, watcher._connection):
            assert setting(connection, "lock_timeout") == "10000"
            assert setting(connection, "idle_in_transaction_session_timeout") == "10000"
            assert setting(connection, "statement_timeout") == "30000"
            assert setting(connection, "search_path").startswith("test_")  # the URL's own options are kept
            assert tcp_option(connection, socket.TCP_USER_TIMEOUT) == 10_000
            assert tcp_option(connection, socket.TCP_KEEPIDLE) == 5
            with socket.socket(fileno=os.dup(connection.fileno())) as sock:
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1

        # A worker follows a new lease_timeout at its next heartbeat, and keeps it across a reconnection.
        run_cli(pg_url, "config", "set", "lease_timeout", "6")
        store.register_worker("w1", "host", 1)
        store.heartbeat("w1", 30)
        assert setting(store.connection, "lock_timeout") == "2000"
        assert tcp_option(store.connection, socket.TCP_USER_TIMEOUT) == 2000
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store.connection.info.backend_pid,))
        with pytest.raises(store.Error):
            store.heartbeat("w1", 6)
        store.heartbeat("w1", 6)  # on a new connection
        assert setting(store.connection, "lock_timeout") == "2000"
        assert setting(store.connection, "idle_in_transaction_session_timeout") == "2000"
        assert tcp_option(store.connection, socket.TCP_USER_TIMEOUT) == 2000
    finally:
        watcher.close()
        pooled.close()
        store.close()

    # What the URL sets itself it keeps.
    assert "options=-csearch_path" in pg_url
    own = open_store(pg_url.replace("options=", "options=-clock_timeout%3D7000%20") + "&tcp_user_timeout=4321")
    try:
        assert setting(own.connection, "lock_timeout") == "7000"
        assert setting(own.connection, "statement_timeout") == "30000"
        assert tcp_option(own.connection, socket.TCP_USER_TIMEOUT) == 4321
    finally:
        own.close()


def test_a_worker_frozen_in_the_middle_of_its_heartbeat_stalls_no_other_worker(pg_url, processes):
    store = open_store(pg_url)
    try:
        store.set_settings({"lease_timeout": 3})
        with psycopg.connect(pg_url, autocommit=True) as admin:
            # The frozen worker is stopped inside its heartbeat, a statement that is its own transaction.
            admin.execute(HOLD_AT_UPDATE.format(hold=HOLD, table="workers", level="ROW"))
            admin.execute("SELECT pg_advisory_lock(%s)", (HOLD,))
            frozen = processes.start_workers(held_url(pg_url), "--count", "1", env=QUIET)
            wait_until_held(admin)
            worker_pid = admin.execute("SELECT pid FROM workers").fetchone()[0]  # the supervisor's child
            os.kill(worker_pid, signal.SIGSTOP)
            admin.execute("SELECT pg_advisory_unlock(%s)", (HOLD,))
            # The server ends the statement and commits it without its client: nothing is left open or locked.
            wait_for(lambda: admin.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = 'held'"
                                           " AND state = 'idle'").fetchone(),
                     timeout=10, message="the frozen worker's heartbeat to end without it")
            others = processes.start_workers(pg_url, "--count", "2", env=QUIET)
            long = enqueue(store, "sleep 9; echo done")  # its lease must be renewed all along
            began = time.monotonic()
            wait_for(lambda: store.get_job(long)["state"] == "processing", timeout=30, message="the long job")
            # Past 2 x lease_timeout the frozen worker's row is old: every heartbeat wants to delete it.
            time.sleep(7)
            quick = [enqueue(store, "echo quick") for _ in range(5)]
            wait_for(lambda: all(store.get_job(job)["state"] == "completed" for job in quick), timeout=10,
                     message="the other workers to claim new jobs")
            wait_for(lambda: store.get_job(long)["state"] == "completed", timeout=30, message="the long job to end")
            assert time.monotonic() - began < 25
            runs = store.get_job(long, history=True)["history"]
            assert [(run["exit_code"], run["error"]) for run in runs] == [(0, None)]  # its lease never lapsed
            # The frozen worker's session holds no transaction open.
            assert admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'held'"
                                 " AND state = 'idle in transaction'").fetchone()[0] == 0
        # Resumed, it finds its row forgotten meanwhile, joins again and goes on like the others.
        os.kill(worker_pid, signal.SIGCONT)
        late = enqueue(store, "echo late")
        wait_for(lambda: store.get_job(late)["state"] == "completed", timeout=30, message="a job after the thaw")
        wait_for(lambda: len(store.live_workers()) == 3, timeout=20, message="all three workers listed")
        assert run_cli(pg_url, "worker", "stop").returncode == 0
        assert frozen.wait(timeout=30) == 0 and others.wait(timeout=30) == 0
    finally:
        store.close()
