"""The audit log (CONTRACT Part 2, "Roles and the audit log"): every state-changing action from the CLI writes exactly
one entry, in the transaction of the action, with the actor cli:USER@HOST; workers and CLI enqueue write none;
`queuectl audit` prints it; retention deletes old entries. On both backends (`db_path` is parametrized). The API's
side: tests/api/test_api_audit.py."""

import json
import os
import pwd
import socket

import pytest
from helpers import QUIET, run_cli
from queuectl_core.errors import DuplicateJob, InvalidInput, WrongState
from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.store import open_store
from queuectl_core.validation import check_job

CLI_ACTOR = f"cli:{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
NOW = 1_800_000_000_000


def make_dead(store, job_id, priority=0):
    """A dead job (claimed and failed without a worker); `priority` above the jobs still waiting."""
    store.enqueue(check_job({"command": "false", "id": job_id, "max_retries": 0, "priority": priority}))
    claim = store.claim_next("w", 30)
    assert claim.id == job_id
    store.finish_run(claim, Outcome(FAILED, 1, "exit code 1"), "")


def entries(store):
    return [(entry["actor"], entry["action"], entry["target"]) for entry in store.audit_log(limit=1000)]


def test_each_cli_action_records_one_entry_with_its_actor_action_and_target(db_path):
    store = open_store(str(db_path))
    for job_id in ("dead-1", "dead-2", "dead-3"):
        make_dead(store, job_id)
    steps = [
        (["enqueue", '{"id": "waiting", "command": "true", "delay": 3600}'], None),  # CLI enqueue: not recorded
        (["cancel", "waiting"], ("cancel", "waiting")),
        (["dlq", "retry", "dead-1"], ("retry", "dead-1")),
        (["cancel", "dead-1"], ("cancel", "dead-1")),
        (["dlq", "retry", "--all", "--yes"], ("retry-all", "dlq")),
        (["purge", "--state", "cancelled", "--yes"], ("purge", "cancelled")),
        (["pause"], ("pause", "queue")),
        (["pause"], ("pause", "queue")),  # already paused: still the operator's action, details say so
        (["resume"], ("resume", "queue")),
        (["config", "set", "max_retries", "5"], ("config-set", "max_retries")),
        (["worker", "stop"], ("worker-stop", "workers")),
        (["cancel", "dead-2"], ("cancel", "dead-2")),
        (["dlq", "purge", "--yes"], None),  # nothing dead any more: nothing deleted, nothing to record
    ]
    for argv, expected in steps:
        before = len(entries(store))
        result = run_cli(db_path, *argv)
        assert result.returncode == 0, (argv, result.stderr)
        recorded = entries(store)
        if expected is None:
            assert len(recorded) == before, argv
        else:
            assert len(recorded) == before + 1, argv
            assert recorded[0] == (CLI_ACTOR, *expected), argv
    make_dead(store, "dead-4", priority=1)
    assert run_cli(db_path, "dlq", "purge", "--yes").returncode == 0
    log = store.audit_log()
    assert (log[0]["action"], log[0]["target"], log[0]["details"]) == (
        "dlq-purge", "dlq", {"count": 1, "older_than_seconds": 0})
    details = {entry["action"] + ":" + (entry["target"] or ""): entry["details"] for entry in reversed(log)}
    assert details["retry-all:dlq"] == {"count": 2}
    assert details["purge:cancelled"] == {"count": 2, "older_than_seconds": 0, "states": ["cancelled"]}
    assert details["config-set:max_retries"] == {"max_retries": {"from": 3, "to": 5}}
    assert details["worker-stop:workers"] == {"count": 0}
    assert details["cancel:waiting"] == {"running": False}
    assert [entry["details"]["changed"] for entry in log if entry["action"] == "pause"] == [False, True]  # newest first
    store.close()


def test_refused_actions_record_nothing(db_path):
    store = open_store(str(db_path))
    store.enqueue(check_job({"command": "true", "id": "done"}))
    store.finish_run(store.claim_next("w", 30), Outcome(COMPLETED, 0, None), "")
    for argv in (["cancel", "done"], ["cancel", "nope"], ["dlq", "retry", "done"], ["config", "set", "max_retries",
                                                                                   "-1"]):
        result = run_cli(db_path, *argv)
        assert result.returncode in (1, 2) and "Traceback" not in result.stderr, argv
    assert store.audit_log() == []
    # In the store: the entry is written in the action's transaction, so an action rolled back leaves none.
    with pytest.raises(DuplicateJob):
        store.enqueue(check_job({"command": "true", "id": "done"}), actor="api:operator")
    with pytest.raises(InvalidInput):
        store.set_settings({"max_retries": 2, "backoff_base": 0}, actor="api:operator")
    with pytest.raises(WrongState):
        store.retry_dead("done", actor="api:operator")
    assert store.audit_log() == []
    store.close()


def test_the_cli_actor_is_the_real_user_not_what_the_environment_says(db_path):
    result = run_cli(db_path, "pause", env={"USER": "mallory", "LOGNAME": "mallory"})
    assert result.returncode == 0, result.stderr
    store = open_store(str(db_path))
    assert entries(store) == [(CLI_ACTOR, "pause", "queue")]
    store.close()


def test_workers_and_cli_enqueue_record_nothing(db_path, processes):
    store = open_store(str(db_path))
    assert run_cli(db_path, "enqueue", '{"command": "exit 1", "max_retries": 1}').returncode == 0
    store.set_setting("backoff_base", 1)
    assert run_cli(db_path, "enqueue", '{"command": "true"}').returncode == 0
    worker = processes.start_workers(db_path, "--burst", env=QUIET)
    assert worker.wait(timeout=60) == 0, processes.log(worker)
    assert store.counts()["completed"] == 1 and store.counts()["dead"] == 1
    assert store.audit_log() == []
    store.close()


def test_a_purge_in_many_windows_records_one_entry_with_the_whole_count(store):
    for n in range(7):
        store.enqueue(check_job({"command": "true", "id": f"c{n}", "delay": 3600}), now=NOW)
        store.cancel(f"c{n}", now=NOW)
    assert store.purge(["cancelled", "completed"], now=NOW + 1, window=2, actor="api:operator") == 7
    assert [(entry["action"], entry["target"], entry["details"]) for entry in store.audit_log()] == [
        ("purge", "cancelled,completed", {"count": 7, "older_than_seconds": 0, "states": ["cancelled", "completed"]})]
    assert store.purge(["completed"], actor="api:operator") == 0  # asked, nothing to delete: still recorded
    assert store.audit_log()[0]["details"]["count"] == 0


def test_queuectl_audit_prints_the_entries_newest_first(db_path):
    assert run_cli(db_path, "audit").stdout == "The audit log is empty.\n"
    assert json.loads(run_cli(db_path, "audit", "--json").stdout) == []
    store = open_store(str(db_path))
    store.pause(actor="cli:alice@build-1")
    store.enqueue(check_job({"command": "echo '\x1b[31mred'", "id": "shown"}), actor="api:operator")
    store.close()
    result = run_cli(db_path, "audit")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["AT", "ACTOR", "ACTION", "TARGET", "DETAILS"]
    assert lines[1].split()[1:4] == ["api:operator", "enqueue", "shown"]
    assert "\x1b" not in result.stdout and "\\u001b[31mred" in lines[1]  # controls shown as escapes
    assert lines[2].split()[1:] == ["cli:alice@build-1", "pause", "queue", '{"changed":', "true}"]
    printed = json.loads(run_cli(db_path, "audit", "--json").stdout)
    assert [list(entry) for entry in printed] == [["at", "actor", "action", "target", "details"]] * 2
    assert printed[0]["details"] == {"command": "echo '\x1b[31mred'"}
    assert printed[1]["at"].endswith("Z") and printed[1]["actor"] == "cli:alice@build-1"
    assert [entry["action"] for entry in json.loads(run_cli(db_path, "audit", "--json", "--limit", "1").stdout)] == [
        "enqueue"]
    assert [entry["action"] for entry in json.loads(run_cli(db_path, "audit", "--json", "--offset", "1").stdout)] == [
        "pause"]
    result = run_cli(db_path, "audit", "--limit", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_retention_deletes_old_audit_entries(store):
    store.pause(now=NOW, actor="cli:a@h")
    store.resume(now=NOW + 70_000, actor="cli:a@h")
    store.set_settings({"max_retries": 4}, now=NOW + 100_000, actor="api:operator")
    assert store.apply_retention({"retention": 0}, now=NOW + 10**9) == 0
    assert len(store.audit_log()) == 3  # retention 0 keeps everything
    store.apply_retention({"retention": 60}, now=NOW + 120_000)  # keeps what is younger than a minute
    assert [entry["action"] for entry in store.audit_log()] == ["config-set", "resume"]
    store.apply_retention({"retention": 60}, now=NOW + 200_000)
    assert store.audit_log() == []


def test_schedule_changes_and_reruns_record_one_entry_each(db_path):
    store = open_store(str(db_path))
    steps = [
        (["schedule", "add", "nightly", "--cron", "0 2 * * *", '{"command": "true"}'], ("schedule-add", "nightly")),
        (["schedule", "pause", "nightly"], ("schedule-pause", "nightly")),
        (["schedule", "resume", "nightly"], ("schedule-resume", "nightly")),
        (["schedule", "run", "nightly"], ("schedule-run", "nightly")),
        (["schedule", "rm", "nightly"], ("schedule-rm", "nightly")),
        (["schedule", "rm", "nightly"], None),  # unknown now: exit 1, nothing changed, nothing recorded
    ]
    for argv, expected in steps:
        before = len(entries(store))
        result = run_cli(db_path, *argv)
        assert result.returncode == (1 if expected is None else 0), (argv, result.stderr)
        recorded = entries(store)
        if expected is None:
            assert len(recorded) == before, argv
        else:
            assert len(recorded) == before + 1 and recorded[0] == (CLI_ACTOR, *expected), (argv, recorded[:2])
    ran = store.audit_log(limit=2)[1]
    assert ran["details"]["job"] == store.list_jobs(limit=1)[0]["id"]  # the job `schedule run` made
    store.enqueue(check_job({"id": "original", "command": "echo again"}))
    result = run_cli(db_path, "rerun", "original")
    assert result.returncode == 0, result.stderr
    entry = store.audit_log(limit=1)[0]
    new_id = result.stdout.strip()
    assert (entry["actor"], entry["action"], entry["target"]) == (CLI_ACTOR, "rerun", new_id)
    assert entry["details"] == {"rerun_of": "original", "command": "echo again"}
