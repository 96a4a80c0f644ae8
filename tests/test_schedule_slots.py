"""The times of a schedule's slots, daylight-saving days included, and which due slots fire: pure functions, no
database, no clock (time is a parameter)."""

from datetime import UTC, datetime

import pytest
from queuectl_core.errors import InvalidInput
from queuectl_core.schedules import (
    check_schedule,
    due_slots,
    every_text,
    latest_slot,
    next_slot,
)

JOB = {"command": "backup.sh"}
MINUTE = 60_000


def ms(text):
    """An ISO time with its offset as milliseconds since the epoch."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def iso_utc(milliseconds):
    return datetime.fromtimestamp(milliseconds / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def cron(expression, timezone="UTC"):
    return check_schedule("s", cron=expression, timezone=timezone, job=JOB)


def test_a_cron_slot_follows_its_time_zone():
    nightly = cron("0 2 * * *", "Europe/Berlin")
    # winter: Berlin is UTC+1, summer UTC+2
    assert iso_utc(next_slot(nightly, ms("2025-01-10T12:00:00+00:00"))) == "2025-01-11T01:00"
    assert iso_utc(next_slot(nightly, ms("2025-07-10T12:00:00+00:00"))) == "2025-07-11T00:00"


def test_a_0230_job_on_a_spring_forward_day_runs_once_at_0300_right_after_the_gap():
    # 2025-03-30 in Berlin: 02:00 jumps to 03:00, so 02:30 does not exist that day.
    spring = cron("30 2 * * *", "Europe/Berlin")
    day_before = next_slot(spring, ms("2025-03-29T12:00:00+01:00"))
    assert day_before == ms("2025-03-30T03:00:00+02:00")  # 01:00 UTC, once
    assert next_slot(spring, day_before) == ms("2025-03-31T02:30:00+02:00")  # then back at 02:30


def test_a_0130_job_on_a_fall_back_day_runs_once_at_the_first_0130():
    # 2025-11-02 in New York: 01:00-01:59 happens twice (EDT, then EST).
    fall = cron("30 1 * * *", "America/New_York")
    first = next_slot(fall, ms("2025-11-01T12:00:00-04:00"))
    assert first == ms("2025-11-02T01:30:00-04:00")  # the first 01:30 (05:30 UTC)
    # neither from the first 01:30 nor from inside the repeated hour (01:15 EST, after it) does it run again that day
    assert next_slot(fall, first) == ms("2025-11-03T01:30:00-05:00")
    assert next_slot(fall, ms("2025-11-02T01:15:00-05:00")) == ms("2025-11-03T01:30:00-05:00")


def test_latest_slot_is_the_last_slot_at_or_before_a_time():
    hourly = cron("0 * * * *")
    assert latest_slot(hourly, ms("2025-05-01T10:59:59+00:00")) == ms("2025-05-01T10:00:00+00:00")
    assert latest_slot(hourly, ms("2025-05-01T10:00:00+00:00")) == ms("2025-05-01T10:00:00+00:00")


def test_every_slots_are_multiples_of_the_interval_since_the_epoch():
    every = check_schedule("s", every="5m", job=JOB)
    assert next_slot(every, ms("2025-05-01T10:02:13+00:00")) == ms("2025-05-01T10:05:00+00:00")
    assert next_slot(every, ms("2025-05-01T10:05:00+00:00")) == ms("2025-05-01T10:10:00+00:00")
    assert [every_text(n) for n in (30_000, 300_000, 3_600_000, 90_000, 1_500, 86_400_000)] == [
        "30s", "5m", "1h", "90s", "1.5s", "1d"]


def test_each_due_slot_fires_while_workers_look_in_time():
    every = check_schedule("s", every="1s", job=JOB)
    slots, following = due_slots(every, 10_000, 12_500, window_ms=30_000)
    assert slots == [10_000, 11_000, 12_000] and following == 13_000
    assert due_slots(every, 13_000, 12_500, 30_000) == ([], 13_000)  # nothing due yet


def test_slots_missed_while_no_worker_ran_are_caught_up_with_one_job_for_the_latest():
    hourly = cron("0 * * * *")
    down_since = ms("2025-05-01T03:00:00+00:00")  # the next slot when the last worker stopped
    back_at = ms("2025-05-01T09:20:00+00:00")
    slots, following = due_slots(hourly, down_since, back_at, window_ms=30_000)
    assert slots == [ms("2025-05-01T09:00:00+00:00")]
    assert following == ms("2025-05-01T10:00:00+00:00")


@pytest.mark.parametrize("fields, words", [
    ({"cron": "61 2 * * *"}, ["cron", "61 2 * * *"]),
    ({"cron": "0 2 * *"}, ["five fields"]),
    ({"cron": "0 2 * * * *"}, ["five fields"]),  # seconds are not cron's
    ({"cron": "0 0 30 2 *"}, ["cron"]),  # February has no 30th
    ({"cron": "@reboot"}, ["five fields"]),
    ({"every": "0.5s"}, ["at least 1s"]),
    ({"every": "soon"}, ["every", "duration"]),
    ({"every": "1s", "timezone": "Mars/Olympus"}, ["time zone", "Mars/Olympus"]),
    ({"every": "1s", "timezone": "../../etc/passwd"}, ["time zone"]),
    ({"every": "1s", "overlap": "queue"}, ["overlap"]),
    ({"every": "1s", "cron": "* * * * *"}, ["either"]),
    ({}, ["either"]),
    ({"every": "1s", "job": {"command": "x", "run_at": "2030-01-01T00:00:00Z"}}, ["run_at", "not allowed"]),
    ({"every": "1s", "job": {"command": "x", "delay": 5}}, ["delay", "not allowed"]),
    ({"every": "1s", "job": {"command": ""}}, ["command"]),
    ({"every": "1s", "job": ["echo"]}, ["JSON job object"]),
])
def test_a_bad_schedule_is_refused_with_a_message_naming_what_is_wrong(fields, words):
    arguments = {"job": JOB, **fields}
    with pytest.raises(InvalidInput) as refused:
        check_schedule("s", **arguments)
    for word in words:
        assert word in str(refused.value)
