"""The audit log over HTTP (GET /api/v1/audit), and who the API's actions are recorded as.

Every state-changing route passes `actor()` to the store, which records the action in the audit log in the
transaction of the change (see queuectl_core/store/audit.py)."""

from flask import Blueprint, jsonify

from . import auth, params
from .storage import get_store

blueprint = Blueprint("audit", __name__, url_prefix="/api/v1")
blueprint.before_request(auth.check_api_request)

OPERATOR = "api:operator"
MAX_LIMIT = 1000
MAX_OFFSET = 10**12


def actor():
    """Who the API's state-changing requests act as: the operator, since only the operator's token (or a session
    started with it) may change anything; a viewer is refused before any change is made."""
    return OPERATOR


@blueprint.get("/audit")
def audit_log():
    """The recorded operator actions, newest first: {"entries": [{"at", "actor", "action", "target", "details"}]}."""
    args = params.query_args(("limit", "offset"))
    limit = params.integer_arg(args, "limit", 50, 1, MAX_LIMIT)
    offset = params.integer_arg(args, "offset", 0, 0, MAX_OFFSET)
    return jsonify(entries=get_store().audit_log(limit=limit, offset=offset))
