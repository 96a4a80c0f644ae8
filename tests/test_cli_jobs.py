"""The `queuectl` CLI's show, list, status and dlq as real processes: their --json shapes and their errors."""

import json

import pytest
from cli_support import ISO_UTC_MS, RECORD_FIELDS, STATES, run_burst_worker
from helpers import assert_refused, cli_json, run_cli
from queuectl_core.validation import check_job

RUN_FIELDS = {"attempt", "started_at", "finished_at", "exit_code", "error", "worker_id", "output"}


# ---- helpers ------------------------------------------------------------------------------------


def add_jobs(store, *jobs):
    """Set-up without a process: store jobs directly (the command under test is another one)."""
    for job in jobs:
        store.enqueue(check_job(job))


def make_dead_job(processes, db_path, store, job_id="job1"):
    """A job that fails its only run, straight into the dead letter queue, by a real worker."""
    add_jobs(store, {"id": job_id, "command": "echo oops; exit 1", "max_retries": 0})
    run_burst_worker(processes, db_path)
    assert store.get_job(job_id)["state"] == "dead"


# ---- show, list, status, dlq: --json shapes and errors ----------------------------------------------------


def test_show_of_an_unknown_id_exits_1_naming_the_id(db_path):
    assert_refused(run_cli(db_path, "show", "nope"), 1, "nope")
    assert_refused(run_cli(db_path, "show", "nope", "--json"), 1, "nope")


def test_show_of_an_id_of_undecodable_bytes_exits_1_without_a_traceback(db_path):
    result = run_cli(db_path, "show", b"\xff")

    assert_refused(result, 1)
    assert "internal error" not in result.stderr


def test_show_json_is_the_record_with_an_empty_history_before_any_run(db_path, store):
    add_jobs(store, {"id": "job1", "command": "true"})

    record = cli_json(db_path, "show", "job1")

    assert RECORD_FIELDS <= set(record)
    assert record["history"] == []


def test_show_json_history_has_one_entry_per_run_with_its_output(db_path, store, processes):
    make_dead_job(processes, db_path, store, "job1")

    record = cli_json(db_path, "show", "job1")

    assert (record["state"], record["attempts"], record["exit_code"]) == ("dead", 1, 1)
    assert record["last_error"]
    assert record["worker_id"]
    [run] = record["history"]
    assert RUN_FIELDS <= set(run)
    assert (run["attempt"], run["exit_code"]) == (1, 1)
    assert "oops" in run["output"]
    assert run["worker_id"]
    for field in ("started_at", "finished_at"):
        assert ISO_UTC_MS.match(run[field]), (field, run[field])
    assert run["started_at"] <= run["finished_at"]


def test_show_without_json_prints_the_fields_and_the_output_of_each_run(db_path, store, processes):
    make_dead_job(processes, db_path, store, "job1")

    result = run_cli(db_path, "show", "job1")

    assert result.returncode == 0, result.stderr
    for text in ("job1", "echo oops; exit 1", "dead", "oops"):
        assert text in result.stdout


def test_status_json_counts_every_state_and_lists_the_workers(db_path, store, processes):
    add_jobs(store, {"id": "ok", "command": "true"}, {"id": "bad", "command": "exit 3", "max_retries": 0})
    run_burst_worker(processes, db_path)
    add_jobs(store, {"id": "later", "command": "true", "delay": 3600})

    summary = cli_json(db_path, "status")

    assert set(summary) == {"jobs", "workers", "paused"}  # issue 7 added `paused` (and the state cancelled)
    assert summary["jobs"] == {"pending": 1, "processing": 0, "completed": 1, "failed": 0, "dead": 1, "cancelled": 0}
    assert summary["paused"] is False
    assert summary["workers"] == []


def test_status_json_of_a_new_database_is_all_zeros(db_path):
    assert cli_json(db_path, "status") == {"jobs": dict.fromkeys(STATES, 0), "workers": [], "paused": False}


def test_list_json_is_an_array_of_records_newest_first_and_limit_keeps_the_newest(db_path, store):
    add_jobs(store, *({"id": job_id, "command": "true"} for job_id in ("first", "second", "third")))

    jobs = cli_json(db_path, "list")
    limited = cli_json(db_path, "list", "--limit", "2")
    paged = cli_json(db_path, "list", "--limit", "1", "--offset", "1")

    assert [job["id"] for job in jobs] == ["third", "second", "first"]
    for job in jobs:
        assert RECORD_FIELDS <= set(job)
    assert [job["id"] for job in limited] == ["third", "second"]
    assert [job["id"] for job in paged] == ["second"]


def test_list_state_shows_only_jobs_in_that_state(db_path, store):
    add_jobs(store, {"id": "claimed", "command": "true", "priority": 9},
             {"id": "waiting-1", "command": "true"}, {"id": "waiting-2", "command": "true"})
    assert store.claim_next("test-worker", lease_seconds=60).id == "claimed"

    processing = cli_json(db_path, "list", "--state", "processing")
    pending = cli_json(db_path, "list", "--state", "pending")
    dead = cli_json(db_path, "list", "--state", "dead")

    assert [job["id"] for job in processing] == ["claimed"]
    assert processing[0]["worker_id"] == "test-worker"
    assert [job["id"] for job in pending] == ["waiting-2", "waiting-1"]
    assert dead == []


def test_list_without_json_says_so_when_there_are_no_jobs(db_path):
    result = run_cli(db_path, "list")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_dlq_list_json_holds_only_the_dead_jobs(db_path, store, processes):
    add_jobs(store, {"id": "ok", "command": "true"}, {"id": "bad", "command": "exit 1", "max_retries": 0})
    run_burst_worker(processes, db_path)

    dead = cli_json(db_path, "dlq", "list")

    assert [job["id"] for job in dead] == ["bad"]
    assert RECORD_FIELDS <= set(dead[0])
    assert dead[0]["state"] == "dead"


def test_dlq_retry_resets_attempts_and_the_run_numbers_go_on_counting(db_path, store, processes):
    make_dead_job(processes, db_path, store, "job1")

    retried = run_cli(db_path, "dlq", "retry", "job1", "--json")
    assert retried.returncode == 0, retried.stderr
    record = json.loads(retried.stdout)
    assert (record["state"], record["attempts"]) == ("pending", 0)

    run_burst_worker(processes, db_path)
    again = cli_json(db_path, "show", "job1")
    assert (again["state"], again["attempts"]) == ("dead", 1)
    assert [run["attempt"] for run in again["history"]] == [1, 2]


def test_dlq_retry_of_an_unknown_id_exits_1_naming_the_id(db_path):
    assert_refused(run_cli(db_path, "dlq", "retry", "nope"), 1, "nope")


def test_dlq_retry_of_a_job_that_is_not_dead_exits_1_and_leaves_it_alone(db_path, store):
    add_jobs(store, {"id": "job1", "command": "true"})

    result = run_cli(db_path, "dlq", "retry", "job1")

    assert_refused(result, 1, "job1")
    job = store.get_job("job1")
    assert (job["state"], job["attempts"]) == ("pending", 0)


def test_dlq_retry_of_an_id_of_undecodable_bytes_exits_1_without_a_traceback(db_path):
    result = run_cli(db_path, "dlq", "retry", b"\xff")

    assert_refused(result, 1)
    assert "internal error" not in result.stderr


@pytest.mark.parametrize("args", [
    pytest.param(["status"], id="status"),
    pytest.param(["list"], id="list"),
    pytest.param(["list", "--state", "pending", "--limit", "1"], id="list-state-limit"),
    pytest.param(["show", "job1"], id="show"),
    pytest.param(["dlq", "list"], id="dlq-list"),
    pytest.param(["config", "get"], id="config-get"),
    pytest.param(["config", "get", "backoff_base"], id="config-get-key"),
    pytest.param(["worker", "list"], id="worker-list"),
    pytest.param(["enqueue", '{"command":"true"}'], id="enqueue"),
])
def test_json_output_is_one_json_document_and_nothing_else(db_path, store, args):
    add_jobs(store, {"id": "job1", "command": "echo hello"}, {"id": "job2", "command": "echo hello"})

    result = run_cli(db_path, *args, "--json")

    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)  # the whole of stdout, so nothing else is printed there
    assert result.stderr == ""
