"""Opening the queue: a SQLite file by default, PostgreSQL for a postgresql:// URL.

Every SQL statement lives in the shared package: queries.py (portable), sqlite_store.py and
postgres_store.py (each dialect's own); store_base.py holds the operations common to both.
"""

import os

from .sqlite_store import SqliteStore
from .store_base import Claim, Heartbeat, Store, new_job_id

POSTGRES_PREFIXES = ("postgresql://", "postgres://")

__all__ = ["Claim", "Heartbeat", "SqliteStore", "Store", "new_job_id", "open_store", "is_postgres"]


def is_postgres(location=None):
    """True when `location` (or QUEUECTL_DB) names a PostgreSQL database."""
    return (location or os.environ.get("QUEUECTL_DB") or "").startswith(POSTGRES_PREFIXES)


def open_store(location=None, pooled=False):
    """Open the queue named by `location`, QUEUECTL_DB or the default SQLite file.

    `pooled`: draw PostgreSQL connections from a per-process pool (for the API's many short requests);
    SQLite opens its file directly either way."""
    if is_postgres(location):
        from .postgres_store import PostgresStore  # psycopg is imported only for PostgreSQL

        return PostgresStore(location or os.environ["QUEUECTL_DB"], pooled=pooled)
    return SqliteStore(location)
