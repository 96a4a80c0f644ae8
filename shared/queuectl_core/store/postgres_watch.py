"""The PostgreSQL backend's change watcher: a connection that LISTENs for the NOTIFY of new jobs."""

import psycopg

from .postgres_schema import CHANNEL


class NotifyWatcher:
    """A dedicated connection that LISTENs; readable when a NOTIFY arrived."""

    works = True

    def __init__(self, url):
        self._url = url
        self._listen()

    def _listen(self):
        self._connection = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        self._connection.execute(f"LISTEN {CHANNEL}")

    def fileno(self):
        """The connection's socket (listening again on a new connection if the server dropped the old one)."""
        if self._connection.closed:
            self._listen()
        return self._connection.fileno()

    def drain(self):
        """Consume pending notifications (without blocking); True if there was one, or if the connection had
        dropped (notifications sent meanwhile are lost: the caller looks at the queue once)."""
        if self._connection.closed:
            self._listen()
            return True
        connection = self._connection.pgconn
        connection.consume_input()
        changed = False
        while connection.notifies() is not None:
            changed = True
        return changed

    def close(self):
        """Close the listening connection."""
        self._connection.close()
