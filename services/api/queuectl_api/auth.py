"""Who may call, and as what: the bearer token (scripts) or a logged-in dashboard session with its CSRF token.

Two roles: `operator` (QUEUECTL_API_TOKEN: everything) and `viewer` (QUEUECTL_API_READ_TOKEN: reads only)."""

import hashlib
import hmac
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import current_app, g, redirect, request, session, url_for

from . import throttle

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "X-CSRF-Token"
OPERATOR = "operator"
VIEWER = "viewer"
ROLES = (OPERATOR, VIEWER)


class Unauthorized(Exception):
    """No valid credentials: 401."""


class CsrfRejected(Exception):
    """A session request that changes state without the session's CSRF token: 403."""


class ReadOnly(Exception):
    """A viewer (the read token, or a session logged in with it) asked to change something: 403."""


def role_of_token(candidate):
    """`operator` or `viewer` when `candidate` is one of the configured tokens, else None.

    Both are compared in constant time, always both, so that timing tells nothing about which one was close."""
    candidate = candidate.encode("utf-8", "replace")
    operator = hmac.compare_digest(candidate, current_app.config["QUEUECTL_API_TOKEN"].encode())
    read_token = current_app.config.get("QUEUECTL_API_READ_TOKEN")
    viewer = read_token is not None and hmac.compare_digest(candidate, read_token.encode())
    return OPERATOR if operator else VIEWER if viewer else None


def check_api_request():
    """Allow a bearer token, or a dashboard session (plus its CSRF header when the request changes state); a viewer
    may only read. Records the caller's role for current_role().

    Raises Unauthorized, TooManyFailures (a wrong token too often from this address), CsrfRejected or ReadOnly."""
    header = request.headers.get("Authorization")
    if header is not None:
        throttle.check_client()
        scheme, _, credentials = header.partition(" ")
        role = role_of_token(credentials.strip()) if scheme.lower() == "bearer" else None
        if role is None:
            throttle.record_failure()
            raise Unauthorized("wrong API token: send 'Authorization: Bearer <QUEUECTL_API_TOKEN>'")
    else:
        role = session_role()
        if role is None:
            raise Unauthorized("missing API token: send 'Authorization: Bearer <QUEUECTL_API_TOKEN>'")
        if request.method not in SAFE_METHODS and not csrf_matches(request.headers.get(CSRF_HEADER, "")):
            raise CsrfRejected(f"missing or wrong {CSRF_HEADER} header")
    g.role = role
    if role != OPERATOR and request.method not in SAFE_METHODS:
        raise ReadOnly("read-only: the viewer token (QUEUECTL_API_READ_TOKEN) may only read;"
                       " this needs the operator token (QUEUECTL_API_TOKEN)")


def _token_of(role):
    name = "QUEUECTL_API_TOKEN" if role == OPERATOR else "QUEUECTL_API_READ_TOKEN"
    return current_app.config.get(name)


def token_fingerprint(token):
    """A mark of `token` for the session: keyed with the session secret, so the cookie (readable, only signed)
    tells nothing about the token, and a session ends when its token is changed."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"queuectl session token\0" + token.encode(), hashlib.sha256).hexdigest()[:32]


def session_role():
    """The role this request's dashboard session logged in with, or None without a session (or when the token it
    logged in with is no longer the configured one)."""
    role = session.get("role")
    if role not in ROLES or not _token_of(role):
        return None
    return role if hmac.compare_digest(session.get("token_mark", ""), token_fingerprint(_token_of(role))) else None


def current_role():
    """The role of this request's caller once checked (`operator` or `viewer`), else the session's, else None."""
    return g.get("role") or session_role()


def current_actor():
    """Who is acting, as the audit log will name it: `api:operator` (viewers change nothing), or None."""
    role = current_role()
    return f"api:{role}" if role else None


def can_change():
    """True when this request's caller may change state (the dashboard shows its action buttons only then)."""
    return current_role() == OPERATOR


def csrf_token():
    """This session's CSRF token (created on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_matches(candidate):
    """True when `candidate` is this session's CSRF token."""
    expected = session.get("csrf")
    return bool(expected) and hmac.compare_digest(candidate.encode("utf-8", "replace"), expected.encode())


def log_in(role):
    """Start a fresh session (new CSRF token) for a user who gave the token of `role`."""
    session.clear()
    session.permanent = True
    session["role"] = role
    session["token_mark"] = token_fingerprint(_token_of(role))
    csrf_token()


def log_out():
    """End the session."""
    session.clear()


def login_required(view):
    """Send a visitor without a session to the login page, coming back here afterwards."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if session_role() is None:
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
