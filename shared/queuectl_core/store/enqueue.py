"""Adding jobs: one, or many all or nothing (mixed into Store)."""

import json
from collections import Counter
from operator import itemgetter

from .. import settings as settings_module
from ..errors import DuplicateJob, InvalidInput
from ..timeutil import now_ms
from ..validation import DEFAULT_QUEUE
from .audit import clipped
from .records import _new_job_ids, _new_record, _record, new_job_id

# The columns of a bulk enqueue's rows, in their order (created_at and updated_at are the batch's `now`).
BULK_COLUMNS = ("id", "command", "max_retries", "priority", "run_at", "timeout", "depends_on", "retry_on",
                "no_retry_on", "queue", "tags", "unique_key", "concurrency_key", "concurrency_limit",
                # schedules and hooks
                "env", "cwd", "stdin", "on_success", "on_dead", "schedule", "scheduled_for", "parent_id")
# A column's value when the job gives none: a bulk enqueue need not bind a column every row leaves at it.
BULK_DEFAULTS = {"queue": DEFAULT_QUEUE}
QUEUE_COLUMN = BULK_COLUMNS.index("queue")
UNIQUE_COLUMN = BULK_COLUMNS.index("unique_key")
UNIQUE_RETRIES = 5  # PostgreSQL: a bulk enqueue that raced another enqueue of one of its unique keys tries again


class BulkResult(list):
    """The ids a bulk enqueue added, in line order; `duplicates` lists the lines it skipped because of their
    unique_key: (line, unique_key, id of the job that holds the key), the holder maybe an earlier line."""

    def __init__(self, ids, duplicates=()):
        super().__init__(ids)
        self.duplicates = list(duplicates)


class EnqueueMixin:
    """enqueue and enqueue_many, and what both need: rows from checked specs, counting, waking workers."""

    def enqueue(self, spec, now=None, actor=None, action="enqueue", details=None):
        """Store one checked JobSpec as a pending job and return its record (for a spec whose unique_key an
        unfinished job holds: that job's record, nothing added; enqueue_or_find says which)."""
        return self.enqueue_or_find(spec, now, actor, action, details)[0]

    def enqueue_or_find(self, spec, now=None, actor=None, action="enqueue", details=None):
        """Store one checked JobSpec; return (record, True) for the new job, or (the record of the unfinished
        job that holds its unique_key, False) when the database refused a second one (nothing added). With
        `actor` (an enqueue through the API, a rerun), a new job is recorded in the audit log as `action`."""
        now = now_ms() if now is None else now
        while True:
            with self._transaction() as connection:
                row = self._job_row(spec, now, self._default_max_retries(connection))
                try:
                    added = connection.execute(
                        self.q.insert_job if spec.unique_key is None else self.q.insert_unique_job, row).rowcount
                except self._integrity_error:
                    raise DuplicateJob(row["id"]) from None
                if not added:
                    cursor = connection.execute(self.q.holder_of_key, {"unique_key": spec.unique_key})
                    holder = cursor.fetchone()
                    if holder is None:  # PostgreSQL: the holder finished since; try again
                        continue
                    return _record(cursor, holder), False
                self._count_new_jobs(connection, {spec.queue: 1})
                self._audit(connection, actor, action, row["id"],
                            {**(details or {}), "command": clipped(spec.command)}, now)
                if spec.after:
                    self._add_dependencies(connection, [(None, row["id"], spec.after)], {}, now)
                    cursor = connection.execute(self.q.get_job, {"id": row["id"]})
                    record = _record(cursor, cursor.fetchone())
                    record.pop("seq")
                    return record, True
            return _new_record(row), True

    def enqueue_many(self, numbered_specs, now=None, progress=None, actor=None):
        """Store (line, JobSpec) pairs in one transaction, all or nothing; return a BulkResult: the ids added.

        A line whose unique_key an earlier line or an unfinished job holds adds nothing and is no error: it is
        listed in the result's `duplicates`. `progress`, if given, is called with the number of jobs stored by each
        chunk. With `actor` (the API's batch route), one audit entry records the batch: its size, first and last ids."""
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
        duplicates = []
        keyed = any(map(itemgetter(UNIQUE_COLUMN), rows))
        if keyed:
            numbered_specs, rows, duplicates = _first_of_each_key(numbered_specs, rows)
        for attempt in range(UNIQUE_RETRIES if keyed else 1):
            try:
                ids, held = self._enqueue_rows(numbered_specs, rows, now, progress, keyed, actor)
                self._after_bulk_load(len(ids))
            except self._integrity_error:
                # Rolled back already. A unique key taken meanwhile (PostgreSQL) is tried again; else find the
                # first line whose id the database holds.
                duplicate = self._first_duplicate(rows, numbered_specs)
                if keyed and attempt + 1 < UNIQUE_RETRIES and duplicate.job_id == "?":
                    continue
                raise duplicate from None
            return BulkResult(ids, sorted(duplicates + held))
        raise AssertionError("unreachable")

    def _enqueue_rows(self, numbered_specs, rows, now, progress, keyed, actor):
        """One attempt of enqueue_many: (ids added, [(line, key, holder id)] skipped for an unfinished holder)."""
        with self._translated():
            staged = self._stage_jobs(rows, progress)
        with self._transaction() as connection:
            held = []
            if keyed:
                holders = self._key_holders(connection, [row[UNIQUE_COLUMN] for row in rows if row[UNIQUE_COLUMN]])
                if holders:
                    kept = [index for index, row in enumerate(rows) if row[UNIQUE_COLUMN] not in holders]
                    held = [(numbered_specs[index][0], row[UNIQUE_COLUMN], holders[row[UNIQUE_COLUMN]])
                            for index, row in enumerate(rows) if row[UNIQUE_COLUMN] in holders]
                    numbered_specs = [numbered_specs[index] for index in kept]
                    rows = [rows[index] for index in kept]
                    if staged:
                        self._unstage_keys(connection, list(holders))
            if staged:
                self._insert_staged_jobs(connection, now)
            elif rows:
                self._insert_jobs(connection, rows, now, progress)
            self._count_new_jobs(connection, _per_queue(rows))
            waiting = [(line, row[0], spec.after)
                       for (line, spec), row in zip(numbered_specs, rows, strict=True) if spec.after]
            if waiting:
                lines = {row[0]: line for (line, _), row in zip(numbered_specs, rows, strict=True)}
                self._add_dependencies(connection, waiting, lines, now)
            if rows:
                self._audit(connection, actor, "enqueue-batch", f"{len(rows)} jobs",
                            {"count": len(rows), "first": rows[0][0], "last": rows[-1][0]}, now)
        return [row[0] for row in rows], held

    def _key_holders(self, connection, keys):
        """{unique_key: id} of the unfinished jobs holding any of `keys`, read inside the transaction."""
        holders = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start: start + 500]
            marks = ", ".join(f":k{index}" for index in range(len(chunk)))
            statement = self.q.dialect(
                f"SELECT unique_key, id FROM jobs WHERE unique_key IN ({marks})"
                " AND state IN ('pending', 'processing', 'failed')")
            holders.update(connection.execute(statement, {f"k{i}": key for i, key in enumerate(chunk)}).fetchall())
        return holders

    def _unstage_keys(self, connection, keys):
        """Take the staged rows of `keys` out again (backends that stage: see _stage_jobs)."""
        raise NotImplementedError

    @classmethod
    def _bulk_rows(cls, numbered_specs, now, default_max_retries):
        """The rows of a bulk enqueue: tuples of BULK_COLUMNS (cheaper to build and to bind than dicts)."""
        fresh_ids = _new_job_ids(sum(1 for _, spec in numbered_specs if spec.id is None))
        values = cls._job_values
        return [values(spec, now, default_max_retries, spec.id or next(fresh_ids)) for _, spec in numbered_specs]

    def _count_new_jobs(self, connection, per_queue):
        """Count new jobs ({queue: n}) in job_counts, and wake the workers."""
        for queue, count in per_queue.items():
            if queue != DEFAULT_QUEUE and self.q.add_queue_counts:
                connection.execute(self.q.add_queue_counts, {"queue": queue})  # the queue's rows, once
            connection.execute(self.q.count_new_jobs, {"queue": queue, "n": count})
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
            spec.queue, json.dumps(list(spec.tags)) if spec.tags else None, spec.unique_key, spec.concurrency_key,
            spec.concurrency_limit,
            json.dumps(dict(spec.env), ensure_ascii=False) if spec.env else None, spec.cwd, spec.stdin,
            spec.on_success, spec.on_dead, spec.schedule, spec.scheduled_for_ms, spec.parent_id,
        )


def _per_queue(rows):
    """{queue: number of rows}."""
    return Counter(map(itemgetter(QUEUE_COLUMN), rows))


def _first_of_each_key(numbered_specs, rows):
    """Keep the first line of each unique_key; the later ones are returned as (line, key, the first one's id)."""
    first = {}
    kept_specs, kept_rows, duplicates = [], [], []
    for numbered, row in zip(numbered_specs, rows, strict=True):
        key = row[UNIQUE_COLUMN]
        if key is not None:
            if key in first:
                duplicates.append((numbered[0], key, first[key]))
                continue
            first[key] = row[0]
        kept_specs.append(numbered)
        kept_rows.append(row)
    return kept_specs, kept_rows, duplicates
