"""`queuectl worker list` and `status` with workers of several slots (issue 16, `worker start --concurrency K`): each
worker shows its slots as busy/total and its running jobs, one a line under it, longest running first, each with its
run time; past 5 lines the longest running and "+N more" (`--all`: every one). `--json` carries `concurrency` and
`jobs`. The workers and their jobs are real store rows (register_worker, claim_many), on both backends."""

import re

import pytest
from helpers import busy_worker, cli_json, run_cli

RUN_TIME = re.compile(r"^(?P<id>\S+) \((?P<time>[0-9.hms]+)\)$")


def seconds(text):
    """views.duration's text back in seconds: 3.02s, 42s, 1m30s, 2h10m."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?", text)
    hours, minutes, secs = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


def table(text):
    """(header, [(cells before JOBS, the JOBS cell)]) of a worker table: the JOBS cell is what starts at its
    header's column, so that a continuation line (blank before JOBS) is told from a worker's own line."""
    lines = text.rstrip("\n").split("\n")
    column = lines[0].index("JOBS")
    return lines[0].split(), [(line[:column].split(), line[column:]) for line in lines[1:]]


@pytest.fixture
def two_workers(store):
    """w4: 3 of 4 slots busy (jobs running for 90 s, 20 s and 3 s); w1: a plain worker, idle."""
    jobs = busy_worker(store, "w4", 4, [3, 90, 20])
    store.register_worker("w1", "host", 7)
    return jobs


def test_worker_list_shows_busy_and_total_slots_and_each_running_job_under_its_worker(db_path, two_workers):
    result = run_cli(db_path, "worker", "list")
    assert result.returncode == 0, result.stderr
    header, rows = table(result.stdout)
    assert header == ["ID", "HOST", "PID", "SLOTS", "HEARTBEAT", "STOPPING", "JOBS"]
    assert len(rows) == 4  # w4 and its 2 other jobs, then w1
    (first, job), *more, (plain, idle) = rows
    assert first[:4] == ["w4", "host", "4242", "3/4"] and first[-1] == "no"
    assert [cells for cells, _ in more] == [[], []]  # continuation lines: only the job
    listed = [RUN_TIME.match(cell) for cell in [job, *(cell for _, cell in more)]]
    assert [match["id"] for match in listed] == two_workers == ["w4-job-0", "w4-job-1", "w4-job-2"]
    for match, began in zip(listed, (90, 20, 3), strict=True):
        assert began <= seconds(match["time"]) < began + 30, match[0]  # generous: a slow machine
    assert plain[:4] == ["w1", "host", "7", "0/1"] and idle == "idle"


def test_worker_list_json_and_status_json_carry_concurrency_and_jobs(db_path, two_workers):
    listed = {worker["id"]: worker for worker in cli_json(db_path, "worker", "list")}
    busy, plain = listed["w4"], listed["w1"]
    assert busy["concurrency"] == 4
    assert [job["id"] for job in busy["jobs"]] == two_workers
    starts = [job["started_at"] for job in busy["jobs"]]
    assert starts == sorted(starts) and all(start.endswith("Z") for start in starts)
    # The fields of a worker before slots stay: the longest running job is the "current" one.
    assert (busy["current_job"], busy["current_job_started_at"]) == (two_workers[0], starts[0])
    assert plain["concurrency"] == 1 and plain["jobs"] == [] and plain["current_job"] is None
    assert cli_json(db_path, "status")["workers"] == list(listed.values())


def test_status_shows_the_same_worker_table(db_path, two_workers):
    status = run_cli(db_path, "status")
    listed = run_cli(db_path, "worker", "list")
    assert status.returncode == listed.returncode == 0
    workers = status.stdout.split("Workers: 2 live\n", 1)[1]
    masked = [re.sub(r"\d[\d.hms]* ago|\([\d.hms]+\)", "<t>", text) for text in (workers, listed.stdout)]
    assert masked[0] == masked[1]
    assert "3/4" in workers and "0/1" in workers


def test_a_worker_with_many_jobs_shows_the_longest_running_and_how_many_more_and_all_shows_every_one(
        db_path, store):
    jobs = busy_worker(store, "w50", 50, [100, 90, 80] + [5] * 44)
    result = run_cli(db_path, "worker", "list")
    assert result.returncode == 0, result.stderr
    _, rows = table(result.stdout)
    assert rows[0][0][3] == "47/50"
    cells = [cell for _, cell in rows]
    assert [RUN_TIME.match(cell)["id"] for cell in cells[:4]] == jobs[:4]
    assert cells[4:] == ["+43 more (worker list --all)"]
    every = run_cli(db_path, "worker", "list", "--all")
    _, rows = table(every.stdout)
    assert [RUN_TIME.match(cell)["id"] for _, cell in rows] == jobs
    assert "+43 more" in run_cli(db_path, "status").stdout  # status shows the short form too


def test_five_running_jobs_are_all_listed_without_a_more_line(db_path, store):
    jobs = busy_worker(store, "w5", 8, [5, 4, 3, 2, 1])
    _, rows = table(run_cli(db_path, "worker", "list").stdout)
    assert rows[0][0][3] == "5/8"
    assert [RUN_TIME.match(cell)["id"] for _, cell in rows] == jobs
