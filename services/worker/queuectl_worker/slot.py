"""One job running in a slot of its worker: the claim, the job's processes, and how its run is to end."""

import time

from .runner import JobProcess


class Run:
    """A claimed job's run. Its `outcome` is set once it is decided: when the shell exits, or when the worker
    starts ending the run's tree (timeout, cancel, stop); an `abandoned` run (its lease went to another worker)
    ends without a result."""

    def __init__(self, claim, job, claimed_at, timeout):
        self.claim = claim
        self.job = job
        self.timeout = timeout
        self.deadline = job.started + timeout if timeout else None
        self.renewed = claimed_at  # the lease was last renewed by a call that started then (monotonic)
        self.flushed_size = 0  # output bytes stored so far for `logs --follow`
        self.outcome = None
        self.abandoned = False

    @classmethod
    def start(cls, claim, environment, cwd, claimed_at, timeout):
        """Start the job of `claim` (OSError when it cannot be started)."""
        job = JobProcess(claim.job["command"], environment, cwd=cwd, stdin=claim.job.get("stdin"))
        return cls(claim, job, claimed_at, timeout)

    @property
    def ending(self):
        """True once its process tree is being ended (see end)."""
        return self.job.kill_at is not None

    def end(self, outcome, abandoned=False):
        """Start ending the run's process tree (TERM now, KILL after the grace) for `outcome`; the first reason
        given is the one recorded."""
        if self.outcome is None:
            self.outcome = outcome
        self.abandoned = self.abandoned or abandoned
        self.job.begin_ending()

    def past_deadline(self, now=None):
        """True when the run has taken longer than its timeout."""
        return self.deadline is not None and (time.monotonic() if now is None else now) >= self.deadline
