"""The chaos campaign's short versions, in the normal suite: a soak of 500 jobs under kills (~20 s) and a kill -9
in the middle of a bulk enqueue of 100k jobs. `make chaos` runs the long versions and prints their reports."""

import pytest
from bulk_kill import batch_count, run_round, write_batch
from chaoslib import counts_consistent, integrity, run_cli
from soak import format_report, run_soak

pytestmark = pytest.mark.slow


def test_a_soak_under_sigkill_and_sigterm_completes_every_job_once_except_runs_cut_by_a_kill(tmp_path):
    report = run_soak(tmp_path, jobs=500, workers=4, kill_every=1.0, lease_timeout=2, slow_fraction=0.1,
                      slow_seconds=0.2, time_limit=100, log=lambda *_: None)
    assert report["ok"], format_report(report)
    assert report["strikes"]["strikes"] >= 3, format_report(report)  # the chaos really happened
    assert report["counts"]["completed"] == 500
    assert report["unexplained_duplicates"] == 0 and report["integrity_check"] == "ok"


def test_kill_9_in_the_middle_of_a_bulk_enqueue_of_100k_jobs_leaves_all_or_nothing_and_an_intact_database(tmp_path):
    db = tmp_path / "queue.db"
    write_batch(tmp_path / "old.jsonl", 1000, "old")
    assert run_cli(db, "enqueue", "--file", str(tmp_path / "old.jsonl")).returncode == 0
    batch = tmp_path / "batch.jsonl"
    write_batch(batch, 100_000, "batch")

    result = run_round(db, batch, 100_000, "batch", wal_bytes=2_000_000)  # the insert is under way

    assert result["killed"], result
    assert result["batch_present"] == 0, result  # killed before the commit: none of the batch
    assert result["integrity_check"] == "ok" and result["job_counts_consistent"], result
    assert batch_count(db, "old") == 1000
    again = run_cli(db, "enqueue", "--file", str(batch))  # nothing half-written is in the way
    assert again.returncode == 0, again.stderr
    assert batch_count(db, "batch") == 100_000
    assert integrity(db) == "ok" and counts_consistent(db)[0]


def test_enqueuers_workers_and_api_readers_at_once_never_see_database_is_locked(tmp_path):
    from contention import format_report as format_contention
    from contention import run_contention

    report = run_contention(tmp_path, seconds=6, enqueuers=4, workers=4, readers=1, log=lambda *_: None)

    assert report["jobs_enqueued"] > 0 and report["api_requests"] > 0, format_contention(report)
    assert report["locked_reaching_a_user"] == 0 and report["locked_reaching_a_job"] == 0, format_contention(report)
    assert report["ok"], format_contention(report)
