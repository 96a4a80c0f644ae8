"""A batch of jobs given as decoded JSON objects, enqueued all or nothing: the API's POST /jobs/batch and the Python
client's `Queue.enqueue_many` on the database. Errors name the bad job by its index in the batch (from 0)."""

import re

from .errors import BadDependency, DuplicateJob, InvalidInput
from .validation import check_job

MAX_BATCH = 10_000  # jobs of one batch
_LINE_PREFIX = re.compile(r"line ([0-9]+): ")
_ON_LINE = re.compile(r"on line ([0-9]+)")


def enqueue_batch(store, jobs, actor=None):
    """Check every job of the list `jobs`, then store them all in one transaction; return their ids in order.

    InvalidInput (a bad job, an id repeated in the batch, an `after` naming a later job), DuplicateJob (an id the
    queue holds) and BadDependency (an `after` naming no job) carry `index`, the bad job's place in the list, and
    say it first ("job 3: ..."); InvalidInput without `index` when the list itself is wrong."""
    if not isinstance(jobs, list):
        raise InvalidInput("a batch must be a JSON array of job objects")
    if not jobs:
        raise InvalidInput("a batch must hold at least one job")
    if len(jobs) > MAX_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH} jobs, got {len(jobs)}")
    specs, first_of = [], {}
    for index, job in enumerate(jobs):
        try:
            spec = check_job(job)
        except InvalidInput as error:
            raise _at(InvalidInput, index, str(error)) from None
        if spec.id is not None:
            if spec.id in first_of:
                raise _at(InvalidInput, index, f"id '{spec.id}' repeats job {first_of[spec.id]}")
            first_of[spec.id] = index
        specs.append((index + 1, spec))  # the store numbers lines from 1: index = line - 1
    try:
        return store.enqueue_many(specs, actor=actor)
    except DuplicateJob as error:
        if error.line is None:
            raise
        raise _at(DuplicateJob, error.line - 1, f"a job with id '{error.job_id}' already exists",
                  job_id=error.job_id) from None
    except (InvalidInput, BadDependency) as error:
        found = _LINE_PREFIX.match(str(error))
        if found is None:
            raise
        # The store's messages name lines (its bulk enqueue serves files); a batch names indexes.
        text = _ON_LINE.sub(lambda line: f"at index {int(line[1]) - 1}", str(error)[found.end():])
        raise _at(type(error), int(found[1]) - 1, text) from None


def _at(kind, index, message, **attributes):
    """An error of `kind` about the job at `index`: its message starts with "job INDEX: "."""
    error = kind.__new__(kind)
    Exception.__init__(error, f"job {index}: {message}")
    error.index = index
    for name, value in attributes.items():
        setattr(error, name, value)
    if kind is DuplicateJob:
        error.line = None
    return error
