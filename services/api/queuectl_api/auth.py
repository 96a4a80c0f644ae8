"""Who may call: the bearer token (scripts) or a logged-in dashboard session with its CSRF token."""

import hmac
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import current_app, redirect, request, session, url_for

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "X-CSRF-Token"


class Unauthorized(Exception):
    """No valid credentials: 401."""


class CsrfRejected(Exception):
    """A session request that changes state without the session's CSRF token: 403."""


def token_matches(candidate):
    """True when `candidate` is the configured API token (compared in constant time)."""
    expected = current_app.config["QUEUECTL_API_TOKEN"].encode()
    return hmac.compare_digest(candidate.encode("utf-8", "replace"), expected)


def check_api_request():
    """Allow a bearer token, or a dashboard session (plus its CSRF header when the request changes state).

    Raises Unauthorized or CsrfRejected."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and token_matches(credentials.strip()):
            return
        raise Unauthorized("wrong API token: send 'Authorization: Bearer <QUEUECTL_API_TOKEN>'")
    if not session.get("logged_in"):
        raise Unauthorized("missing API token: send 'Authorization: Bearer <QUEUECTL_API_TOKEN>'")
    if request.method not in SAFE_METHODS and not csrf_matches(request.headers.get(CSRF_HEADER, "")):
        raise CsrfRejected(f"missing or wrong {CSRF_HEADER} header")


def csrf_token():
    """This session's CSRF token (created on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_matches(candidate):
    """True when `candidate` is this session's CSRF token."""
    expected = session.get("csrf")
    return bool(expected) and hmac.compare_digest(candidate.encode("utf-8", "replace"), expected.encode())


def log_in():
    """Start a fresh session (new CSRF token) for a user who gave the right token."""
    session.clear()
    session.permanent = True
    session["logged_in"] = True
    csrf_token()


def log_out():
    """End the session."""
    session.clear()


def login_required(view):
    """Send a visitor without a session to the login page, coming back here afterwards."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not session.get("logged_in"):
            return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def safe_next(target):
    """`target` if it is a path on this site, else the dashboard's home (no open redirect)."""
    # Browsers drop tabs and newlines inside URLs ("/\t/evil.example" becomes "//evil.example"): refuse them all.
    unsafe = any(character.isspace() or not character.isprintable() for character in target or "")
    if unsafe or not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("dashboard.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("dashboard.overview")
    return target
