"""/healthz and /metrics: no token, for load balancers and Prometheus."""

from flask import Blueprint, Response
from queuectl_core.errors import DatabaseUnusable

from . import metrics
from .errors import error_response
from .storage import get_store

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    """200 {"status": "ok"} when the database answers, else 503 with the reason."""
    try:
        get_store().ping()
    except DatabaseUnusable as error:
        return error_response(str(error), 503, status="unavailable")
    return {"status": "ok"}


@blueprint.get("/metrics")
def prometheus_metrics():
    """Prometheus text computed from the database now."""
    return Response(metrics.render(get_store().metrics_snapshot()), content_type=metrics.CONTENT_TYPE)
