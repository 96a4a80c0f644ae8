"""Schedules in the store (both backends): firing once per slot, catch-up, overlap, pause/resume/run/remove; and
with real worker processes racing for the slots of a 1 s schedule."""

import threading

import pytest
from helpers import QUIET, run_cli, wait_for
from queuectl_core.errors import DuplicateSchedule, ScheduleNotFound
from queuectl_core.lifecycle import Outcome
from queuectl_core.schedules import check_schedule
from queuectl_core.store import open_store

SECOND = 1000
T0 = 1_800_000_000_000  # a whole minute (and second) since the epoch
SETTINGS = {"lease_timeout": 30}


def every(name, interval, overlap="skip", command="true"):
    return check_schedule(name, every=interval, overlap=overlap, job={"command": command})


def scheduled_jobs(store, name):
    return sorted((job for job in store.list_jobs(limit=1000) if job["schedule"] == name),
                  key=lambda job: job["scheduled_for"] or "")


def test_a_due_slot_enqueues_one_job_with_its_schedule_and_slot(store):
    store.add_schedule(every("tick", "10s"), now=T0 + 1)
    assert store.get_schedule("tick")["next_run_at"] == "2027-01-15T08:00:10.000Z"
    assert store.fire_due_schedules(now=T0 + 9_999, settings=SETTINGS).job_ids == []
    firing = store.fire_due_schedules(now=T0 + 10_500, settings=SETTINGS)
    assert len(firing.job_ids) == 1 and firing.next_due == T0 + 20_000
    job = store.get_job(firing.job_ids[0])
    assert (job["command"], job["schedule"], job["scheduled_for"]) == ("true", "tick", "2027-01-15T08:00:10.000Z")
    assert store.fire_due_schedules(now=T0 + 10_600, settings=SETTINGS).job_ids == []  # that slot is done
    listed = store.list_schedules()[0]
    assert (listed["last_run_at"], listed["last_job_id"]) == ("2027-01-15T08:00:10.000Z", job["id"])
    assert listed["next_run_at"] == "2027-01-15T08:00:20.000Z"


def test_slots_missed_while_no_worker_ran_are_caught_up_with_one_job_for_the_latest(store):
    store.add_schedule(every("minutely", "1m"), now=T0)
    # no worker for 10 minutes and 20 seconds (much longer than the lease timeout)
    firing = store.fire_due_schedules(now=T0 + 620 * SECOND, settings=SETTINGS)
    assert len(firing.job_ids) == 1
    assert store.get_job(firing.job_ids[0])["scheduled_for"] == "2027-01-15T08:10:00.000Z"
    assert firing.next_due == T0 + 660 * SECOND


def test_overlap_skip_skips_a_slot_while_the_schedule_has_an_unfinished_job_and_allow_does_not(store):
    store.add_schedule(every("skipper", "1s"), now=T0)
    store.add_schedule(every("allower", "1s", overlap="allow"), now=T0)
    store.fire_due_schedules(now=T0 + 1_000, settings=SETTINGS)
    store.fire_due_schedules(now=T0 + 2_000, settings=SETTINGS)  # skipper's first job is still pending
    assert len(scheduled_jobs(store, "skipper")) == 1
    assert len(scheduled_jobs(store, "allower")) == 2
    while (claim := store.claim_next("w", 30, now=T0 + 2_100)) is not None:
        store.finish_run(claim, Outcome("completed", 0), "", now=T0 + 2_200)
    store.fire_due_schedules(now=T0 + 3_000, settings=SETTINGS)
    assert [job["scheduled_for"][-7:] for job in scheduled_jobs(store, "skipper")] == ["01.000Z", "03.000Z"]


def test_pause_resume_run_and_remove(store):
    store.add_schedule(every("s", "1s"), now=T0)
    with pytest.raises(DuplicateSchedule):
        store.add_schedule(every("s", "5s"), now=T0)
    assert store.pause_schedule("s", now=T0)["paused"] is True
    assert store.fire_due_schedules(now=T0 + 5_000, settings=SETTINGS).job_ids == []  # paused: nothing fires
    resumed = store.resume_schedule("s", now=T0 + 5_500)
    assert resumed["paused"] is False and resumed["next_run_at"].endswith("06.000Z")  # paused slots not caught up
    job = store.run_schedule("s", now=T0 + 5_600)
    assert (job["schedule"], job["scheduled_for"]) == ("s", None)
    assert store.get_schedule("s")["last_job_id"] == job["id"]
    store.remove_schedule("s")
    assert store.list_schedules() == []
    assert store.get_job(job["id"])["schedule"] == "s"  # the jobs it made stay
    for action in (store.remove_schedule, store.pause_schedule, store.resume_schedule, store.run_schedule,
                   store.get_schedule):
        with pytest.raises(ScheduleNotFound):
            action("s")


def test_the_database_refuses_a_second_job_for_the_same_slot(store):
    """The last line of defence: whatever the firing code did, (schedule, slot) is unique in the database."""
    from dataclasses import replace

    from queuectl_core.validation import check_job

    spec = replace(check_job({"command": "true"}), schedule="s", scheduled_for_ms=T0)
    with store._transaction() as connection:
        store._insert_derived(connection, spec, T0)
    with pytest.raises(store._integrity_error), store._transaction() as connection:
        store._insert_derived(connection, spec, T0)
    assert store.counts()["pending"] == 1


def test_stores_firing_at_the_same_moment_enqueue_each_slot_once(db_path):
    """Eight connections (as eight workers) fire the same due slots at once, over and over."""
    setup = open_store(str(db_path))
    setup.add_schedule(every("race", "1s", overlap="allow"), now=T0)
    stores = [open_store(str(db_path)) for _ in range(8)]
    fired = []
    barrier = threading.Barrier(len(stores))

    def fire(store):
        for second in range(1, 21):
            barrier.wait()
            fired.extend(store.fire_due_schedules(now=T0 + second * SECOND + 10, settings=SETTINGS).job_ids)

    threads = [threading.Thread(target=fire, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots = [job["scheduled_for"] for job in scheduled_jobs(setup, "race")]
    assert len(fired) == len(slots) == 20 == len(set(slots))
    for store in [setup, *stores]:
        store.close()


def test_worker_groups_racing_on_a_1s_schedule_enqueue_every_slot_exactly_once(store, db_path, processes):
    store.add_schedule(every("pulse", "1s", overlap="allow"))
    groups = [processes.start_workers(db_path, "--count", "2", env=QUIET) for _ in range(3)]
    wait_for(lambda: len(scheduled_jobs(store, "pulse")) >= 8, timeout=60, message="8 slots fired")
    for group in groups:
        group.terminate()
    for group in groups:
        assert group.wait(timeout=30) == 0, processes.log(group)
    slots = [int(job["scheduled_for"][17:19]) for job in scheduled_jobs(store, "pulse")]
    times = sorted(job["scheduled_for"] for job in scheduled_jobs(store, "pulse"))
    assert len(times) == len(set(times)), "a slot fired twice"
    from helpers import iso_seconds

    seconds = [round(iso_seconds(t)) for t in times]
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), f"a slot was skipped: {slots}"
    assert {job["worker_id"] for job in store.list_jobs(limit=100) if job["schedule"] == "pulse"} - {None}


def test_the_cli_adds_lists_pauses_runs_and_removes_schedules(db_path):
    added = run_cli(db_path, "schedule", "add", "nightly", "--cron", "30 2 * * *", "--timezone",
                    "Europe/Berlin", '{"command": "backup.sh", "max_retries": 1}')
    assert added.returncode == 0 and "next run at" in added.stdout, added.stderr
    assert run_cli(db_path, "schedule", "add", "nightly", "--every", "5s", '{"command": "x"}').returncode == 1
    listed = run_cli(db_path, "schedule", "list", "--json")
    import json

    [record] = json.loads(listed.stdout)
    assert {key: record[key] for key in ("name", "cron", "every", "timezone", "overlap", "paused", "last_run_at",
                                         "last_job_id", "job")} == {
        "name": "nightly", "cron": "30 2 * * *", "every": None, "timezone": "Europe/Berlin", "overlap": "skip",
        "paused": False, "last_run_at": None, "last_job_id": None,
        "job": {"command": "backup.sh", "max_retries": 1}}
    assert record["next_run_at"][11:16] in ("00:30", "01:30")  # 02:30 in Berlin, summer or winter
    assert run_cli(db_path, "schedule", "pause", "nightly").returncode == 0
    assert json.loads(run_cli(db_path, "schedule", "list", "--json").stdout)[0]["paused"] is True
    assert run_cli(db_path, "schedule", "resume", "nightly").returncode == 0
    ran = run_cli(db_path, "schedule", "run", "nightly")
    job_id = ran.stdout.strip()
    shown = json.loads(run_cli(db_path, "show", job_id, "--json").stdout)
    assert (shown["command"], shown["max_retries"], shown["schedule"]) == ("backup.sh", 1, "nightly")
    assert run_cli(db_path, "schedule", "rm", "nightly").returncode == 0
    for command in ("rm", "pause", "resume", "run"):
        refused = run_cli(db_path, "schedule", command, "nightly")
        assert refused.returncode == 1 and "no schedule named 'nightly'" in refused.stderr


@pytest.mark.parametrize("arguments", [
    ["--cron", "61 * * * *"], ["--cron", "* * * *"], ["--cron", "0 0 31 2 *"], ["--every", "0s"],
    ["--every", "1 minute"], ["--every", "5s", "--timezone", "Nowhere/Atlantis"],
    ["--every", "5s", "--cron", "* * * * *"],
    ["--every", "5s", "--overlap", "queue"],
])
def test_a_bad_expression_zone_or_duration_exits_2_and_adds_nothing(db_path, arguments):
    result = run_cli(db_path, "schedule", "add", "bad", *arguments, '{"command": "true"}')
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert run_cli(db_path, "schedule", "list", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize("job", [
    '{"command": "true", "id": "fixed"}', '{"command": "true", "run_at": "2030-01-01T00:00:00Z"}',
    '{"command": "true", "delay": 5}', '{"command": ""}', '{"command": "true"', '["true"]',
    '{"command": "true", "on_success": {"command": "x", "on_dead": {"command": "y"}}}',
    '{"command": "true", "env": {"1BAD": "x"}}', '{"command": "true", "cwd": "relative/dir"}',
])
def test_a_bad_job_template_exits_2_and_adds_nothing(db_path, job):
    result = run_cli(db_path, "schedule", "add", "bad", "--every", "5s", job)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert run_cli(db_path, "schedule", "list", "--json").stdout.strip() == "[]"
