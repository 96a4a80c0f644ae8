"""Copying a whole queue (jobs, their history, settings) from one database to another.

Used by `queuectl migrate --to postgresql://...` when a queue outgrows one host.
"""

from ..errors import WrongState

# In dependency order: job_deps and runs refer to jobs. queues: the queues' settings (no job is processing, so
# their running counts are 0; rate windows start afresh).
TABLES = ("jobs", "job_deps", "runs", "settings", "queues")
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
        target._after_copy(connection)
    return copied
