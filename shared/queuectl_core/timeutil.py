"""Time as integer milliseconds since the epoch inside; ISO-8601 UTC strings outside."""

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms():
    """The current wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def to_iso(ms):
    """Milliseconds since the epoch as '2026-11-29T01:49:17.123Z' (None stays None)."""
    if ms is None:
        return None
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def parse_iso(text):
    """An ISO-8601 timestamp with a zone as milliseconds since the epoch; ValueError otherwise."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("it has no time zone (add 'Z' or '+00:00')")
    return (moment - _EPOCH) // timedelta(milliseconds=1)  # exact: no float seconds in between
