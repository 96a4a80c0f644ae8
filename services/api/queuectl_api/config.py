"""The app's configuration: the database, the operator and viewer tokens, the session secret, the login throttle."""

import os
import secrets
from datetime import timedelta

from queuectl_core.location import database_location

# A request body larger than this gets 413; a job's command is at most 1,000,000 characters.
MAX_BODY_BYTES = 2 * 1024 * 1024
# A token shorter than this can be guessed online or offline: refused at start.
MIN_TOKEN_LENGTH = 32
MAKE_ONE = "    export {name}=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\"\n"
TOKEN_HELP = (
    "QUEUECTL_API_TOKEN is not set: the API and dashboard run shell commands, so they refuse to start without a token."
    " Set one, for example:\n" + MAKE_ONE.format(name="QUEUECTL_API_TOKEN")
    + "(`make dev` generates one into .dev/api-token)."
)
SESSION_SECRET_VARIABLE = "QUEUECTL_SESSION_SECRET"
# Failed logins (dashboard form or wrong bearer token) allowed per client address and window, per server process.
DEFAULT_FAILURE_LIMIT = 10
DEFAULT_FAILURE_WINDOW = 300

# The secret generated for this process tree when the operator sets none. gunicorn's master calls session_secret()
# before it forks (config/gunicorn.conf.py, on_starting), so every worker, respawned ones included, inherits it.
_generated_secret = None


class UnsafeConfiguration(RuntimeError):
    """The server must not start this way (a token too short or reused, a bad throttle setting): says why."""


class MissingToken(UnsafeConfiguration):
    """The server was started without an API token."""

    def __init__(self):
        super().__init__(TOKEN_HELP)


def token_problem(name, value, operator_token=None):
    """None when `value` is usable as token `name`, else a message saying what is wrong and how to make one.

    The message never quotes the token itself (it ends up in logs)."""
    if len(value) < MIN_TOKEN_LENGTH:
        return (f"{name} is too short ({len(value)} characters): a short token can be guessed, so the API refuses"
                f" tokens under {MIN_TOKEN_LENGTH} characters. Make a random one, for example:\n"
                + MAKE_ONE.format(name=name))
    if operator_token is not None and value == operator_token:
        return (f"{name} must differ from QUEUECTL_API_TOKEN: the viewer token may only read. Make another one,"
                " for example:\n" + MAKE_ONE.format(name=name))
    return None


def session_secret():
    """The key that signs session cookies: QUEUECTL_SESSION_SECRET when set, else random for this process tree.

    Never derived from a token: a cookie anyone can get from GET /login must not let them test guesses offline."""
    global _generated_secret
    configured = os.environ.get(SESSION_SECRET_VARIABLE, "").strip()
    if configured:
        return configured
    if _generated_secret is None:
        _generated_secret = secrets.token_hex(32)
    return _generated_secret


def startup_problem(environ):
    """The first reason the server must not start with these environment variables, or None (gunicorn's check)."""
    token = environ.get("QUEUECTL_API_TOKEN", "").strip()
    if not token:
        return TOKEN_HELP
    read_token = environ.get("QUEUECTL_API_READ_TOKEN", "").strip()
    secret = environ.get(SESSION_SECRET_VARIABLE, "").strip()
    return (token_problem("QUEUECTL_API_TOKEN", token)
            or (read_token and token_problem("QUEUECTL_API_READ_TOKEN", read_token, token))
            or (secret and token_problem(SESSION_SECRET_VARIABLE, secret))
            or _throttle_problem(environ))


def _positive_integer(environ, name, default):
    text = str(environ.get(name, "")).strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise UnsafeConfiguration(f"{name} must be a whole number of at least 1, got {text[:40]!r}")
    return int(text)


def _throttle_problem(environ):
    try:
        _positive_integer(environ, "QUEUECTL_AUTH_FAILURE_LIMIT", DEFAULT_FAILURE_LIMIT)
        _positive_integer(environ, "QUEUECTL_AUTH_FAILURE_WINDOW", DEFAULT_FAILURE_WINDOW)
    except UnsafeConfiguration as error:
        return str(error)
    return None


def load_config(test_config=None):
    """Flask settings from the environment, overridden by `test_config`.

    Reads QUEUECTL_DB, QUEUECTL_API_TOKEN, QUEUECTL_API_READ_TOKEN (optional), QUEUECTL_SESSION_SECRET (optional),
    QUEUECTL_AUTH_FAILURE_LIMIT / _WINDOW and QUEUECTL_COOKIE_SECURE.
    Raises MissingToken without a token, UnsafeConfiguration when a token or the session secret is too short, the
    viewer token equals the operator's, or a throttle setting is not a whole number."""
    environ = os.environ
    values = {
        "QUEUECTL_DB": None,
        "QUEUECTL_API_TOKEN": environ.get("QUEUECTL_API_TOKEN", ""),
        "QUEUECTL_API_READ_TOKEN": environ.get("QUEUECTL_API_READ_TOKEN", ""),
        "QUEUECTL_AUTH_FAILURE_LIMIT": _positive_integer(environ, "QUEUECTL_AUTH_FAILURE_LIMIT",
                                                         DEFAULT_FAILURE_LIMIT),
        "QUEUECTL_AUTH_FAILURE_WINDOW": _positive_integer(environ, "QUEUECTL_AUTH_FAILURE_WINDOW",
                                                          DEFAULT_FAILURE_WINDOW),
        "SESSION_COOKIE_SECURE": environ.get("QUEUECTL_COOKIE_SECURE", "") in ("1", "true", "yes"),
        "SECRET_KEY": session_secret(),
    }
    values.update(test_config or {})
    values["QUEUECTL_DB"] = database_location(values["QUEUECTL_DB"])
    token = (values["QUEUECTL_API_TOKEN"] or "").strip()
    if not token:
        raise MissingToken()
    read_token = (values["QUEUECTL_API_READ_TOKEN"] or "").strip()
    problem = (token_problem("QUEUECTL_API_TOKEN", token)
               or (read_token and token_problem("QUEUECTL_API_READ_TOKEN", read_token, token))
               or token_problem(SESSION_SECRET_VARIABLE, str(values["SECRET_KEY"] or "")))
    if problem:
        raise UnsafeConfiguration(problem)
    values["QUEUECTL_API_TOKEN"] = token
    values["QUEUECTL_API_READ_TOKEN"] = read_token or None
    values.update(
        SESSION_COOKIE_NAME="queuectl_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
    )
    return values
