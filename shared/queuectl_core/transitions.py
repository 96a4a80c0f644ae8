"""What happens to a job after a run: the state machine as a pure function."""

from dataclasses import dataclass

from . import backoff

# Outcome kinds. Only 'completed' is a success; 'interrupted' (a forced stop of the worker)
# hands the job back without counting a failure, since the job itself did nothing wrong.
COMPLETED, FAILED, TIMEOUT, LOST, INTERRUPTED = "completed", "failed", "timeout", "lost", "interrupted"


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


def decide(attempts, max_retries, outcome, settings, now_ms, rng=None):
    """The job's next state after `outcome`, given its failed-run count so far.

    After failure number k: if k <= max_retries the job waits in 'failed' until
    now + min(backoff_base ^ k, backoff_max) seconds, else it is 'dead'.
    """
    if outcome.kind == COMPLETED:
        return Transition("completed", attempts, now_ms, None, outcome.exit_code)
    if outcome.kind == INTERRUPTED:
        return Transition("pending", attempts, now_ms, outcome.error, outcome.exit_code)
    failures = attempts + 1
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
