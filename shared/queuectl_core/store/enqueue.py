"""Adding jobs: one, or many all or nothing (mixed into Store)."""

import json

from .. import settings as settings_module
from ..errors import DuplicateJob, InvalidInput
from ..timeutil import now_ms
from .audit import clipped
from .records import _new_job_ids, _new_record, _record, new_job_id

# The columns of a bulk enqueue's rows, in their order (created_at and updated_at are the batch's `now`).
BULK_COLUMNS = ("id", "command", "max_retries", "priority", "run_at", "timeout", "depends_on", "retry_on",
                "no_retry_on",
                # schedules and hooks (migration 5)
                "env", "cwd", "stdin", "on_success", "on_dead", "schedule", "scheduled_for", "parent_id")


class EnqueueMixin:
    """enqueue and enqueue_many, and what both need: rows from checked specs, counting, waking workers."""

    def enqueue(self, spec, now=None, actor=None, action="enqueue", details=None):
        """Store one checked JobSpec as a pending job and return its record (with `actor`: recorded in the
        audit log, as an enqueue through the API is)."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            row = self._job_row(spec, now, self._default_max_retries(connection))
            try:
                connection.execute(self.q.insert_job, row)
            except self._integrity_error:
                raise DuplicateJob(row["id"]) from None
            self._count_new_jobs(connection, 1)
            self._audit(connection, actor, action, row["id"], {**(details or {}), "command": clipped(spec.command)},
                        now)
            if spec.after:
                self._add_dependencies(connection, [(None, row["id"], spec.after)], {}, now)
                cursor = connection.execute(self.q.get_job, {"id": row["id"]})
                record = _record(cursor, cursor.fetchone())
                record.pop("seq")
                return record
        return _new_record(row)

    def enqueue_many(self, numbered_specs, now=None, progress=None, actor=None):
        """Store (line, JobSpec) pairs in one transaction, all or nothing; return their ids.

        `progress`, if given, is called with the number of jobs stored by each chunk. With `actor` (the API's batch
        route), one audit entry records the batch: its size and its first and last ids.
        """
        now = now_ms() if now is None else now
        seen = {}
        for line, spec in numbered_specs:
            if spec.id is not None:
                if spec.id in seen:
                    raise InvalidInput(f"line {line}: id '{spec.id}' repeats line {seen[spec.id]}")
                seen[spec.id] = line
        # The rows are built, and staged where the backend can, before the write lock is taken: a bulk enqueue of
        # 1M jobs held SQLite's lock so long (~40 s) that other writers gave up with "database is locked".
        rows = self._bulk_rows(numbered_specs, now, self._default_max_retries(None))
        with self._translated():
            staged = self._stage_jobs(rows, progress)
        try:
            with self._transaction() as connection:
                if staged:
                    self._insert_staged_jobs(connection, now)
                else:
                    self._insert_jobs(connection, rows, now, progress)
                self._count_new_jobs(connection, len(rows))
                waiting = [(line, row[0], spec.after)
                           for (line, spec), row in zip(numbered_specs, rows, strict=True) if spec.after]
                if waiting:
                    lines = {row[0]: line for (line, _), row in zip(numbered_specs, rows, strict=True)}
                    self._add_dependencies(connection, waiting, lines, now)
                if rows:
                    self._audit(connection, actor, "enqueue-batch", f"{len(rows)} jobs",
                                {"count": len(rows), "first": rows[0][0], "last": rows[-1][0]}, now)
        except self._integrity_error:
            # Rolled back already; now find the first line whose id the database holds.
            raise self._first_duplicate(rows, numbered_specs) from None
        return [row[0] for row in rows]

    @classmethod
    def _bulk_rows(cls, numbered_specs, now, default_max_retries):
        """The rows of a bulk enqueue: tuples of BULK_COLUMNS (cheaper to build and to bind than dicts)."""
        fresh_ids = _new_job_ids(sum(1 for _, spec in numbered_specs if spec.id is None))
        values = cls._job_values
        return [values(spec, now, default_max_retries, spec.id or next(fresh_ids)) for _, spec in numbered_specs]

    def _count_new_jobs(self, connection, count):
        if self.q.count_new_jobs:
            connection.execute(self.q.count_new_jobs, {"n": count})
        self._wake(connection)

    def _wake(self, connection):
        """Tell idle workers that jobs became ready (where the backend needs telling)."""
        if self.q.wake:
            connection.execute(self.q.wake, {})

    def _first_duplicate(self, rows, numbered_specs):
        for start in range(0, len(rows), 500):
            ids = [row[0] for row in rows[start: start + 500]]
            with self._translated():
                found = self._ids_present(ids)
            for index, job_id in enumerate(ids):
                if job_id in found:
                    return DuplicateJob(job_id, numbered_specs[start + index][0])
        return DuplicateJob("?")

    def _default_max_retries(self, connection):
        """The max_retries setting, read in `connection`'s transaction (None: outside any transaction)."""
        if connection is None:
            row = self._read(self.q.default_max_retries).fetchone()
        else:
            row = connection.execute(self.q.default_max_retries, {}).fetchone()
        return json.loads(row[0]) if row else settings_module.SETTINGS["max_retries"].default

    @classmethod
    def _job_row(cls, spec, now, default_max_retries, job_id=None):
        """The parameters of q.insert_job for `spec`."""
        row = dict(zip(BULK_COLUMNS, cls._job_values(spec, now, default_max_retries, job_id), strict=True))
        row["now"] = now
        return row

    @staticmethod
    def _job_values(spec, now, default_max_retries, job_id=None):
        """The BULK_COLUMNS values of `spec` as a tuple."""
        return (
            job_id or spec.id or new_job_id(), spec.command,
            default_max_retries if spec.max_retries is None else spec.max_retries, spec.priority,
            spec.run_at_ms if spec.run_at_ms is not None else now + (spec.delay_ms or 0), spec.timeout,
            json.dumps(list(spec.after)) if spec.after else None,
            None if spec.retry_on is None else json.dumps(list(spec.retry_on)),
            None if spec.no_retry_on is None else json.dumps(list(spec.no_retry_on)),
            json.dumps(dict(spec.env), ensure_ascii=False) if spec.env else None, spec.cwd, spec.stdin,
            spec.on_success, spec.on_dead, spec.schedule, spec.scheduled_for_ms, spec.parent_id,
        )
