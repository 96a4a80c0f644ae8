"""Every error becomes JSON `{"error": "..."}` with the right status: never a 500 page or a traceback."""

import logging

from flask import jsonify
from queuectl_core.errors import (
    BadDependency,
    DatabaseError,
    DatabaseUnusable,
    DuplicateJob,
    DuplicateSchedule,
    InvalidInput,
    JobNotFound,
    RunNotFound,
    ScheduleNotFound,
    WrongState,
)
from werkzeug.exceptions import HTTPException

from .auth import CsrfRejected, ReadOnly, Unauthorized
from .throttle import TooManyFailures

log = logging.getLogger("queuectl.api")

# Domain errors and the statuses they map to.
STATUSES = (
    (InvalidInput, 400),
    (Unauthorized, 401),
    (CsrfRejected, 403),
    (ReadOnly, 403),
    (JobNotFound, 404),
    (RunNotFound, 404),
    (ScheduleNotFound, 404),
    (DuplicateJob, 409),
    (DuplicateSchedule, 409),
    (BadDependency, 409),
    (WrongState, 409),
    (TooManyFailures, 429),
    (DatabaseUnusable, 503),
    (DatabaseError, 503),  # the store's own error for any failing database call, on every backend
)
# Messages for HTTP errors, kept short and free of HTML.
HTTP_MESSAGES = {
    400: "bad request",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    414: "URI too long",
    415: "unsupported media type",
    431: "request header fields too large",
}


def error_response(message, code, **extra):
    """A JSON error answer with HTTP status `code`."""
    response = jsonify(error=message, **extra)
    response.status_code = code
    return response


def _domain_error(error):
    for kind, status in STATUSES:
        if isinstance(error, kind):
            response = error_response(str(error), status)
            if status == 503:
                log.warning("%s", error)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="queuectl"'
            if status == 429:
                response.headers["Retry-After"] = str(error.retry_after)
            return response
    raise error


def _http_error(error):
    if error.code is None or error.code < 400:
        return error  # redirects (e.g. a missing trailing slash) keep werkzeug's answer
    response = error_response(HTTP_MESSAGES.get(error.code, error.name.lower()), error.code)
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _unexpected_error(error):
    log.exception("unexpected error")
    return error_response("internal error (logged on the server)", 500)


def init_app(app):
    """Register the JSON error handlers."""
    for kind, _ in STATUSES:
        app.register_error_handler(kind, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
