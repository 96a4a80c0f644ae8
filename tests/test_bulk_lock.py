"""Bulk enqueue holds SQLite's write lock as briefly as it can.

Found by the contention campaign: `queuectl enqueue --file` of 1,000,000 jobs held the write lock for the whole
insert (~40 s on 2 busy cores), so a `queuectl enqueue` started meanwhile waited out the 30 s busy timeout and failed
with "database is locked". Large batches are now staged in a temporary table (no lock on the database) and copied
in one INSERT ... SELECT under the lock: the same concurrent enqueue then waited at most ~16 s and succeeded.
"""

import sqlite3

import pytest
from queuectl_core.errors import DuplicateJob
from queuectl_core.store import open_store
from queuectl_core.store.sqlite import STAGE_MIN_JOBS
from queuectl_core.validation import check_job

FIELDS = ("command", "state", "attempts", "max_retries", "priority", "timeout")


def specs(count, prefix="job"):
    """Varied jobs: some with ids, priorities, delays, timeouts, retry policies."""
    found = []
    for number in range(count):
        job = {"command": f"echo {number}"}
        if number % 3 == 0:
            job["id"] = f"{prefix}-{number}"
        if number % 5 == 0:
            job["priority"] = number % 7 - 3
        if number % 7 == 0:
            job["delay"] = 60
        if number % 11 == 0:
            job["timeout"] = 2.5
        if number % 13 == 0:
            job["max_retries"] = 0
        if number % 17 == 0:
            job["retry_on"] = [2, 3]
        found.append((number + 1, check_job(job)))
    return found


def test_a_large_bulk_enqueue_stores_the_same_jobs_in_the_same_order_as_small_ones(tmp_path):
    count = STAGE_MIN_JOBS + 1000
    large, small = open_store(str(tmp_path / "large.db")), open_store(str(tmp_path / "small.db"))
    try:
        large_ids = large.enqueue_many(specs(count), now=1_000)
        small_ids = []
        numbered = specs(count)
        for start in range(0, count, 500):  # below the staging threshold: inserted directly
            small_ids += small.enqueue_many(numbered[start: start + 500], now=1_000)
        assert len(large_ids) == count and large.counts()["pending"] == count
        in_order = large.list_jobs(limit=count)[::-1]  # oldest first: the lines' order
        assert [job["id"] for job in in_order] == large_ids
        for mine, theirs in zip(in_order, small.list_jobs(limit=count)[::-1], strict=True):
            assert {key: mine[key] for key in FIELDS} == {key: theirs[key] for key in FIELDS}
            assert mine["run_at"] == theirs["run_at"] and mine["created_at"] == theirs["created_at"]
        assert large.get_job("job-0") == {**small.get_job("job-0")}
    finally:
        large.close()
        small.close()


def test_staging_a_bulk_enqueue_leaves_the_database_free_for_other_writers(sqlite_path):
    store = open_store(str(sqlite_path))
    other = sqlite3.connect(str(sqlite_path), timeout=0, isolation_level=None)  # no waiting: locked = an error
    writes = []

    def progress(count):
        # Called while the rows are being staged: another process can write meanwhile.
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE settings SET value = value")
        other.execute("COMMIT")
        writes.append(count)

    try:
        store.enqueue_many(specs(STAGE_MIN_JOBS * 3), progress=progress)
        assert len(writes) >= 2
        assert store.counts()["pending"] == STAGE_MIN_JOBS * 3
    finally:
        other.close()
        store.close()


def test_a_large_bulk_enqueue_with_a_duplicate_id_adds_nothing_and_names_the_line(sqlite_path):
    store = open_store(str(sqlite_path))
    try:
        store.enqueue(check_job({"id": "taken", "command": "true"}))
        numbered = specs(STAGE_MIN_JOBS * 2)
        numbered[7000] = (7001, check_job({"id": "taken", "command": "true"}))
        with pytest.raises(DuplicateJob) as raised:
            store.enqueue_many(numbered)
        assert raised.value.line == 7001
        assert store.counts()["pending"] == 1
        # The staging table left nothing behind that a later batch would pick up.
        assert len(store.enqueue_many(specs(STAGE_MIN_JOBS, prefix="again"))) == STAGE_MIN_JOBS
        assert store.counts()["pending"] == 1 + STAGE_MIN_JOBS
    finally:
        store.close()


@pytest.mark.parametrize("count", [STAGE_MIN_JOBS + 10, 10])  # staged, and inserted directly
def test_a_bulk_enqueue_stores_a_column_only_one_line_sets(sqlite_path, count):
    # Staging leaves out the columns no line sets; a column one line sets is staged, for that line.
    store = open_store(str(sqlite_path))
    try:
        numbered = [(n + 1, check_job({"command": f"echo {n}"})) for n in range(count)]
        numbered[-1] = (count, check_job({"command": "last", "id": "last", "timeout": 2.5, "no_retry_on": [4],
                                          "after": ["first"], "priority": 7, "delay": 1}))
        numbered[0] = (1, check_job({"command": "first", "id": "first", "max_retries": 0}))
        store.enqueue_many(numbered, now=5_000)
        first, last = store.get_job("first"), store.get_job("last")
        assert (first["timeout"], first["no_retry_on"], first["after"], first["max_retries"]) == (None, None, [], 0)
        assert (last["timeout"], last["no_retry_on"], last["after"]) == (2.5, [4], ["first"])
        assert (last["priority"], last["max_retries"], last["command"]) == (7, 3, "last")
        assert (last["run_at"], last["created_at"], last["updated_at"]) == (
            "1970-01-01T00:00:06.000Z", "1970-01-01T00:00:05.000Z", "1970-01-01T00:00:05.000Z")
        middle = store.list_jobs(limit=2)[1]
        assert (middle["command"], middle["timeout"], middle["retry_on"], middle["state"]) == (
            f"echo {count - 2}", None, None, "pending")
    finally:
        store.close()
