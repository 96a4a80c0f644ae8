"""The queue's store: the operations every backend shares, and what a backend must provide.

A backend (sqlite, postgres) supplies connections, transactions, its SQL statements (`self.q`, a namespace of the
portable queries plus its own) and the few things dialects do differently. Every database failure leaves the store
as its own DatabaseError (InvalidInput for a value the database cannot hold), so callers need not know the backend.
"""

from ..errors import DatabaseError, InvalidInput, JobNotFound, RunNotFound
from ..lifecycle import STATES
from ..timeutil import to_iso
from .audit import AuditMixin
from .batches import BatchesMixin
from .cleanup import CleanupMixin
from .control import ControlMixin
from .dependencies import DependenciesMixin
from .derived import DerivedMixin
from .enqueue import EnqueueMixin
from .flow import FlowMixin
from .records import _record
from .registry import RegistryMixin
from .reports import ReportsMixin
from .runs import RunsMixin
from .schedules import SchedulesMixin

_ALL_RUNS = 2**62  # a LIMIT no job's runs reach (both dialects take a number; SQLite has no LIMIT ALL)


class Store(EnqueueMixin, DependenciesMixin, BatchesMixin, RunsMixin, FlowMixin, ControlMixin, CleanupMixin,
            RegistryMixin, ReportsMixin, AuditMixin, DerivedMixin, SchedulesMixin):
    """A queue in a database shared by every process (CLI, workers, API) that names it."""

    # What a database failure raises, whatever the backend: callers that must survive one, like the worker loop,
    # catch this.
    Error = DatabaseError
    q = None  # the backend's statements
    # The backend driver's errors: any failure, a duplicate key, a value the database cannot hold.
    _driver_error = ()
    _integrity_error = ()
    _data_error = ()

    # ---- what a backend provides ----------------------------------------------------

    def _transaction(self):
        """A context manager for one write transaction, yielding something with execute(sql, params)."""
        raise NotImplementedError

    def _read(self, statement, params=None):
        """Run a read outside any write transaction; returns a cursor."""
        raise NotImplementedError

    def _insert_jobs(self, connection, rows, now, progress):
        """Insert many job rows (tuples of BULK_COLUMNS) created at `now` inside the open transaction."""
        raise NotImplementedError

    def _stage_jobs(self, rows, progress):
        """Before the write transaction, put `rows` where _insert_staged_jobs copies them from in one statement;
        True when done, False to have _insert_jobs insert them inside the transaction instead."""
        return False

    def _insert_staged_jobs(self, connection, now):
        """Inside the open transaction: insert the rows _stage_jobs staged, in their order, created at `now`."""
        raise NotImplementedError

    def _ids_present(self, ids):
        """Which of `ids` the jobs table holds."""
        raise NotImplementedError

    def _execute_many(self, connection, statement, rows):
        """Run `statement` once per params dict of `rows` inside the open transaction."""
        raise NotImplementedError

    def _after_copy(self, connection):
        """Bring derived state (sequences, counters) in line after rows were copied in with their keys."""

    def _after_bulk_load(self, count):
        """After `count` jobs came in at once (a bulk enqueue, a copied queue), committed."""

    def change_watcher(self):
        """An object with fileno(), drain() and works, readable when the queue may have changed."""
        raise NotImplementedError

    def line_up_writers(self):
        """Have this store's write transactions wait in line with other workers' where the backend's own wait is
        coarse (SQLite); a no-op where it is not."""

    def close(self):
        """Release the connection."""
        raise NotImplementedError

    def check_writable(self):
        """Raise DatabaseUnusable when the database can be read but never written (a read-only file); a passing
        trouble such as a full disk is not reported here: workers wait for it like for any database error."""

    def _translated(self):
        """A context manager that leaves the driver's errors as the store's own (see _translation_of)."""
        return _Translating(self)

    def _translation_of(self, error):
        """The store's own error for the driver's `error`: InvalidInput for a value the database cannot hold (a NUL
        byte on PostgreSQL), DatabaseError for any other failure; None to let `error` pass as it is (not the
        driver's, or a duplicate key, which the store's callers inside catch)."""
        if not isinstance(error, self._driver_error) or isinstance(error, self._integrity_error):
            return None
        if isinstance(error, self._data_error):
            return InvalidInput(f"a value the database cannot hold: {str(error).strip()}")
        return DatabaseError(error)

    # ---- reading ---------------------------------------------------------------------

    def get_job(self, job_id, history=False, history_limit=None, history_offset=0):
        """One job's record; JobNotFound otherwise.

        With `history`, its runs under 'history', oldest first, and how many it has had under 'history_total':
        every run, or with `history_limit` the latest that many after skipping the newest `history_offset` (a job
        retried for ever has runs without end: pages keep a request bounded)."""
        cursor = self._read(self.q.get_job, {"id": job_id})
        row = cursor.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        record = _record(cursor, row)
        seq = record.pop("seq")
        if history:
            if history_limit is None and not history_offset:
                cursor = self._read(self.q.history, {"seq": seq})
                record["history"] = [_record(cursor, r) for r in cursor.fetchall()]
                record["history_total"] = len(record["history"])
            else:
                limit = _ALL_RUNS if history_limit is None else history_limit
                cursor = self._read(self.q.history_page, {"seq": seq, "limit": limit, "offset": history_offset})
                record["history"] = [_record(cursor, r) for r in reversed(cursor.fetchall())]
                record["history_total"] = self._read(self.q.history_total, {"seq": seq}).fetchone()[0]
        return record

    def list_jobs(self, state=None, limit=50, offset=0, queue=None, tag=None):
        """Job records, newest first, optionally of one state, one queue, with one tag."""
        if queue is None and tag is None:
            statement = self.q.list_jobs_in_state if state else self.q.list_jobs
            cursor = self._read(statement, {"state": state, "limit": limit, "offset": offset})
            return [_record(cursor, row) for row in cursor.fetchall()]
        return self.search_jobs(state=state, limit=limit, offset=offset, queue=queue, tag=tag)[0]

    def states_of(self, job_ids):
        """{id: state} of the given jobs; JobNotFound for the first unknown id."""
        states = {}
        for job_id in job_ids:
            row = self._read(self.q.state_of, {"id": job_id}).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            states[job_id] = row[0]
        return states

    def has_waiting_jobs(self):
        """True while any job is pending or failed (due now or later): one may come due without a notification."""
        return self._read(self.q.any_waiting).fetchone() is not None

    def counts(self):
        """The number of jobs in each state (every state present, zeros included)."""
        result = dict.fromkeys(STATES, 0)
        for state, count in self._read(self.q.counts):
            result[state] = count
        return result

    def status(self, now=None):
        """The object `status --json` prints: job counts and the live workers."""
        return {"jobs": self.counts(), "workers": self.live_workers(now), "paused": self.paused_since() is not None}

    def run_output(self, job_id, attempt=None):
        """The output of one run of a job (its latest when `attempt` is None) and where it stands:
        {'state', 'runs', 'attempt', 'started_at', 'finished_at', 'output', 'output_offset'}; 'attempt' is
        None when the job has not run yet. `output_offset` counts the bytes before the kept tail."""
        cursor = self._read(self.q.run_output, {"id": job_id, "attempt": attempt})
        row = cursor.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        state, runs, number, started_at, finished_at, output, offset = row
        if attempt is not None and number is None:
            raise RunNotFound(f"job '{job_id}' has no run {attempt}"
                              f" ({'it has not run yet' if not runs else f'its runs are 1 to {runs}'})")
        return {"state": state, "runs": runs, "attempt": number, "started_at": to_iso(started_at),
                "finished_at": to_iso(finished_at), "output": output or "", "output_offset": offset or 0}


class _Translating:
    """Leaves a driver's error as the store's own on the way out. A class, not a generator: a busy worker enters
    two of these per job, and a generator context manager costs ~1.5 us each (measured)."""

    __slots__ = ("_store",)

    def __init__(self, store):
        self._store = store

    def __enter__(self):
        return None

    def __exit__(self, kind, error, traceback):
        translated = error is not None and self._store._translation_of(error)
        if translated:
            raise translated from error
        return False
