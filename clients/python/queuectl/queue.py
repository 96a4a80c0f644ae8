"""`Queue`: the client's one class, on the database (`db=`) or through the HTTP API (`api=`)."""

import os
from collections.abc import Iterable
from typing import Any

from .errors import InvalidJob

Record = dict[str, Any]
STATES = ("pending", "processing", "completed", "failed", "dead", "cancelled")


class Queue:
    """A queuectl queue. `Queue(db=PATH_OR_URL)` works on the database directly (a SQLite file or a postgresql://
    URL; None with `api` unset: $QUEUECTL_DB, else the default file); `Queue(api=URL, token=TOKEN)` works through
    the HTTP API (token default: $QUEUECTL_API_TOKEN). Both modes have the same methods, answer the same records
    and raise the same exceptions (InvalidJob, JobNotFound, Conflict, Unavailable; Unauthorized for a refused
    token). Use it as a context manager, or call close()."""

    def __init__(self, db: str | os.PathLike | None = None, *, api: str | None = None, token: str | None = None,
                 timeout: float = 30.0) -> None:
        if db is not None and api is not None:
            raise InvalidJob("give db= or api=, not both")
        if api is not None:
            from ._api import ApiBackend

            token = os.environ.get("QUEUECTL_API_TOKEN") if token is None else token
            self._backend = ApiBackend(api, token, timeout)
        else:
            from ._database import DatabaseBackend

            self._backend = DatabaseBackend(None if db is None else str(db))
        self.mode = "api" if api is not None else "db"

    def __enter__(self) -> "Queue":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection or the HTTP connections."""
        self._backend.close()

    def enqueue(self, command: str, **keys: Any) -> Record:
        """Add one job running `command` (with /bin/sh -c) and return its record. `keys` are the job's other keys
        (id, max_retries, priority, run_at, delay, timeout, after, retry_on, no_retry_on, ...): InvalidJob names a
        bad one; Conflict when the id is taken or `after` names no job."""
        return self._backend.enqueue({"command": command, **keys})

    def enqueue_many(self, jobs: Iterable[dict[str, Any]]) -> list[str]:
        """Add up to 10,000 jobs (job objects: {"command": ..., ...}) all or nothing, in one transaction; return
        their ids in order. A job's `after` may name jobs earlier in the list. An error names the first bad job by
        its index: `error.body["index"]`. (API mode: one POST /api/v1/jobs/batch.)"""
        return self._backend.enqueue_many(list(jobs))

    def get(self, job_id: str) -> Record:
        """The job's record, with `history` (its latest 100 runs, oldest first) and `history_total`."""
        return self._backend.get(job_id)

    def jobs(self, state: str | None = None, queue: str | None = None, tag: str | None = None,
             limit: int = 50) -> list[Record]:
        """The newest `limit` jobs, in `state` if given. `queue` and `tag` filter where the queue knows named
        queues and tags; InvalidJob where it does not yet."""
        if state is not None and state not in STATES:
            raise InvalidJob(f"state must be one of {', '.join(STATES)}, got {state!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidJob(f"limit must be an integer >= 1, got {limit!r}")
        return self._backend.jobs(state, queue, tag, limit)

    def wait(self, ids: str | Iterable[str], timeout: float | None = None) -> list[Record]:
        """Wait until every job of `ids` has ended (completed, dead or cancelled) and return their records in the
        order given. `timeout` in seconds (None: no limit): queuectl.Timeout (a TimeoutError) when it runs out,
        with `states`; JobNotFound for an unknown id."""
        ids = [ids] if isinstance(ids, str) else list(dict.fromkeys(ids))
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or timeout < 0):
            raise InvalidJob(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        return self._backend.wait(ids, timeout)

    def cancel(self, job_id: str) -> Record:
        """Cancel a job and return its record: a pending or failed one is `cancelled` at once; a processing one is
        still `processing` (its worker stops it within seconds: wait() for it). Conflict once it has ended."""
        return self._backend.cancel(job_id)

    def retry(self, job_id: str) -> Record:
        """Move a dead job back to pending with attempts 0 and return its record; Conflict when it is not dead."""
        return self._backend.retry(job_id)

    def status(self) -> Record:
        """{"jobs": {state: count}, "workers": [...], "paused": bool}: what `queuectl status --json` prints."""
        return self._backend.status()
