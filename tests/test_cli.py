"""The `queuectl` CLI as users and scripts run it: real processes against a real temporary SQLite file.

Bulk enqueue has its own module, test_cli_bulk.py; show, list, status and dlq (their --json shapes and errors)
test_cli_jobs.py; config, workers and the database's location test_cli_settings.py.
"""

import json
import re
from datetime import datetime, timedelta

import pytest
from cli_support import (
    CONTRACT_DEFAULTS,
    ISO_UTC_MS,
    RECORD_FIELDS,
    STATES,
    enqueue,
    run_burst_worker,
    run_cli_concurrently,
)
from helpers import assert_no_traceback, assert_refused, cli_json, run_cli
from queuectl_core.store import SqliteStore

# ---- helpers ------------------------------------------------------------------------------------


def assert_usage_error(result, *words):
    """Exit 2 with click's usage message (several lines are fine), nothing on stdout, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert_no_traceback(result)
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def job_ids(store):
    return [job["id"] for job in store.list_jobs(limit=10_000)]


# ---- the original README, exactly as typed ----------------------------------------------------------


def test_readme_enqueue_prints_the_id_of_the_new_job(db_path, store):
    result = run_cli(db_path, "enqueue", '{"id":"job1","command":"echo hello","max_retries":3}')

    assert result.returncode == 0, result.stderr
    assert result.stdout == "job1\n"
    job = store.get_job("job1")
    assert (job["command"], job["state"], job["max_retries"], job["attempts"]) == ("echo hello", "pending", 3, 0)


def test_readme_list_state_pending_shows_the_pending_job(db_path):
    enqueue(db_path, {"id": "job1", "command": "echo hello", "max_retries": 3})

    result = run_cli(db_path, "list", "--state", "pending")

    assert result.returncode == 0, result.stderr
    assert "job1" in result.stdout
    assert "pending" in result.stdout
    assert "echo hello" in result.stdout


def test_readme_dlq_list_says_so_when_the_dead_letter_queue_is_empty(db_path):
    result = run_cli(db_path, "dlq", "list")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert_no_traceback(result)
    assert cli_json(db_path, "dlq", "list") == []


def test_readme_dlq_list_and_dlq_retry_bring_a_dead_job_back_to_pending(db_path, processes):
    enqueue(db_path, {"id": "job1", "command": "exit 1", "max_retries": 0})
    run_burst_worker(processes, db_path)

    listed = run_cli(db_path, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "job1" in listed.stdout

    retried = run_cli(db_path, "dlq", "retry", "job1")
    assert retried.returncode == 0, retried.stderr
    assert "job1" in retried.stdout

    job = cli_json(db_path, "show", "job1")
    assert (job["state"], job["attempts"]) == ("pending", 0)
    assert cli_json(db_path, "dlq", "list") == []


def test_readme_config_set_backoff_base_3_is_what_config_get_shows(db_path):
    assert run_cli(db_path, "config", "set", "backoff_base", "3").returncode == 0

    single = run_cli(db_path, "config", "get", "backoff_base")
    every = run_cli(db_path, "config", "get")

    assert single.returncode == 0, single.stderr
    assert single.stdout == "3\n"
    assert every.returncode == 0, every.stderr
    assert re.search(r"^backoff_base\s*=\s*3\b", every.stdout, re.MULTILINE), every.stdout
    for name in CONTRACT_DEFAULTS:
        assert name in every.stdout


def test_readme_enqueue_of_a_fractional_max_retries_prints_the_documented_error_and_exits_2(db_path, store):
    result = run_cli(db_path, "enqueue", '{"command":"echo x","max_retries":1.5}')

    assert result.returncode == 2
    assert result.stderr == "Error: max_retries must be an integer >= 0 and <= 1000000, got 1.5\n"
    assert result.stdout == ""
    assert job_ids(store) == []


def test_readme_status_shows_the_count_of_every_state(db_path):
    enqueue(db_path, {"id": "job1", "command": "echo hello", "max_retries": 3})

    result = run_cli(db_path, "status")

    assert result.returncode == 0, result.stderr
    for state in STATES:
        assert state in result.stdout
    assert re.search(r"pending\s+1\b", result.stdout), result.stdout


# ---- enqueue: bad job input exits 2, names the key and adds nothing -----------------------------------

BAD_JOBS = [
    # (job as typed, words the one-line message must hold)
    pytest.param('{"command":"true","colour":"red"}', ["colour"], id="unknown-key"),
    pytest.param('{"id":"job1"}', ["command"], id="missing-command"),
    pytest.param('{"command":""}', ["command"], id="empty-command"),
    pytest.param('{"command":"   "}', ["command"], id="blank-command"),
    pytest.param('{"command":null}', ["command"], id="null-command"),
    pytest.param('{"command":42}', ["command"], id="number-command"),
    pytest.param('{"command":["echo","hi"]}', ["command"], id="array-command"),
    pytest.param('{"command":"echo \\u0000"}', ["command"], id="nul-in-command"),
    pytest.param('{"command":"echo \\ud800"}', ["command"], id="lone-surrogate-in-command"),
    pytest.param('{"command":"true","max_retries":null}', ["max_retries"], id="null-max_retries"),
    pytest.param('{"command":"true","max_retries":true}', ["max_retries"], id="boolean-max_retries"),
    pytest.param('{"command":"true","max_retries":1.0}', ["max_retries"], id="float-max_retries"),
    pytest.param('{"command":"true","max_retries":2.5}', ["max_retries"], id="fractional-max_retries"),
    pytest.param('{"command":"true","max_retries":"3"}', ["max_retries"], id="string-max_retries"),
    pytest.param('{"command":"true","max_retries":-1}', ["max_retries"], id="negative-max_retries"),
    pytest.param('{"command":"true","max_retries":1e400}', ["max_retries"], id="infinite-max_retries"),
    pytest.param('{"command":"true","priority":null}', ["priority"], id="null-priority"),
    pytest.param('{"command":"true","priority":false}', ["priority"], id="boolean-priority"),
    pytest.param('{"command":"true","priority":1.5}', ["priority"], id="float-priority"),
    pytest.param('{"command":"true","priority":"high"}', ["priority"], id="string-priority"),
    pytest.param('{"command":"true","timeout":0}', ["timeout"], id="zero-timeout"),
    pytest.param('{"command":"true","timeout":-5}', ["timeout"], id="negative-timeout"),
    pytest.param('{"command":"true","timeout":null}', ["timeout"], id="null-timeout"),
    pytest.param('{"command":"true","timeout":true}', ["timeout"], id="boolean-timeout"),
    pytest.param('{"command":"true","timeout":"10"}', ["timeout"], id="string-timeout"),
    pytest.param('{"command":"true","timeout":Infinity}', ["timeout"], id="infinite-timeout"),
    pytest.param('{"command":"true","delay":-1}', ["delay"], id="negative-delay"),
    pytest.param('{"command":"true","delay":null}', ["delay"], id="null-delay"),
    pytest.param('{"command":"true","delay":true}', ["delay"], id="boolean-delay"),
    pytest.param('{"command":"true","delay":"5"}', ["delay"], id="string-delay"),
    pytest.param('{"command":"true","delay":NaN}', ["delay"], id="nan-delay"),
    pytest.param('{"command":"true","id":"has space"}', ["id"], id="id-with-a-space"),
    pytest.param('{"command":"true","id":"a/b"}', ["id"], id="id-with-a-slash"),
    pytest.param('{"command":"true","id":"caf\\u00e9"}', ["id"], id="id-with-an-accent"),
    pytest.param('{"command":"true","id":"' + "a" * 129 + '"}', ["id"], id="id-of-129-characters"),
    pytest.param('{"command":"true","id":""}', ["id"], id="empty-id"),
    pytest.param('{"command":"true","id":null}', ["id"], id="null-id"),
    pytest.param('{"command":"true","id":42}', ["id"], id="number-id"),
    pytest.param('{"command":"true","run_at":"2030-01-01T00:00:00"}', ["run_at"], id="run_at-without-zone"),
    pytest.param('{"command":"true","run_at":"2030-01-01"}', ["run_at"], id="run_at-date-only"),
    pytest.param('{"command":"true","run_at":"tomorrow"}', ["run_at"], id="run_at-not-a-time"),
    pytest.param('{"command":"true","run_at":"2030-13-01T00:00:00Z"}', ["run_at"], id="run_at-month-13"),
    pytest.param('{"command":"true","run_at":1893456000}', ["run_at"], id="run_at-number"),
    pytest.param('{"command":"true","run_at":null}', ["run_at"], id="null-run_at"),
    pytest.param('{"command":"true","run_at":"2030-01-01T00:00:00Z","delay":5}', ["run_at", "delay"],
                 id="run_at-and-delay-together"),
    pytest.param('{"command":"true"', ["JSON"], id="invalid-json"),
    pytest.param("{'command':'true'}", ["JSON"], id="single-quoted-json"),
    pytest.param("", ["JSON"], id="empty-argument"),
    pytest.param('[{"command":"true"}]', ["object", "array"], id="json-array"),
    pytest.param('"true"', ["object"], id="json-string"),
    pytest.param("null", ["object"], id="json-null"),
    pytest.param("NaN", ["object"], id="bare-nan"),
    pytest.param("[" * 100_000, ["JSON"], id="deeply-nested-json"),
]


@pytest.fixture(scope="module")
def bad_job_refusals(tmp_path_factory):
    """`queuectl enqueue TEXT` for every BAD_JOBS text, each against its own new database file.

    Returns {text: (result, database path)}."""
    root = tmp_path_factory.mktemp("bad-jobs")
    texts = [param.values[0] for param in BAD_JOBS]
    paths = [root / f"queue-{index}.db" for index in range(len(texts))]
    results = run_cli_concurrently([(path, ["enqueue", text]) for path, text in zip(paths, texts, strict=True)])
    return dict(zip(texts, zip(results, paths, strict=True), strict=True))


@pytest.mark.parametrize(("job_text", "named"), BAD_JOBS)
def test_enqueue_refuses_bad_input_with_exit_2_a_one_line_message_and_adds_nothing(
    bad_job_refusals, job_text, named
):
    result, path = bad_job_refusals[job_text]

    assert_refused(result, 2, *named)
    store = SqliteStore(str(path))
    try:
        assert job_ids(store) == []
    finally:
        store.close()


def test_enqueue_refuses_a_float_max_retries_and_adds_nothing_as_list_json_shows(db_path):
    result = run_cli(db_path, "enqueue", '{"id":"job1","command":"true","max_retries":1.0}', "--json")

    assert_refused(result, 2, "max_retries")
    assert cli_json(db_path, "list") == []


def test_enqueue_refuses_a_command_of_undecodable_bytes_with_exit_2(db_path, store):
    result = run_cli(db_path, "enqueue", b'{"command":"echo \xff"}')

    assert_refused(result, 2, "command")
    assert job_ids(store) == []


def test_enqueue_without_a_job_is_a_usage_error(db_path, store):
    assert_usage_error(run_cli(db_path, "enqueue"))
    assert job_ids(store) == []


def test_enqueue_with_two_jobs_is_a_usage_error(db_path, store):
    assert_usage_error(run_cli(db_path, "enqueue", '{"command":"true"}', '{"command":"false"}'))
    assert job_ids(store) == []


# ---- enqueue: what it stores and prints ------------------------------------------------------------------


def test_enqueue_json_prints_the_whole_record_with_millisecond_utc_times(db_path):
    result = run_cli(db_path, "enqueue", '{"id":"job1","command":"echo hello","max_retries":3}', "--json")

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert RECORD_FIELDS <= set(record)
    assert record["id"] == "job1"
    assert record["command"] == "echo hello"
    assert record["state"] == "pending"
    assert (record["attempts"], record["max_retries"], record["priority"]) == (0, 3, 0)
    assert record["timeout"] is None
    assert (record["last_error"], record["exit_code"], record["worker_id"]) == (None, None, None)
    for field in ("run_at", "created_at", "updated_at"):
        assert ISO_UTC_MS.match(record[field]), (field, record[field])
    assert record["run_at"] == record["created_at"]


def test_enqueue_without_an_id_generates_one_and_prints_it(db_path, store):
    printed = enqueue(db_path, {"command": "true"})

    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", printed)
    assert job_ids(store) == [printed]


def test_enqueue_accepts_an_id_of_exactly_128_allowed_characters(db_path, store):
    job_id = ("Az09._:-" * 16)[:128]

    assert enqueue(db_path, {"id": job_id, "command": "true"}) == job_id
    assert job_ids(store) == [job_id]


def test_enqueue_stores_priority_timeout_and_the_config_max_retries_default(db_path):
    assert run_cli(db_path, "config", "set", "max_retries", "5").returncode == 0

    record = json.loads(enqueue(db_path, {"command": "true", "priority": -7, "timeout": 2.5}, "--json"))

    assert (record["priority"], record["timeout"], record["max_retries"]) == (-7, 2.5, 5)


def test_enqueue_converts_a_run_at_with_an_offset_to_utc(db_path):
    record = json.loads(enqueue(db_path, {"command": "true", "run_at": "2030-01-01T00:00:00+02:00"}, "--json"))

    assert record["run_at"] == "2029-12-31T22:00:00.000Z"


@pytest.mark.parametrize("run_at", [
    "2030-06-01T12:34:56.789Z",
    "2038-01-19T21:36:49.865Z",  # float seconds would lose this millisecond
])
def test_enqueue_keeps_run_at_to_the_millisecond(db_path, run_at):
    record = json.loads(enqueue(db_path, {"command": "true", "run_at": run_at}, "--json"))

    assert record["run_at"] == run_at


def test_enqueue_with_a_delay_schedules_the_job_that_many_seconds_later(db_path):
    record = json.loads(enqueue(db_path, {"command": "true", "delay": 90.5}, "--json"))

    def parse(iso):
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))

    assert parse(record["run_at"]) - parse(record["created_at"]) == timedelta(seconds=90.5)


def test_enqueue_refuses_a_duplicate_id_with_exit_1_and_keeps_the_first_job(db_path, store):
    enqueue(db_path, {"id": "job1", "command": "echo first"})

    result = run_cli(db_path, "enqueue", '{"id":"job1","command":"echo second"}')

    assert_refused(result, 1, "job1")
    assert job_ids(store) == ["job1"]
    assert store.get_job("job1")["command"] == "echo first"


# ---- exit 2 on bad usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "named"), [
    pytest.param(["list", "--state", "bogus"], "bogus", id="list-unknown-state"),
    pytest.param(["list", "--limit", "0"], "--limit", id="list-limit-0"),
    pytest.param(["list", "--limit", "many"], "--limit", id="list-limit-not-a-number"),
    pytest.param(["show"], "ID", id="show-without-id"),
    pytest.param(["dlq", "retry"], "ID", id="dlq-retry-without-id"),
    pytest.param(["config", "set", "backoff_base"], "VALUE", id="config-set-without-value"),
    pytest.param(["frobnicate"], "frobnicate", id="unknown-command"),
    pytest.param(["status", "--colour"], "--colour", id="unknown-option"),
    pytest.param(["worker", "start", "--count", "0"], "--count", id="worker-start-count-0"),
    pytest.param(["worker", "start", "--timeout", "0"], "--timeout", id="worker-start-timeout-0"),
])
def test_bad_usage_exits_2_naming_what_is_wrong(db_path, args, named):
    assert_usage_error(run_cli(db_path, *args), named)
