"""Waiting without burning CPU: for file descriptors to become readable, and for jobs to end."""

import select
import time

from .lifecycle import FINISHED_STATES

JOB_POLL_SECONDS = 0.25


def wait_readable(fds, timeout):
    """The descriptors of `fds` that are readable, waiting up to `timeout` seconds (none: [] when it ran out)."""
    return select.select(fds, [], [], max(timeout, 0))[0]


def wait_for_jobs(store, job_ids, timeout=None, poll=JOB_POLL_SECONDS):
    """Wait until every job of `job_ids` has finished (completed, dead or cancelled), or `timeout` seconds (None:
    no limit) have passed; return {id: state} as last read. JobNotFound for an unknown id (also one purged while
    waited for). The CLI's `wait` and the API's wait route both wait here."""
    deadline = None if timeout is None else time.monotonic() + timeout
    states = store.states_of(job_ids)
    while unfinished := [job_id for job_id, state in states.items() if state not in FINISHED_STATES]:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        time.sleep(poll if left is None else min(poll, left))
        states.update(store.states_of(unfinished))
    return states
