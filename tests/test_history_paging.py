"""A job's history is bounded (issue 13, item 10): the store, `queuectl show` and GET /api/v1/jobs/ID return the
latest runs (oldest first among them) with `history_total`, and page back through the older ones. The API's side:
tests/api/test_api_history.py."""

import json

from helpers import run_cli
from queuectl_core.lifecycle import FAILED, Outcome
from queuectl_core.store import open_store
from queuectl_core.validation import check_job

NOW = 1_800_000_000_000


def job_with_runs(store, job_id, count):
    """A job that has failed `count` runs (and will be retried again): run n printed 'run n'."""
    store.set_setting("backoff_max", 0)  # due again at once
    store.get_settings()  # (read again: the store decides with the settings it last read)
    store.enqueue(check_job({"command": "false", "id": job_id, "max_retries": 1_000_000}), now=NOW)
    for attempt in range(1, count + 1):
        claim = store.claim_next("w", 30, now=NOW + attempt)
        assert (claim.id, claim.attempt) == (job_id, attempt)
        store.finish_run(claim, Outcome(FAILED, 1, "exit code 1"), f"run {attempt}\n", now=NOW + attempt)


def attempts(record):
    return [run["attempt"] for run in record["history"]]


def test_the_store_gives_the_latest_runs_oldest_first_and_pages_back(store):
    job_with_runs(store, "many", 7)
    everything = store.get_job("many", history=True)
    assert attempts(everything) == [1, 2, 3, 4, 5, 6, 7] and everything["history_total"] == 7
    latest = store.get_job("many", history=True, history_limit=3)
    assert attempts(latest) == [5, 6, 7] and latest["history_total"] == 7
    assert latest["history"] == everything["history"][4:]  # the same runs, whole
    assert attempts(store.get_job("many", history=True, history_limit=3, history_offset=3)) == [2, 3, 4]
    assert attempts(store.get_job("many", history=True, history_limit=3, history_offset=6)) == [1]
    assert attempts(store.get_job("many", history=True, history_limit=3, history_offset=7)) == []
    assert attempts(store.get_job("many", history=True, history_offset=5)) == [1, 2]
    # A run still going is the latest one, with finished_at null.
    claim = store.claim_next("w", 30, now=NOW + 100)
    running = store.get_job("many", history=True, history_limit=2)
    assert attempts(running) == [7, 8] and running["history"][-1]["finished_at"] is None
    assert running["history_total"] == 8 and claim.attempt == 8
    assert "history" not in store.get_job("many")


def test_queuectl_show_prints_the_latest_20_runs_and_says_how_many_are_older(db_path):
    store = open_store(str(db_path))
    job_with_runs(store, "retried", 25)
    store.close()
    result = run_cli(db_path, "show", "retried")
    assert result.returncode == 0, result.stderr
    assert "History (25 runs)" in result.stdout
    assert "(5 older runs are not shown: `queuectl show retried --all-history` shows every run)" in result.stdout
    shown = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  #")]
    assert shown == [f"#{n}" for n in range(6, 26)]
    every = run_cli(db_path, "show", "retried", "--all-history")
    assert [line.split()[0] for line in every.stdout.splitlines() if line.startswith("  #")] == [
        f"#{n}" for n in range(1, 26)]
    assert "not shown" not in every.stdout
    record = json.loads(run_cli(db_path, "show", "retried", "--json", "--history-limit", "3").stdout)
    assert attempts(record) == [23, 24, 25] and record["history_total"] == 25
    assert record["history"][-1]["output"] == "run 25\n"
    result = run_cli(db_path, "show", "retried", "--history-limit", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
