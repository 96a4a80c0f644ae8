"""One store per request: opened on first use, closed when the request ends."""

from flask import current_app, g
from queuectl_core.store import open_store


def get_store():
    """The queue for this request (opened on first use from the configured database)."""
    if "store" not in g:
        g.store = open_store(current_app.config["QUEUECTL_DB"], pooled=True)
    return g.store


def _close_store(exception=None):
    store = g.pop("store", None)
    if store is not None:
        store.close()


def init_app(app):
    """Close the request's store at teardown."""
    app.teardown_appcontext(_close_store)
