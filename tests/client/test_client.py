"""The Python client (`from queuectl import Queue`): one suite, run on the database (SQLite, PostgreSQL) and
through the HTTP API (real gunicorn): the same methods, records and exceptions in every mode."""

import pytest
import queuectl
from queuectl import Conflict, InvalidJob, JobNotFound, Timeout
from queuectl_core import errors as core

RECORD_KEYS = {"id", "command", "state", "attempts", "max_retries", "priority", "run_at", "timeout", "created_at",
               "updated_at", "last_error", "exit_code", "worker_id"}


def test_enqueue_returns_the_record_and_get_reads_it_back_with_its_history(target):
    record = target.queue.enqueue("echo hello", id="job-1", max_retries=2, priority=5)
    assert RECORD_KEYS <= set(record)
    assert (record["id"], record["command"], record["state"], record["max_retries"], record["priority"]) == (
        "job-1", "echo hello", "pending", 2, 5)
    found = target.queue.get("job-1")
    assert found["history"] == [] and found["history_total"] == 0
    assert {key: found[key] for key in record} == record


def test_bad_input_is_invalid_job_naming_the_key(target):
    with pytest.raises(InvalidJob, match="max_retries"):
        target.queue.enqueue("true", max_retries=-1)
    with pytest.raises(InvalidJob, match="colour"):
        target.queue.enqueue("true", colour="red")
    with pytest.raises(InvalidJob, match="state"):
        target.queue.jobs(state="sleeping")
    with pytest.raises(InvalidJob, match="limit"):
        target.queue.jobs(limit=0)
    assert target.queue.jobs() == []


def test_conflicts_and_unknown_jobs(target):
    target.queue.enqueue("true", id="taken")
    with pytest.raises(Conflict, match="already exists"):
        target.queue.enqueue("true", id="taken")
    with pytest.raises(Conflict, match="no job with id 'nobody'"):
        target.queue.enqueue("true", after=["nobody"])
    with pytest.raises(JobNotFound, match="no job with id 'ghost'"):
        target.queue.get("ghost")
    with pytest.raises(JobNotFound):
        target.queue.cancel("ghost")
    with pytest.raises(Conflict, match="dead"):
        target.queue.retry("taken")  # pending, not dead


def test_the_client_errors_are_the_core_errors_too(target):
    """The CLI's handler (and any code written against queuectl_core) catches them as the store's own."""
    with pytest.raises(core.InvalidInput):
        target.queue.enqueue("")
    with pytest.raises(core.JobNotFound):
        target.queue.get("ghost")
    with pytest.raises(core.QueueError):
        target.queue.retry("ghost")


def test_enqueue_many_stores_every_job_in_order(target):
    ids = target.queue.enqueue_many([{"command": "true", "id": "a"}, {"command": "echo b"},
                                     {"command": "true", "after": ["a"]}])
    assert ids[0] == "a" and len(set(ids)) == 3
    assert target.queue.get(ids[2])["after"] == ["a"]
    assert sorted(job["id"] for job in target.queue.jobs()) == sorted(ids)


@pytest.mark.parametrize(("jobs", "kind", "index"), [
    ([{"command": "true", "id": "x1"}, {"command": "true", "max_retries": "3"}], InvalidJob, 1),
    ([{"command": "true", "id": "x1"}, {"command": "true", "id": "x1"}], InvalidJob, 1),
    ([{"command": "true", "id": "x1"}, {"command": "true", "id": "existing"}], Conflict, 1),
    ([{"command": "true", "after": ["nobody"]}], Conflict, 0),
], ids=["bad-key", "repeated-id", "existing-id", "unknown-after"])
def test_enqueue_many_is_all_or_nothing_and_names_the_index(target, jobs, kind, index):
    target.queue.enqueue("true", id="existing")
    with pytest.raises(kind) as caught:
        target.queue.enqueue_many(jobs)
    assert caught.value.body["index"] == index
    assert str(caught.value).startswith(f"job {index}: ")
    assert [job["id"] for job in target.queue.jobs()] == ["existing"]


def test_enqueue_many_refuses_more_than_ten_thousand(target):
    with pytest.raises(InvalidJob, match="at most 10000"):
        target.queue.enqueue_many({"command": "true"} for _ in range(10_001))
    with pytest.raises(InvalidJob, match="at least one"):
        target.queue.enqueue_many([])


def test_jobs_filters_by_state_and_limits(target):
    target.queue.enqueue_many([{"command": "true", "id": f"j{n}"} for n in range(5)])
    target.queue.cancel("j3")
    assert [job["id"] for job in target.queue.jobs(state="cancelled")] == ["j3"]
    assert len(target.queue.jobs(limit=2)) == 2
    assert len(target.queue.jobs(state="pending", limit=100)) == 4


def test_queue_and_tag_filters_are_refused_until_the_queue_knows_them(target):
    """Named queues and tags come from another change: until then both modes refuse the filters alike."""
    for keys in ({"queue": "emails"}, {"tag": "nightly"}):
        try:
            target.queue.jobs(**keys)
        except InvalidJob as error:
            assert next(iter(keys)) in str(error)


def test_a_pipeline_runs_in_order_and_wait_returns_the_records(target):
    first = target.queue.enqueue("echo one", id="first")
    second = target.queue.enqueue("echo two", id="second", after=["first"])
    doomed = target.queue.enqueue("exit 3", id="doomed", max_retries=0)
    target.run_worker()
    records = target.queue.wait([second["id"], first["id"], doomed["id"]], timeout=30)
    assert [(record["id"], record["state"]) for record in records] == [
        ("second", "completed"), ("first", "completed"), ("doomed", "dead")]
    assert target.queue.get("second")["history"][0]["output"] == "two\n"
    assert target.queue.retry("doomed")["state"] == "pending"


def test_wait_gives_up_after_its_timeout_and_refuses_unknown_ids(target):
    target.queue.enqueue("true", id="never-run")
    with pytest.raises(Timeout) as caught:
        target.queue.wait(["never-run"], timeout=0.5)
    assert caught.value.states == {"never-run": "pending"}
    assert isinstance(caught.value, TimeoutError)
    with pytest.raises(JobNotFound):
        target.queue.wait(["never-run", "ghost"], timeout=5)


def test_cancel_and_status(target):
    target.queue.enqueue("true", id="c1")
    assert target.queue.cancel("c1")["state"] == "cancelled"
    with pytest.raises(Conflict):
        target.queue.cancel("c1")
    summary = target.queue.status()
    assert set(summary) == {"jobs", "workers", "paused"}
    assert summary["jobs"]["cancelled"] == 1 and summary["paused"] is False


def test_the_package_exports_the_contracts_names():
    assert {"Queue", "InvalidJob", "JobNotFound", "Conflict", "Unavailable"} <= set(queuectl.__all__)
    for name in ("enqueue", "enqueue_many", "get", "jobs", "wait", "cancel", "retry", "status"):
        method = getattr(queuectl.Queue, name)
        assert method.__doc__ and method.__annotations__.get("return"), name


def test_jobs_named_dot_and_dot_dot_are_found_and_cancelled_in_every_mode(target):
    """'.' and '..' are valid ids: through the API they must reach their own job, not the URL's parent route."""
    for job_id in (".", ".."):
        target.queue.enqueue("true", id=job_id)
        assert target.queue.get(job_id)["id"] == job_id
        assert target.queue.cancel(job_id)["state"] == "cancelled"
    assert [record["state"] for record in target.queue.wait([".", ".."], timeout=5)] == ["cancelled"] * 2
