"""Copying a whole queue (jobs, their history, settings, the audit log, the run totals) from one database to another.

Used by `queuectl migrate --to postgresql://...` when a queue outgrows one host.
"""

from ..errors import WrongState
from .sql import RUN_DURATION_BUCKETS

# In dependency order: job_deps and runs refer to jobs. queues: the queues' settings (no job is processing, so
# their running counts are 0; rate windows start afresh).
TABLES = ("jobs", "job_deps", "runs", "settings", "audit", "schedules", "queues")
BATCH = 5_000


def copy_queue(source, target, progress=None):
    """Copy every row of TABLES from `source` into the empty `target`, in one target transaction.

    Refused while the source has processing jobs (their workers still hold leases) or when the
    target already holds jobs. Returns {table: rows copied}. `progress(table, n)` follows along."""
    processing = source.counts()["processing"]
    if processing:
        raise WrongState(f"{processing} job(s) are processing: stop the workers first (queuectl worker stop)")
    held = sum(target.counts().values())
    if held:
        raise WrongState(f"the target already holds {held} job(s): copy into an empty queue")
    copied = {}
    with target._transaction() as connection:
        for table in TABLES:
            copied[table] = 0
            cursor = source._read(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            statement = target.q.dialect(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
                + (" ON CONFLICT (name) DO UPDATE SET value = excluded.value" if table == "settings" else "")
            )
            while rows := cursor.fetchmany(BATCH):
                target._execute_many(connection, statement, [dict(zip(columns, row)) for row in rows])
                copied[table] += len(rows)
                if progress:
                    progress(table, len(rows))
        _copy_run_totals(source, target, connection)
        target._after_copy(connection)
    target._after_bulk_load(copied["jobs"])
    return copied


def _copy_run_totals(source, target, connection):
    """The target's run totals become the source's: totals since the queue began, of runs purged long ago too
    (copied runs are not counted again: they were finished when they came in)."""
    totals = {int(row[0]): row[1:] for row in source._read(source.q.run_totals).fetchall()}
    connection.execute("DELETE FROM run_totals")
    for bucket in range(len(RUN_DURATION_BUCKETS) + 1):  # every bucket: SQLite's trigger updates their rows
        succeeded, failed, duration_ms = totals.get(bucket, (0, 0, 0))
        connection.execute(target.q.dialect(
            "INSERT INTO run_totals (bucket, succeeded, failed, duration_ms) VALUES (:bucket, :s, :f, :ms)"),
            {"bucket": bucket, "s": int(succeeded), "f": int(failed), "ms": int(duration_ms)})
