"""The client on the database: the store of queuectl_core, its errors turned into the client's."""

import inspect
from contextlib import contextmanager

from queuectl_core.batch import enqueue_batch
from queuectl_core.errors import QueueError
from queuectl_core.lifecycle import FINISHED_STATES
from queuectl_core.validation import check_job
from queuectl_core.waiting import wait_for_jobs

from .errors import InvalidJob, Timeout, translated

HISTORY_LIMIT = 100  # runs in get()'s record, as GET /api/v1/jobs/ID gives by default


def actor():
    """Who the client's changes are recorded as in the audit log: python:USER@HOST (USER the real uid's name)."""
    import os
    import pwd
    import socket

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    return f"python:{user}@{socket.gethostname()}"


@contextmanager
def _errors():
    try:
        yield
    except QueueError as error:
        raise translated(error) from None


class DatabaseBackend:
    """Queue's methods on a store opened at `location`."""

    def __init__(self, location):
        from queuectl_core.store import open_store

        with _errors():
            self.store = open_store(location)
        self.actor = actor()

    def close(self):
        self.store.close()

    def enqueue(self, job):
        with _errors():
            return self.store.enqueue(check_job(job))

    def enqueue_many(self, jobs):
        with _errors():
            return enqueue_batch(self.store, jobs)

    def get(self, job_id):
        with _errors():
            return self.store.get_job(job_id, history=True, history_limit=HISTORY_LIMIT)

    def jobs(self, state, queue, tag, limit):
        filters = {name: value for name, value in (("queue", queue), ("tag", tag)) if value is not None}
        accepted = inspect.signature(self.store.list_jobs).parameters
        for name in filters:
            if name not in accepted:
                raise InvalidJob(f"this queue has no {name} filter yet (it knows no named queues or tags)")
        with _errors():
            return self.store.list_jobs(state=state, limit=limit, **filters)

    def wait(self, ids, timeout):
        with _errors():
            states = wait_for_jobs(self.store, ids, timeout)
            unfinished = {job_id: state for job_id, state in states.items() if state not in FINISHED_STATES}
            if unfinished:
                raise Timeout(f"timed out after {timeout:g}s; still waiting for "
                              + ", ".join(f"{job_id} ({state})" for job_id, state in unfinished.items()), states)
            return [self.store.get_job(job_id) for job_id in ids]

    def cancel(self, job_id):
        with _errors():
            return self.store.cancel(job_id, actor=self.actor)[0]

    def retry(self, job_id):
        with _errors():
            return self.store.retry_dead(job_id, actor=self.actor)

    def status(self):
        with _errors():
            return self.store.status()
