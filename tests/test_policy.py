"""Pure policy of the shared package: validation, settings, backoff and the state transition."""

import random

import pytest
from queuectl_core import backoff, settings
from queuectl_core.errors import InvalidInput
from queuectl_core.lifecycle import COMPLETED, FAILED, INTERRUPTED, LOST, TIMEOUT, Outcome, decide
from queuectl_core.timeutil import parse_iso, to_iso
from queuectl_core.validation import check_job, parse_job_json

SETTINGS = {"backoff_base": 2, "backoff_max": 3600, "backoff_jitter": "none"}


def test_a_minimal_job_gets_defaults_left_to_the_store():
    spec = check_job({"command": "echo hi"})
    assert (spec.command, spec.id, spec.max_retries, spec.priority) == ("echo hi", None, None, 0)
    assert (spec.run_at_ms, spec.delay_ms, spec.timeout) == (None, None, None)


def test_every_field_is_carried_through():
    spec = check_job({"command": "x", "id": "a.b:c-1_2", "max_retries": 5, "priority": -3,
                      "run_at": "2030-01-01T00:00:00Z", "timeout": 1.5})
    assert spec.id == "a.b:c-1_2" and spec.max_retries == 5 and spec.priority == -3
    assert spec.run_at_ms == parse_iso("2030-01-01T00:00:00+00:00") and spec.timeout == 1.5


@pytest.mark.parametrize(
    "job, key",
    [
        ({"command": "x", "bogus": 1}, "bogus"),
        ({}, "command"),
        ({"command": ""}, "command"),
        ({"command": "   "}, "command"),
        ({"command": None}, "command"),
        ({"command": 5}, "command"),
        ({"command": "x", "id": ""}, "id"),
        ({"command": "x", "id": "a b"}, "id"),
        ({"command": "x", "id": "x" * 129}, "id"),
        ({"command": "x", "id": 7}, "id"),
        ({"command": "x", "max_retries": -1}, "max_retries"),
        ({"command": "x", "max_retries": 1.0}, "max_retries"),
        ({"command": "x", "max_retries": True}, "max_retries"),
        ({"command": "x", "max_retries": None}, "max_retries"),
        ({"command": "x", "max_retries": "3"}, "max_retries"),
        ({"command": "x", "priority": 0.5}, "priority"),
        ({"command": "x", "priority": 10**30}, "priority"),
        ({"command": "x", "timeout": 0}, "timeout"),
        ({"command": "x", "timeout": -1}, "timeout"),
        ({"command": "x", "timeout": False}, "timeout"),
        ({"command": "x", "delay": -0.1}, "delay"),
        ({"command": "x", "delay": "5"}, "delay"),
        ({"command": "x", "run_at": "2030-01-01T00:00:00"}, "run_at"),
        ({"command": "x", "run_at": "tomorrow"}, "run_at"),
        ({"command": "x", "run_at": 1700000000}, "run_at"),
        ({"command": "x", "run_at": "2030-01-01T00:00:00Z", "delay": 1}, "run_at"),
    ],
)
def test_bad_jobs_are_refused_with_a_message_naming_the_key(job, key):
    with pytest.raises(InvalidInput, match=key):
        check_job(job)


@pytest.mark.parametrize("text", ["", "{", "[1]", '"x"', "null", '{"command": NaN}', "[" * 100000])
def test_text_that_is_not_a_json_object_is_refused(text):
    with pytest.raises(InvalidInput):
        parse_job_json(text)


def test_settings_parse_command_line_strings_and_refuse_bad_values():
    assert settings.check("backoff_base", "3") == 3
    assert settings.check("backoff_base", "1.5") == 1.5
    assert settings.check("max_retries", "0") == 0
    assert settings.check("backoff_jitter", "full") == "full"
    for name, value in [("backoff_base", "0.5"), ("backoff_base", "abc"), ("max_retries", "2.5"),
                        ("max_retries", "-1"), ("lease_timeout", "0"), ("backoff_max", "nan"),
                        ("backoff_max", "inf"), ("backoff_jitter", "some"), ("nope", "1"),
                        ("max_retries", True)]:
        with pytest.raises(InvalidInput, match=name):
            settings.check(name, value)


def test_backoff_is_base_to_the_power_of_attempts_capped():
    assert [backoff.delay(k, 2, 3600) for k in (1, 2, 3)] == [2, 4, 8]
    assert backoff.delay(20, 2, 3600) == 3600
    assert backoff.delay(10**6, 10, 60) == 60  # no overflow


def test_full_jitter_stays_between_zero_and_the_computed_delay():
    rng = random.Random(7)
    delays = [backoff.delay(3, 2, 3600, "full", rng) for _ in range(200)]
    assert all(0 <= d <= 8 for d in delays)
    assert len(set(delays)) > 100  # really random, not a constant


def test_a_success_completes_the_job():
    t = decide(1, 3, Outcome(COMPLETED, 0), SETTINGS, 1000)
    assert (t.state, t.attempts, t.exit_code, t.last_error) == ("completed", 1, 0, None)


def test_failure_k_waits_backoff_base_to_the_k_seconds_until_retries_run_out():
    now = 1_000_000
    failed = Outcome(FAILED, 3, "exit code 3")
    first = decide(0, 2, failed, SETTINGS, now)
    assert (first.state, first.attempts, first.run_at_ms) == ("failed", 1, now + 2000)
    second = decide(1, 2, failed, SETTINGS, now)
    assert (second.state, second.attempts, second.run_at_ms) == ("failed", 2, now + 4000)
    third = decide(2, 2, failed, SETTINGS, now)
    assert (third.state, third.attempts, third.exit_code) == ("dead", 3, 3)


def test_zero_retries_means_dead_after_the_first_failure():
    assert decide(0, 0, Outcome(TIMEOUT, None, "timeout"), SETTINGS, 0).state == "dead"


def test_a_lost_run_counts_as_a_failure_and_an_interrupted_one_does_not():
    assert decide(0, 3, Outcome(LOST, None, "worker lost"), SETTINGS, 0).attempts == 1
    interrupted = decide(2, 3, Outcome(INTERRUPTED, None, "interrupted"), SETTINGS, 5)
    assert (interrupted.state, interrupted.attempts, interrupted.run_at_ms) == ("pending", 2, 5)


def test_times_print_as_iso_utc_with_milliseconds_and_read_back():
    assert to_iso(0) == "1970-01-01T00:00:00.000Z"
    assert parse_iso(to_iso(1_700_000_000_123)) == 1_700_000_000_123
    assert parse_iso("2026-01-01T02:00:00+02:00") == parse_iso("2026-01-01T00:00:00Z")
