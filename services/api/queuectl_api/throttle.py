"""Failed logins per client address: after too many in a window, that address gets 429 until the oldest ages out.

Counts wrong tokens only (the dashboard's login form and wrong `Authorization: Bearer` tokens), never requests
without credentials and never a valid session. The counts live in this server process's memory: under gunicorn each
worker process counts on its own (with N workers an address gets at most N x limit guesses per window), and a
restart forgets them."""

import math
import threading
import time
from collections import OrderedDict, deque

from flask import current_app, request

# Beyond this many addresses the least recently failing one is forgotten, so that memory stays bounded.
MAX_ADDRESSES = 10_000


class TooManyFailures(Exception):
    """This client address failed to log in too often: 429 with Retry-After."""

    def __init__(self, retry_after):
        super().__init__(f"too many failed logins from your address: try again in {retry_after} s")
        self.retry_after = retry_after


class FailureLog:
    """Recent failure times per address, a sliding window of `window` seconds; `limit` failures close the address."""

    def __init__(self, limit, window, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._failures = OrderedDict()  # address -> deque of failure times, least recently failing first
        self._lock = threading.Lock()  # gthread workers would share it; sync workers never contend

    def _recent(self, address, now):
        times = self._failures.get(address)
        while times and times[0] <= now - self.window:
            times.popleft()
        if times is not None and not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address):
        """Seconds until `address` may try again, or 0 when it may try now."""
        with self._lock:
            now = self.clock()
            times = self._recent(address, now)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def record(self, address):
        """Count one failed login from `address`."""
        with self._lock:
            now = self.clock()
            times = self._recent(address, now)
            if times is None:
                times = self._failures[address] = deque(maxlen=self.limit)
            times.append(now)
            self._failures.move_to_end(address)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)


def init_app(app):
    """Give the app (one per server process) its own failure log."""
    app.extensions["queuectl_failures"] = FailureLog(app.config["QUEUECTL_AUTH_FAILURE_LIMIT"],
                                                     app.config["QUEUECTL_AUTH_FAILURE_WINDOW"])


def _log():
    return current_app.extensions["queuectl_failures"]


def check_client():
    """Raise TooManyFailures when this request's address has used up its failed logins (before any token check:
    a closed address learns nothing, not even from the right token)."""
    wait = _log().retry_after(request.remote_addr or "unknown")
    if wait:
        raise TooManyFailures(wait)


def record_failure():
    """Count a wrong token from this request's address (and log it, with the address, never the token)."""
    address = request.remote_addr or "unknown"
    current_app.logger.warning("wrong token from %s on %s %s", address, request.method, request.path)
    _log().record(address)
