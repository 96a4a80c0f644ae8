"""The app's configuration: the database, the API token and what follows from them."""

import hashlib
import hmac
import os
from datetime import timedelta

from queuectl_core.location import database_location

# A request body larger than this gets 413; a job's command is at most 1,000,000 characters.
MAX_BODY_BYTES = 2 * 1024 * 1024
TOKEN_HELP = (
    "QUEUECTL_API_TOKEN is not set: the API and dashboard run shell commands, so they refuse to start without a token."
    " Set one, for example:\n"
    "    export QUEUECTL_API_TOKEN=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\"\n"
    "(`make dev` generates one into .dev/api-token)."
)


class MissingToken(RuntimeError):
    """The server was started without an API token."""

    def __init__(self):
        super().__init__(TOKEN_HELP)


def load_config(test_config=None):
    """Flask settings from the environment (QUEUECTL_DB, QUEUECTL_API_TOKEN), overridden by `test_config`.

    Raises MissingToken when no token is configured."""
    values = {
        "QUEUECTL_DB": None,
        "QUEUECTL_API_TOKEN": os.environ.get("QUEUECTL_API_TOKEN", ""),
        "SESSION_COOKIE_SECURE": os.environ.get("QUEUECTL_COOKIE_SECURE", "") in ("1", "true", "yes"),
    }
    values.update(test_config or {})
    values["QUEUECTL_DB"] = database_location(values["QUEUECTL_DB"])
    token = (values["QUEUECTL_API_TOKEN"] or "").strip()
    if not token:
        raise MissingToken()
    values["QUEUECTL_API_TOKEN"] = token
    values.update(
        # Derived from the token: every gunicorn worker signs sessions alike, and a new token logs everyone out.
        SECRET_KEY=session_key(token),
        SESSION_COOKIE_NAME="queuectl_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
    )
    return values


def session_key(token):
    """The key that signs session cookies, derived from the API token."""
    return hmac.new(token.encode(), b"queuectl dashboard session cookie", hashlib.sha256).hexdigest()
