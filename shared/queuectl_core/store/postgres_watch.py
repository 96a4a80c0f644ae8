"""The PostgreSQL backend's change watcher: a connection that LISTENs for the NOTIFY of new jobs.

The watcher only speeds a worker up (it still looks at the queue a few times a second), so its trouble must never
stop the real work: drain() never raises, and a dropped connection is opened again lazily by fileno(), whose
failure is the store's DatabaseError like any other database call's. A worker once lost a finished run because
drain() raised psycopg's error between the job's end and the recording of its result (issue 13, item 6b).
"""

import psycopg

from ..errors import DatabaseError
from . import postgres_bounds as bounded
from .postgres_schema import CHANNEL


class NotifyWatcher:
    """A dedicated connection that LISTENs; readable when a NOTIFY arrived."""

    works = True

    def __init__(self, url, lease_seconds=bounded.DEFAULT_LEASE):
        self._url = url
        self._lease = lease_seconds
        self._connection = None
        try:
            self._listen()
        except DatabaseError:
            pass  # the next fileno() tries again

    def _listen(self):
        connection = None
        try:
            connection = psycopg.connect(self._url, autocommit=True,
                                         **bounded.connect_kwargs(self._url, self._lease))
            bounded.apply(connection, self._lease, self._url)
            connection.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as error:
            if connection is not None:
                connection.close()
            raise DatabaseError(error) from error
        self._connection = connection

    def _lost(self):
        return self._connection is None or self._connection.closed

    def fileno(self):
        """The connection's socket (listening again on a new connection if the old one dropped); DatabaseError
        when no connection can be opened."""
        if self._lost():
            self._listen()
        return self._connection.fileno()

    def drain(self):
        """Consume pending notifications without blocking; True if there was one, or if the connection dropped
        (notifications sent meanwhile are lost: the caller looks at the queue once). Never raises: a dropped
        connection is opened again by the next fileno()."""
        if self._lost():
            return True
        connection = self._connection.pgconn
        changed = False
        try:
            connection.consume_input()
            while connection.notifies() is not None:
                changed = True
        except psycopg.Error:
            self._connection.close()
            return True
        return changed

    def close(self):
        """Close the listening connection."""
        if self._connection is not None:
            self._connection.close()
