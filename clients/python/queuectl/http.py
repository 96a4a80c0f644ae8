"""Talking to queuectl's HTTP API: one place for the Python client's API mode and the CLI's `--api`.

urllib3 with timeouts on every request; GETs (idempotent) are retried on connection and read errors, a request
that changes something never is (an enqueue sent twice would add two jobs). Every failure becomes one of the
client's exceptions with a one-line message: the API's own error text, or what went wrong on the way to it.
"""

import json
import os
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from .errors import Conflict, InvalidJob, JobNotFound, Unauthorized, Unavailable

CONNECT_SECONDS = 5.0
READ_SECONDS = 30.0  # above the API's longest answer (a wait of 20 s)
GET_RETRIES = urllib3.Retry(total=3, connect=3, read=2, status=0, other=0, redirect=0, backoff_factor=0.2,
                            allowed_methods=frozenset({"GET"}), raise_on_status=False)
STATUS_ERRORS = {400: InvalidJob, 401: Unauthorized, 403: Unauthorized, 404: JobNotFound, 409: Conflict}


def path(*parts):
    """A URL path under /api/v1 from parts, each quoted (a job id may hold ':' or '.')."""
    return "/" + "/".join(_segment(str(part)) for part in parts)


def _segment(part):
    """One part of a path, quoted. A part of only dots ('.', '..': valid job ids and schedule names) is written as
    %2E escapes: left as it is, the URL's dot segments would be resolved on the way (urllib3 does), and
    /schedules/../pause would pause the whole queue."""
    if part in (".", ".."):
        return "%2E" * len(part)
    return quote(part, safe="")


class Connection:
    """The API at `url` (e.g. https://queue.example.com), with the bearer `token`.

    `ca_file` names the certificates that verify the server (default: the system's, or $QUEUECTL_API_CA_FILE)."""

    def __init__(self, url, token=None, timeout=READ_SECONDS, ca_file=None):
        split = urlsplit(url or "")
        if split.scheme not in ("http", "https") or not split.netloc:
            raise InvalidJob(f"the API URL must be http://HOST[:PORT] or https://..., got {url!r}")
        self.url = url.rstrip("/")
        self.base = self.url + "/api/v1"
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": "queuectl-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._token_given = bool(token)
        ca_file = ca_file or os.environ.get("QUEUECTL_API_CA_FILE") or None
        self._pool = urllib3.PoolManager(headers=headers, ca_certs=ca_file, retries=False, maxsize=4,
                                         timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=timeout))

    def close(self):
        """Close the pooled connections."""
        self._pool.clear()

    def get(self, route, query=None, read_seconds=None):
        """GET /api/v1`route` with `query` (a dict; None values left out): the decoded JSON answer."""
        return self.call("GET", route, query=query, read_seconds=read_seconds)[1]

    def call(self, method, route, body=None, query=None, read_seconds=None):
        """Send one request: (status, decoded JSON answer) for a 2xx; one of the client's exceptions otherwise."""
        fields = {name: value for name, value in (query or {}).items() if value is not None}
        url = self.base + route
        if fields:
            url += "?" + "&".join(f"{quote(str(name))}={quote(str(value), safe='')}" for name, value in fields.items())
        kwargs = {"retries": GET_RETRIES if method == "GET" else False}
        if read_seconds is not None:
            kwargs["timeout"] = urllib3.Timeout(connect=CONNECT_SECONDS, read=read_seconds)
        if body is not None:
            kwargs["body"] = json.dumps(body).encode()
            kwargs["headers"] = {**self._pool.headers, "Content-Type": "application/json"}
        try:
            response = self._pool.request(method, url, **kwargs)
        except (HTTPError, LocationValueError, OSError) as error:
            raise Unavailable(self._failure(error)) from None
        return response.status, self._answer(method, route, response)

    def _answer(self, method, route, response):
        data = response.data
        try:
            value = json.loads(data) if data else {}
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise Unavailable(f"{self.url} did not answer {method} {route} as the queuectl API does"
                              f" (HTTP {response.status}, {response.headers.get('Content-Type', 'no content type')})")
        if 200 <= response.status < 300:
            return value
        message = value.get("error") or f"HTTP {response.status}"
        if response.status == 401:
            message = (f"the API at {self.url} refused the token ({message}): set QUEUECTL_API_TOKEN to its operator"
                       f" or viewer token" if self._token_given else
                       f"the API at {self.url} needs a token ({message}): set QUEUECTL_API_TOKEN")
        elif response.status == 429:
            message = f"{message} (retry after {response.headers.get('Retry-After', '?')} s)"
        kind = STATUS_ERRORS.get(response.status, Unavailable)
        raise kind(message, status=response.status, body=value)

    def _failure(self, error):
        """A one-line reason for a request that got no answer."""
        if isinstance(error, MaxRetryError) and error.reason is not None:
            error = error.reason
        if isinstance(error, SSLError):
            return f"TLS problem with {self.url}: {_reason(error)}"
        # NewConnectionError is a ConnectTimeoutError too (urllib3 2): the narrower kinds first.
        if isinstance(error, NameResolutionError):
            return f"cannot reach {self.url}: unknown host {urlsplit(self.url).hostname}"
        if isinstance(error, NewConnectionError):
            return f"cannot reach {self.url}: {_reason(error)}"
        if isinstance(error, ConnectTimeoutError):
            return f"cannot reach {self.url}: no connection within {CONNECT_SECONDS:g} s"
        if isinstance(error, ReadTimeoutError):
            return f"no answer from {self.url} within {self.timeout:g} s"
        if isinstance(error, ProtocolError):
            return f"the connection to {self.url} broke: {_reason(error)}"
        return f"cannot reach {self.url}: {_reason(error)}"


def _reason(error):
    """The innermost message of a urllib3 error, without its object addresses."""
    text = str(error)
    for marker in ("Failed to establish a new connection: ", "Caused by SSLError(", "SSLError("):
        if marker in text:
            text = text.split(marker, 1)[1]
    if "[Errno 111]" in text or "Connection refused" in text:
        return "connection refused"
    return text.strip(" ()\"'").splitlines()[0] if text else type(error).__name__
