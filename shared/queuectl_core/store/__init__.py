"""The queue's store: the only code that reads or writes the database, and the only owner of a job's state changes.

Opening the queue: a SQLite file by default, PostgreSQL for a postgresql:// URL. The operations common to both
backends live in the mixins that make up `Store` (base, enqueue, runs, control, cleanup, registry, reports); each
backend (sqlite, postgres) adds its connections, its schema and its own statements; sql holds the portable SQL.
"""

from ..location import database_location, is_postgres
from .base import Store
from .records import Claim, Heartbeat, new_job_id
from .sqlite import SqliteStore

__all__ = ["Claim", "Heartbeat", "SqliteStore", "Store", "new_job_id", "open_store", "is_postgres"]


def open_store(location=None, pooled=False, wait_seconds=None):
    """Open the queue named by `location`, QUEUECTL_DB or the default SQLite file (see location.database_location).

    `pooled`: draw PostgreSQL connections from a per-process pool (for the API's many short requests);
    SQLite opens its file directly either way. `wait_seconds`: how long a call may wait for the database (SQLite's
    write lock, a pooled PostgreSQL connection) before it fails with DatabaseError; by default 30 s (SQLite) and
    10 s (the pool)."""
    location = database_location(location)
    if is_postgres(location):
        from .postgres import PostgresStore  # psycopg is imported only for PostgreSQL

        return PostgresStore(location, pooled=pooled, wait_seconds=wait_seconds)
    return SqliteStore(location, wait_seconds)
