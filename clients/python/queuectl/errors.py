"""The client's exceptions: the same in both modes (database or API).

Each is also the matching error of queuectl_core (InvalidJob is an InvalidInput, JobNotFound a JobNotFound, every
one a QueueError), so code written against the core's errors, such as the CLI's handler, catches them as they are.
"""

from queuectl_core import errors as core


class Error(core.QueueError):
    """Base class of every error the client raises. `status` is the HTTP status in API mode (None on the
    database); `body` the API's decoded error answer ({} on the database)."""

    status = None
    body: dict = {}

    def __init__(self, message, status=None, body=None):
        Exception.__init__(self, message)  # not the core classes' own __init__ (JobNotFound's builds a message)
        self.status = status
        self.body = body or {}


class InvalidJob(Error, core.InvalidInput):
    """Bad input: a job that fails the checks (the message names the key, and for a batch the job's index), a bad
    argument such as an unknown state."""


class JobNotFound(Error, core.JobNotFound):
    """No job has this id (or the job has no such run)."""

    def __init__(self, message, status=None, body=None, job_id=None):
        Error.__init__(self, message, status, body)
        self.job_id = job_id


class Conflict(Error):
    """The queue's state refuses the request: the id is taken, `after` names no job, the job is not in a state
    that allows the action (retry of a job that is not dead, cancel of one that has ended)."""


class Unavailable(Error):
    """The queue cannot answer now: the database fails or is not a queuectl database, the API is unreachable, its
    TLS cannot be verified, it answers 5xx or throttles (429), or it is not a queuectl API."""


class Unauthorized(Error):
    """The API refused the credentials: a wrong or missing token (401), or a viewer token asked to change
    something (403). API mode only."""


class Timeout(Error, TimeoutError):
    """`wait` gave up before every job had ended; `states` maps each job to its state when it gave up."""

    def __init__(self, message, states):
        Error.__init__(self, message)
        self.states = states


def translated(error):
    """The client's exception for an error of queuectl_core (raised by the store on the database)."""
    if isinstance(error, Error):
        return error
    message = str(error)
    if isinstance(error, core.InvalidInput):
        result = InvalidJob(message)
    elif isinstance(error, core.JobNotFound):
        result = JobNotFound(message, job_id=error.job_id)
    elif isinstance(error, core.RunNotFound):
        result = JobNotFound(message)
    elif isinstance(error, (core.DuplicateJob, core.BadDependency, core.WrongState)):
        result = Conflict(message)
    else:  # DatabaseError, DatabaseUnusable and any other error of the store
        result = Unavailable(message)
    index = getattr(error, "index", None)
    if index is not None:  # a batch's error names the bad job
        result.body = {"error": message, "index": index}
    return result
