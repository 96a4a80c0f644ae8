"""One store per request: opened on first use, closed when the request ends."""

from flask import current_app, g
from queuectl_core.store import open_store

# How long a request may wait for the database (SQLite's write lock, a pooled PostgreSQL connection): well under
# gunicorn's 30 s worker timeout, so a request that meets a locked or absent database answers 503 instead of
# having its worker killed mid-request (the client then got no answer at all).
REQUEST_WAIT_SECONDS = 10


def get_store():
    """The queue for this request (opened on first use from the configured database)."""
    if "store" not in g:
        g.store = open_store(current_app.config["QUEUECTL_DB"], pooled=True, wait_seconds=REQUEST_WAIT_SECONDS)
    return g.store


def _close_store(exception=None):
    store = g.pop("store", None)
    if store is not None:
        store.close()


def init_app(app):
    """Close the request's store at teardown."""
    app.teardown_appcontext(_close_store)
