"""Domain errors. The services map them to exit codes or HTTP statuses."""


class QueueError(Exception):
    """Base class of every error the shared package raises on purpose."""


class InvalidInput(QueueError):
    """Bad input from a user (a job spec, a setting, a parameter): exit 2 / HTTP 400."""


class JobNotFound(QueueError):
    """No job has this id: exit 1 / HTTP 404."""

    def __init__(self, job_id):
        super().__init__(f"no job with id '{job_id}'")
        self.job_id = job_id


class DuplicateJob(QueueError):
    """A job with this id exists already: exit 1 / HTTP 409."""

    def __init__(self, job_id, line=None):
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}a job with id '{job_id}' already exists")
        self.job_id = job_id
        self.line = line


class BadDependency(QueueError):
    """A job's `after` names a job the queue does not hold (or the job itself): exit 1 / HTTP 409, like a
    duplicate id, since whether an id is known depends on the queue, not on the input alone."""


class WrongState(QueueError):
    """The job exists but is not in a state that allows the action: exit 1 / HTTP 409."""


class DatabaseUnusable(QueueError):
    """The database file cannot be opened or is not a queuectl database: exit 1 / HTTP 503."""


class RunNotFound(QueueError):
    """The job exists but has no run with this number: exit 1 / HTTP 404."""


class DatabaseError(QueueError):
    """A call to the database failed (I/O error, lock wait exhausted, connection lost, server gone): a passing
    trouble, whichever the backend; exit 1 / HTTP 503. Workers wait and try again."""

    def __init__(self, error):
        text = str(error).strip()
        super().__init__(f"database error: {text.splitlines()[0] if text else type(error).__name__}")


class ScheduleNotFound(QueueError):
    """No schedule has this name: exit 1 / HTTP 404."""

    def __init__(self, name):
        super().__init__(f"no schedule named '{name}'")
        self.name = name


class DuplicateSchedule(QueueError):
    """A schedule with this name exists already: exit 1 / HTTP 409."""

    def __init__(self, name):
        super().__init__(f"a schedule named '{name}' already exists")
        self.name = name
