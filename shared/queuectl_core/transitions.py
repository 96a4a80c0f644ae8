"""What happens to a job after a run: the state machine as a pure function."""

from dataclasses import dataclass

from . import backoff

# Outcome kinds. Only 'completed' is a success; 'interrupted' (a forced stop of the worker)
# hands the job back without counting a failure, since the job itself did nothing wrong;
# 'cancelled' (stopped on request) ends the job without a retry.
COMPLETED, FAILED, TIMEOUT, LOST, INTERRUPTED = "completed", "failed", "timeout", "lost", "interrupted"
CANCELLED = "cancelled"
TIMEOUT_CODE = "timeout"  # how retry_on / no_retry_on name a run killed by its timeout


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


def decide(attempts, max_retries, outcome, settings, now_ms, rng=None, retry_on=None, no_retry_on=None):
    """The job's next state after `outcome`, given its failed-run count so far and its exit-code policy.

    After failure number k: if k <= max_retries and the policy allows a retry (see `retryable`), the job
    waits in 'failed' until now + min(backoff_base ^ k, backoff_max) seconds, else it is 'dead'.
    """
    if outcome.kind == COMPLETED:
        return Transition("completed", attempts, now_ms, None, outcome.exit_code)
    if outcome.kind == INTERRUPTED:
        return Transition("pending", attempts, now_ms, outcome.error, outcome.exit_code)
    if outcome.kind == CANCELLED:
        return Transition("cancelled", attempts, now_ms, outcome.error, outcome.exit_code)
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
