"""The store's dashboard and API queries: search and sort, throughput per minute, retry all, settings at once."""

import pytest
from api_support import add_job, make_dead
from queuectl_core.errors import DatabaseUnusable, InvalidInput
from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.validation import check_job

MINUTE = 60_000
NOW = 1_800_000_000_000  # a fixed "now", on a minute boundary


def finish(store, job_id, start, seconds, outcome):
    store.enqueue(check_job({"command": "true", "id": job_id, "max_retries": 0}), now=start)
    claim = store.claim_next("w", 30, now=start)
    assert claim.id == job_id
    end = start + int(seconds * 1000)
    store.finish_run(claim, outcome, "", now=end)


def test_throughput_counts_runs_per_minute_succeeded_and_failed_apart(store):
    finish(store, "a", NOW - 5 * MINUTE, 1, Outcome(COMPLETED, 0, None))
    finish(store, "b", NOW - 5 * MINUTE + 10, 2, Outcome(FAILED, 1, "exit code 1"))
    finish(store, "c", NOW + 1000, 1, Outcome(COMPLETED, 0, None))
    finish(store, "old", NOW - 90 * MINUTE, 1, Outcome(COMPLETED, 0, None))
    series = store.throughput(60, now=NOW + 30_000)
    assert len(series) == 60
    assert series[-1] == {"minute": "2027-01-15T08:00:00.000Z", "succeeded": 1, "failed": 0}
    assert series[-6] == {"minute": "2027-01-15T07:55:00.000Z", "succeeded": 1, "failed": 1}
    assert sum(m["succeeded"] + m["failed"] for m in series) == 3  # the run 90 minutes ago is out of range


def test_a_run_killed_with_exit_code_null_counts_as_failed(store):
    finish(store, "killed", NOW, 1, Outcome(FAILED, None, "timeout: killed after 1s"))
    assert store.throughput(1, now=NOW + 2000)[-1]["failed"] == 1


def test_search_jobs_returns_a_page_and_the_total(store):
    for index in range(7):
        add_job(store, f"echo {index}", id=f"j{index}")
    page, total = store.search_jobs(limit=3, offset=3)
    assert [job["id"] for job in page] == ["j3", "j2", "j1"] and total == 7
    page, total = store.search_jobs(query="echo 5")
    assert [job["id"] for job in page] == ["j5"] and total == 1


def test_search_jobs_breaks_ties_by_enqueue_order_so_pages_never_overlap(store):
    for index in range(10):
        add_job(store, id=f"j{index}", priority=index % 2)
    seen = []
    for offset in range(0, 10, 3):
        page, _ = store.search_jobs(sort="priority", descending=False, limit=3, offset=offset)
        seen += [job["id"] for job in page]
    assert sorted(seen) == sorted(f"j{i}" for i in range(10))


def test_search_jobs_refuses_an_unknown_sort_key(store):
    with pytest.raises(InvalidInput, match="sort"):
        store.search_jobs(sort="seq; DROP TABLE jobs")


def test_retry_all_dead_resets_attempts_and_leaves_other_jobs_alone(store):
    make_dead(store, "d1")
    make_dead(store, "d2")
    add_job(store, id="p")
    assert store.retry_all_dead() == 2
    for job_id in ("d1", "d2"):
        job = store.get_job(job_id)
        assert job["state"] == "pending" and job["attempts"] == 0 and job["worker_id"] is None
    assert store.counts() == {"pending": 3, "processing": 0, "completed": 0, "failed": 0, "dead": 0, "cancelled": 0}


def test_set_settings_is_all_or_nothing(store):
    with pytest.raises(InvalidInput):
        store.set_settings({"max_retries": "9", "backoff_base": "0"})
    assert store.get_settings()["max_retries"] == 3
    assert store.set_settings({"max_retries": "9", "backoff_base": "1.5"}) == {"max_retries": 9, "backoff_base": 1.5}
    assert store.get_settings()["max_retries"] == 9


def test_ping_answers_and_a_broken_file_raises_database_unusable(store, tmp_path):
    assert store.ping() is True
    store.connection.close()
    with pytest.raises(DatabaseUnusable):
        store.ping()
