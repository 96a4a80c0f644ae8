"""A job's life: its states and every rule that moves it between them, as pure functions.

The store calls these inside its transactions and writes what they decide; nothing here does I/O, and time and
randomness are parameters, so the rules are tested without a database or a sleep.
"""

from dataclasses import dataclass

from . import backoff

STATES = ("pending", "processing", "completed", "failed", "dead", "cancelled")
WAITING_STATES = ("pending", "failed")  # due jobs of these states are claimed
UNFINISHED_STATES = ("pending", "processing", "failed")
FINISHED_STATES = ("completed", "dead", "cancelled")  # what purge may delete and `wait` waits for
ENDED_BADLY = ("dead", "cancelled")  # finished without completing: a job that waits for one can never run
RETENTION_STATES = ("completed", "cancelled")  # what the `retention` setting deletes (dead jobs wait for people)
CANCELLABLE_STATES = UNFINISHED_STATES

# Outcome kinds. Only 'completed' is a success; 'interrupted' (a forced stop of the worker)
# hands the job back without counting a failure, since the job itself did nothing wrong;
# 'cancelled' (stopped on request) ends the job without a retry.
COMPLETED, FAILED, TIMEOUT, LOST, INTERRUPTED = "completed", "failed", "timeout", "lost", "interrupted"
CANCELLED = "cancelled"
TIMEOUT_CODE = "timeout"  # how retry_on / no_retry_on name a run killed by its timeout

# What a dependency's state means for a job that waits for it (see dependency_effect).
SATISFIED, WAIT, DOOMED = "satisfied", "wait", "doomed"


@dataclass(frozen=True)
class Outcome:
    """How one run ended: its kind, the shell's exit status (None when killed) and why."""

    kind: str
    exit_code: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Transition:
    """The job's new state and bookkeeping after a run."""

    state: str
    attempts: int
    run_at_ms: int
    last_error: str | None
    exit_code: int | None


def retryable(outcome, retry_on=None, no_retry_on=None):
    """Whether a failed run may be retried under a job's exit-code policy.

    An exit code in `no_retry_on` is not retried (even if `retry_on` names it too); with `retry_on` given,
    only its exit codes are.
    A timeout is retried unless `no_retry_on` names "timeout"; a lost worker or a signal always is."""
    if outcome.kind == TIMEOUT:
        return not (no_retry_on and TIMEOUT_CODE in no_retry_on)
    if outcome.kind != FAILED or outcome.exit_code is None:
        return True
    if no_retry_on and outcome.exit_code in no_retry_on:
        return False
    return retry_on is None or outcome.exit_code in retry_on


def decide(attempts, max_retries, outcome, settings, now_ms, rng=None, retry_on=None, no_retry_on=None,
           cancel_requested=False):
    """The job's next state after `outcome`, given its failed-run count so far and its exit-code policy.

    After failure number k: if k <= max_retries and the policy allows a retry (see `retryable`), the job
    waits in 'failed' until now + min(backoff_base ^ k, backoff_max) seconds, else it is 'dead'.
    A cancel asked while the run went on (`cancel_requested`) wins over any end but completion: the job ends
    cancelled instead of waiting for a retry, being handed back or going to the dead letter queue.
    """
    if outcome.kind == COMPLETED:
        return Transition("completed", attempts, now_ms, None, outcome.exit_code)
    if outcome.kind == CANCELLED or cancel_requested:
        return Transition("cancelled", attempts, now_ms, outcome.error, outcome.exit_code)
    if outcome.kind == INTERRUPTED:
        return Transition("pending", attempts, now_ms, outcome.error, outcome.exit_code)
    failures = attempts + 1
    if not retryable(outcome, retry_on, no_retry_on):
        which = "no_retry_on" if no_retry_on and not retryable(outcome, None, no_retry_on) else "retry_on"
        return Transition("dead", failures, now_ms, f"{outcome.error} (not retried: {which})", outcome.exit_code)
    if failures > max_retries:
        return Transition("dead", failures, now_ms, outcome.error, outcome.exit_code)
    seconds = backoff.delay(
        failures,
        settings["backoff_base"],
        settings["backoff_max"],
        settings.get("backoff_jitter", "none"),
        rng,
    )
    return Transition("failed", failures, now_ms + int(seconds * 1000), outcome.error, outcome.exit_code)


def dependency_effect(dependency_state):
    """What a dependency in `dependency_state` means for a job that waits for it: SATISFIED once it completed (no
    edge to keep), DOOMED once it ended dead or cancelled (the waiting job can never run), else WAIT."""
    if dependency_state == "completed":
        return SATISFIED
    return DOOMED if dependency_state in ENDED_BADLY else WAIT


def dependents_state(state):
    """The state that the jobs still waiting for a job take when it reaches `state`: 'dead' when it ended badly
    (they can never run), None when they keep waiting (or, for 'completed', are freed to run)."""
    return "dead" if state in ENDED_BADLY else None


def dependency_error(job_id, state):
    """The error of a job that will never run because its dependency `job_id` ended in `state`."""
    return f"dependency '{job_id}' " + ("was cancelled" if state == "cancelled" else f"ended {state}")


def lost_outcome(worker_id):
    """The outcome of a run whose worker stopped renewing its lease (killed, frozen, cut off)."""
    return Outcome(LOST, None, f"worker lost: {worker_id} stopped renewing its lease")


# The hook a job's end enqueues: a job that completes enqueues its on_success, one that ends dead (out of retries,
# not retried by its policy, lost too often, or doomed by a dependency) its on_dead. A cancelled job enqueues none:
# an operator stopped it on purpose.
HOOKS = {"completed": "on_success", "dead": "on_dead"}


def hook_for(state):
    """The key of the hook ('on_success', 'on_dead') that a job reaching `state` enqueues, or None."""
    return HOOKS.get(state)


def hook_environment(parent_id, state, exit_code):
    """What a hook's job finds in its environment about the job whose end made it (the exit code is empty when the
    run was killed, or when the job never ran)."""
    return {
        "QUEUECTL_PARENT_ID": parent_id,
        "QUEUECTL_PARENT_STATE": state,
        "QUEUECTL_PARENT_EXIT_CODE": "" if exit_code is None else str(exit_code),
    }
