"""The state machine's rules beyond retries (tests/test_policy.py has those): a cancel asked during a run, and what
a dependency's end means for the jobs that wait for it. Pure functions: no database, no clock."""

import pytest
from queuectl_core.lifecycle import (
    CANCELLED,
    COMPLETED,
    DOOMED,
    FAILED,
    FINISHED_STATES,
    INTERRUPTED,
    LOST,
    SATISFIED,
    STATES,
    TIMEOUT,
    UNFINISHED_STATES,
    WAIT,
    Outcome,
    decide,
    dependency_effect,
    dependency_error,
    dependents_state,
    lost_outcome,
)

SETTINGS = {"backoff_base": 2, "backoff_max": 3600, "backoff_jitter": "none"}


@pytest.mark.parametrize("outcome, attempts, max_retries", [
    (Outcome(FAILED, 1, "exit code 1"), 0, 3),      # would be retried
    (Outcome(FAILED, 1, "exit code 1"), 3, 3),      # would be dead: out of retries
    (Outcome(TIMEOUT, None, "timeout"), 0, 3),
    (Outcome(LOST, None, "worker lost"), 0, 3),     # the hand-back of a lost worker's job
    (Outcome(INTERRUPTED, None, "stopped"), 0, 3),  # would be handed back without counting
    (Outcome(CANCELLED, None, "cancelled"), 0, 3),
])
def test_a_cancel_asked_during_the_run_ends_the_job_cancelled_whatever_else_the_run_did(outcome, attempts,
                                                                                         max_retries):
    transition = decide(attempts, max_retries, outcome, SETTINGS, 1000, cancel_requested=True)
    assert (transition.state, transition.attempts, transition.run_at_ms) == ("cancelled", attempts, 1000)
    assert transition.last_error == outcome.error  # the run's own reason stays on record


def test_a_run_that_completed_stays_completed_though_a_cancel_was_asked_meanwhile():
    transition = decide(0, 3, Outcome(COMPLETED, 0), SETTINGS, 1000, cancel_requested=True)
    assert (transition.state, transition.exit_code, transition.last_error) == ("completed", 0, None)


def test_without_a_cancel_the_same_outcomes_retry_die_or_go_back():
    assert decide(0, 3, Outcome(FAILED, 1, "x"), SETTINGS, 0).state == "failed"
    assert decide(3, 3, Outcome(FAILED, 1, "x"), SETTINGS, 0).state == "dead"
    assert decide(0, 3, Outcome(INTERRUPTED, None, "x"), SETTINGS, 0).state == "pending"


@pytest.mark.parametrize("state, effect", [
    ("completed", SATISFIED), ("dead", DOOMED), ("cancelled", DOOMED),
    ("pending", WAIT), ("processing", WAIT), ("failed", WAIT),
])
def test_a_dependency_satisfies_dooms_or_keeps_waiting_by_its_state(state, effect):
    assert dependency_effect(state) == effect


def test_the_jobs_waiting_for_one_that_ended_badly_become_dead_and_others_keep_waiting():
    assert [dependents_state(state) for state in STATES] == [None, None, None, None, "dead", "dead"]
    assert dependency_error("build", "dead") == "dependency 'build' ended dead"
    assert dependency_error("build", "cancelled") == "dependency 'build' was cancelled"


def test_every_state_is_either_finished_or_unfinished_and_never_both():
    assert sorted(FINISHED_STATES + UNFINISHED_STATES) == sorted(STATES)


def test_a_lost_worker_outcome_names_the_worker_and_counts_as_a_failure():
    outcome = lost_outcome("host-1-42-ab12")
    assert outcome.error == "worker lost: host-1-42-ab12 stopped renewing its lease"
    assert decide(0, 3, outcome, SETTINGS, 0).state == "failed"


def test_a_completed_job_enqueues_its_on_success_a_dead_one_its_on_dead_and_no_other_end_a_hook():
    from queuectl_core.lifecycle import hook_for

    assert hook_for("completed") == "on_success"
    assert hook_for("dead") == "on_dead"
    assert [hook_for(state) for state in ("pending", "processing", "failed", "cancelled")] == [None] * 4


def test_a_hook_learns_its_parent_its_end_and_its_exit_code_empty_when_killed():
    from queuectl_core.lifecycle import hook_environment

    assert hook_environment("build-1", "dead", 3) == {
        "QUEUECTL_PARENT_ID": "build-1", "QUEUECTL_PARENT_STATE": "dead", "QUEUECTL_PARENT_EXIT_CODE": "3"}
    assert hook_environment("build-1", "dead", None)["QUEUECTL_PARENT_EXIT_CODE"] == ""
