"""The PostgreSQL backend's change watchers: a connection that LISTENs for the NOTIFY of new jobs.

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


class SharedNotifyWatcher:
    """LISTEN on the store's own connection, so that a worker holds one connection to the server whatever its
    number of slots (a separate listening connection doubled the count: 200 slots over 4 processes took 8).

    Notifications come in two ways: while the connection is idle, they wait in its socket (readable: drain() takes
    them); during the store's own statements, psycopg hands them to the handler below. The LISTEN is issued again
    whenever the store has opened a new connection (after a drop), and drain() then reports a change once, since
    notifications sent meanwhile are lost."""

    works = True

    def __init__(self, store):
        self._store = store
        self._listening_on = None
        self._notified = False

    def _on_notify(self, notification):
        self._notified = True

    def _listen(self):
        """The store's connection, listening (again, if it is a new one)."""
        with self._store._translated():
            connection = self._store._live()
            if connection is not self._listening_on:
                connection.add_notify_handler(self._on_notify)
                connection.execute(f"LISTEN {CHANNEL}")
                self._listening_on, self._notified = connection, True
        return connection

    def fileno(self):
        """The store's connection's socket; DatabaseError when it cannot be opened or listened on."""
        return self._listen().fileno()

    def drain(self):
        """Consume pending notifications without blocking; True if there was one (or the connection changed or
        dropped: the caller looks at the queue once). Never raises."""
        connection = self._listening_on
        changed, self._notified = self._notified, False
        if connection is None:
            return changed  # not listening yet: fileno() starts it (and then reports a change once)
        if connection.closed or connection is not self._store.connection:
            return True
        try:
            connection.pgconn.consume_input()
            while connection.pgconn.notifies() is not None:
                changed = True
        except psycopg.Error:
            connection.close()  # the store opens a new one at its next call; fileno() listens on it
            return True
        return changed

    def close(self):
        """Stop listening (the connection is the store's: it stays open)."""
        connection = self._listening_on
        self._listening_on = None
        if connection is not None and not connection.closed:
            try:
                connection.execute(f"UNLISTEN {CHANNEL}")
            except psycopg.Error:
                pass
