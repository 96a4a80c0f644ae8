"""Issue 7 with real processes on both backends: logs --follow, cancel, pause/resume, dependencies, wait,
exit-code policies, purge and retention, dlq retry --all / purge, shell completion."""

import json
import os
import pty
import select
import subprocess
import time

from helpers import QUEUECTL, QUIET, alive, cli_json, enqueue, run_cli, state_of, wait_for, wait_state
from queuectl_cli.logs import new_output
from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.store import SqliteStore
from queuectl_core.timeutil import now_ms
from queuectl_core.validation import check_job


def read_pids(path):
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def finish_at(store, job_id, ended_ms, failed=False):
    """Run job `job_id` (due now) to its end at `ended_ms` without a worker, so that its age is known."""
    claim = store.claim_next("test", 30)
    assert claim.id == job_id
    outcome = Outcome(FAILED, 1, "exit code 1") if failed else Outcome(COMPLETED, 0, None)
    store.finish_run(claim, outcome, "output\n", now=ended_ms)


# ---- logs ---------------------------------------------------------------------------------------------


def test_a_followed_log_prints_lines_as_they_come_then_exits_0(store, db_path, processes):
    job_id = enqueue(store, "for n in 1 2 3; do echo line $n; sleep 1.2; done; echo done >&2")
    follower = subprocess.Popen([QUEUECTL, "logs", job_id, "--follow"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, "QUEUECTL_DB": str(db_path)},
                                start_new_session=True)
    processes.processes.append(follower)
    processes.start_workers(db_path, env=QUIET)
    arrivals = []
    for line in follower.stdout:
        arrivals.append((time.monotonic(), line.decode().rstrip("\n")))
    assert follower.wait(timeout=30) == 0, follower.stderr.read()
    assert [text for _, text in arrivals] == ["line 1", "line 2", "line 3", "done"]
    # Lines arrive while the job runs (1.2 s apart), not all at its end; generous bounds on a busy machine.
    assert arrivals[2][0] - arrivals[0][0] > 1.2, arrivals
    assert state_of(store, job_id) == "completed"


def test_logs_prints_the_latest_run_or_run_n(store, db_path, processes):
    job_id = enqueue(store, 'echo "run $QUEUECTL_ATTEMPT"; [ "$QUEUECTL_ATTEMPT" = 2 ]', max_retries=2)
    store.set_setting("backoff_base", "1")
    workers = processes.start_workers(db_path, "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0
    assert run_cli(db_path, "logs", job_id).stdout == "run 2\n"
    assert run_cli(db_path, "logs", job_id, "--attempt", "1").stdout == "run 1\n"
    assert run_cli(db_path, "logs", job_id, "--follow").stdout == "run 2\n"  # ended: prints and exits
    missing = run_cli(db_path, "logs", job_id, "--attempt", "3")
    assert missing.returncode == 1 and "has no run 3 (its runs are 1 to 2)" in missing.stderr
    assert run_cli(db_path, "logs", job_id, "--attempt", "0").returncode == 2
    assert run_cli(db_path, "logs", "nope").returncode == 1


def test_logs_follow_of_a_pending_job_waits_for_its_run(store, db_path, processes):
    job_id = enqueue(store, "echo started; sleep 0.5; echo finished")
    follower = processes.start([QUEUECTL, "logs", "-f", job_id], env={"QUEUECTL_DB": str(db_path)},
                               stdout=subprocess.PIPE)
    time.sleep(0.5)
    assert follower.poll() is None  # waiting for the run
    processes.start_workers(db_path, env=QUIET)
    out, _ = follower.communicate(timeout=30)
    assert follower.returncode == 0
    assert out.decode() == "started\nfinished\n"
    assert "Waiting for run 1" in processes.log(follower)


def test_following_an_output_longer_than_the_kept_tail_says_what_was_skipped():
    run = {"output": "[... 100 earlier bytes not kept ...]\nxyz", "output_offset": 100}
    assert new_output(run, 0) == ("[... 100 bytes not kept ...]\nxyz", 103)
    assert new_output(run, 101) == ("yz", 103)
    assert new_output(run, 103) == ("", 103)
    assert new_output({"output": "héllo", "output_offset": 0}, 1) == ("éllo", 6)  # positions count bytes


# ---- cancel ---------------------------------------------------------------------------------------------


def test_a_cancelled_sleep_has_all_its_processes_gone_and_is_not_retried(store, db_path, processes, tmp_path):
    pids = tmp_path / "pids"
    job_id = enqueue(store, f"sleep 300 & echo $! >> {pids}; setsid sleep 301 & echo $! >> {pids};"
                            f" echo $$ >> {pids}; wait", max_retries=3)
    workers = processes.start_workers(db_path, env=QUIET)
    wait_for(lambda: len(read_pids(pids)) == 3, message="the job's processes to start")
    result = run_cli(db_path, "cancel", job_id)
    assert result.returncode == 0 and "is running: its worker stops it" in result.stdout
    waited = run_cli(db_path, "wait", job_id, "--timeout", "20")
    assert waited.returncode == 1, waited.stderr
    job = store.get_job(job_id, history=True)
    assert (job["state"], job["attempts"], len(job["history"])) == ("cancelled", 0, 1)
    assert "cancelled by request while running" in job["history"][0]["error"]
    wait_for(lambda: not any(alive(pid) for pid in read_pids(pids)), 10, message="every process of the job to end")
    time.sleep(0.5)
    assert state_of(store, job_id) == "cancelled" and workers.poll() is None  # not retried; the worker goes on
    assert cli_json(db_path, "status")["jobs"]["cancelled"] == 1


def test_cancel_of_a_waiting_job_is_immediate_and_of_an_ended_one_exits_1(store, db_path):
    job_id = enqueue(store, "true", delay=3600)
    result = run_cli(db_path, "cancel", job_id, "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["state"] == "cancelled"
    again = run_cli(db_path, "cancel", job_id)
    assert again.returncode == 1 and "is cancelled: only pending, failed or processing" in again.stderr
    assert run_cli(db_path, "cancel", "nope").returncode == 1
    assert cli_json(db_path, "list", "--state", "cancelled")[0]["id"] == job_id


# ---- pause / resume -------------------------------------------------------------------------------------


def test_a_paused_queue_claims_nothing_while_the_running_job_finishes(store, db_path, processes):
    running = enqueue(store, "sleep 1; echo finished")
    processes.start_workers(db_path, "--count", "2", env=QUIET)
    wait_state(store, running, "processing")
    assert run_cli(db_path, "pause").returncode == 0
    waiting = [enqueue(store, "echo should-wait") for _ in range(3)]
    wait_state(store, running, "completed")
    time.sleep(2.5)  # more than a heartbeat: nothing may be claimed meanwhile
    assert [state_of(store, job_id) for job_id in waiting] == ["pending"] * 3
    assert all(store.get_job(job_id, history=True)["history"] == [] for job_id in waiting)
    status = run_cli(db_path, "status")
    assert "Paused since" in status.stdout and cli_json(db_path, "status")["paused"] is True
    assert run_cli(db_path, "resume").returncode == 0
    for job_id in waiting:
        wait_state(store, job_id, "completed")
    assert cli_json(db_path, "status")["paused"] is False


# ---- dependencies ----------------------------------------------------------------------------------------


def test_a_chain_a_b_c_runs_in_order_on_several_workers(store, db_path, processes, tmp_path):
    log = tmp_path / "order"
    a = enqueue(store, f"sleep 0.5; echo a >> {log}", id="a")
    b = enqueue(store, f"sleep 0.3; echo b >> {log}", id="b", after=[a], priority=5)
    c = enqueue(store, f"echo c >> {log}", id="c", after=[b], priority=9)
    workers = processes.start_workers(db_path, "--count", "3", "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0
    assert log.read_text().split() == ["a", "b", "c"]
    runs = {job_id: store.get_job(job_id, history=True)["history"][0] for job_id in (a, b, c)}
    assert runs["a"]["finished_at"] <= runs["b"]["started_at"] and runs["b"]["finished_at"] <= runs["c"]["started_at"]
    assert cli_json(db_path, "show", "c")["after"] == ["b"]


def test_a_dependent_of_a_dead_job_ends_dead_naming_it(store, db_path, processes, tmp_path):
    marker = tmp_path / "ran"
    enqueue(store, "exit 1", id="fails", max_retries=0)
    enqueue(store, f"touch {marker}", id="needs-it", after=["fails"])
    enqueue(store, f"touch {marker}", id="needs-that", after=["needs-it"])
    workers = processes.start_workers(db_path, "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0
    assert not marker.exists()
    assert store.get_job("needs-it")["last_error"] == "dependency 'fails' ended dead"
    assert store.get_job("needs-that")["last_error"] == "dependency 'needs-it' ended dead"
    result = run_cli(db_path, "wait", "needs-that")
    assert result.returncode == 1 and "needs-that dead: dependency 'needs-it' ended dead" in result.stdout


def test_dependents_enqueued_while_their_dependency_finishes_are_never_left_waiting(store, db_path, processes):
    """Enqueue and completion race: each dependent sees its dependency either unfinished (and gets an edge
    that the completion deletes) or completed (and gets none); none keeps an edge forever."""
    from concurrent.futures import ThreadPoolExecutor

    from queuectl_core.store import open_store

    processes.start_workers(db_path, "--count", "2", env=QUIET)
    dependents = []

    def add_dependents(dependency, thread):
        own = open_store(str(db_path))
        try:
            return [own.enqueue(check_job({"command": "true", "after": [dependency]}))["id"] for _ in range(5)]
        finally:
            own.close()

    with ThreadPoolExecutor(4) as pool:
        for round_number in range(6):
            dependency = enqueue(store, f"sleep 0.0{round_number}")
            for ids in pool.map(add_dependents, [dependency] * 4, range(4)):
                dependents.extend(ids)
    wait_for(lambda: all(state_of(store, job_id) == "completed" for job_id in dependents), 60,
             message="every dependent to complete")
    assert store._read("SELECT count(*) FROM job_deps").fetchone()[0] == 0


def test_enqueue_refuses_malformed_input_with_exit_2_and_unknown_dependencies_with_exit_1(store, db_path):
    enqueue(store, "true", id="known")
    for job, code, words in [
        ({"command": "true", "after": ["known", "unknown"]}, 1, "after: no job with id 'unknown'"),
        ({"command": "true", "id": "me", "after": ["me"]}, 1, "after: job 'me' cannot wait for itself"),
        ({"command": "true", "after": "known"}, 2, "after must be a list"),
        ({"command": "true", "after": ["bad id"]}, 2, "after must hold job ids"),
        ({"command": "true", "retry_on": [0]}, 2, "retry_on must hold exit codes from 1 to 255"),
        ({"command": "true", "no_retry_on": [2.0]}, 2, "no_retry_on must hold exit codes from 1 to 255"),
    ]:
        result = run_cli(db_path, "enqueue", json.dumps(job))
        assert result.returncode == code, (job, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr
    lines = '{"id": "one", "command": "true", "after": ["two"]}\n{"id": "two", "command": "true"}\n'
    bulk = run_cli(db_path, "enqueue", "-", input=lines)
    assert bulk.returncode == 2 and "line 1: after: job 'two' comes on line 2" in bulk.stderr
    lines = '{"id": "one", "command": "true"}\n{"id": "two", "command": "true", "after": ["none"]}\n'
    bulk = run_cli(db_path, "enqueue", "-", input=lines)
    assert bulk.returncode == 1 and "line 2: after: no job with id 'none'" in bulk.stderr
    assert cli_json(db_path, "status")["jobs"]["pending"] == 1


# ---- wait ----------------------------------------------------------------------------------------------------


def test_wait_exits_0_1_or_124(store, db_path, processes):
    ok = enqueue(store, "true")
    bad = enqueue(store, "exit 3", max_retries=0)
    later = enqueue(store, "true", delay=3600)
    processes.start_workers(db_path, env=QUIET)
    result = run_cli(db_path, "wait", ok)
    assert (result.returncode, result.stdout) == (0, f"{ok} completed\n")
    result = run_cli(db_path, "wait", ok, bad)
    assert result.returncode == 1 and f"{bad} dead: exit code 3" in result.stdout
    started = time.monotonic()
    result = run_cli(db_path, "wait", ok, later, "--timeout", "0.5")
    assert result.returncode == 124 and f"still waiting for {later} (pending)" in result.stderr
    assert time.monotonic() - started < 10
    run_cli(db_path, "cancel", later)
    assert run_cli(db_path, "wait", later).returncode == 1
    assert run_cli(db_path, "wait", "nope").returncode == 1
    assert run_cli(db_path, "wait", ok, "--timeout", "soon").returncode == 2
    assert run_cli(db_path, "wait").returncode == 2
    records = json.loads(run_cli(db_path, "wait", ok, bad, "--json").stdout)
    assert [r["state"] for r in records] == ["completed", "dead"]


# ---- exit-code policies -------------------------------------------------------------------------------------


def test_retry_on_and_no_retry_on_decide_which_failures_are_retried(store, db_path, processes):
    store.set_setting("backoff_base", "1")
    usage = enqueue(store, "exit 2", max_retries=3, no_retry_on=[2])
    other = enqueue(store, "exit 4", max_retries=3, retry_on=[1, 3])
    listed = enqueue(store, "exit 3", max_retries=1, retry_on=[1, 3])
    slow = enqueue(store, "sleep 5", max_retries=3, timeout=0.3, no_retry_on=["timeout"])
    workers = processes.start_workers(db_path, "--burst", env=QUIET)
    assert workers.wait(timeout=60) == 0
    jobs = {job_id: store.get_job(job_id) for job_id in (usage, other, listed, slow)}
    assert [(jobs[j]["state"], jobs[j]["attempts"]) for j in (usage, other, listed, slow)] == [
        ("dead", 1), ("dead", 1), ("dead", 2), ("dead", 1)]
    assert jobs[usage]["last_error"] == "exit code 2 (not retried: no_retry_on)"
    assert jobs[slow]["last_error"].startswith("timeout")


# ---- purge and retention --------------------------------------------------------------------------------------


def test_purge_keeps_what_it_should(store, db_path):
    day_ago = now_ms() - 86_400_000
    enqueue(store, "true", id="old-ok")
    finish_at(store, "old-ok", day_ago)
    enqueue(store, "exit 1", id="old-dead", max_retries=0)
    finish_at(store, "old-dead", day_ago, failed=True)
    enqueue(store, "true", id="new-ok")
    finish_at(store, "new-ok", now_ms())
    enqueue(store, "true", id="waiting", delay=3600)
    dry = run_cli(db_path, "purge", "--state", "completed", "--older-than", "12h", "--dry-run")
    assert (dry.returncode, dry.stdout) == (0, "Would delete 1 completed job that ended more than 12h ago.\n")
    refused = run_cli(db_path, "purge", "--state", "completed", "--older-than", "12h")  # no terminal, no --yes
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert {j["id"] for j in cli_json(db_path, "list")} == {"old-ok", "old-dead", "new-ok", "waiting"}
    done = run_cli(db_path, "purge", "--state", "completed", "--older-than", "12h", "--yes")
    assert done.returncode == 0 and "Deleted 1 job" in done.stdout
    assert {j["id"] for j in cli_json(db_path, "list")} == {"old-dead", "new-ok", "waiting"}
    assert run_cli(db_path, "show", "old-ok").returncode == 1
    for bad in (["--state", "pending"], ["--state", "completed", "--older-than", "7x"], []):
        assert run_cli(db_path, "purge", *bad, "--yes").returncode == 2, bad
    assert run_cli(db_path, "dlq", "purge", "--yes", "--json").stdout.strip().startswith("{")
    assert {j["id"] for j in cli_json(db_path, "list")} == {"new-ok", "waiting"}


def test_purge_asks_on_a_terminal_and_deletes_only_after_yes(sqlite_path):
    store = SqliteStore(str(sqlite_path))
    enqueue(store, "true", id="done")
    finish_at(store, "done", now_ms() - 1000)

    def answer(text):
        controller, terminal = pty.openpty()
        process = subprocess.Popen([QUEUECTL, "purge", "--state", "completed"], stdin=terminal, stdout=terminal,
                                   stderr=terminal, env={**os.environ, "QUEUECTL_DB": str(sqlite_path)})
        os.close(terminal)
        seen = b""
        while b"[y/N]" not in seen:
            assert select.select([controller], [], [], 10)[0], seen
            seen += os.read(controller, 1024)
        os.write(controller, text.encode() + b"\n")
        process.wait(timeout=10)
        os.close(controller)
        return process.returncode, seen.decode()

    code, prompt = answer("n")
    assert code == 1 and "Delete 1 completed job, with their history?" in prompt
    assert store.counts()["completed"] == 1
    code, _ = answer("y")
    assert code == 0 and store.counts()["completed"] == 0


def test_workers_apply_the_retention_setting(store, db_path, processes):
    enqueue(store, "true", id="old-ok")
    finish_at(store, "old-ok", now_ms() - 10_000)
    enqueue(store, "exit 1", id="old-dead", max_retries=0)
    finish_at(store, "old-dead", now_ms() - 10_000, failed=True)
    assert run_cli(db_path, "config", "set", "retention", "5s").stdout == "retention = 5\n"
    processes.start_workers(db_path, env=QUIET)
    recent = enqueue(store, "true")
    wait_state(store, recent, "completed")
    wait_for(lambda: "old-ok" not in {job["id"] for job in store.list_jobs()}, 20,
             message="the old completed job to be deleted")
    assert {job["id"] for job in store.list_jobs()} == {"old-dead", recent}
    assert store.counts()["completed"] == 1


# ---- the dead letter queue ------------------------------------------------------------------------------------


def test_dlq_retry_all_and_dlq_purge_need_yes_without_a_terminal(store, db_path):
    for n in range(3):
        enqueue(store, "exit 1", id=f"d{n}", max_retries=0)
        finish_at(store, f"d{n}", now_ms(), failed=True)
    refused = run_cli(db_path, "dlq", "retry", "--all")
    assert refused.returncode == 2 and "Retry all 3 dead jobs: add --yes" in refused.stderr
    assert run_cli(db_path, "dlq", "retry").returncode == 2
    assert run_cli(db_path, "dlq", "retry", "d0", "--all").returncode == 2
    result = run_cli(db_path, "dlq", "retry", "--all", "--yes")
    assert result.stdout == "3 dead jobs are pending again (attempts reset to 0)\n"
    assert store.counts()["pending"] == 3
    for n in range(3):
        finish_at(store, f"d{n}", now_ms(), failed=True)
    assert run_cli(db_path, "dlq", "purge").returncode == 2
    assert run_cli(db_path, "dlq", "purge", "--dry-run").stdout == "Would delete 3 dead jobs.\n"
    assert json.loads(run_cli(db_path, "dlq", "purge", "--yes", "--json").stdout) == {"count": 3, "dry_run": False}
    assert store.counts()["dead"] == 0


# ---- settings and completion -----------------------------------------------------------------------------------


def test_config_get_shows_backoff_jitter_and_retention(db_path):
    values = cli_json(db_path, "config", "get")
    assert values["backoff_jitter"] == "none" and values["retention"] == 0
    assert run_cli(db_path, "config", "set", "backoff_jitter", "full").returncode == 0
    assert run_cli(db_path, "config", "get", "backoff_jitter").stdout == "full\n"
    assert run_cli(db_path, "config", "set", "retention", "soon").returncode == 2


def test_shell_completion_completes_commands_and_job_ids(sqlite_path):
    store = SqliteStore(str(sqlite_path))
    enqueue(store, "true", id="job-alpha")
    enqueue(store, "true", id="job-beta")
    script = run_cli(sqlite_path, "completion", "bash")
    assert script.returncode == 0 and "_QUEUECTL_COMPLETE=bash_complete" in script.stdout
    for shell in ("zsh", "fish"):
        assert run_cli(sqlite_path, "completion", shell).returncode == 0
    assert run_cli(sqlite_path, "completion", "tcsh").returncode == 2

    def complete(words):
        env = {"_QUEUECTL_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        return run_cli(sqlite_path, env=env).stdout.split()

    assert "plain,cancel" in complete("queuectl can")
    assert set(complete("queuectl logs job-a")) == {"plain,job-alpha"}
    assert {"plain,job-alpha", "plain,job-beta"} <= set(complete("queuectl show job"))
