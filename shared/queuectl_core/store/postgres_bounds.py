"""How long a PostgreSQL call may wait: every connection of the store is bounded, from lease_timeout.

A worker renews its lease every third of lease_timeout. Each connection therefore gets, with `third` = a third of
lease_timeout (at least 1 s):

- `lock_timeout` = third: a statement waits that long for a row or table lock, then fails (a worker retries);
- `idle_in_transaction_session_timeout` = third: a session that holds a transaction open without sending anything
  (its process frozen by SIGSTOP or `docker pause` in the middle of a heartbeat) is ended by the server, and its
  locks with it;
- `statement_timeout` = max(30 s, third): no statement runs longer than a request may take (gunicorn's 30 s); the
  few long ones (bulk COPY, `migrate`, schema migrations) lift it for their own transaction;
- TCP keepalives and `tcp_user_timeout` = third (the client's socket): over a cut network a call fails after
  about a third of lease_timeout instead of waiting for the link to come back, so a worker learns in time that
  it cannot renew its lease and stops its job (see the worker's _renew); `connect_timeout` = third too (libpq's
  least is 2 s, at most the 10 s it was), for the reconnection that follows.

A URL whose `options` sets one of the server settings keeps its own value.
"""

import os
import socket

from psycopg.conninfo import conninfo_to_dict

from ..settings import SETTINGS

DEFAULT_LEASE = SETTINGS["lease_timeout"].default
STATEMENT_TIMEOUT_MS = 30_000
KEEPALIVE_PROBES = 3
CONNECT_TIMEOUT_MAX = 10
_SERVER_SETTINGS = ("lock_timeout", "idle_in_transaction_session_timeout", "statement_timeout")
_CLIENT_SETTINGS = ("connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                    "tcp_user_timeout")
_STORED_LEASE = "SELECT value FROM settings WHERE name = 'lease_timeout'"


def bounds(lease_seconds):
    """{name: value} for a connection of a queue whose lease_timeout is `lease_seconds`: the server settings in
    milliseconds, the TCP ones as libpq names them (keepalive times in whole seconds)."""
    third_ms = max(1000, int(lease_seconds * 1000 / 3))
    third = third_ms // 1000
    return {
        "lock_timeout": third_ms,
        "idle_in_transaction_session_timeout": third_ms,
        "statement_timeout": max(STATEMENT_TIMEOUT_MS, third_ms),
        "tcp_user_timeout": third_ms,
        # Probes start after half the budget of silence; with the user timeout the kernel drops the connection
        # once `third` passed unanswered. Where tcp_user_timeout is unknown, idle + probes x interval ~ third.
        "keepalives_idle": max(1, third // 2),
        "keepalives_interval": max(1, third // (2 * KEEPALIVE_PROBES)),
        "keepalives_count": KEEPALIVE_PROBES,
        "connect_timeout": min(CONNECT_TIMEOUT_MAX, max(2, -(-third_ms // 1000))),
    }


def connect_kwargs(url, lease_seconds=DEFAULT_LEASE):
    """libpq parameters for psycopg.connect: the connect timeout, keepalives and the user timeout, but for those
    `url` sets itself."""
    values = _with_url(bounds(lease_seconds), url)
    return {"keepalives": conninfo_to_dict(url).get("keepalives", 1),
            **{name: values[name] for name in _CLIENT_SETTINGS}}


def stored_lease(connection):
    """The queue's lease_timeout as stored (the default where none is)."""
    import json

    row = connection.execute(_STORED_LEASE).fetchone()
    return json.loads(row[0]) if row else DEFAULT_LEASE


def apply(connection, lease_seconds, url):
    """Set the limits for `lease_seconds` on the open autocommit `connection`: the server settings (one round trip;
    not those the `options` of `url` set) and its socket's keepalives and user timeout (not those `url` sets)."""
    values = _with_url(bounds(lease_seconds), url)
    own = conninfo_to_dict(url).get("options", "")
    names = [name for name in _SERVER_SETTINGS if name not in own]
    if names:
        connection.execute("SELECT " + ", ".join("set_config(%s, %s, false)" for _ in names),
                           [item for name in names for item in (name, str(values[name]))])
    _tune_socket(connection.fileno(), values)


def _with_url(values, url):
    """`values` with the client settings `url` gives itself instead of ours."""
    given = conninfo_to_dict(url)
    return {**values, **{name: int(given[name]) for name in _CLIENT_SETTINGS if name in given}}


def _tune_socket(fd, values):
    with socket.socket(fileno=os.dup(fd)) as sock:  # a duplicate: the same socket, closed without closing it
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return  # a Unix socket: nothing between client and server to time out
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, name in ((socket.TCP_KEEPIDLE, "keepalives_idle"), (socket.TCP_KEEPINTVL, "keepalives_interval"),
                             (socket.TCP_KEEPCNT, "keepalives_count"), (socket.TCP_USER_TIMEOUT, "tcp_user_timeout")):
            sock.setsockopt(socket.IPPROTO_TCP, option, values[name])
