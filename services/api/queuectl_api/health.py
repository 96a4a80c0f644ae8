"""/healthz and /metrics: no token, for load balancers and Prometheus.

Their callers are anonymous, so when the database fails they say only that it does: the reason (which names the
database file, or the PostgreSQL host and user) goes to the server's log."""

import logging

from flask import Blueprint, Response, request
from queuectl_core.errors import DatabaseError, DatabaseUnusable

from . import metrics
from .errors import error_response
from .storage import get_store

blueprint = Blueprint("health", __name__)
log = logging.getLogger("queuectl.api")
UNAVAILABLE = "the database does not answer (the reason is in the server's log)"


DATABASE_ERRORS = (DatabaseUnusable, DatabaseError)  # the store's own, whichever the backend


def _unavailable(error):
    log.warning("%s: database unusable: %s", request.path, error)
    return error_response(UNAVAILABLE, 503, status="unavailable")


@blueprint.get("/healthz")
def healthz():
    """200 {"status": "ok"} when the database answers, else 503 (the reason is logged, not shown)."""
    try:
        get_store().ping()
    except DATABASE_ERRORS as error:
        return _unavailable(error)
    return {"status": "ok"}


@blueprint.get("/metrics")
def prometheus_metrics():
    """Prometheus text computed from the database now (503 without the reason when it does not answer)."""
    try:
        snapshot = get_store().metrics_snapshot()
    except DATABASE_ERRORS as error:
        return _unavailable(error)
    return Response(metrics.render(snapshot), content_type=metrics.CONTENT_TYPE)
